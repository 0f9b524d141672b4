"""Reading files into ``Document`` objects without moving a single character.

Offsets in citations point into ``Document.text``, which is the file decoded as
UTF-8 and nothing else (no stripping, no newline translation), so an offset in
an answer is an offset in the file as the user sees it in an editor.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Iterable

from qa.config import SUPPORTED_SUFFIXES
from qa.errors import (
    DocumentEncodingError,
    DocumentError,
    DocumentNotFoundError,
    DocumentUnreadableError,
    EmptyCorpusError,
    EmptyDocumentError,
    UnsupportedFormatError,
)
from qa.types import Document

# The seed's first line: " date 2023-07-13 Title: ...", then "Subtitle: ...".
_HEADER = re.compile(r"^\s*date\s+(?P<date>\d{4}-\d{2}-\d{2})\s+Title:\s*(?P<title>.+?)\s*$")
_SUBTITLE = re.compile(r"^\s*Subtitle:\s*(?P<subtitle>.+?)\s*$", re.MULTILINE)
_MD_TITLE = re.compile(r"^#\s+(?P<title>.+?)\s*$", re.MULTILINE)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_metadata(text: str, fallback_title: str) -> tuple[str, dict[str, str]]:
    """Title and date from a news-style header or a Markdown heading."""
    meta: dict[str, str] = {}
    text = text.removeprefix("\ufeff")  # a UTF-8 byte order mark is not part of the header
    first_line = text.split("\n", 1)[0]
    m = _HEADER.match(first_line)
    if m:
        meta["date"] = m.group("date")
        title = m.group("title")
        sub = _SUBTITLE.search(text, 0, 2000)
        if sub:
            meta["subtitle"] = sub.group("subtitle")
        return title, meta
    md = _MD_TITLE.search(text, 0, 2000)
    if md:
        return md.group("title"), meta
    return fallback_title, meta


def document_from_text(doc_id: str, text: str, title: str | None = None, **meta: str) -> Document:
    """Build a document from a string (used for uploads and SQuAD paragraphs)."""
    parsed_title, parsed = parse_metadata(text, fallback_title=title or doc_id)
    parsed.update(meta)
    return Document(id=doc_id, text=text, title=title or parsed_title, meta=parsed)


def load_file(path: str | Path, doc_id: str | None = None, max_bytes: int | None = None) -> Document:
    """Read one UTF-8 text file; raise ``DocumentError`` saying exactly why not."""
    p = Path(path)
    if not p.exists():
        raise DocumentNotFoundError(f"{p}: no such file")
    if p.is_dir():
        raise DocumentNotFoundError(f"{p}: is a folder, not a file (index the folder to add the files in it)")
    if p.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise UnsupportedFormatError(
            f"{p}: unsupported file type {p.suffix or '(none)'!r}; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if not p.is_file():
        raise DocumentUnreadableError(f"{p}: not a regular file")
    try:
        size = p.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise DocumentUnreadableError(f"{p}: {size} bytes is over the {max_bytes}-byte limit")
        raw = p.read_bytes()
    except PermissionError as e:
        raise DocumentUnreadableError(f"{p}: cannot be read ({e.strerror or 'permission denied'})") from e
    except OSError as e:
        raise DocumentUnreadableError(f"{p}: cannot be read ({e.strerror or e})") from e
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DocumentEncodingError(
            f"{p}: not valid UTF-8 (byte {e.start}); save it as UTF-8 and index it again"
        ) from e
    if not text.strip():
        raise EmptyDocumentError(f"{p}: the file is empty")
    title, meta = parse_metadata(text, fallback_title=p.stem.replace("_", " "))
    meta["source"] = str(p.resolve())
    return Document(id=doc_id or p.name, text=text, title=title, meta=meta)


def iter_paths(paths: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """Expand files and folders into (file, doc_id); ids are paths relative to
    the folder given (or the bare file name), so re-indexing a file replaces it."""
    out: list[tuple[Path, str]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
            out.extend((f, f.relative_to(p).as_posix()) for f in files)
        else:
            out.append((p, p.name))
    return out


def load_paths(paths: Iterable[str | Path], max_bytes: int | None = None) -> list[Document]:
    """Load every supported file under the given paths; fail before indexing anything.

    Two different files that would get the same id (``a/notes.txt`` and
    ``b/notes.txt`` given as files) are refused rather than one silently
    replacing the other; the same file given twice is loaded once.
    """
    paths = list(paths)
    seen: dict[str, Path] = {}
    pairs = []
    for path, doc_id in iter_paths(paths):
        key = path.resolve()
        if doc_id in seen:
            if seen[doc_id] == key:
                continue
            raise DocumentError(
                f"{path} and {seen[doc_id]} would both be indexed as {doc_id!r}; "
                "rename one or index their common parent folder"
            )
        seen[doc_id] = key
        pairs.append((path, doc_id))
    if not pairs:
        suffixes = " or ".join(SUPPORTED_SUFFIXES)
        raise EmptyCorpusError(f"no {suffixes} files found in " + ", ".join(str(p) for p in paths))
    return [load_file(path, doc_id, max_bytes) for path, doc_id in pairs]
