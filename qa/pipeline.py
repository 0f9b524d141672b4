"""``QA``: the one entry point, assembled from the stages.

    index  (qa.index_manager.IndexManager)  open / sync / add / remove / rebuild
      └─ indexer (qa.indexing.Indexer)      chunk → embed → vector + lexical index
    answer (qa.answering.Answerer)          retrieve → merge → read → choose → cite

Models load lazily and are shared by every call and thread. Collaborators can
be passed in (tests pass fakes; an app can share one loaded reader between
several indexes).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from qa.answering import Answerer, History, Passage, merge_hits, retrieval_query
from qa.chunking import Chunker
from qa.config import Settings
from qa.embedding import Embedder
from qa.errors import ArgumentError
from qa.priority import Foreground
from qa.index_manager import IndexManager, SyncReport
from qa.indexing import Indexer
from qa.reader import ReadResult, SpanReader
from qa.retrieval import Retriever
from qa.store import IndexStore
from qa.types import Answer, Chunk, Document

__all__ = ["QA", "History", "Passage", "merge_hits", "retrieval_query"]


def _folder(value: Any, name: str) -> Path:
    """A folder argument as a Path; anything else named before any model loads
    (an int was a TypeError from pathlib, "" the working directory)."""
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise ArgumentError(f"{name} must be a folder path (a str or os.PathLike), not {value!r:.60}")
    return Path(value)


class QA:
    """Cited extractive QA over one index.

    >>> qa = QA(index_dir="my-index", corpus_dir="my-docs")   # doctest: +SKIP
    >>> qa.ask("Who commanded the 58th Combined Arms Army?").answer   # doctest: +SKIP

    With ``corpus_dir`` set, the index is (re)built from that folder when it is
    missing, stale or out of date with the files; without it, a missing or stale
    index is an error that says how to build one.
    """

    def __init__(
        self,
        index_dir: str | Path | None = None,
        corpus_dir: str | Path | None = ...,  # type: ignore[assignment]
        settings: Settings | None = None,
        *,
        embedder: Any | None = None,
        reader: Any | None = None,
        retriever: Retriever | None = None,
        calibrator: Callable[..., Any] | None = None,
    ) -> None:
        if settings is not None and not isinstance(settings, Settings):
            raise ArgumentError(f"settings must be a qa.config.Settings, not {type(settings).__name__}")
        s = settings or Settings()
        if index_dir is not None:
            s = replace(s, index_dir=_folder(index_dir, "index_dir"))
        if corpus_dir is not ...:
            s = replace(s, corpus_dir=_folder(corpus_dir, "corpus_dir") if corpus_dir is not None else None)
        self.settings = s
        #: questions in flight; an upload's embedding steps aside for them between batches
        self.foreground = getattr(embedder, "foreground", None) or Foreground(s.serving.upload_yield_s,
                                                                              s.serving.question_grace_s)
        if embedder is not None and hasattr(embedder, "foreground") and embedder.foreground is None:
            embedder.foreground = self.foreground  # a shared embedder learns of this instance's questions
        # Settings.bf16 and Settings.engine reach both models.
        self.embedder = embedder if embedder is not None else Embedder(
            batch_size=s.embed_batch_size, bf16=s.bf16, engine=s.engine, foreground=self.foreground,
            busy_batch_size=s.serving.upload_batch_when_busy)
        self.reader = reader if reader is not None else SpanReader(
            replace(s.reader, bf16=s.bf16 and s.reader.bf16, engine=s.engine))
        self.retriever = retriever if retriever is not None else Retriever(self.embedder, s.retrieval)
        self.indexer = Indexer(Chunker(s.chunking), self.embedder, s.bm25, s.store)
        self.index = IndexManager(self.indexer, s.index_dir, s.corpus_dir, s.max_file_bytes)
        self.answerer = Answerer(self.retriever, self.reader, s, snapshot=self.index.current)
        #: ``calibrate``'s work, injected so the pipeline never imports evaluation
        #: (``qa.api.QA`` passes ``qa.evaluation.calibrate.calibrate``).
        self.calibrator = calibrator

    # --- index ---------------------------------------------------------------

    @property
    def store(self) -> IndexStore:
        """The latest published snapshot."""
        return self.index.current()

    def add_documents(self, docs: Iterable[Document], progress: bool = False) -> IndexStore:
        return self.index.add_documents(docs, progress=progress)

    def add_new_documents(self, docs: Iterable[Document], progress: bool = False):
        """Add documents, never replacing one: a taken id gets ``name (2).txt``
        (see ``IndexManager.add_new_documents``; returns an ``AddResult``)."""
        return self.index.add_new_documents(docs, progress=progress)

    def sync_paths(self, paths: Iterable[str | Path], progress: bool = False) -> SyncReport:
        """Index files and folders, one bad file never stopping the rest (``qa index``)."""
        return self.index.sync_paths(paths, progress=progress)

    def add_paths(self, paths: Iterable[str | Path], progress: bool = False) -> IndexStore:
        return self.index.add_paths(paths, progress=progress)

    def remove_documents(self, doc_ids: Iterable[str]) -> IndexStore:
        return self.index.remove_documents(doc_ids)

    def rebuild(self, paths: Iterable[str | Path] | None = None, progress: bool = False) -> IndexStore:
        """A fresh index of exactly ``paths``, or with none, of the texts the index stores."""
        return self.index.rebuild(paths, progress=progress)

    def index_exactly(self, docs: Iterable[Document], progress: bool = False) -> bool:
        return self.index.index_exactly(docs, progress=progress)

    def documents(self) -> list[tuple[Document, int]]:
        """Indexed documents with their chunk counts."""
        store = self.store
        counts: dict[str, int] = {}
        for c in store.chunks:
            counts[c.doc_id] = counts.get(c.doc_id, 0) + 1
        return [(d, counts.get(d.id, 0)) for d in store.documents.values()]

    def warm_up(self) -> None:
        """Load the index and both models now rather than on the first question."""
        _ = self.store
        self.embedder.warm_up()
        self.reader.warm_up()

    def info(self) -> dict[str, Any]:
        """What this ``QA`` runs on, in one place (``qa info``): the index, both
        models with the engine each runs on and ``auto``'s measurement behind it,
        the CPU, and the operating threshold with where it came from. Loads both
        models: which engine runs is only known once they are loaded."""
        import os

        from qa.engine import candidates, cpu_has_bf16, cpu_info, file_sha256, measured_choices

        store = self.store
        m = store.manifest
        self.warm_up()
        engine = self.settings.engine
        threshold, source = self.answerer.operating_point()

        def model(role: str, ident: dict[str, Any], engine_id: Any, weights: str | None) -> dict[str, Any]:
            # the measurement behind this choice: the same candidates as this run times
            bf16 = self.settings.bf16 and (role != "reader" or self.settings.reader.bf16)
            names = candidates(engine, role, bf16)
            measured = next((r for r in measured_choices(engine, weights, names) if r.get("role") == role), None) \
                if weights else None
            return {**ident, "engine": engine_id,
                    "auto_measured_cpu_s": measured.get("cpu_seconds") if measured else None}

        reader_path = getattr(getattr(self.reader, "config", None), "path", None)
        weights = Path(reader_path) / "model.safetensors" if reader_path else None
        reader_sha = file_sha256(weights) if weights is not None and weights.exists() else None
        return {
            "index": {"dir": str(self.settings.index_dir), "documents": len(store.documents), "chunks": len(store),
                      "vector_index": m.vector_index, "lexical_index": m.lexical_index,
                      "embeddings_from": m.engines, "corpus_dir": str(self.settings.corpus_dir or "") or None},
            "embedder": model("embedder", dict(getattr(self.embedder, "model_id", {})),
                              getattr(self.embedder, "engine_id", None),
                              getattr(self.embedder, "model_id", {}).get("sha256")),
            "reader": model("reader", {"path": str(reader_path) if reader_path else None, "sha256": reader_sha},
                            getattr(self.reader, "engine_id", None), reader_sha),
            "engine_setting": os.environ.get("QA_ENGINE") or engine.kind,
            "cpu": {**cpu_info(), "native_bf16": cpu_has_bf16()},
            "threshold": {"value": threshold, "from": source},
        }

    # --- asking ----------------------------------------------------------------

    def ask(self, question: str, history: History | None = None, top_k: int | None = None,
            min_score: float | None = None) -> Answer:
        """Answer one question from the indexed documents (see ``ask_batch``)."""
        with self.foreground.question():
            return self.answerer.ask_batch([question], [history], top_k=top_k, min_score=min_score)[0]

    def ask_batch(self, questions: Sequence[str], histories: Sequence[History | None] | None = None,
                  top_k: int | None = None, min_score: float | None = None, mode: str | None = None) -> list[Answer]:
        """Answer many questions with one batched retrieval and one batched read."""
        with self.foreground.question():
            return self.answerer.ask_batch(questions, histories, top_k=top_k, min_score=min_score, mode=mode)

    def read(self, questions: Sequence[str], top_k: int | None = None,
             mode: str | None = None) -> tuple[list[list[Passage]], list[ReadResult]]:
        """The passages and raw reader output behind ``ask_batch``, before any threshold."""
        with self.foreground.question():
            return self.answerer.read(questions, top_k=top_k, mode=mode)

    def retrieve(self, questions: Sequence[str], top_k: int | None = None, mode: str | None = None) -> list[list[Chunk]]:
        """Retrieval alone (for evaluation and debugging): top-k chunks per question."""
        return self.answerer.retrieve(questions, top_k=top_k, mode=mode)

    # --- the operating point ---------------------------------------------------

    @property
    def threshold(self) -> float:
        """The confidence below which ``ask`` answers "" when a call names no
        ``min_score``: ``settings.reader.min_score``, else the one ``calibrate``
        stored with the index, else the reader's own."""
        return self.answerer.effective_threshold()

    def calibrate(self, gold: str | Path | Sequence[Any], precision: float | None = None,
                  max_withheld: float | None = None, top_k: int | None = None, store: bool = True,
                  progress: bool = False):
        """Choose the threshold from gold questions (a JSONL path or ``GoldQuestion``s)
        over this index and store it with the index; returns a ``CalibrationReport``
        (``.threshold``, ``.at_threshold``, ``.curve``, ``.format()``). See
        ``qa.evaluation.calibrate``."""
        if self.calibrator is None:
            raise ArgumentError("this QA was built without a calibrator: use qa.QA (qa.api.QA), "
                                "or pass calibrator=qa.evaluation.calibrate.calibrate")
        return self.calibrator(self, gold, precision=precision, max_withheld=max_withheld, top_k=top_k, store=store,
                         progress=progress)
