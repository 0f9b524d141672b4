"""Exact inner-product search in FAISS (``IndexIDMap2`` over ``IndexFlatIP``).

Exact search is the right choice while a brute-force scan is cheap (it is the
reference every approximate backend's recall is measured against). Vectors
live inside FAISS only; ``get`` reconstructs them when an update reuses them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qa.store.base import VectorIndex

FILE = "vectors.faiss"


class FaissFlatIndex(VectorIndex):
    name = "faiss-flat"

    def __init__(self, dim: int, index=None) -> None:
        import faiss

        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"expected vectors of shape ({len(ids)}, {self.dim}), got {vectors.shape}")
        if len(ids) == 0:
            return
        if len(np.unique(ids)) != len(ids) or np.isin(ids, self.ids()).any():
            raise ValueError("chunk ids must be new and distinct")
        self._index.add_with_ids(vectors, ids)

    def delete(self, ids: np.ndarray) -> int:
        import faiss

        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return 0
        return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        if k <= 0 or len(queries) == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        n = min(k, len(self))
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        if n:
            s, i = self._index.search(queries, n)
            scores[:, :n], ids[:, :n] = s, i
        return scores, ids

    def ids(self) -> np.ndarray:
        import faiss

        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def get(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        for r, i in enumerate(ids):
            try:
                out[r] = self._index.reconstruct(int(i))
            except RuntimeError as e:  # faiss: "key not found"
                raise KeyError(int(i)) from e
        return out

    def copy(self) -> "FaissFlatIndex":
        import faiss

        return FaissFlatIndex(self.dim, faiss.clone_index(self._index))

    def save(self, folder: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(Path(folder) / FILE))

    @classmethod
    def load(cls, folder: Path) -> "FaissFlatIndex":
        import faiss

        index = faiss.read_index(str(Path(folder) / FILE))
        if not isinstance(index, faiss.IndexIDMap2):
            index = faiss.downcast_index(index)
        if not isinstance(index, faiss.IndexIDMap2):
            raise ValueError(f"{FILE} is a {type(index).__name__}, not an id-mapped index")
        return cls(index.d, index)
