"""The embedder's own plumbing (its vectors' quality is measured by bench/ and the slow tests)."""

from __future__ import annotations

import numpy as np

from qa.embedding import Embedder


class _Rows:
    """Stands in for the loaded model: one fixed row per text (no quality claimed)."""

    def encode(self, texts, **_):
        return np.ones((len(texts), 4), dtype=np.float32)

    def get_embedding_dimension(self) -> int:
        return 4


def test_progress_bar_is_off_when_stderr_is_not_a_terminal(capsys):
    # `qa index docs/ 2> log` (a script, cron, CI) used to fill the log with the
    # "Embedding: 0%|...|" bar; the file bar beside it was already off there.
    e = Embedder(batch_size=2)
    e._model = _Rows()
    out = e.run(["a", "b", "c"], progress=True)
    assert out.shape == (3, 4)
    assert capsys.readouterr().err == ""
