"""Approximate inner-product search in FAISS: HNSW (the default ANN) and IVF.

Both keep the vectors inside FAISS only (``get`` reconstructs them), take
incremental ``add`` and ``delete`` without a full rebuild, and answer exactly
when a query asks for so many neighbours that a scan is the better plan
(``k * 2 >= len(self)``), so ``search(q, k=len(index))`` still ranks everything.

HNSW (``faiss-hnsw``) cannot remove a node from its graph. Deletion is a
tombstone: the chunk id's slot in the position -> id table is set to -1 and
searches skip dead positions through an ``IDSelector`` (the graph is still
walked through them, so quality holds while they are few). When tombstones
pass ``compact_ratio`` (25%) of the stored vectors, the live vectors are
re-inserted into a fresh graph: an O(live) rebuild, paid once per that many
deletions (amortised, like a hash table's growth). A deleted id may be added
again at once (it gets a new position; the old one stays dead).

IVF (``faiss-ivf``, ``IndexIVFFlat``) removes natively (``remove_ids`` with a
hash-table direct map for ``get``), but needs training: the coarse centroids
are trained on the first batch added (nlist ~ 2 sqrt(n), at least 39 points per
list; nprobe = nlist / 32, between 16 and 128) and retrained, once, each time
the index grows 4x past the size it was trained at (so a corpus that grows from
10k to 1M is re-clustered three times; the add that triggers it pays for it).

Measured in docs/scale.md (MiniLM vectors, 2 shared cores): at 100k HNSW answers in 1.24 ms of
CPU at recall@10 0.985 against IVF's 1.31 ms at 0.951 and exact search's 19.9 ms, and it needs no
training, so HNSW is the default ANN (``ANN_BACKEND``) from ``ANN_THRESHOLD`` live chunks (where exact
search passes ~10 ms a query on that CPU). IVF builds 10-20x faster and copes better with dense
near-duplicate clusters (recall 0.975 vs 0.615 on the synthetic 1M set).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from qa.store.base import VectorIndex

FILE = "vectors.faiss"
LABELS_FILE = "labels.npy"
META_FILE = "ann.json"


def _as_ids(ids) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))


def _check_add(index: VectorIndex, ids: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ids = _as_ids(ids)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.shape != (len(ids), index.dim):
        raise ValueError(f"expected vectors of shape ({len(ids)}, {index.dim}), got {vectors.shape}")
    if len(ids) and (len(np.unique(ids)) != len(ids) or np.isin(ids, index.ids()).any()):
        raise ValueError("chunk ids must be new and distinct")
    if (ids < 0).any():
        raise ValueError("chunk ids must be >= 0")
    return ids, vectors


def _empty_result(nq: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((nq, k), -np.inf, dtype=np.float32), np.full((nq, k), -1, dtype=np.int64)


def _prepare(index: VectorIndex, queries: np.ndarray, k: int):
    """(queries as float32 rows, padded score and id arrays, how many hits to ask for: 0 = none)."""
    queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, index.dim)
    k = max(int(k), 0)
    scores, out = _empty_result(len(queries), k)
    return queries, scores, out, (min(k, len(index)) if len(queries) else 0)


class FaissHnswIndex(VectorIndex):
    """``IndexHNSWFlat`` (inner product) with our own position -> chunk id table and tombstones."""

    name = "faiss-hnsw"

    def __init__(self, dim: int, m: int = 32, ef_construction: int = 80, ef_search: int = 128,
                 compact_ratio: float = 0.25, *, _index=None, _labels: np.ndarray | None = None) -> None:
        import faiss

        self.m, self.ef_construction, self.ef_search = int(m), int(ef_construction), int(ef_search)
        self.compact_ratio = float(compact_ratio)
        self._dim = int(dim)
        self._index = _index if _index is not None else self._new_graph()
        # position in the graph -> chunk id, -1 for a tombstone
        self._labels = np.zeros(0, np.int64) if _labels is None else np.asarray(_labels, np.int64).copy()
        if len(self._labels) != self._index.ntotal:
            raise ValueError(f"{len(self._labels)} labels for {self._index.ntotal} vectors")
        self._invalidate()
        self._faiss = faiss

    def _new_graph(self):
        import faiss

        index = faiss.IndexHNSWFlat(self._dim, self.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.ef_construction
        index.hnsw.efSearch = self.ef_search
        return index

    def _invalidate(self) -> None:
        self._n_dead = int((self._labels < 0).sum())  # O(n), but only on a change, never per query
        self._lookup = None  # (sorted live ids, their positions)
        self._selector = None  # keeps live positions only (None: no tombstones)

    # ----------------------------------------------------------------- sizes
    @property
    def dim(self) -> int:
        return self._dim

    def __len__(self) -> int:
        return len(self._labels) - self._n_dead

    @property
    def tombstones(self) -> int:
        return self._n_dead

    def config(self) -> dict:
        return {"name": self.name, "m": self.m, "ef_construction": self.ef_construction}

    # --------------------------------------------------------------- lookups
    def _positions(self, ids: np.ndarray) -> np.ndarray:
        """Position of each id, -1 where the id is not stored (alive)."""
        if self._lookup is None:
            live = np.flatnonzero(self._labels >= 0)
            order = np.argsort(self._labels[live], kind="stable")
            self._lookup = (self._labels[live][order], live[order])
        keys, pos = self._lookup
        if len(keys) == 0:
            return np.full(len(ids), -1, np.int64)
        at = np.minimum(np.searchsorted(keys, ids), len(keys) - 1)
        return np.where(keys[at] == ids, pos[at], -1)

    def ids(self) -> np.ndarray:
        return self._labels[self._labels >= 0].copy()

    def get(self, ids: np.ndarray) -> np.ndarray:
        ids = _as_ids(ids)
        pos = self._positions(ids)
        if (pos < 0).any():
            raise KeyError(int(ids[np.argmax(pos < 0)]))
        if len(ids) == 0:
            return np.zeros((0, self.dim), np.float32)
        return self._index.reconstruct_batch(pos).reshape(len(ids), self.dim)

    # -------------------------------------------------------------- mutation
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = _check_add(self, ids, vectors)
        if len(ids) == 0:
            return
        self._index.add(vectors)
        self._labels = np.concatenate([self._labels, ids])
        self._invalidate()

    def delete(self, ids: np.ndarray) -> int:
        ids = np.unique(_as_ids(ids))
        pos = self._positions(ids)
        pos = pos[pos >= 0]
        if len(pos) == 0:
            return 0
        self._labels[pos] = -1
        self._invalidate()
        if self.tombstones > self.compact_ratio * len(self._labels):
            self.compact()
        return int(len(pos))

    def compact(self) -> None:
        """Rebuild the graph from the live vectors only (drops every tombstone)."""
        live = np.flatnonzero(self._labels >= 0)
        vectors = self._index.reconstruct_batch(live).reshape(len(live), self.dim) if len(live) else None
        labels = self._labels[live]
        self._index = self._new_graph()
        if vectors is not None:
            self._index.add(vectors)
        self._labels = labels
        self._invalidate()

    # ---------------------------------------------------------------- search
    def _live_selector(self):
        """An ``IDSelectorBitmap`` of live positions (None while there are no tombstones)."""
        if not self.tombstones:
            return None
        if self._selector is None:
            faiss = self._faiss
            bits = np.packbits(self._labels >= 0, bitorder="little")
            self._selector = (faiss.IDSelectorBitmap(len(self._labels), faiss.swig_ptr(bits)), bits)  # keep bits alive
        return self._selector[0]

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        faiss = self._faiss
        queries, scores, out, n = _prepare(self, queries, k)
        live = len(self)
        if n == 0:
            return scores, out
        sel = self._live_selector()
        if n * 2 >= live:  # asking for most of the index: an exact scan
            storage = faiss.downcast_index(self._index.storage)
            params = faiss.SearchParameters(sel=sel) if sel is not None else None
            s, p = storage.search(queries, n, params=params)
        else:
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, n))
            if sel is not None:
                params.sel = sel
            s, p = self._index.search(queries, n, params=params)
        ok = p >= 0
        scores[:, :n] = np.where(ok, s, -np.inf)
        out[:, :n] = np.where(ok, self._labels[np.where(ok, p, 0)], -1)
        return scores, out

    # ----------------------------------------------------------- persistence
    def copy(self) -> "FaissHnswIndex":
        return FaissHnswIndex(self.dim, self.m, self.ef_construction, self.ef_search, self.compact_ratio,
                              _index=self._faiss.clone_index(self._index), _labels=self._labels)

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        self._faiss.write_index(self._index, str(folder / FILE))
        np.save(folder / LABELS_FILE, self._labels, allow_pickle=False)
        (folder / META_FILE).write_text(json.dumps({
            "name": self.name, "dim": self.dim, "m": self.m, "ef_construction": self.ef_construction,
            "ef_search": self.ef_search, "compact_ratio": self.compact_ratio}))

    @classmethod
    def load(cls, folder: Path, mmap: bool = False) -> "FaissHnswIndex":
        """``mmap=True`` maps the vectors from the file instead of reading them into memory."""
        import faiss

        folder = Path(folder)
        meta = json.loads((folder / META_FILE).read_text())
        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
        index = faiss.read_index(str(folder / FILE), flags)
        if not isinstance(index, faiss.IndexHNSWFlat):
            raise ValueError(f"{FILE} is a {type(index).__name__}, not an IndexHNSWFlat")
        index.hnsw.efSearch = int(meta["ef_search"])
        labels = np.load(folder / LABELS_FILE, allow_pickle=False)
        return cls(int(meta["dim"]), meta["m"], meta["ef_construction"], meta["ef_search"],
                   meta.get("compact_ratio", 0.25), _index=index, _labels=labels)


def ivf_nlist(n: int) -> int:
    """Inverted lists for n vectors: ~2 sqrt(n) (2,000 at 1M), with at least 39 training points per list."""
    return max(1, min(int(2 * math.sqrt(max(n, 1))), n // 39))


class FaissIvfIndex(VectorIndex):
    """``IndexIVFFlat`` (inner product), chunk ids as FAISS ids, hash-table direct map."""

    name = "faiss-ivf"

    def __init__(self, dim: int, nprobe_ratio: float = 1 / 32, min_nprobe: int = 16,
                 retrain_growth: float = 4.0, *, _index=None, _trained_n: int = 0) -> None:
        import faiss

        self._faiss = faiss
        self._dim = int(dim)
        self.nprobe_ratio, self.min_nprobe = float(nprobe_ratio), int(min_nprobe)
        self.retrain_growth = float(retrain_growth)
        self._index = _index  # None until the first add trains it
        self._trained_n = int(_trained_n)

    @property
    def dim(self) -> int:
        return self._dim

    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    @property
    def nlist(self) -> int:
        return 0 if self._index is None else int(self._index.nlist)

    @property
    def nprobe(self) -> int:
        # nlist/32, at least 16, at most 128: past ~4M vectors the lists grow and nprobe stays, so a
        # query scans ~128 * n / nlist vectors (sub-linear) instead of a fixed 1/32 of the corpus
        return max(1, min(self.nlist, max(self.min_nprobe, min(128, round(self.nlist * self.nprobe_ratio)))))

    def config(self) -> dict:
        return {"name": self.name}

    def _train(self, vectors: np.ndarray):
        faiss = self._faiss
        nlist = ivf_nlist(len(vectors))
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.own_fields = True
        quantizer.this.disown()
        index.cp.seed = 1234
        index.cp.niter = 10  # k-means iterations (FAISS default 25): training is most of an IVF build
        sample = vectors
        if len(vectors) > 32 * nlist:  # 32 points per centroid are enough for coarse lists
            sample = vectors[np.random.default_rng(0).choice(len(vectors), 32 * nlist, replace=False)]
        index.train(np.ascontiguousarray(sample))
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        self._trained_n = len(vectors)
        return index

    def ids(self) -> np.ndarray:
        if self._index is None:
            return np.zeros(0, np.int64)
        faiss, inv = self._faiss, self._index.invlists
        parts = [faiss.rev_swig_ptr(inv.get_ids(lst), inv.list_size(lst)).copy()
                 for lst in range(self.nlist) if inv.list_size(lst)]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def get(self, ids: np.ndarray) -> np.ndarray:
        ids = _as_ids(ids)
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        for r, i in enumerate(ids):
            try:
                if self._index is None:
                    raise RuntimeError
                out[r] = self._index.reconstruct(int(i))
            except RuntimeError as e:
                raise KeyError(int(i)) from e
        return out

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = _check_add(self, ids, vectors)
        if len(ids) == 0:
            return
        n_after = len(self) + len(ids)
        if self._index is None or (n_after > self.retrain_growth * self._trained_n
                                   and ivf_nlist(n_after) >= 2 * self.nlist):
            old_ids = self.ids()
            old = self.get(old_ids) if len(old_ids) else np.zeros((0, self.dim), np.float32)
            all_ids, all_vecs = np.concatenate([old_ids, ids]), np.concatenate([old, vectors])
            self._index = self._train(all_vecs)
            self._index.add_with_ids(all_vecs, all_ids)
            return
        self._index.add_with_ids(vectors, ids)

    def delete(self, ids: np.ndarray) -> int:
        ids = np.unique(_as_ids(ids))
        if self._index is None or len(ids) == 0:
            return 0
        # a hash-table direct map only removes through an IDSelectorArray
        return int(self._index.remove_ids(self._faiss.IDSelectorArray(len(ids), self._faiss.swig_ptr(ids))))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        faiss = self._faiss
        queries, scores, out, n = _prepare(self, queries, k)
        if n == 0:
            return scores, out
        nprobe = self.nlist if n * 2 >= len(self) else self.nprobe  # most of the index: scan every list
        s, i = self._index.search(queries, n, params=faiss.SearchParametersIVF(nprobe=nprobe))
        ok = i >= 0
        scores[:, :n], out[:, :n] = np.where(ok, s, -np.inf), i
        return scores, out

    def copy(self) -> "FaissIvfIndex":
        index = None if self._index is None else self._faiss.clone_index(self._index)
        return FaissIvfIndex(self.dim, self.nprobe_ratio, self.min_nprobe, self.retrain_growth,
                             _index=index, _trained_n=self._trained_n)

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        if self._index is not None:
            self._faiss.write_index(self._index, str(folder / FILE))
        (folder / META_FILE).write_text(json.dumps({
            "name": self.name, "dim": self.dim, "nprobe_ratio": self.nprobe_ratio,
            "min_nprobe": self.min_nprobe, "retrain_growth": self.retrain_growth, "trained_n": self._trained_n}))

    @classmethod
    def load(cls, folder: Path) -> "FaissIvfIndex":
        import faiss

        folder = Path(folder)
        meta = json.loads((folder / META_FILE).read_text())
        index = None
        if (folder / FILE).exists():
            index = faiss.read_index(str(folder / FILE))  # already the concrete class
            if not isinstance(index, faiss.IndexIVFFlat):
                raise ValueError(f"{FILE} is a {type(index).__name__}, not an IndexIVFFlat")
            index.set_direct_map_type(faiss.DirectMap.Hashtable)
        return cls(int(meta["dim"]), meta["nprobe_ratio"], meta["min_nprobe"], meta["retrain_growth"],
                   _index=index, _trained_n=meta["trained_n"])


def transfer(source: VectorIndex, target: VectorIndex, batch: int = 50_000) -> VectorIndex:
    """Copy every (id, vector) of ``source`` into ``target`` (e.g. faiss-flat -> faiss-hnsw when a corpus
    crosses ``ANN_THRESHOLD``, or a FAISS snapshot -> a Milvus server); no re-embedding. Returns ``target``."""
    if source.dim != target.dim:
        raise ValueError(f"dimension {source.dim} -> {target.dim}")
    ids = np.sort(source.ids())
    for a in range(0, len(ids), batch):
        part = ids[a : a + batch]
        target.add(part, source.get(part))
    return target


#: The approximate backend new large indexes use, and the size (live chunks) from
#: which it should be chosen over exact ``faiss-flat`` (measured: docs/scale.md).
ANN_BACKEND = FaissHnswIndex.name
ANN_THRESHOLD = 50_000
