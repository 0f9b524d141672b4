"""The two search interfaces the snapshot store is built from.

Every backend keys its entries by chunk id (int64, stable across updates: a
chunk of an unchanged document keeps its id, so an update only adds the new
chunks and deletes the gone ones). Backends are used through these methods
only; ``tests/test_store_contract.py`` holds the contract every backend passes.

A backend object that belongs to a published snapshot is never mutated: the
indexer works on ``copy()`` and publishes the copy, so questions answered
during an update keep searching the old snapshot.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np


def as_ids(ids) -> np.ndarray:
    """Chunk ids as one contiguous int64 row (what every backend takes)."""
    return np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))


class VectorIndex(ABC):
    """Inner-product search over unit-length float32 vectors (cosine similarity).

    The policy every backend shares lives here, once: ``add`` validates shapes and
    ids, ``search`` normalises the queries and pads short rows, ``delete`` takes
    each id once; a backend implements ``_add`` / ``_search`` / ``_delete`` on
    input already checked. Backends whose vectors live outside the snapshot
    folder (a Milvus collection) say so through ``external_resource`` /
    ``drop_saved``, so the store's clean-up needs to know no backend by name.
    """

    #: Name recorded in the manifest; ``load`` is chosen by it.
    name: ClassVar[str]

    @classmethod
    def create(cls, dim: int, config=None) -> "VectorIndex":
        """A new empty index for ``dim``-dimensional vectors, set up from the
        ``StoreConfig`` (only the options this backend uses)."""
        return cls(dim)

    @property
    @abstractmethod
    def dim(self) -> int: ...

    @abstractmethod
    def __len__(self) -> int: ...

    # --- writes: validated here, done by the backend ------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add rows; an id already present is an error (delete it first)."""
        ids = as_ids(ids)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"expected vectors of shape ({len(ids)}, {self.dim}), got {vectors.shape}")
        if len(ids) == 0:
            return
        if (ids < 0).any():
            raise ValueError("chunk ids must be >= 0")
        if len(np.unique(ids)) != len(ids) or self._contains_any(ids):
            raise ValueError("chunk ids must be new and distinct")
        self._add(ids, vectors)

    def _contains_any(self, ids: np.ndarray) -> bool:
        """Whether any of these (distinct) ids is stored; backends with a cheaper
        membership test than listing every id override it."""
        return bool(np.isin(ids, self.ids()).any())

    @abstractmethod
    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Store rows whose ids are new, distinct and >= 0 (shape checked)."""

    def delete(self, ids: np.ndarray) -> int:
        """Remove these ids (absent ones are ignored); returns how many were removed."""
        ids = np.unique(as_ids(ids))
        return int(self._delete(ids)) if len(ids) else 0

    @abstractmethod
    def _delete(self, ids: np.ndarray) -> int:
        """Remove these distinct, non-empty ids; how many were stored."""

    # --- reads ----------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), both [n_queries, k], best first; short rows padded with
        score -inf and id -1. ``k`` may exceed ``len(self)``."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        k = max(int(k), 0)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        out = np.full((len(queries), k), -1, dtype=np.int64)
        n = min(k, len(self)) if len(queries) and k else 0
        if n:
            s, i = self._search(queries, n)
            m = s.shape[1]
            scores[:, :m], out[:, :m] = s, i
        return scores, out

    @abstractmethod
    def _search(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the best ``n`` (1 <= n <= len(self)) for float32 query
        rows; at most ``n`` columns, missing hits as -inf / -1."""

    @abstractmethod
    def ids(self) -> np.ndarray:
        """Every stored id (int64), in no particular order."""

    @abstractmethod
    def get(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of these ids, [len(ids), dim] float32 (KeyError for an unknown id)."""

    # --- snapshots --------------------------------------------------------------
    @abstractmethod
    def copy(self) -> "VectorIndex":
        """An independent copy to update while this one keeps answering."""

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write into ``folder`` (created by the caller, inside a snapshot being built)."""

    @classmethod
    @abstractmethod
    def load(cls, folder: Path) -> "VectorIndex": ...

    def config(self) -> dict:
        """Settings recorded in the manifest (a change of these means a rebuild)."""
        return {"name": self.name}

    @classmethod
    def saved_options(cls, folder: Path) -> dict:
        """``StoreConfig`` fields that make a new index like the one saved in ``folder``
        (its backend, and where its vectors live): a rebuild keeps them."""
        return {"vector_backend": cls.name}

    # --- vectors kept outside the snapshot folder ---------------------------------
    @classmethod
    def external_resource(cls, folder: Path) -> str | None:
        """The name of what a saved index keeps outside its folder (a Milvus
        collection), or None: the folder is all there is to delete."""
        return None

    @classmethod
    def drop_saved(cls, folder: Path) -> None:
        """Drop what ``external_resource`` names (before the folder is deleted)."""


def transfer(source: VectorIndex, target: VectorIndex, batch: int = 50_000) -> VectorIndex:
    """Copy every (id, vector) of ``source`` into ``target`` (e.g. faiss-flat ->
    faiss-hnsw when an "auto" index grows, or a FAISS snapshot -> a Milvus server);
    no re-embedding. Returns ``target``."""
    if source.dim != target.dim:
        raise ValueError(f"dimension {source.dim} -> {target.dim}")
    ids = np.sort(source.ids())
    for a in range(0, len(ids), batch):
        part = ids[a : a + batch]
        target.add(part, source.get(part))
    return target


class LexicalIndex(ABC):
    """Keyword search (BM25) over chunk texts, keyed by the same chunk ids."""

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def build(cls, ids: np.ndarray, texts: Sequence[str], config) -> "LexicalIndex":
        """A fresh index over these texts (lexical indexes are cheap to rebuild)."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def ids(self) -> np.ndarray:
        """Chunk ids in the order of the columns of ``scores``."""

    @abstractmethod
    def scores(self, queries: Sequence[str]) -> np.ndarray:
        """Score of every entry for every query, float32 [n_queries, len(self)],
        columns in ``ids()`` order (zeros for a query with no indexed term)."""

    @abstractmethod
    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) [n_queries, k], best first, only entries scoring > 0; padded with 0 / -1."""

    @abstractmethod
    def save(self, folder: Path) -> None: ...

    @classmethod
    @abstractmethod
    def load(cls, folder: Path, config) -> "LexicalIndex": ...
