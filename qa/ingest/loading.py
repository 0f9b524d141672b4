"""Reading files into ``Document`` objects whose text every offset points into.

``.txt`` and ``.md`` are the file decoded as UTF-8 and nothing else (no
stripping, no newline translation; Markdown's inline HTML markup blanked with
spaces of the same length), so an offset in an answer is an offset in the file
as the user sees it in an editor. PDF, HTML and Word files are
extracted by their loader (``qa.ingest.registry``); their ``Document.text`` is
the extracted text, and ``Document.locators`` map its ranges to pages or
sections.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Iterable

from qa.errors import (
    CorruptDocumentError,
    DocumentEncodingError,
    DocumentError,
    DocumentFieldError,
    DocumentNotFoundError,
    DocumentUnreadableError,
    EmptyCorpusError,
    EmptyDocumentError,
    FileTooLargeError,
    FormatMismatchError,
    UnsupportedFormatError,
)
from qa.ingest.base import detect_binary
from qa.ingest.metadata import parse_metadata
from qa.ingest.registry import SUPPORTED_SUFFIXES, loader_for, suggest_suffix
from qa.types import Document, check_doc_id

def document_from_text(doc_id: str, text: str, title: str | None = None, **meta: str) -> Document:
    """Build a document from a string (used for uploads and SQuAD paragraphs)."""
    parsed_title, parsed = parse_metadata(text, fallback_title=title or doc_id)
    parsed.update(meta)
    return Document(id=doc_id, text=text, title=title or parsed_title, meta=parsed)


def unsupported_message(path: Path | str) -> str:
    suffix = Path(path).suffix
    return f"{path}: unsupported file type {suffix or '(none)'!r}; supported: {', '.join(SUPPORTED_SUFFIXES)}"


def _textual(raw: bytes) -> str | None:
    """ "HTML" / "plain text" when the start of the bytes reads as text, else None."""
    head = raw[:4096]
    try:
        sample = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # not just a character cut at the sample's end
            return None
        sample = head[: e.start].decode("utf-8")
    if "\x00" in sample:
        return None
    low = sample.lstrip("\ufeff \t\r\n").lower()
    return "HTML" if low.startswith(("<!doctype html", "<html", "<head", "<body")) else "plain text"


def _utf16(raw: bytes) -> bool:
    """UTF-16 text: a byte order mark, or (none, as some tools write it) every
    other byte of the start NUL, as ASCII-range characters make it."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    head = raw[:512] if len(raw) % 2 == 0 else raw[:512 - 1]
    return len(head) >= 4 and (not any(head[1::2]) or not any(head[0::2]))


def document_from_bytes(raw: bytes, path: str | Path, doc_id: str | None = None,
                        max_bytes: int | None = None) -> Document:
    """Extract a document from a file's bytes; ``path`` names it (its suffix picks
    the loader, it appears in messages and in ``meta["source"]``). For uploads,
    pass the original file name. Raises a ``DocumentError`` saying exactly why not."""
    p = Path(path)
    loader = loader_for(p.suffix)
    if loader is None:
        raise UnsupportedFormatError(unsupported_message(p))
    try:
        check_doc_id(doc_id or p.name)
    except DocumentFieldError as e:  # checked before reading: say it about the file
        raise DocumentError(f"{str(p)!r}: this name cannot be a document id ({e}); rename the file") from None
    if max_bytes is not None and len(raw) > max_bytes:
        raise FileTooLargeError(f"{p}: {len(raw)} bytes is over the {max_bytes}-byte limit")
    if not raw:
        raise EmptyDocumentError(f"{p}: the file is empty (0 bytes)")
    if not loader.sniff(raw):
        what = detect_binary(raw)
        if what is None and b"\x00" in raw and loader.name in ("text", "markdown"):
            if _utf16(raw):
                raise DocumentEncodingError(f"{p}: UTF-16 text, not UTF-8; save it as UTF-8 and index it again")
            raise FormatMismatchError(f"{p}: the file holds NUL bytes: binary data, not {loader.name}")
        what = what or _textual(raw)
        if what is None:
            raise CorruptDocumentError(
                f"{p}: not a {loader.name} file (its first bytes are no {loader.name} signature); "
                "it may be corrupt or truncated")
        hint = suggest_suffix(raw)
        raise FormatMismatchError(
            f"{p}: the extension says {p.suffix} but the content is {what}"
            + (f"; rename it to {p.stem}{hint}" if hint else "")
        )
    try:
        ex = loader.extract(raw, p)
    except DocumentError:
        raise
    except MemoryError:
        raise DocumentUnreadableError(f"{p}: too large to extract in memory") from None
    except Exception as e:  # noqa: BLE001 - a parser's own exception on a broken file
        raise CorruptDocumentError(
            f"{p}: could not read this {loader.name} file ({type(e).__name__}: {e}); it may be corrupt or truncated"
        ) from e
    if not ex.text.strip():
        raise EmptyDocumentError(f"{p}: the file is empty" if loader.name in ("text", "markdown")
                                 else f"{p}: no text found in this {loader.name} file")
    meta: dict[str, str] = dict(ex.meta)
    if loader.name not in ("text", "markdown"):
        meta["format"] = loader.name.lower()
    meta["source"] = str(p.resolve())
    # When it was read (= added to the index, or last changed: an unchanged file keeps its document).
    meta["added"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    title = ex.title or p.stem.replace("_", " ")
    return Document(id=doc_id or p.name, text=ex.text, title=title, meta=meta, locators=ex.locators)


def load_file(path: str | Path, doc_id: str | None = None, max_bytes: int | None = None) -> Document:
    """Read one supported file; raise ``DocumentError`` saying exactly why not."""
    p = Path(path)
    if not p.exists():
        raise DocumentNotFoundError(f"{p}: no such file")
    if p.is_dir():
        raise DocumentNotFoundError(f"{p}: is a folder, not a file (index the folder to add the files in it)")
    if loader_for(p.suffix) is None:
        raise UnsupportedFormatError(unsupported_message(p))
    if not p.is_file():
        raise DocumentUnreadableError(f"{p}: not a regular file")
    try:
        size = p.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise FileTooLargeError(f"{p}: {size} bytes is over the {max_bytes}-byte limit")
        raw = p.read_bytes()
    except PermissionError as e:
        raise DocumentUnreadableError(f"{p}: cannot be read ({e.strerror or 'permission denied'})") from e
    except OSError as e:
        raise DocumentUnreadableError(f"{p}: cannot be read ({e.strerror or e})") from e
    return document_from_bytes(raw, p, doc_id=doc_id, max_bytes=max_bytes)


def empty_corpus_message(paths: Iterable[str | Path]) -> str:
    # Starts as it always has ("no .txt or .md files found in ..."), then names the other types.
    first, rest = SUPPORTED_SUFFIXES[:2], SUPPORTED_SUFFIXES[2:]
    return (f"no {' or '.join(first)} files found in " + ", ".join(str(p) for p in paths)
            + (f" (nor any other supported type: {', '.join(rest)})" if rest else ""))


def walk_folder(folder: Path, exclude: Iterable[str | Path] = ()):
    """Yield ``(path, rel, kind)`` for everything under ``folder`` in sorted
    order, without entering hidden entries, the folders in ``exclude`` (an index
    kept inside the folder it indexes: its files are no documents) or following
    symlinked folders; kind is "file", "unsupported", "outside" (a symlink
    leading out of the folder), "dirlink" (a symlinked folder, not followed) or
    "special"."""
    import os

    root = folder.resolve()
    skip = {Path(x).resolve() for x in exclude}
    stack = [folder]
    found = []
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            if e.name.startswith("."):
                continue
            path = Path(e.path)
            rel = path.relative_to(folder)
            if e.is_symlink():
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):
                    found.append((path, rel, "outside"))  # broken or looping link
                    continue
                if not target.is_relative_to(root):
                    found.append((path, rel, "outside"))
                    continue
                if target.is_dir():
                    found.append((path, rel, "dirlink"))
                    continue
            if e.is_dir(follow_symlinks=False):
                if not (skip and path.resolve() in skip):
                    stack.append(path)
            elif path.is_file():
                found.append((path, rel, "file" if loader_for(path.suffix) else "unsupported"))
            else:
                found.append((path, rel, "special"))
    found.sort(key=lambda t: t[1].parts)
    return found


def iter_paths(paths: Iterable[str | Path], exclude: Iterable[str | Path] = ()) -> list[tuple[Path, str]]:
    """Expand files and folders into (file, doc_id); ids are paths relative to
    the folder given (or the bare file name), so re-indexing a file replaces it.
    In folders, hidden entries, the folders in ``exclude``, unsupported types and
    symlinks that lead out of the folder are left out (``load_batch`` reports them)."""
    out: list[tuple[Path, str]] = []
    exclude = list(exclude)
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend((f, rel.as_posix()) for f, rel, kind in walk_folder(p, exclude) if kind == "file")
        else:
            out.append((p, p.name))
    return out


def load_paths(paths: Iterable[str | Path], max_bytes: int | None = None,
               exclude: Iterable[str | Path] = ()) -> list[Document]:
    """Load every supported file under the given paths; fail before indexing anything
    (see ``load_batch`` for the variant that loads what it can and reports the rest).

    Two different files that would get the same id (``a/notes.txt`` and
    ``b/notes.txt`` given as files) are refused rather than one silently
    replacing the other; the same file given twice is loaded once.
    """
    paths = list(paths)
    seen: dict[str, Path] = {}
    pairs = []
    for path, doc_id in iter_paths(paths, exclude):
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
        raise EmptyCorpusError(empty_corpus_message(paths))
    return [load_file(path, doc_id, max_bytes) for path, doc_id in pairs]
