"""The snapshot store: documents, chunks, a vector index and a lexical index, published together.

Layout of ``index_dir``::

    CURRENT                    name of the live snapshot folder (replaced atomically)
    snap-<id>/manifest.json    format version, embedder id + weights sha256, chunking,
                               vector and lexical index settings, sha256 of each document
    snap-<id>/documents.jsonl  the indexed texts (citations point into these)
    snap-<id>/chunks.npy       int64 [n, 4]: chunk id, document row, start, end (no pickle)
    snap-<id>/vectors/         the vector index (backend named in the manifest)
    snap-<id>/lexical/         the lexical index over the same chunk ids

Every update writes a complete new snapshot next to the live one and then swaps
``CURRENT`` with ``os.replace``: a crash at any point leaves the previous index
whole and usable, and the vectors, BM25 and chunk table can never disagree
because they are only ever published together. The store only stores: chunking
and embedding happen in ``qa.indexing``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from qa._files import fsync_dir, fsync_tree
from qa.config import INDEX_FORMAT_VERSION, BM25Config
from qa.errors import IndexBusyError, IndexCorruptError, IndexPermissionError, IndexStaleError, QAError
from qa.store.backends import LEXICAL_BACKENDS, VECTOR_BACKENDS
from qa.store.base import LexicalIndex, VectorIndex
from qa.store.recovery import DOCUMENTS_FILE, MaskedVectors, read_documents
from qa.types import Chunk, Document

from qa.store.files import (
    POINTER,
    _check_files,
    _file_sums,
    _read_pointer,
    remove_garbage,
    write_error,
    writer_lock,
)

log = logging.getLogger("qa")


#: What reading a damaged snapshot raises: OS errors, malformed JSON / arrays
#: (ValueError, KeyError, TypeError, IndexError, EOFError), FAISS's RuntimeError
#: on a broken index file, and qa's own refusals of bad contents.
_UNREADABLE = (OSError, ValueError, KeyError, TypeError, IndexError, EOFError, RuntimeError, QAError)


@dataclass
class Manifest:
    format_version: int
    embedder: dict[str, str]
    chunking: dict[str, Any]
    bm25: dict[str, Any]
    documents: dict[str, str]  # doc_id -> sha256 of its text
    n_chunks: int
    created: float
    vector_index: dict[str, Any] = field(default_factory=lambda: {"name": "faiss-flat"})
    lexical_index: str = "bm25s"
    next_chunk_id: int = 0
    # Inference engines (qa.engine) whose embeddings the index holds, e.g.
    # [{"engine": "onnx", "sha256": ...}] (informational: fp32 engines agree).
    engines: list[dict[str, str]] = field(default_factory=list)
    # Every other file of the snapshot: relative path -> [size in bytes, sha256],
    # checked on load (missing, truncated or altered files are refused).
    files: dict[str, list] = field(default_factory=dict)

    def expectations(self) -> dict[str, Any]:
        """What must match the current settings for the index to be usable as is."""
        return {"format_version": self.format_version, "embedder": self.embedder, "chunking": self.chunking,
                "bm25": self.bm25}


def _check_manifest(m: Manifest) -> None:
    """Each field of the manifest of the type the loader and the next update use: a
    manifest edited by hand ("vector_index": "faiss-flat", "files": null) is refused
    as corrupt, naming the field, not met later as an AttributeError (an "internal
    error") or, for "next_chunk_id", served and then fatal to the next update."""
    def bad(name: str, want: str) -> ValueError:
        return ValueError(f"manifest.json: {name!r} is not {want}")

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    for name in ("embedder", "chunking", "bm25", "documents", "vector_index", "files"):
        if not isinstance(getattr(m, name), dict):
            raise bad(name, "an object")
    if not isinstance(m.vector_index.get("name"), str):
        raise bad("vector_index", "an object with a backend name")
    if not isinstance(m.lexical_index, str):
        raise bad("lexical_index", "a backend name")
    for name in ("n_chunks", "next_chunk_id"):
        if not is_int(getattr(m, name)) or getattr(m, name) < 0:
            raise bad(name, "a whole number >= 0")
    if not isinstance(m.created, (int, float)) or isinstance(m.created, bool):
        raise bad("created", "a time")
    if not isinstance(m.engines, list):
        raise bad("engines", "a list")
    for rel, entry in m.files.items():
        if not (isinstance(entry, list) and len(entry) == 2 and is_int(entry[0]) and isinstance(entry[1], str)):
            raise bad("files", f"a [size, sha256] for each file ({rel!r})")


class IndexStore:
    """An immutable snapshot of the index in memory; updates make a new one
    (``qa.indexing.Indexer``), so readers of this one are never disturbed."""

    def __init__(
        self,
        manifest: Manifest,
        documents: dict[str, Document],
        chunks: list[Chunk],
        chunk_ids: np.ndarray,
        vectors: VectorIndex,
        lexical: LexicalIndex,
    ) -> None:
        self.manifest = manifest
        self.documents = documents
        self.chunks = chunks
        self.chunk_ids = np.asarray(chunk_ids, dtype=np.int64)
        self.vectors = vectors
        self.lexical = lexical
        self.name: str | None = None  # the snapshot folder, once saved or loaded
        #: Document records found damaged on load (one line each), left out of this snapshot.
        self.damaged: list[str] = []
        self._order = np.argsort(self.chunk_ids, kind="stable")
        self._sorted_ids = self.chunk_ids[self._order]

    def __len__(self) -> int:
        return len(self.chunks)

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Row in ``chunks`` of each chunk id (-1 for an id not in this snapshot)."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(self._sorted_ids) == 0:
            return np.full(ids.shape, -1, dtype=np.int64)
        pos = np.clip(np.searchsorted(self._sorted_ids, ids), 0, len(self._sorted_ids) - 1)
        return np.where(self._sorted_ids[pos] == ids, self._order[pos], -1)

    def chunk_vectors(self) -> np.ndarray:
        """All vectors in chunk order, [n, dim] (a copy; for tests and tools, not the query path)."""
        return self.vectors.get(self.chunk_ids) if len(self) else np.zeros((0, self.vectors.dim), np.float32)

    # --- persistence ----------------------------------------------------------

    def save(self, index_dir: str | Path, _fail_after: str | None = None) -> Path:
        """Write a new snapshot, then publish it by replacing ``CURRENT``.

        ``_fail_after`` names a file after which to raise; tests use it to prove
        that a crash mid-write leaves the previous index intact.
        """
        index_dir = Path(index_dir)
        index_dir.mkdir(parents=True, exist_ok=True)
        with writer_lock(index_dir):
            return self.save_locked(index_dir, _fail_after)

    def save_locked(self, index_dir: str | Path, _fail_after: str | None = None) -> Path:
        """``save`` for a caller that already holds ``writer_lock(index_dir)``
        (an update that must read, build and publish as one step)."""
        index_dir = Path(index_dir)
        name = f"snap-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        tmp = index_dir / f".tmp-{name}"
        published = False
        try:
            tmp.mkdir()
            with open(tmp / "documents.jsonl", "w", encoding="utf-8") as fh:
                for d in self.documents.values():
                    fh.write(json.dumps({"id": d.id, "title": d.title, "meta": d.meta, "text": d.text,
                                         "locators": [[lc.start, lc.end, lc.page, lc.section] for lc in d.locators]},
                                        ensure_ascii=False) + "\n")
            rows = {did: i for i, did in enumerate(self.documents)}
            table = np.asarray([(cid, rows[c.doc_id], c.start, c.end) for cid, c in zip(self.chunk_ids.tolist(),
                                                                                      self.chunks)], dtype=np.int64)
            np.save(tmp / "chunks.npy", table.reshape(-1, 4), allow_pickle=False)
            if _fail_after == "chunks.npy":
                raise OSError("simulated failure mid-write")
            (tmp / "vectors").mkdir()
            self.vectors.save(tmp / "vectors")
            (tmp / "lexical").mkdir()
            self.lexical.save(tmp / "lexical")
            self.manifest.files = _file_sums(tmp)
            (tmp / "manifest.json").write_text(json.dumps(asdict(self.manifest), indent=2))
            fsync_tree(tmp)  # every file's data, not only the folder's entries: CURRENT names it next
            os.replace(tmp, index_dir / name)
            fsync_dir(index_dir)  # the rename lands before the pointer does
            pointer_tmp = index_dir / f".{POINTER}.{uuid.uuid4().hex[:8]}"
            try:
                with open(pointer_tmp, "w") as fh:
                    fh.write(name + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                if _fail_after == "snapshot":
                    raise OSError("simulated failure before the pointer moved")
                os.replace(pointer_tmp, index_dir / POINTER)
                published = True
            finally:
                if not published:
                    pointer_tmp.unlink(missing_ok=True)
            fsync_dir(index_dir)
        except BaseException as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if not published:  # never published: the folder is garbage
                shutil.rmtree(index_dir / name, ignore_errors=True)
            error = write_error(e, index_dir) if not published else None
            if error is None:
                raise
            raise error from e
        remove_garbage(index_dir, name)
        self.name = name
        return index_dir / name

    @classmethod
    def load(cls, index_dir: str | Path) -> "IndexStore":
        index_dir = Path(index_dir)
        pointer = index_dir / POINTER
        # A writer in another process may publish a new snapshot and delete the
        # one just named in CURRENT while it is being read: then read the new one.
        for attempt in range(3):
            name = _read_pointer(pointer, index_dir)
            try:
                return cls._load_snapshot(index_dir, name)
            except IndexCorruptError:
                if attempt == 2 or _read_pointer(pointer, index_dir) == name:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    @classmethod
    def _load_snapshot(cls, index_dir: Path, name: str) -> "IndexStore":
        snap = index_dir / name
        rebuild = f"rebuild it from its stored texts with `qa index --rebuild --index {index_dir}`"
        try:
            m = json.loads((snap / "manifest.json").read_text())
            if not isinstance(m, dict):
                raise ValueError("manifest.json does not hold an object")
            # Check the version before anything else: another format may lay out
            # its files (and its manifest) differently.
            if m.get("format_version") != INDEX_FORMAT_VERSION:
                raise IndexStaleError(
                    f"the index in {index_dir} has format {m.get('format_version')}, this version of qa "
                    f"reads format {INDEX_FORMAT_VERSION}; {rebuild}"
                )
            manifest = Manifest(**m)
            _check_manifest(manifest)
            # documents.jsonl is checked record by record below (one damaged record costs
            # only its document); every other file must be whole.
            _check_files(snap, {k: v for k, v in manifest.files.items() if k != DOCUMENTS_FILE}, index_dir, rebuild)
            if not isinstance(manifest.documents, dict):
                raise ValueError("manifest.json: 'documents' is not an object")
            stored = read_documents(snap / DOCUMENTS_FILE, manifest.documents)
            documents = stored.documents
            table = np.load(snap / "chunks.npy", allow_pickle=False)
            if table.ndim != 2 or table.shape[1] != 4 or table.dtype.kind not in "iu":
                raise ValueError(f"chunks.npy has shape {table.shape} and dtype {table.dtype}, not [n, 4] integers")
            vname = manifest.vector_index.get("name")
            if vname not in VECTOR_BACKENDS:
                raise ValueError(f"unknown vector index backend {vname!r}")
            vectors = VECTOR_BACKENDS[vname].load(snap / "vectors")
            if manifest.lexical_index not in LEXICAL_BACKENDS:
                raise ValueError(f"unknown lexical index backend {manifest.lexical_index!r}")
            lexical_cls = LEXICAL_BACKENDS[manifest.lexical_index]
            lexical = lexical_cls.load(snap / "lexical", BM25Config(**manifest.bm25))
        except (IndexCorruptError, IndexStaleError, IndexBusyError):  # (busy: not corrupt, nothing to rebuild)
            raise
        except PermissionError as e:
            raise IndexPermissionError(
                f"the index in {index_dir} cannot be read: permission denied for "
                f"{getattr(e, 'filename', None) or snap}; check the permissions of {index_dir} "
                "(it is not corrupt)") from e
        except _UNREADABLE as e:  # an unreadable or malformed file (a bug in qa is not reported as corruption)
            detail = " ".join(str(e).split())[:300]  # one line, even for faiss's multi-line messages
            raise IndexCorruptError(f"the index in {index_dir} is corrupt ({type(e).__name__}: {detail}); {rebuild}") from e
        if len(table) != manifest.n_chunks or len(vectors) != len(table) or len(lexical) != len(table):
            raise IndexCorruptError(f"the index in {index_dir} is inconsistent (chunk counts differ); {rebuild}")
        chunk_ids = table[:, 0].astype(np.int64)
        if len(chunk_ids) and manifest.next_chunk_id <= int(chunk_ids.max()):
            raise IndexCorruptError(f"the index in {index_dir} is corrupt: manifest.json: 'next_chunk_id' "
                                    f"{manifest.next_chunk_id} is not past the stored chunk ids; {rebuild}")
        if not (np.array_equal(np.sort(chunk_ids), np.sort(vectors.ids()))
                and np.array_equal(np.sort(chunk_ids), np.sort(lexical.ids()))):
            raise IndexCorruptError(f"the index in {index_dir} is inconsistent (chunk ids differ); {rebuild}")
        if not documents and manifest.documents:
            raise IndexCorruptError(f"the index in {index_dir} is corrupt: none of its {len(manifest.documents)} "
                                    f"stored documents can be read ({stored.damaged[0]}); {rebuild}")
        # Chunk rows name documents in the manifest's order (the order they were written in), so a
        # record lost or merged with its neighbour does not shift the others' chunks onto wrong texts.
        order = list(manifest.documents)
        if not stored.damaged and stored.rows != order:
            order = stored.rows
        chunks, keep = [], []
        for _, row, start, end in table.tolist():
            if not 0 <= row < len(order):
                raise IndexCorruptError(f"the index in {index_dir} has a chunk of an unknown document; {rebuild}")
            did = order[row] if order[row] in documents else None
            if did is None:  # a chunk of a damaged document: left out with it
                keep.append(False)
                continue
            d = documents[did]
            if not 0 <= start < end <= len(d.text):
                raise IndexCorruptError(f"the index in {index_dir} has chunk offsets outside their document; {rebuild}")
            chunks.append(Chunk(doc_id=d.id, start=start, end=end, text=d.text[start:end]))
            keep.append(True)
        damaged = list(stored.damaged)
        if damaged:
            keep_mask = np.asarray(keep, dtype=bool)
            dropped = chunk_ids[~keep_mask]
            chunk_ids = chunk_ids[keep_mask]
            vectors = MaskedVectors(vectors, dropped)
            lexical = lexical_cls.build(chunk_ids, [c.text for c in chunks], BM25Config(**manifest.bm25))
            manifest = replace(manifest, documents={k: v for k, v in manifest.documents.items() if k in documents},
                               n_chunks=len(chunks))
            log.warning("the index in %s has %d damaged document record(s), left out (the other %d documents "
                        "are served; add them again, or `qa index --rebuild --index %s` to write a clean "
                        "index without them): %s", index_dir, len(damaged), len(documents), index_dir,
                        "; ".join(damaged[:5]) + (" ..." if len(damaged) > 5 else ""))
        store = cls(manifest, documents, chunks, chunk_ids, vectors, lexical)
        store.name = name
        store.damaged = damaged
        return store

    def check_compatible(self, expected: dict[str, Any], index_dir: str | Path) -> None:
        """Refuse an index built with another model, chunking or format."""
        have = self.manifest.expectations()
        for key, want in expected.items():
            if have.get(key) != want:
                what = {"embedder": "a different embedding model", "chunking": "different chunking settings",
                        "bm25": "different BM25 settings", "format_version": "another index format"}.get(key, key)
                raise IndexStaleError(
                    f"the index in {index_dir} was built with {what} ({have.get(key)} != {want}); "
                    f"rebuild it from its stored texts with `qa index --rebuild --index {index_dir}`"
                )


