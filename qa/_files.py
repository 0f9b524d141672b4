"""File helpers every layer uses: sha256 of a file, the fingerprint of a model's
weights, and atomic writes (temp file in the same folder, fsync, rename).

A leaf module: it imports nothing from ``qa``, so the store, the reader, the
embedder and the training scripts can all share one implementation without
importing each other.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks (weights files are large)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def sha256_text(text: str) -> str:
    """sha256 of a text's UTF-8 bytes: what tells two documents' contents apart
    (the manifest records it; loading an index checks it)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def weights_fingerprint(model_dir: str | Path) -> str:
    """A short hash of a model folder's weights and config: tells whether a cache
    of predictions was made by the weights now on disk."""
    h = hashlib.sha256()
    for name in ("model.safetensors", "config.json"):
        f = Path(model_dir) / name
        if f.exists():
            h.update(bytes.fromhex(sha256_file(f)))
    return h.hexdigest()[:16]


def fsync_dir(path: str | Path) -> None:
    """Flush a folder's entries (a rename is durable only once its folder is);
    best effort: some file systems refuse to open a folder."""
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


def fsync_tree(path: str | Path) -> None:
    """Flush every file under ``path`` and then every folder, deepest first (the
    folder itself last): what must be on disk before anything names the tree.
    A file that cannot be flushed is an error; a folder, best effort."""
    path = Path(path)
    folders = [path]
    for p in sorted(path.rglob("*")):
        if p.is_symlink():
            continue
        if p.is_dir():
            folders.append(p)
        elif p.is_file():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
        fsync_dir(folder)


def atomic_write_bytes(target: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``target`` so a reader sees the old file or the new one,
    never half of one: temp file beside it, fsync, ``os.replace``. The temp file
    is removed when anything fails."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:  # also on KeyboardInterrupt: never leave the temp file; re-raised
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target


def atomic_write_text(target: str | Path, text: str) -> Path:
    """``atomic_write_bytes`` for UTF-8 text."""
    return atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_json(target: str | Path, data: Any, indent: int | None = 2) -> Path:
    """``atomic_write_bytes`` for a JSON document."""
    return atomic_write_text(target, json.dumps(data, indent=indent))
