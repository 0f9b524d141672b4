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
old snapshot folder calls ``drop_saved(folder)`` first (the store does it for
any backend whose ``external_resource`` names something).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections import OrderedDict
from pathlib import Path

import numpy as np

from qa.store.base import VectorIndex

log = logging.getLogger("qa")

META_FILE = "milvus.json"
#: Milvus caps top-k of one search (and offset + limit of a query).
MAX_TOPK = 16384
_BATCH = 2000

#: One client per URI, the least recently used closed past ``MAX_CLIENTS`` (a
#: long-lived process that opens many index folders must not hold them all).
MAX_CLIENTS = 8
_clients: "OrderedDict[str, object]" = OrderedDict()
_clients_lock = threading.Lock()


def is_lite(uri: str) -> bool:
    return not uri.startswith(("http://", "https://", "tcp://", "unix:"))


def _normal_uri(uri: str | os.PathLike) -> str:
    uri = str(uri)
    return str(Path(uri).resolve()) if is_lite(uri) else uri


class _LiteTimestampNoise(logging.Filter):
    """Milvus Lite has no ``AllocTimestamp``: pymilvus's query iterator (reading
    the rows back, as every update from a new process does) asks for one, the
    in-process gRPC server logs a traceback, and pymilvus a warning that it uses
    the client's clock instead. Nothing is wrong, but a successful ``qa index``
    printed both on stderr."""

    LOGGERS = ("grpc._server", "pymilvus.client.iterator.query_iterator")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "Method not implemented" not in message and "mvccTs" not in message


_LITE_NOISE = _LiteTimestampNoise()

#: The file in a Milvus Lite data folder that its one serving process holds (``milvus_lite.db``).
LITE_LOCK = "LOCK"


def _is_lite_locked(error: BaseException | None) -> bool:
    while error is not None:
        if type(error).__name__ == "DataDirLockedError":
            return True
        error = error.__cause__ or error.__context__
    return False


class _LiteLockedNoise(logging.Filter):
    """milvus_lite logs its traceback when another process holds the file; ``client``
    then says so in one line, so that traceback is dropped (any other is kept)."""

    LOGGER = "milvus_lite.server_manager"

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and _is_lite_locked(record.exc_info[1]))


_LOCKED_NOISE = _LiteLockedNoise()


def _held_elsewhere(uri: str) -> bool:
    """Whether another process holds the Milvus Lite file ``uri`` (asked only after
    opening it failed: a probe from this process would conflict with its own server)."""
    import fcntl

    try:
        fd = os.open(Path(uri) / LITE_LOCK, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _open_lite(uri: str):
    from pymilvus import MilvusClient

    from qa.errors import IndexBusyError

    try:
        return MilvusClient(uri)
    except Exception as e:
        if not _held_elsewhere(uri):
            raise
        raise IndexBusyError(
            f"the Milvus Lite database {uri} is open in another process (Milvus Lite serves one process at "
            "a time: a running app or another qa command has it): stop that process and try again, or keep "
            "the vectors on a Milvus server (--milvus-uri http://HOST:19530) for several processes") from e


def client(uri: str):
    """One ``MilvusClient`` per URI (Milvus Lite runs one server per file)."""
    from pymilvus import MilvusClient

    uri = _normal_uri(uri)
    with _clients_lock:
        c = _clients.get(uri)
        if c is None:
            if is_lite(uri):
                for name in _LiteTimestampNoise.LOGGERS:
                    if _LITE_NOISE not in logging.getLogger(name).filters:
                        logging.getLogger(name).addFilter(_LITE_NOISE)
                if _LOCKED_NOISE not in logging.getLogger(_LiteLockedNoise.LOGGER).filters:
                    logging.getLogger(_LiteLockedNoise.LOGGER).addFilter(_LOCKED_NOISE)
                Path(uri).parent.mkdir(parents=True, exist_ok=True)
                c = _open_lite(uri)
            else:
                c = MilvusClient(uri=uri, token=os.environ.get("QA_MILVUS_TOKEN", ""))
            _clients[uri] = c
            while len(_clients) > MAX_CLIENTS:
                _, old = _clients.popitem(last=False)
                _close(old)
        else:
            _clients.move_to_end(uri)
        return c


def _close(c) -> None:
    """Close an evicted client; one that fails to close is only logged (it is being let go)."""
    try:
        c.close()
    except Exception:  # noqa: BLE001 - pymilvus raises its own types; nothing to do but report it
        log.warning("could not close a Milvus client", exc_info=True)


class MilvusIndex(VectorIndex):
    """One Milvus collection (INT64 primary key = chunk id, FLOAT_VECTOR, inner product)."""

    name = "milvus"

    @classmethod
    def create(cls, dim: int, config=None) -> "MilvusIndex":
        return cls(dim, uri=config.milvus_uri) if config is not None else cls(dim)

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

    def _search(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        scores = np.full((len(queries), n), -np.inf, dtype=np.float32)
        out = np.full((len(queries), n), -1, dtype=np.int64)
        limit = min(n, MAX_TOPK)
        for a in range(0, len(queries), 256):
            res = self._client.search(self.collection, data=[q.tolist() for q in queries[a : a + 256]], limit=limit,
                                      output_fields=["id"], search_params={"metric_type": "IP",
                                                                           "params": self.search_params})
            for qi, hits in enumerate(res, start=a):
                hits = sorted(hits, key=lambda h: -h["distance"])
                for j, h in enumerate(hits[:n]):
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

    def _contains_any(self, ids: np.ndarray) -> bool:
        return bool(len(self._present(ids)))

    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._own()
        for a in range(0, len(ids), _BATCH):
            self._client.insert(self.collection, [{"id": int(i), "vector": v} for i, v in
                                                  zip(ids[a : a + _BATCH], vectors[a : a + _BATCH].tolist())])

    def _delete(self, ids: np.ndarray) -> int:
        present = self._present(ids)
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
        # Another process wrote it: Milvus Lite serves a collection only once loaded ('released' otherwise).
        client(uri).load_collection(meta["collection"])
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

    @classmethod
    def saved_options(cls, folder: Path) -> dict:
        """Milvus, at the URI the saved index used (not the setting's default ``milvus.db``)."""
        try:
            return {"vector_backend": cls.name, "milvus_uri": json.loads((Path(folder) / META_FILE).read_text())["uri"]}
        except (OSError, ValueError, KeyError, TypeError):
            return {"vector_backend": cls.name}

    @classmethod
    def external_resource(cls, folder: Path) -> str | None:
        """The collection a saved snapshot folder refers to (None when unreadable)."""
        try:
            return json.loads((Path(folder) / META_FILE).read_text())["collection"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @classmethod
    def drop_saved(cls, folder: Path) -> None:
        """Drop the collection a saved snapshot folder refers to (call before deleting the folder)."""
        f = Path(folder) / META_FILE
        if f.exists():
            meta = json.loads(f.read_text())
            c = client(meta["uri"])
            if c.has_collection(meta["collection"]):
                c.drop_collection(meta["collection"])
