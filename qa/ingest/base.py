"""The loader interface: one class per file format, each turning raw bytes into
text plus a map from character ranges back to pages or sections.

Loaders never rewrite the text after extraction: the text they return is what
the index stores, what every offset points into, and what ``qa show`` prints.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from qa.types import Locator


@dataclass(frozen=True)
class Extracted:
    """What a loader found in one file."""

    text: str
    title: str | None = None
    meta: dict[str, str] = field(default_factory=dict)
    locators: tuple[Locator, ...] = ()


class Loader(ABC):
    """One file format. ``extract`` raises a ``qa.errors.DocumentError`` subclass
    saying what is wrong with the file and what to do about it."""

    #: Lower-case suffixes with the dot, e.g. (".pdf",).
    suffixes: ClassVar[tuple[str, ...]]
    #: The format's name in messages ("PDF", "Word").
    name: ClassVar[str] = ""

    @abstractmethod
    def extract(self, raw: bytes, path: Path) -> Extracted: ...

    def sniff(self, raw: bytes) -> bool:
        """True when the bytes look like this format (to catch an extension that lies)."""
        return True


class TextBuilder:
    """Assembles extracted blocks into one text plus locators that point into it.

    Blocks are joined by ``sep``; consecutive blocks with the same page and
    section share one locator, which also covers the separators between them.
    Blocks with neither a page nor a section get no locator (a gap).
    """

    def __init__(self, sep: str = "\n\n") -> None:
        self.sep = sep
        self._parts: list[str] = []
        self._pos = 0
        self._locs: list[list] = []  # [start, end, page, section]

    def add(self, block: str, page: int | None = None, section: str | None = None) -> None:
        if not block:
            return
        if self._parts:
            self._parts.append(self.sep)
            self._pos += len(self.sep)
        start = self._pos
        self._parts.append(block)
        self._pos += len(block)
        if page is None and section is None:
            return
        last = self._locs[-1] if self._locs else None
        if last is not None and last[2] == page and last[3] == section:
            last[1] = self._pos
        else:
            self._locs.append([start, self._pos, page, section])

    @property
    def length(self) -> int:
        """Characters so far (the next block starts after one more separator)."""
        return self._pos

    def build(self) -> tuple[str, tuple[Locator, ...]]:
        return "".join(self._parts), tuple(Locator(s, e, page=p, section=sec) for s, e, p, sec in self._locs)


#: Invisible format characters that only split words: a zero width space
#: (U+200B), a word joiner (U+2060), a BOM / zero width no-break space inside
#: text (U+FEFF), invisible math operators (U+2061..2064); and a zero width
#: non-joiner or joiner (U+200C, U+200D) between characters of scripts where it
#: changes nothing visible (before U+0590: Latin, Greek, Cyrillic, ...). Kept,
#: a word holding one is two words to BM25 ("Donau\u200bdampf": "donau",
#: "dampf") and matches no question typed without it, and the answer carries
#: it. A (non-)joiner next to Hebrew, Arabic, Indic, emoji, ... is kept: there
#: it changes how the text is drawn (Persian "می‌خواهم", an emoji sequence).
INVISIBLE = re.compile("[\u200b\u2060-\u2064\ufeff]"
                       "|(?<![\u0590-\U0010ffff])[\u200c\u200d](?![\u0590-\U0010ffff])")


def drop_invisible(text: str) -> str:
    """``text`` without ``INVISIBLE`` characters and soft hyphens (U+00AD, shown
    only where a line breaks), for formats whose text is extracted (HTML,
    Word): there is no file offset to keep. Plain text and Markdown keep
    them, byte-exact (docs/ingest.md)."""
    return INVISIBLE.sub("", text).replace("\xad", "")


#: Magic bytes of formats a file may really be, whatever its extension says.
MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF"),
    (b"PK\x03\x04", "a ZIP archive (e.g. .docx, .xlsx, .zip)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an OLE2 file (an old .doc/.xls, or a password-protected Office file)"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x7fELF", "an executable"),
    (b"{\\rtf", "an RTF document"),
)


def detect_binary(raw: bytes) -> str | None:
    """What the magic bytes at the start say the file is ("a PDF", ...), or
    None when they name no known binary format."""
    head = raw[:8]
    for magic, what in MAGIC:
        if head.startswith(magic):
            return what
    return None
