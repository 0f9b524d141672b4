"""Bad settings raise the ``QAError`` family (``ConfigError``), still a ``ValueError``."""

import pytest

from qa.config import ChunkingConfig, ReaderConfig, RetrievalConfig, StoreConfig
from qa.errors import ConfigError, QAError


@pytest.mark.parametrize("make", [
    lambda: ChunkingConfig(max_words=3),
    lambda: StoreConfig(vector_backend="nope"),
    lambda: RetrievalConfig(mode="nope"),
    lambda: RetrievalConfig(top_k=0),
    lambda: ReaderConfig(min_score=1.5),
])
def test_a_bad_setting_is_a_config_error(make):
    with pytest.raises(ConfigError) as e:
        make()
    assert isinstance(e.value, QAError) and isinstance(e.value, ValueError)
