"""The index folder's files: the CURRENT pointer, per-file checksums, the
writer lock, and removal of what a crashed writer left behind."""

from __future__ import annotations

import errno
import logging
import os
import shutil
from pathlib import Path

from qa._files import sha256_file
from qa.errors import IndexCorruptError, IndexMissingError, IndexPermissionError, IndexWriteError
from qa.store.backends import external_resource

POINTER = "CURRENT"

log = logging.getLogger("qa")


def _not_a_folder(index_dir: Path) -> IndexMissingError | None:
    """The error for an index folder named where a file (or a path through one)
    is: said as such, rather than "File exists" or "Not a directory" about a
    pointer file, which sent users looking for a corrupt index."""
    for p in (index_dir, *index_dir.parents):
        if p.exists() or p.is_symlink():
            if p.is_dir():
                return None
            what = "a link to nothing" if not p.exists() else "a file"
            return IndexMissingError(f"{p} is {what}, not an index folder: choose a folder for the index "
                                     f"(`--index DIR`; a new one is made)")
    return None


def _read_pointer(pointer: Path, index_dir: Path) -> str:
    try:
        name = pointer.read_text().strip()
    except FileNotFoundError:
        raise IndexMissingError(
            f"no index in {index_dir}: build one with `qa index PATH... --index {index_dir}`"
        ) from None
    except NotADirectoryError:
        raise (_not_a_folder(index_dir) or IndexMissingError(f"no index in {index_dir}")) from None
    except PermissionError as e:
        raise IndexPermissionError(f"the index pointer {pointer} cannot be read: permission denied; "
                                   f"check the permissions of {index_dir} (the index is not corrupt)") from e
    except OSError as e:
        raise IndexCorruptError(f"the index pointer {pointer} cannot be read ({e.strerror or e})") from e
    except UnicodeDecodeError:
        raise IndexCorruptError(
            f"the index pointer {pointer} is not text; "
            f"rebuild it from its stored texts with `qa index --rebuild --index {index_dir}`") from None
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise IndexCorruptError(
            f"the index pointer {pointer} names no snapshot ({name!r}); "
            f"rebuild it from its stored texts with `qa index --rebuild --index {index_dir}`"
        )
    return name


#: errno of a write the folder or its disk refuses -> (what to call it, what to do).
_CANNOT_WRITE = {
    errno.EROFS: ("read-only file system", "add or remove documents where the folder can be written"),
    errno.EACCES: ("permission denied", "check the permissions of {dir}"),
    errno.EPERM: ("operation not permitted", "check the permissions of {dir}"),
    errno.ENOSPC: ("No space left on device", "free some space on its disk and try again"),
    errno.EDQUOT: ("disk quota exceeded", "free some space (or raise the quota) and try again"),
}


def write_error(e: BaseException, index_dir: str | Path) -> IndexWriteError | None:
    """The error to show for ``e``, raised while writing ``index_dir``, when the
    folder or its disk refused the write (read-only, permissions, full): said as
    such, with the way out, instead of a bare OSError naming a hidden temp or lock
    file (or FAISS's RuntimeError, which the CLI called an internal error).
    None for any other failure."""
    code = e.errno if isinstance(e, OSError) and not isinstance(e, IndexWriteError) else None
    if isinstance(e, RuntimeError):  # FAISS: "... write error in PATH: n != m (No space left on device)"
        text = str(e)
        code = next((c for c in _CANNOT_WRITE if "write error" in text and f"({os.strerror(c)})" in text), None)
    if code not in _CANNOT_WRITE:
        return None
    what, advice = _CANNOT_WRITE[code]
    try:
        published = (Path(index_dir) / POINTER).exists()
    except OSError:
        published = False
    said = ("nothing was changed, and questions are still answered from it" if published
            else "nothing was written")
    error = IndexWriteError(f"the index in {index_dir} cannot be written ({what}): {said}; "
                            f"{advice.format(dir=index_dir)}")
    error.errno = code
    return error


def _file_sums(folder: Path) -> dict[str, list]:
    """[size, sha256] of every file under ``folder`` (the manifest excepted)."""
    out = {}
    for f in sorted(folder.rglob("*")):
        if f.is_file() and f.name != "manifest.json":
            out[f.relative_to(folder).as_posix()] = [f.stat().st_size, sha256_file(f)]
    return out


def _check_files(snap: Path, files: dict[str, list], index_dir: Path, rebuild: str) -> None:
    """Every file the manifest lists is there, with its size and checksum (sizes
    first: a missing or truncated file is refused before anything is hashed)."""
    if not isinstance(files, dict):
        raise ValueError("manifest.json: 'files' is not an object")
    for rel, (size, _) in files.items():
        f = snap / rel
        if ".." in Path(rel).parts:
            raise ValueError(f"manifest.json names a file outside the snapshot: {rel!r}")
        try:
            have = f.stat().st_size
        except FileNotFoundError:
            raise IndexCorruptError(f"the index in {index_dir} is corrupt: {name_of(snap, rel)} is missing; "
                                    f"{rebuild}") from None
        if have != size:
            raise IndexCorruptError(f"the index in {index_dir} is corrupt: {name_of(snap, rel)} has {have} bytes, "
                                    f"{size} were written; {rebuild}")
    for rel, (_, digest) in files.items():
        if sha256_file(snap / rel) != digest:
            raise IndexCorruptError(f"the index in {index_dir} is corrupt: {name_of(snap, rel)} does not match its "
                                    f"checksum; {rebuild}")


def name_of(snap: Path, rel: str) -> str:
    return f"{snap.name}/{rel}"


def remove_garbage(index_dir: str | Path, keep: str | None) -> int:
    """Delete snapshot folders other than ``keep`` and half-written temporaries
    (left by a crash or a kill -9); returns how many entries went. The caller
    holds the writer lock, so no writer's folder is half-built right now.

    The newest snapshot before ``keep`` whose vectors live outside its folder (a
    Milvus collection) stays until the next write: a question in flight (the app
    answering while an upload publishes, or another process) still reads that
    collection, and dropping it at once failed the question. FAISS readers hold
    their vectors in memory, so their old folders go now."""
    index_dir = Path(index_dir)
    n = 0
    live = _external_collection(index_dir / keep) if keep else None
    grace = _previous_external(index_dir, keep)
    for old in list(index_dir.glob("snap-*")) + list(index_dir.glob(".tmp-snap-*")):
        if old.name not in (keep, grace) and old.is_dir():
            _drop_external(old, live)
            shutil.rmtree(old, ignore_errors=True)
            n += 1
    for old in index_dir.glob(f".{POINTER}.*"):
        try:
            old.unlink()
            n += 1
        except OSError:
            pass
    return n


def _previous_external(index_dir: Path, keep: str | None) -> str | None:
    """The newest complete snapshot other than ``keep`` with vectors outside its folder."""
    if keep is None:
        return None
    older = []
    for snap in index_dir.glob("snap-*"):
        if snap.name == keep or not snap.is_dir() or external_resource(snap / "vectors") is None:
            continue
        try:
            older.append((snap.stat().st_mtime_ns, snap.name))
        except OSError:
            continue
    return max(older)[1] if older else None


def _external_collection(snap: Path) -> str | None:
    """What a snapshot's vectors keep outside its folder (a Milvus collection), or None."""
    found = external_resource(snap / "vectors")
    return found[1] if found else None


def _drop_external(snap: Path, live: str | None) -> None:
    """Vectors kept outside the folder go with their snapshot, unless the live
    snapshot still reads the same resource (copy-on-write, not yet written)."""
    found = external_resource(snap / "vectors")
    if found is None or found[1] == live:
        return
    backend, name = found
    try:
        backend.drop_saved(snap / "vectors")
    except Exception:  # noqa: BLE001 - a server that is down must not stop the clean-up of files
        log.warning("could not drop %s resource %s of %s", backend.name, name, snap, exc_info=True)


def clean_index_dir(index_dir: str | Path) -> int:
    """``remove_garbage`` for a process that is starting: only when no writer is
    at work (the lock is free right now) and the folder is writable; never blocks."""
    from filelock import Timeout

    index_dir = Path(index_dir)
    if not (index_dir / POINTER).exists():
        return 0
    try:
        with writer_lock(index_dir).acquire(timeout=0):
            keep = current_name(index_dir)
            if keep is None or not (index_dir / keep).is_dir():
                return 0  # nothing is known to be live: leave everything for a human
            return remove_garbage(index_dir, keep)
    except (Timeout, OSError, IndexCorruptError):
        return 0


class _WriterLock:
    """The index folder's file lock; entering it while another writer holds it
    says so once (a warning, which the CLI shows): `qa remove` or a second
    `qa index` used to wait in silence, for minutes behind a large update."""

    def __init__(self, lock, index_dir: Path) -> None:
        self._lock = lock
        self._index_dir = index_dir

    def acquire(self, timeout: float = -1):
        return self._lock.acquire(timeout=timeout)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> "_WriterLock":
        from filelock import Timeout

        try:
            try:
                self._lock.acquire(timeout=0)
            except Timeout:
                log.warning("waiting for another writer to finish with %s (an index, upload, removal or "
                            "calibration in progress)", self._index_dir)
                self._lock.acquire()
        except OSError as e:  # a read-only folder: its lock file cannot be opened for writing
            error = write_error(e, self._index_dir)
            if error is None:
                raise
            raise error from e
        return self

    def __exit__(self, *exc) -> None:
        self._lock.release()


def writer_lock(index_dir: str | Path) -> _WriterLock:
    """One writer at a time per index folder, across threads and processes.

    Held across a whole update (read the latest snapshot, build, publish) so two
    writers can never both start from the same snapshot and lose each other's
    documents."""
    from filelock import FileLock

    index_dir = Path(index_dir)
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        error = _not_a_folder(index_dir)
        if error is None:
            raise
        raise error from None
    except OSError as e:  # a new index under a read-only or full folder
        error = write_error(e, index_dir)
        if error is None:
            raise
        raise error from e
    return _WriterLock(FileLock(str(index_dir / ".lock"), thread_local=False), index_dir)


def current_name(index_dir: str | Path) -> str | None:
    """Name of the published snapshot (None when there is none): one small read,
    cheap enough to check before every question."""
    try:
        return _read_pointer(Path(index_dir) / POINTER, Path(index_dir))
    except IndexMissingError:
        return None

