"""Shared fixtures.

Fast tests use ``FakeEmbedder`` / ``FakeReader`` (deterministic, model-free):
fine for plumbing (offsets, persistence, fusion), never for quality claims.
Tests marked ``slow`` share one real ``QA`` (real embedder, real reader from
``QA_READER`` or ``qa/models/reader``) built once per session from ``seeds/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import qa
from qa.chunking import Chunker
from qa.config import ChunkingConfig
from qa.indexing import Indexer
from qa.store import IndexStore
from qa.types import Document

from fakes import (  # noqa: E402,F401  (re-exported: tests import them from conftest)
    REPO,
    SEED_FILE,
    SEED_TITLE,
    SEEDS,
    FakeEmbedder,
    FakeReader,
    make_fake_qa,
)


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
