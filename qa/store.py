"""The on-disk index: documents, chunks, FAISS vectors, BM25, and a manifest.

Layout of ``index_dir``::

    CURRENT               name of the live snapshot folder (replaced atomically)
    snap-<id>/manifest.json   format version, embedder id + weights sha256,
                              chunking and BM25 settings, sha256 of each document
    snap-<id>/documents.jsonl the indexed texts (citations point into these)
    snap-<id>/chunks.npy      int64 [n, 3]: document row, start, end (no pickle)
    snap-<id>/vectors.faiss   normalised embeddings, inner-product index
    snap-<id>/bm25/           bm25s index over the same chunks

Every update writes a complete new snapshot next to the live one and then swaps
``CURRENT`` with ``os.replace``: a crash at any point leaves the previous index
whole and usable, and the vectors, BM25 and chunk table can never disagree
because they are only ever published together.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from qa.config import INDEX_FORMAT_VERSION, ChunkingConfig
from qa.errors import IndexCorruptError, IndexMissingError, IndexStaleError
from qa.loading import sha256_text
from qa.types import Chunk, Document

POINTER = "CURRENT"


@dataclass
class Manifest:
    format_version: int
    embedder: dict[str, str]
    chunking: dict[str, Any]
    bm25: dict[str, Any]
    documents: dict[str, str]  # doc_id -> sha256 of its text
    n_chunks: int
    created: float

    def expectations(self) -> dict[str, Any]:
        return {"format_version": self.format_version, "embedder": self.embedder, "chunking": self.chunking,
                "bm25": self.bm25}


class IndexStore:
    """An immutable snapshot of the index in memory; updates return a new one."""

    def __init__(
        self,
        manifest: Manifest,
        documents: dict[str, Document],
        chunks: list[Chunk],
        vectors: np.ndarray,
        bm25: Any,
    ) -> None:
        import faiss

        self.manifest = manifest
        self.documents = documents
        self.chunks = chunks
        self.vectors = vectors
        self.faiss = faiss.IndexFlatIP(vectors.shape[1])
        if len(vectors):
            self.faiss.add(vectors)
        self.bm25 = bm25

    def __len__(self) -> int:
        return len(self.chunks)

    # --- building -------------------------------------------------------------

    @classmethod
    def build(
        cls,
        docs: list[Document],
        chunker: Any,
        embedder: Any,
        bm25_builder: Callable[[list[str]], Any],
        bm25_params: dict[str, Any],
        previous: "IndexStore | None" = None,
        remove: tuple[str, ...] = (),
        progress: bool = False,
    ) -> "IndexStore":
        """New snapshot = previous documents (minus ``remove``) updated with ``docs``.

        Chunks of documents whose text is unchanged reuse their stored vectors;
        only new or changed documents are embedded.
        """
        keep: dict[str, Document] = {}
        reuse: dict[tuple[str, int, int], np.ndarray] = {}
        compatible = previous is not None and previous.manifest.chunking == asdict(chunker.config) \
            and previous.manifest.embedder == embedder.model_id
        if previous is not None:
            for did, d in previous.documents.items():
                if did not in remove:
                    keep[did] = d
            if compatible:
                for row, c in enumerate(previous.chunks):
                    reuse[(c.doc_id, c.start, c.end)] = previous.vectors[row]
        for d in docs:
            # Compare with the previous text even when the id is also in ``remove``:
            # a removed-and-re-added document must not inherit its old vectors.
            old = previous.documents.get(d.id) if previous is not None else None
            if old is not None and old.text != d.text:
                reuse = {k: v for k, v in reuse.items() if k[0] != d.id}
            keep[d.id] = d
        documents = keep
        chunks = [c for d in documents.values() for c in chunker.run(d)]
        todo = [i for i, c in enumerate(chunks) if (c.doc_id, c.start, c.end) not in reuse]
        dim = embedder.dim
        vectors = np.zeros((len(chunks), dim), dtype=np.float32)
        for i, c in enumerate(chunks):
            v = reuse.get((c.doc_id, c.start, c.end))
            if v is not None:
                vectors[i] = v
        if todo:
            vectors[todo] = embedder.run([chunks[i].text for i in todo], progress=progress)
        bm25 = bm25_builder([c.text for c in chunks]) if chunks else None
        manifest = Manifest(
            format_version=INDEX_FORMAT_VERSION,
            embedder=embedder.model_id,
            chunking=asdict(chunker.config),
            bm25=bm25_params,
            documents={did: sha256_text(d.text) for did, d in documents.items()},
            n_chunks=len(chunks),
            created=time.time(),
        )
        return cls(manifest, documents, chunks, vectors, bm25)

    # --- persistence ----------------------------------------------------------

    def save(self, index_dir: str | Path, _fail_after: str | None = None) -> Path:
        """Write a new snapshot, then publish it by replacing ``CURRENT``.

        ``_fail_after`` names a file after which to raise; tests use it to prove
        that a crash mid-write leaves the previous index intact.
        """
        index_dir = Path(index_dir)
        index_dir.mkdir(parents=True, exist_ok=True)
        with _writer_lock(index_dir):
            return self._save_locked(index_dir, _fail_after)

    def _save_locked(self, index_dir: Path, _fail_after: str | None) -> Path:
        import faiss

        name = f"snap-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        tmp = index_dir / f".tmp-{name}"
        tmp.mkdir()
        published = False
        try:
            with open(tmp / "documents.jsonl", "w", encoding="utf-8") as fh:
                for d in self.documents.values():
                    fh.write(json.dumps({"id": d.id, "title": d.title, "meta": d.meta, "text": d.text},
                                        ensure_ascii=False) + "\n")
            rows = {did: i for i, did in enumerate(self.documents)}
            table = np.asarray([(rows[c.doc_id], c.start, c.end) for c in self.chunks], dtype=np.int64)
            np.save(tmp / "chunks.npy", table.reshape(-1, 3), allow_pickle=False)
            if _fail_after == "chunks.npy":
                raise OSError("simulated failure mid-write")
            faiss.write_index(self.faiss, str(tmp / "vectors.faiss"))
            if self.bm25 is not None:
                self.bm25.save(str(tmp / "bm25"))
            (tmp / "manifest.json").write_text(json.dumps(asdict(self.manifest), indent=2))
            _fsync_dir(tmp)
            os.replace(tmp, index_dir / name)
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
            _fsync_dir(index_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            if not published:  # never published: the folder is garbage
                shutil.rmtree(index_dir / name, ignore_errors=True)
            raise
        # Old snapshots are garbage only once the pointer has moved on. Writers
        # hold the lock, so no other writer's folder is half-built right now.
        for old in index_dir.glob("snap-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        for old in index_dir.glob(".tmp-snap-*"):
            shutil.rmtree(old, ignore_errors=True)
        for old in index_dir.glob(f".{POINTER}.*"):
            old.unlink(missing_ok=True)
        return index_dir / name

    @classmethod
    def load(cls, index_dir: str | Path, bm25_loader: Callable[[str], Any]) -> "IndexStore":
        index_dir = Path(index_dir)
        pointer = index_dir / POINTER
        # A writer in another process may publish a new snapshot and delete the
        # one just named in CURRENT while it is being read: then read the new one.
        for attempt in range(3):
            name = _read_pointer(pointer, index_dir)
            try:
                return cls._load_snapshot(index_dir, name, bm25_loader)
            except IndexCorruptError:
                if attempt == 2 or _read_pointer(pointer, index_dir) == name:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    @classmethod
    def _load_snapshot(cls, index_dir: Path, name: str, bm25_loader: Callable[[str], Any]) -> "IndexStore":
        import faiss

        snap = index_dir / name
        rebuild = f"rebuild it with `qa index PATH... --index {index_dir} --rebuild`"
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
            documents: dict[str, Document] = {}
            with open(snap / "documents.jsonl", encoding="utf-8") as fh:
                for line in fh:
                    r = json.loads(line)
                    documents[r["id"]] = Document(id=r["id"], text=r["text"], title=r["title"], meta=r["meta"])
            table = np.load(snap / "chunks.npy", allow_pickle=False)
            if table.ndim != 2 or table.shape[1] != 3 or table.dtype.kind not in "iu":
                raise ValueError(f"chunks.npy has shape {table.shape} and dtype {table.dtype}, not [n, 3] integers")
            index = faiss.read_index(str(snap / "vectors.faiss"))
            vectors = index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), np.float32)
            bm25 = bm25_loader(str(snap / "bm25")) if (snap / "bm25").exists() else None
        except (IndexCorruptError, IndexStaleError):
            raise
        except Exception as e:  # any unreadable or malformed file
            detail = " ".join(str(e).split())[:300]  # one line, even for faiss's multi-line messages
            raise IndexCorruptError(f"the index in {index_dir} is corrupt ({type(e).__name__}: {detail}); {rebuild}") from e
        ids = list(documents)
        if len(table) != manifest.n_chunks or len(vectors) != len(table) or (
            bm25 is not None and _bm25_size(bm25) not in (None, len(table))
        ):
            raise IndexCorruptError(f"the index in {index_dir} is inconsistent (chunk counts differ); {rebuild}")
        if set(ids) != set(manifest.documents):
            raise IndexCorruptError(f"the index in {index_dir} lists other documents than it holds; {rebuild}")
        chunks = []
        for row, start, end in table.tolist():
            if not 0 <= row < len(ids):
                raise IndexCorruptError(f"the index in {index_dir} has a chunk of an unknown document; {rebuild}")
            d = documents[ids[row]]
            if not 0 <= start < end <= len(d.text):
                raise IndexCorruptError(f"the index in {index_dir} has chunk offsets outside their document; {rebuild}")
            chunks.append(Chunk(doc_id=d.id, start=start, end=end, text=d.text[start:end]))
        return cls(manifest, documents, chunks, np.ascontiguousarray(vectors, dtype=np.float32), bm25)

    def check_compatible(self, expected: dict[str, Any], index_dir: str | Path) -> None:
        """Refuse an index built with another model, chunking or format."""
        have = self.manifest.expectations()
        for key, want in expected.items():
            if have.get(key) != want:
                what = {"embedder": "a different embedding model", "chunking": "different chunking settings",
                        "bm25": "different BM25 settings", "format_version": "another index format"}.get(key, key)
                raise IndexStaleError(
                    f"the index in {index_dir} was built with {what} ({have.get(key)} != {want}); "
                    f"rebuild it with `qa index PATH... --index {index_dir} --rebuild`"
                )


def _read_pointer(pointer: Path, index_dir: Path) -> str:
    try:
        name = pointer.read_text().strip()
    except FileNotFoundError:
        raise IndexMissingError(
            f"no index in {index_dir}: build one with `qa index PATH... --index {index_dir}`"
        ) from None
    except OSError as e:
        raise IndexCorruptError(f"the index pointer {pointer} cannot be read ({e.strerror or e})") from e
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise IndexCorruptError(
            f"the index pointer {pointer} names no snapshot ({name!r}); "
            f"rebuild it with `qa index PATH... --index {index_dir} --rebuild`"
        )
    return name


@contextlib.contextmanager
def _writer_lock(index_dir: Path):
    """One writer at a time per index folder (across processes, where supported)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(index_dir / ".lock", "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _bm25_size(bm25: Any) -> int | None:
    try:
        return int(bm25.scores["num_docs"])
    except Exception:
        return None


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
