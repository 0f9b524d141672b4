"""Shared fixtures.

Fast tests use ``FakeEmbedder`` / ``FakeReader`` (deterministic, model-free):
fine for plumbing (offsets, persistence, fusion), never for quality claims.
Tests marked ``slow`` share one real ``QA`` (real embedder, real reader from
``QA_READER`` or ``qa/models/reader``) built once per session from ``seeds/``.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import numpy as np
import pytest

import qa
from qa.chunking import Chunker
from qa.config import ChunkingConfig, ReaderConfig
from qa.indexing import Indexer
from qa.reader import Calibration, ReadResult, Span
from qa.store import IndexStore
from qa.types import Document

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
        t = self.config.min_score
        return self.calibration.threshold if t is None else t

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


# --- documents -----------------------------------------------------------------

TINY_DOCS = {
    "alpha.txt": (
        "Alpha Station sits on the northern ridge. It was built in 1962 by the Norland Survey. "
        "The station records wind speed and snowfall every hour.\n\n"
        "In winter the ridge road closes. Supplies then arrive by helicopter from Lindby."
    ),
    "beta.md": (
        "# Beta Harbour\n\nBeta Harbour is a fishing port on the eastern coast. "
        "Its lighthouse was painted red in 1998. The harbour master is Ingrid Solberg.\n\n"
        "Ferries leave for Gullholm twice a day in summer."
    ),
    "gamma.txt": (
        "Gamma Mill ground grain for three villages. The mill wheel broke in 1911 during a flood. "
        "A new turbine replaced the wheel in 1925, and the mill now makes electricity."
    ),
}


def make_doc(doc_id: str, text: str, title: str | None = None) -> Document:
    return Document(id=doc_id, text=text, title=title or doc_id)


@pytest.fixture
def tiny_docs() -> list[Document]:
    return [make_doc(k, v) for k, v in TINY_DOCS.items()]


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def small_chunker() -> Chunker:
    """Small chunks so the tiny documents span several of them."""
    return Chunker(ChunkingConfig(max_words=16, overlap_sentences=1))


def build_store(docs, chunker, embedder, previous=None, remove=()) -> IndexStore:
    return Indexer(chunker, embedder).run(list(docs), previous=previous, remove=tuple(remove))


@pytest.fixture
def tiny_store(tiny_docs, small_chunker, fake_embedder) -> IndexStore:
    return build_store(tiny_docs, small_chunker, fake_embedder)


@pytest.fixture
def write_docs(tmp_path):
    """Write {name: text} into a fresh folder and return the folder."""

    def _write(files: dict[str, str | bytes], folder: str = "docs") -> Path:
        d = tmp_path / folder
        d.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            p = d / name
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                p.write_bytes(content)
            else:
                p.write_bytes(content.encode("utf-8"))
        return d

    return _write


def make_fake_qa(*args, **kwargs):
    """A ``QA`` with the fake models passed in (same arguments as ``QA``)."""
    from qa.api import QA

    kwargs.setdefault("embedder", FakeEmbedder())
    kwargs.setdefault("reader", FakeReader())
    return QA(*args, **kwargs)


@pytest.fixture
def fake_models():
    """A factory for ``QA`` instances with fake models (pass it as the CLI's ``qa_factory``)."""
    return make_fake_qa


# --- keeping the repository's index/ out of the tests ---------------------------

@pytest.fixture(scope="session", autouse=True)
def _isolated_default_index(tmp_path_factory):
    """The default index (``ask()``, ``qa ask`` without --index) goes to a temp
    folder, never the repository's index/. QA_READER is left alone on purpose."""
    mp = pytest.MonkeyPatch()
    mp.setenv("QA_INDEX_DIR", str(tmp_path_factory.mktemp("default-index")))
    mp.setenv("QA_CORPUS_DIR", str(SEEDS))
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def _reset_default_qa():
    """No default ``QA`` instance leaks from one test into the next."""
    saved = qa._default
    qa._default = None
    yield
    qa._default = saved


# --- the real models (slow) -----------------------------------------------------

@pytest.fixture(scope="session")
def real_qa(tmp_path_factory):
    """One QA with the real embedder and reader over seeds/, built once."""
    from qa.api import QA

    index_dir = tmp_path_factory.mktemp("real-index")
    q = QA(index_dir=index_dir, corpus_dir=SEEDS)
    q.warm_up()
    return q


@pytest.fixture
def fresh_real_qa(real_qa, tmp_path):
    """A QA over its own copy of the seed index that shares real_qa's loaded
    models, for tests that add or remove documents."""
    from qa.api import QA

    return QA(index_dir=tmp_path / "index", corpus_dir=SEEDS, settings=real_qa.settings,
              embedder=real_qa.embedder, reader=real_qa.reader, retriever=real_qa.retriever)
