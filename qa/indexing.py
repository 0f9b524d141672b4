"""The indexing step: documents in, a new snapshot out (chunk, embed, index).

An update starts from the published snapshot and touches only what changed:
chunks of unchanged documents keep their ids and their vectors (copied from the
old vector index, never re-embedded), chunks of removed or changed documents
are deleted, new chunks get fresh ids and are embedded. The lexical index is
rebuilt whole (cheap). The result is a new ``IndexStore``; the old one is left
untouched for the questions still reading it.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterable, Protocol, Sequence

import numpy as np

from qa.chunking import Chunker
from qa.config import INDEX_FORMAT_VERSION, BM25Config, StoreConfig
from qa.ingest import sha256_text
from qa.store import IndexStore, Manifest
from qa.store.backends import Bm25Index, grown, kept
from qa.store.backends import vector_factory as qa_vector_factory
from qa.store.base import VectorIndex
from qa.types import Chunk, Document


class EmbedderLike(Protocol):
    """What the indexer needs of an embedder (``qa.embedding.Embedder`` or a test fake)."""

    @property
    def dim(self) -> int: ...

    @property
    def model_id(self) -> dict[str, str]: ...

    def run(self, texts: Sequence[str], progress: bool = False) -> np.ndarray: ...


class Indexer:
    """Builds snapshots; collaborators are passed in, so tests use fakes freely."""

    def __init__(
        self,
        chunker: Chunker,
        embedder: EmbedderLike,
        bm25: BM25Config | None = None,
        store: StoreConfig | None = None,
        vector_factory: Callable[[int], VectorIndex] | None = None,
    ) -> None:
        self.chunker = chunker
        self.embedder = embedder
        self.bm25 = bm25 or BM25Config()
        self.store = store or StoreConfig()
        self.vector_factory = vector_factory or qa_vector_factory(self.store)

    def _grown(self, vectors: VectorIndex) -> VectorIndex:
        """"auto": an exact index that passed the threshold moves to the ANN backend (same ids, no re-embedding)."""
        return grown(vectors, self.store)

    def _fresh_vectors(self, like: Path | None) -> VectorIndex:
        config = kept(self.store, like)
        factory = self.vector_factory if config is self.store else qa_vector_factory(config)
        return factory(self.embedder.dim)

    def expectations(self) -> dict:
        """The manifest fields an index must match to be updated in place."""
        return {"format_version": INDEX_FORMAT_VERSION, "embedder": self.embedder.model_id,
                "chunking": asdict(self.chunker.config), "bm25": asdict(self.bm25)}

    def run(
        self,
        docs: Iterable[Document],
        previous: IndexStore | None = None,
        remove: Iterable[str] = (),
        progress: bool = False,
        like: Path | None = None,
    ) -> IndexStore:
        """New snapshot = previous documents (minus ``remove``) updated with ``docs``.
        ``like``: the snapshot folder of the index being replaced; when the vectors
        are built afresh (no ``previous``, or one made with other settings) they
        keep its backend unless the settings name one (``qa.store.backends.kept``)."""
        docs = list(docs)
        remove = set(remove)
        reuse = previous is not None and previous.manifest.chunking == asdict(self.chunker.config) \
            and previous.manifest.embedder == self.embedder.model_id
        documents: dict[str, Document] = {}
        if previous is not None:
            documents = {did: d for did, d in previous.documents.items() if did not in remove}
        for d in docs:
            documents[d.id] = d
        # Chunks kept as they are: same document id, same text (a removed-and-re-added
        # document whose text changed must not inherit its old vectors).
        keep_docs = {did for did, d in documents.items()
                     if reuse and did in previous.documents and previous.documents[did].text == d.text}
        if reuse:
            vectors = previous.vectors.copy()
            gone = [cid for cid, c in zip(previous.chunk_ids.tolist(), previous.chunks) if c.doc_id not in keep_docs]
            vectors.delete(np.asarray(gone, dtype=np.int64))
            next_id = previous.manifest.next_chunk_id
            old = {(c.doc_id, c.start, c.end): cid for cid, c in zip(previous.chunk_ids.tolist(), previous.chunks)
                   if c.doc_id in keep_docs}
        else:
            vectors = self._fresh_vectors(like)
            next_id, old = 0, {}
        kept: dict[str, list[Chunk]] = {}
        if keep_docs:
            for c in previous.chunks:
                if c.doc_id in keep_docs:
                    kept.setdefault(c.doc_id, []).append(c)
        chunks: list[Chunk] = []
        ids: list[int] = []
        new_rows: list[int] = []
        for did, d in documents.items():
            if did in keep_docs:
                chunks.extend(kept.get(did, []))
                ids.extend(old[(c.doc_id, c.start, c.end)] for c in kept.get(did, []))
            else:
                for c in self.chunker.run(d):
                    new_rows.append(len(chunks))
                    chunks.append(c)
                    ids.append(next_id)
                    next_id += 1
        chunk_ids = np.asarray(ids, dtype=np.int64)
        # Which engine made the vectors (int8 vectors differ a little from fp32 ones).
        engines = list(previous.manifest.engines) if reuse else []
        if new_rows:
            emb = self.embedder.run([chunks[i].text for i in new_rows], progress=progress)
            vectors.add(chunk_ids[new_rows], emb)
            engine = getattr(self.embedder, "engine_id", None)
            if engine is not None and engine not in engines:
                engines.append(engine)
        vectors = self._grown(vectors)
        lexical = Bm25Index.build(chunk_ids, [c.text for c in chunks], self.bm25)
        manifest = Manifest(
            format_version=INDEX_FORMAT_VERSION,
            embedder=self.embedder.model_id,
            chunking=asdict(self.chunker.config),
            bm25=asdict(self.bm25),
            documents={did: sha256_text(d.text) for did, d in documents.items()},
            n_chunks=len(chunks),
            created=time.time(),
            vector_index=vectors.config(),
            lexical_index=lexical.name,
            next_chunk_id=next_id,
            engines=engines,
        )
        return IndexStore(manifest, documents, chunks, chunk_ids, vectors, lexical)
