"""Model-free stand-ins for the embedder, the reader and ``QA``, with the seed paths.

Deterministic and fast: fine for plumbing (offsets, persistence, fusion,
concurrency), never for quality claims. A plain module (not ``conftest``), so
``bench/`` and helper processes import it without pytest's fixtures.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from pathlib import Path

import numpy as np

from qa.config import ReaderConfig
from qa.reader import Calibration, ReadResult, Span

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
SEED_FILE = SEEDS / "000_c67c6b8288ab472d.txt"
SEED_TITLE = "Russian General Sacked After Accusing Defense Ministry of Betrayal in Ukraine"

_TOKEN = re.compile(r"\w+")


class FakeEmbedder:
    """Bag-of-words hashing vectors: deterministic, no model, counts its calls.

    Texts sharing words get a positive inner product, which is enough for
    dense-retrieval plumbing tests (and nothing more).
    """

    def __init__(self, dim: int = 64, sha256: str = "fake-weights-0", **_ignored) -> None:
        self.dim = dim
        self.model_id = {"name": "fake/hashing-embedder", "sha256": sha256}
        self.calls: list[list[str]] = []

    @property
    def texts_embedded(self) -> int:
        return sum(len(c) for c in self.calls)

    def warm_up(self) -> None:
        pass

    def run(self, texts, progress: bool = False) -> np.ndarray:
        texts = list(texts)
        self.calls.append(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in _TOKEN.findall(t.lower()):
                h = int.from_bytes(hashlib.sha256(w.encode()).digest()[:4], "little")
                out[i, h % self.dim] += 1.0
            n = np.linalg.norm(out[i])
            if n == 0:
                out[i, 0] = 1.0
            else:
                out[i] /= n
        return out


class FakeReader:
    """Answers with the passage word that matches the question's longest word.

    Stands in for ``SpanReader`` in fast pipeline/CLI tests: the span it picks is
    known, so offset bookkeeping from passage to document can be checked exactly.
    """

    def __init__(self, config: ReaderConfig | None = None) -> None:
        self.config = config or ReaderConfig()
        self.calibration = Calibration(a=1.0, b=0.0, threshold=0.5)
        self.calls = 0

    loaded = True

    @property
    def threshold(self) -> float:
        """Like ``SpanReader.threshold``: the model's own (the Answerer decides which applies)."""
        return self.calibration.threshold

    def warm_up(self) -> None:
        pass

    def run(self, questions, passages):
        self.calls += 1
        out = []
        for q, ps in zip(questions, passages):
            words = sorted((w for w in _TOKEN.findall(q) if len(w) > 3), key=lambda w: (-len(w), w))
            spans = []
            for pi, text in enumerate(ps):
                for w in words:
                    m = re.search(r"\b" + re.escape(w) + r"\b", text, flags=re.IGNORECASE)
                    if m:
                        spans.append(Span(start=m.start(), end=m.end(), score=5.0 - pi, null_score=0.0, passage=pi))
                        break
            spans.sort(key=lambda s: -s.margin)
            out.append(ReadResult(spans=spans, null_score=0.0 if ps else math.inf))
        return out


def make_fake_qa(*args, **kwargs):
    """A ``QA`` with the fake models passed in (same arguments as ``QA``)."""
    from qa.api import QA

    kwargs.setdefault("embedder", FakeEmbedder())
    kwargs.setdefault("reader", FakeReader())
    return QA(*args, **kwargs)


def ask_all_at_once(batcher, questions: list[str]) -> list:
    """Each question from its own thread, all released together (a burst of chat clients)."""
    out = [None] * len(questions)
    barrier = threading.Barrier(len(questions))

    def ask(i: int) -> None:
        barrier.wait()
        out[i] = batcher.ask(questions[i])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(questions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out
