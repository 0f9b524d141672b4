"""Plain text and Markdown: the file decoded as UTF-8 and nothing else.

No stripping, no newline translation, the byte order mark kept: an offset in
an answer is an offset in the file as the user sees it in an editor. Markdown
headings (ATX ``#`` and setext underlines, outside fenced code) become section
locators.
"""

from __future__ import annotations

import re
from pathlib import Path

from qa.errors import DocumentEncodingError
from qa.ingest.base import Extracted, Loader, detect_binary
from qa.ingest.metadata import parse_metadata
from qa.types import Locator


def decode_utf8(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DocumentEncodingError(
            f"{path}: not valid UTF-8 (byte {e.start}); save it as UTF-8 and index it again"
        ) from e


def _title(text: str, path: Path) -> tuple[str, dict[str, str]]:
    return parse_metadata(text, fallback_title=path.stem.replace("_", " "))


class TextLoader(Loader):
    suffixes = (".txt",)
    name = "text"

    def sniff(self, raw: bytes) -> bool:
        return detect_binary(raw) is None

    def extract(self, raw: bytes, path: Path) -> Extracted:
        text = decode_utf8(raw, path)
        title, meta = _title(text, path)
        return Extracted(text=text, title=title, meta=meta)


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_INLINE = re.compile(r"[*_`]+|\[([^\]]*)\]\([^)]*\)")


def _clean_heading(s: str) -> str:
    return _INLINE.sub(lambda m: m.group(1) or "", s).strip()


def markdown_sections(text: str) -> tuple[Locator, ...]:
    """Section locators of a Markdown text: each heading's range runs from the
    heading line to the next heading (any level); text before the first heading
    has none."""
    starts: list[tuple[int, str]] = []
    fence: str | None = None
    pos = 0
    prev: tuple[int, str] | None = None  # (offset, line) of the previous non-blank paragraph line
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        m = _FENCE.match(body)
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
        elif m:
            fence = m.group(1)
            prev = None
        elif (a := _ATX.match(body)) and (a.group(2) or "").strip():
            starts.append((pos, _clean_heading(a.group(2))))
            prev = None
        elif prev is not None and _SETEXT.match(body) and prev[1].strip() and not prev[1].startswith(("    ", "\t")):
            starts.append((prev[0], _clean_heading(prev[1])))
            prev = None
        else:
            prev = (pos, body) if body.strip() else None
        pos += len(line)
    locs = []
    for i, (start, title) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        if end > start and title:
            locs.append(Locator(start, end, section=title))
    return tuple(locs)


class MarkdownLoader(TextLoader):
    suffixes = (".md", ".markdown")
    name = "markdown"

    def extract(self, raw: bytes, path: Path) -> Extracted:
        text = decode_utf8(raw, path)
        title, meta = _title(text, path)
        return Extracted(text=text, title=title, meta=meta, locators=markdown_sections(text))
