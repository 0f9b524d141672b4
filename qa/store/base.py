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


class VectorIndex(ABC):
    """Inner-product search over unit-length float32 vectors (cosine similarity)."""

    #: Name recorded in the manifest; ``load`` is chosen by it.
    name: ClassVar[str]

    @property
    @abstractmethod
    def dim(self) -> int: ...

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add rows; an id already present is an error (delete it first)."""

    @abstractmethod
    def delete(self, ids: np.ndarray) -> int:
        """Remove these ids (absent ones are ignored); returns how many were removed."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), both [n_queries, k], best first; short rows padded with
        score -inf and id -1. ``k`` may exceed ``len(self)``."""

    @abstractmethod
    def ids(self) -> np.ndarray:
        """Every stored id (int64), in no particular order."""

    @abstractmethod
    def get(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of these ids, [len(ids), dim] float32 (KeyError for an unknown id)."""

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
