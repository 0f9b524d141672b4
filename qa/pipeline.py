"""The question-answering pipeline: retrieve chunks, read spans, cite them.

``QA`` owns one embedder, one reader and one index snapshot, all loaded once
and shared by every call (and every thread). Index updates build a complete
new snapshot, save it atomically and then swap the in-memory reference, so a
question asked during an update sees either the old or the new index, never a
half-built one.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

from qa.chunking import Chunker
from qa.config import Settings
from qa.embedding import Embedder
from qa.errors import (
    DocumentNotIndexedError,
    EmptyCorpusError,
    IndexMissingError,
    IndexStaleError,
    QuestionError,
)
from qa.loading import load_paths, sha256_text
from qa.reader import ReadResult, SpanReader, choose
from qa.retrieval import BM25_PARAMS, Hit, Retriever, build_bm25, load_bm25, rrf
from qa.store import IndexStore
from qa.types import Answer, Chunk, Citation, Document

log = logging.getLogger("qa")

History = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Passage:
    """Retrieved chunks of one document merged where they touch, so overlapping
    chunks are read (and cited) once."""

    doc_id: str
    start: int
    end: int
    text: str
    chunks: tuple[Chunk, ...]
    retrieval_score: float


def merge_hits(store: IndexStore, hits: list[Hit]) -> list[Passage]:
    """Group hits by document and merge overlapping or adjacent chunks, keeping
    the order of each group's best hit."""
    groups: list[list[tuple[Chunk, float]]] = []
    for h in hits:
        c = store.chunks[h.row]
        for g in groups:
            if any(o.doc_id == c.doc_id and o.start <= c.end and c.start <= o.end for o, _ in g):
                g.append((c, h.score))
                break
        else:
            groups.append([(c, h.score)])
    # A chunk may bridge two earlier groups: merge until stable.
    merged = True
    while merged:
        merged = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                if any(a.doc_id == b.doc_id and a.start <= b.end and b.start <= a.end
                       for a, _ in groups[i] for b, _ in groups[j]):
                    groups[i].extend(groups.pop(j))
                    merged = True
                    break
            if merged:
                break
    out = []
    for g in groups:
        doc = store.documents[g[0][0].doc_id]
        start = min(c.start for c, _ in g)
        end = max(c.end for c, _ in g)
        chunks = tuple(sorted({c for c, _ in g}, key=lambda c: c.start))
        out.append(Passage(doc.id, start, end, doc.text[start:end], chunks, max(s for _, s in g)))
    return out


def retrieval_query(question: str, history: History | None, turns: int) -> str:
    """The question followed by the last turns, so "he" finds the right passage."""
    if not history or turns <= 0:
        return question
    context = " ".join(f"{q} {a}" for q, a in list(history)[-turns:])
    return f"{question} {context}"


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
    ) -> None:
        s = settings or Settings()
        if index_dir is not None:
            s = replace(s, index_dir=Path(index_dir))
        if corpus_dir is not ...:
            s = replace(s, corpus_dir=Path(corpus_dir) if corpus_dir is not None else None)
        self.settings = s
        self.chunker = Chunker(s.chunking)
        self.embedder = Embedder(batch_size=s.embed_batch_size, bf16=s.reader.bf16)
        self.retriever = Retriever(self.embedder, s.retrieval)
        self.reader = SpanReader(s.reader)
        self._store: IndexStore | None = None
        self._load_lock = threading.Lock()
        self._write_lock = threading.Lock()

    # --- index ---------------------------------------------------------------

    @property
    def store(self) -> IndexStore:
        if self._store is None:
            with self._load_lock:
                if self._store is None:
                    self._store = self._open_store()
        return self._store

    def _expected(self) -> dict:
        from dataclasses import asdict

        from qa.config import INDEX_FORMAT_VERSION

        return {"format_version": INDEX_FORMAT_VERSION, "embedder": self.embedder.model_id,
                "chunking": asdict(self.settings.chunking), "bm25": BM25_PARAMS}

    def _open_store(self) -> IndexStore:
        s = self.settings
        try:
            store = IndexStore.load(s.index_dir, load_bm25)
        except IndexMissingError:
            if s.corpus_dir is None:
                raise
            log.info("no index in %s: building it from %s", s.index_dir, s.corpus_dir)
            return self._write(load_paths([s.corpus_dir], s.max_file_bytes), previous=None)
        try:
            store.check_compatible(self._expected(), s.index_dir)
        except IndexStaleError:
            if s.corpus_dir is None:
                raise
            log.info("index in %s is stale: re-embedding its documents", s.index_dir)
            store = self._write(list(store.documents.values()), previous=None)
        if s.corpus_dir is not None:
            store = self._sync_corpus(store)
        return store

    def _sync_corpus(self, store: IndexStore) -> IndexStore:
        """Bring the index in line with the corpus folder: add, update, remove."""
        corpus = Path(self.settings.corpus_dir).resolve()
        docs = load_paths([corpus], self.settings.max_file_bytes)
        changed = [d for d in docs if store.manifest.documents.get(d.id) != sha256_text(d.text)]
        present = {d.id for d in docs}
        gone = tuple(
            did for did, d in store.documents.items()
            if did not in present and str(d.meta.get("source", "")).startswith(str(corpus) + "/")
        )
        if not changed and not gone:
            return store
        log.info("syncing %s: %d new or changed, %d removed", corpus, len(changed), len(gone))
        return self._write(changed, previous=store, remove=gone)

    def _write(self, docs: list[Document], previous: IndexStore | None, remove: tuple[str, ...] = (),
               progress: bool = False) -> IndexStore:
        store = IndexStore.build(docs, self.chunker, self.embedder, build_bm25, BM25_PARAMS,
                                 previous=previous, remove=remove, progress=progress)
        store.save(self.settings.index_dir)
        return store

    def add_documents(self, docs: Iterable[Document], progress: bool = False) -> IndexStore:
        """Index new or changed documents (same id replaces); searchable on return.

        The new snapshot is saved before it is published: if anything fails the
        previous index stays both on disk and in memory.
        """
        docs = list(docs)
        with self._write_lock:
            current = self._current_or_none()
            if current is not None and self._up_to_date(current, docs):
                self._store = current
                return current
            self._store = self._write(docs, previous=current, progress=progress)
            return self._store

    def _up_to_date(self, store: IndexStore, docs: list[Document]) -> bool:
        if store.manifest.expectations() != self._expected():
            return False
        return all(store.manifest.documents.get(d.id) == sha256_text(d.text) for d in docs)

    def add_paths(self, paths: Iterable[str | Path], progress: bool = False) -> IndexStore:
        """Load files/folders (all validated before anything is indexed) and add them."""
        return self.add_documents(load_paths(list(paths), self.settings.max_file_bytes), progress=progress)

    def remove_documents(self, doc_ids: Iterable[str]) -> IndexStore:
        ids = tuple(doc_ids)
        with self._write_lock:
            current = self.store
            unknown = [i for i in ids if i not in current.documents]
            if unknown:
                raise DocumentNotIndexedError(f"not in the index: {', '.join(unknown)}")
            self._store = self._write([], previous=current, remove=ids)
            return self._store

    def rebuild(self, paths: Iterable[str | Path], progress: bool = False) -> IndexStore:
        """A fresh index of exactly these files (the old one is replaced only on success)."""
        docs = load_paths(list(paths), self.settings.max_file_bytes)
        with self._write_lock:
            self._store = self._write(docs, previous=None, progress=progress)
            return self._store

    def index_exactly(self, docs: Iterable[Document], progress: bool = False) -> bool:
        """Make the index hold exactly ``docs``; True when it had to be (re)built.

        For corpora made in code (an evaluation set): an index that already holds
        these very texts under the current settings is reused as is, anything
        else is replaced by a fresh build, so its build time is that of a whole
        index.
        """
        docs = list(docs)
        with self._write_lock:
            current = self._current_or_none()
            if (current is not None and self._up_to_date(current, docs)
                    and set(current.documents) == {d.id for d in docs}):
                self._store = current
                return False
            self._store = self._write(docs, previous=None, progress=progress)
            return True

    def _current_or_none(self) -> IndexStore | None:
        """The index to update: a stale one is fine (its documents get re-embedded),
        a missing one means starting empty, a corrupt one is an error."""
        if self._store is not None:
            return self._store
        if self.settings.corpus_dir is not None:
            # Open (build or sync) from the corpus first: an upload before the
            # first question must not yield an index of the upload alone.
            return self.store
        try:
            return IndexStore.load(self.settings.index_dir, load_bm25)
        except IndexMissingError:
            return None

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

    # --- asking ----------------------------------------------------------------

    def _check_question(self, question: str) -> str:
        if not isinstance(question, str):
            raise QuestionError(f"the question must be a string, not {type(question).__name__}")
        q = question.strip()
        if not q:
            raise QuestionError("the question is empty: type a question about your documents")
        limit = self.settings.max_question_chars
        if len(q) > limit:
            raise QuestionError(f"the question is {len(q)} characters long; the limit is {limit}")
        return q

    def ask(
        self,
        question: str,
        history: History | None = None,
        top_k: int | None = None,
        min_score: float | None = None,
    ) -> Answer:
        """Answer one question from the indexed documents (see ``ask_batch``)."""
        return self.ask_batch([question], [history], top_k=top_k, min_score=min_score)[0]

    def ask_batch(
        self,
        questions: Sequence[str],
        histories: Sequence[History | None] | None = None,
        top_k: int | None = None,
        min_score: float | None = None,
        mode: str | None = None,
    ) -> list[Answer]:
        """Answer many questions with one batched retrieval and one batched read."""
        qs = [self._check_question(q) for q in questions]
        histories = list(histories) if histories is not None else [None] * len(qs)
        if len(histories) != len(qs):
            raise ValueError("histories must match questions one to one")
        store = self.store
        if len(store) == 0:
            raise EmptyCorpusError("no documents are indexed: add some with `qa index PATH...`")
        k = self.settings.retrieval.top_k if top_k is None else top_k
        if k < 1:
            raise ValueError("top_k must be >= 1")
        passages, results = self._read(store, qs, histories, k, mode)
        threshold = self.reader.threshold if min_score is None else min_score
        return [self._assemble(store, q, ps, r, threshold) for q, ps, r in zip(qs, passages, results)]

    def read(self, questions: Sequence[str], top_k: int | None = None,
             mode: str | None = None) -> tuple[list[list[Passage]], list[ReadResult]]:
        """The passages and raw reader output behind ``ask_batch``, before any
        threshold (for calibrating the threshold on exactly what ``ask`` sees)."""
        qs = [self._check_question(q) for q in questions]
        k = self.settings.retrieval.top_k if top_k is None else top_k
        return self._read(self.store, qs, [None] * len(qs), k, mode)

    def _read(self, store: IndexStore, qs: list[str], histories: list, k: int,
              mode: str | None) -> tuple[list[list[Passage]], list[ReadResult]]:
        hits = self._retrieve(store, qs, histories, k, mode)
        passages = [merge_hits(store, h) for h in hits]
        return passages, self.reader.run(qs, [[p.text for p in ps] for ps in passages])

    def retrieve(self, questions: Sequence[str], top_k: int | None = None, mode: str | None = None) -> list[list[Chunk]]:
        """Retrieval alone (for evaluation and debugging): top-k chunks per question."""
        store = self.store
        k = self.settings.retrieval.top_k if top_k is None else top_k
        hits = self._retrieve(store, list(questions), [None] * len(questions), k, mode)
        return [[store.chunks[h.row] for h in hs] for hs in hits]

    def _retrieve(self, store: IndexStore, qs: list[str], histories: list, k: int, mode: str | None) -> list[list[Hit]]:
        turns = self.settings.history_turns
        expanded = [retrieval_query(q, h, turns) for q, h in zip(qs, histories)]
        extra = [i for i, (q, e) in enumerate(zip(qs, expanded)) if e != q]
        ranked = self.retriever.run(store, qs + [expanded[i] for i in extra], top_k=k, mode=mode)
        out = ranked[: len(qs)]
        # Follow-ups: fuse the plain question's ranking with the history-aware one,
        # so an unrelated earlier turn cannot push the right passage out.
        for n, i in enumerate(extra):
            out[i] = rrf([out[i], ranked[len(qs) + n]], [1.0, 1.0], self.settings.retrieval.rrf_k)[:k]
        return out

    def _assemble(self, store: IndexStore, question: str, passages: list[Passage], result: ReadResult,
                  threshold: float) -> Answer:
        cal = self.reader.calibration
        best_by_passage: dict[int, float] = {}
        for sp in result.spans:
            p = cal.probability(sp.margin)
            best_by_passage[sp.passage] = max(best_by_passage.get(sp.passage, 0.0), p)

        def cite(i: int, answer_span: tuple[int, int] | None = None) -> Citation:
            ps = passages[i]
            title = store.documents[ps.doc_id].title
            score = best_by_passage.get(i, 0.0)
            if answer_span is None:
                return Citation(ps.doc_id, title, ps.start, ps.end, ps.text, score)
            a0, a1 = answer_span
            # Cite the tightest retrieved chunk that holds the whole answer.
            holding = [c for c in ps.chunks if c.start <= a0 and a1 <= c.end]
            c = min(holding, key=lambda c: c.end - c.start) if holding else None
            start, end, text = (c.start, c.end, c.text) if c else (ps.start, ps.end, ps.text)
            return Citation(ps.doc_id, title, start, end, text, score, a0, a1)

        best, prob = choose(result, cal, threshold)
        if best is None:
            order = sorted(range(len(passages)), key=lambda i: -best_by_passage.get(i, 0.0))
            reason = "the documents do not seem to say"
            if result.spans:
                best = result.spans[0]
                ps = passages[best.passage]
                reason = (f"the closest candidate, {ps.text[best.start:best.end]!r}, scored {prob:.2f}, "
                          f"below the {threshold:.2f} threshold")
            return Answer(question, "", prob, [cite(i) for i in order], reason)
        ps = passages[best.passage]
        a0, a1 = ps.start + best.start, ps.start + best.end
        answer = store.documents[ps.doc_id].text[a0:a1]
        others = sorted((i for i in range(len(passages)) if i != best.passage),
                        key=lambda i: -best_by_passage.get(i, 0.0))
        return Answer(question, answer, prob, [cite(best.passage, (a0, a1))] + [cite(i) for i in others])
