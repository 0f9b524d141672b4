"""Milvus through ``pymilvus``: Milvus Lite (a local ``.db`` file) or a server.

The same code serves both; only the URI differs:

* ``MilvusIndex(384, uri="index/milvus.db")`` — Milvus Lite, embedded, one file;
* ``MilvusIndex(384, uri="http://milvus:19530")`` — a standalone or cluster
  server (token from ``$QA_MILVUS_TOKEN``, never written to the snapshot).

How the snapshot contract maps onto Milvus
------------------------------------------
The vectors live in Milvus, not in the snapshot folder: ``save(folder)`` writes
only ``milvus.json`` ({uri, collection, dim, index_type, metric, count}) after a
flush, and ``load(folder)`` reconnects and checks the collection holds that
many rows. Each published snapshot owns one collection.

``copy()`` is copy-on-write: it returns an object that still reads the
original's collection and costs nothing; its first ``add``/``delete`` copies the
rows into a new collection (``<prefix>_g<generation>_<random>``, a server-side
read + insert through the client, O(n)) and mutates that one. So a question
answered during an update keeps reading the published collection, and an
update that fails before publishing leaves only a collection to drop.
Tradeoff: one full copy per update (at 1M vectors, minutes through the client;
see docs/scale.md). The alternative, a generation/tombstone field in one shared
collection with a filter on every search, makes copies O(1) but needs
branch-aware visibility and a garbage collector; for a scale-out corpus that is
updated in batches the per-update copy is the simpler, safe choice.

Superseded collections are not dropped by ``save``/``load``: whoever deletes an
old snapshot folder calls ``MilvusIndex.drop_saved(folder)`` first.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from pathlib import Path

import numpy as np

from qa.store.base import VectorIndex

META_FILE = "milvus.json"
#: Milvus caps top-k of one search (and offset + limit of a query).
MAX_TOPK = 16384
_BATCH = 2000

_clients: dict[str, object] = {}
_clients_lock = threading.Lock()


def is_lite(uri: str) -> bool:
    return not uri.startswith(("http://", "https://", "tcp://", "unix:"))


def _normal_uri(uri: str | os.PathLike) -> str:
    uri = str(uri)
    return str(Path(uri).resolve()) if is_lite(uri) else uri


def client(uri: str):
    """One ``MilvusClient`` per URI (Milvus Lite runs one server per file)."""
    from pymilvus import MilvusClient

    uri = _normal_uri(uri)
    with _clients_lock:
        c = _clients.get(uri)
        if c is None:
            if is_lite(uri):
                Path(uri).parent.mkdir(parents=True, exist_ok=True)
                c = MilvusClient(uri)
            else:
                c = MilvusClient(uri=uri, token=os.environ.get("QA_MILVUS_TOKEN", ""))
            _clients[uri] = c
        return c


class MilvusIndex(VectorIndex):
    """One Milvus collection (INT64 primary key = chunk id, FLOAT_VECTOR, inner product)."""

    name = "milvus"

    def __init__(self, dim: int, uri: str | os.PathLike = "milvus.db", collection: str | None = None,
                 prefix: str = "qa_chunks", index_type: str = "HNSW", index_params: dict | None = None,
                 search_params: dict | None = None, *, _shared: bool = False) -> None:
        self._dim = int(dim)
        self.uri = _normal_uri(uri)
        self.prefix = prefix
        self.index_type = index_type
        self.index_params = dict(index_params or ({"M": 32, "efConstruction": 128} if index_type == "HNSW" else {}))
        self.search_params = dict(search_params or ({"ef": 128} if index_type == "HNSW" else {}))
        self._shared = _shared  # True: reading someone else's collection until the first write
        self.collection = collection or self._new_name()
        if not _shared and not self._client.has_collection(self.collection):
            self._create(self.collection)

    # ---------------------------------------------------------------- basics
    @property
    def _client(self):
        return client(self.uri)

    def _new_name(self) -> str:
        return f"{self.prefix}_{uuid.uuid4().hex[:12]}"

    def _create(self, name: str) -> None:
        from pymilvus import DataType

        c = self._client
        schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self._dim)
        params = c.prepare_index_params()
        params.add_index(field_name="vector", index_type=self.index_type, metric_type="IP", params=self.index_params)
        c.create_collection(name, schema=schema, index_params=params, consistency_level="Strong")

    @property
    def dim(self) -> int:
        return self._dim

    def __len__(self) -> int:
        rows = self._client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def config(self) -> dict:
        return {"name": self.name, "index_type": self.index_type, "index_params": self.index_params}

    # ----------------------------------------------------------------- reads
    def ids(self) -> np.ndarray:
        out = [r["id"] for rows in self._pages(self.collection, ["id"], _BATCH * 8) for r in rows]
        return np.asarray(out, dtype=np.int64)

    def _pages(self, collection: str, fields: list[str], batch: int):
        """Every row of a collection, a page at a time (Milvus caps one query's size)."""
        it = self._client.query_iterator(collection, batch_size=batch, filter="", output_fields=fields)
        try:
            while rows := it.next():
                yield rows
        finally:
            it.close()

    def _present(self, ids: np.ndarray) -> np.ndarray:
        found = []
        for a in range(0, len(ids), _BATCH):
            part = [int(i) for i in ids[a : a + _BATCH]]
            rows = self._client.query(self.collection, filter=f"id in {part}", output_fields=["id"])
            found.extend(r["id"] for r in rows)
        return np.asarray(found, dtype=np.int64)

    def get(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        got: dict[int, np.ndarray] = {}
        for a in range(0, len(ids), _BATCH):
            part = [int(i) for i in ids[a : a + _BATCH]]
            for r in self._client.get(self.collection, ids=part, output_fields=["vector"]):
                got[int(r["id"])] = np.asarray(r["vector"], dtype=np.float32)
        out = np.empty((len(ids), self._dim), dtype=np.float32)
        for row, i in enumerate(ids):
            if int(i) not in got:
                raise KeyError(int(i))
            out[row] = got[int(i)]
        return out

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self._dim)
        k = max(int(k), 0)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        out = np.full((len(queries), k), -1, dtype=np.int64)
        if k == 0 or len(queries) == 0:
            return scores, out
        limit = min(k, MAX_TOPK)
        for a in range(0, len(queries), 256):
            res = self._client.search(self.collection, data=[q.tolist() for q in queries[a : a + 256]], limit=limit,
                                      output_fields=["id"], search_params={"metric_type": "IP",
                                                                           "params": self.search_params})
            for qi, hits in enumerate(res, start=a):
                hits = sorted(hits, key=lambda h: -h["distance"])
                for j, h in enumerate(hits[:k]):
                    scores[qi, j], out[qi, j] = h["distance"], h["id"]
        return scores, out

    # -------------------------------------------------------------- mutation
    def _own(self) -> None:
        """Copy-on-write: move into a collection of our own before the first write."""
        if not self._shared:
            return
        source, self.collection = self.collection, self._new_name()
        self._create(self.collection)
        for rows in self._pages(source, ["id", "vector"], _BATCH):
            self._client.insert(self.collection, [{"id": r["id"], "vector": r["vector"]} for r in rows])
        self._shared = False

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ids), self._dim):
            raise ValueError(f"expected vectors of shape ({len(ids)}, {self._dim}), got {vectors.shape}")
        if len(ids) == 0:
            return
        if len(np.unique(ids)) != len(ids) or len(self._present(ids)):
            raise ValueError("chunk ids must be new and distinct")
        self._own()
        for a in range(0, len(ids), _BATCH):
            self._client.insert(self.collection, [{"id": int(i), "vector": v} for i, v in
                                                  zip(ids[a : a + _BATCH], vectors[a : a + _BATCH].tolist())])

    def delete(self, ids: np.ndarray) -> int:
        ids = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
        present = self._present(ids) if len(ids) else ids
        if len(present) == 0:
            return 0
        self._own()
        for a in range(0, len(present), _BATCH):
            self._client.delete(self.collection, ids=[int(i) for i in present[a : a + _BATCH]])
        return int(len(present))

    # ----------------------------------------------------------- persistence
    def copy(self) -> "MilvusIndex":
        return MilvusIndex(self._dim, self.uri, self.collection, self.prefix, self.index_type, self.index_params,
                           self.search_params, _shared=True)

    def _meta(self) -> dict:
        return {"name": self.name, "uri": self.uri, "collection": self.collection, "dim": self._dim,
                "prefix": self.prefix, "index_type": self.index_type, "index_params": self.index_params,
                "search_params": self.search_params, "count": len(self)}

    def save(self, folder: Path) -> None:
        if not self._shared:
            self._client.flush(self.collection)
        (Path(folder) / META_FILE).write_text(json.dumps(self._meta(), indent=1))

    @classmethod
    def load(cls, folder: Path, uri: str | None = None) -> "MilvusIndex":
        """``uri`` overrides the recorded one (e.g. the same server under another name)."""
        meta = json.loads((Path(folder) / META_FILE).read_text())
        uri = uri or meta["uri"]
        if not client(uri).has_collection(meta["collection"]):
            raise FileNotFoundError(f"Milvus collection {meta['collection']!r} is missing at {uri}")
        index = cls(meta["dim"], uri, meta["collection"], meta["prefix"], meta["index_type"], meta["index_params"],
                    meta["search_params"], _shared=True)
        index._shared = False  # a loaded snapshot's collection is its own (never mutate a published one: copy())
        n = len(index)
        if n != meta["count"]:
            raise ValueError(f"Milvus collection {meta['collection']!r} holds {n} vectors, the snapshot {meta['count']}")
        return index

    def drop(self) -> None:
        """Drop this object's collection (only for a collection no snapshot refers to)."""
        if not self._shared and self._client.has_collection(self.collection):
            self._client.drop_collection(self.collection)

    @staticmethod
    def drop_saved(folder: Path) -> None:
        """Drop the collection a saved snapshot folder refers to (call before deleting the folder)."""
        f = Path(folder) / META_FILE
        if f.exists():
            meta = json.loads(f.read_text())
            c = client(meta["uri"])
            if c.has_collection(meta["collection"]):
                c.drop_collection(meta["collection"])


def migrate(source: VectorIndex, uri: str, batch: int = 10_000, **kwargs) -> MilvusIndex:
    """Copy every vector of ``source`` (e.g. a loaded FAISS snapshot's index) into a new Milvus collection."""
    from qa.store.backends.faiss_ann import transfer

    return transfer(source, MilvusIndex(source.dim, uri, **kwargs), batch=batch)
