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

    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._index.add_with_ids(vectors, ids)

    def _delete(self, ids: np.ndarray) -> int:
        import faiss

        return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))

    def _search(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self._index.search(queries, n)

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
