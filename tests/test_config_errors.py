"""Bad settings raise the ``QAError`` family (``ConfigError``), still a ``ValueError``."""

import pytest

from qa.config import ChunkingConfig, PagesConfig, ReaderConfig, RetrievalConfig, StoreConfig
from qa.errors import ConfigError, QAError


@pytest.mark.parametrize("make", [
    lambda: ChunkingConfig(max_words=3),
    lambda: StoreConfig(vector_backend="nope"),
    lambda: RetrievalConfig(mode="nope"),
    lambda: RetrievalConfig(top_k=0),
    lambda: ReaderConfig(min_score=1.5),
    # PagesConfig raised a bare ValueError, so `except QAError` (and the CLI's one-line
    # errors) missed a bad pages setting, unlike every other setting's
    lambda: PagesConfig(scale=10),
    lambda: PagesConfig(max_cache_bytes=-1),
    lambda: PagesConfig(band=2),
])
def test_a_bad_setting_is_a_config_error(make):
    with pytest.raises(ConfigError) as e:
        make()
    assert isinstance(e.value, QAError) and isinstance(e.value, ValueError)
