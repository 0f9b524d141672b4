"""Plain text and Markdown: the file decoded as UTF-8 and nothing else.

No stripping, no newline translation, the byte order mark kept: an offset in
an answer is an offset in the file as the user sees it in an editor. Markdown
headings (ATX ``#`` and setext underlines, outside fenced code) become section
locators. Inline HTML in Markdown (tags, comments, script and style elements,
outside code) is reduced to its text by blanking the markup with spaces of
the same length: markup is never indexed or answered as words, and every
offset still points at the same character of the file.
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
        # A NUL byte means binary data or UTF-16 text: either "decodes as UTF-8"
        # when every byte is below 0x80, and would be indexed as control characters.
        return detect_binary(raw) is None and b"\x00" not in raw

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


_FRONT_MATTER = re.compile(r"\ufeff?---[ \t]*\r?\n(?:.*?\r?\n)??(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)

_YAML_KEY = re.compile(r"[\w.-]+[ \t]*:(?:[ \t]|$)")


def front_matter_end(text: str) -> int:
    """Where YAML front matter (``---`` ... ``---`` opening the file, as Jekyll,
    Hugo and Obsidian write it) ends, or 0 when there is none: its closing
    ``---`` is not a setext underline and its lines are not the document's."""
    m = _FRONT_MATTER.match(text)
    if not m:
        return 0
    first = next((ln for ln in m.group().splitlines()[1:-1] if ln.strip()), "")
    return m.end() if not first or _YAML_KEY.match(first) else 0  # else a thematic break, then text


def _without_code(text: str) -> str:
    """``text`` with front matter and fenced code blocks blanked (newlines kept),
    for finding the title: a ``# comment`` in a shell snippet is not a heading."""
    out: list[str] = []
    fence: str | None = None
    skip = front_matter_end(text)
    pos = 0
    for line in text.splitlines(keepends=True):
        m = _FENCE.match(line)
        if pos < skip or fence is not None or m:
            out.append("\n" if line.endswith(("\n", "\r")) else "")
            if fence is not None and m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            elif fence is None and m and pos >= skip:
                fence = m.group(1)
        else:
            out.append(line)
        pos += len(line)
    return "".join(out)


def markdown_sections(text: str) -> tuple[Locator, ...]:
    """Section locators of a Markdown text: each heading's range runs from the
    heading line to the next heading (any level); text before the first heading
    has none."""
    starts: list[tuple[int, str]] = []
    fence: str | None = None
    pos = 0
    skip = front_matter_end(text)
    prev: tuple[int, str] | None = None  # (offset, line) of the previous non-blank paragraph line
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        if pos < skip:
            pos += len(line)
            continue
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


_HTML = re.compile(
    r"<!--.*?(?:-->|\Z)"  # a comment (to the end of the text when never closed)
    r"|<(script|style)\b[^>]*>.*?(?:</\1\s*>|\Z)"  # elements whose content is not text
    r"|</?[A-Za-z][A-Za-z0-9-]*(?:\s+[^<>]*?)?/?>",  # any other tag, its text kept
    re.DOTALL | re.IGNORECASE)
_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)  # an inline code span


def _blank(m: re.Match) -> str:
    return re.sub(r"[^\n]", " ", m.group(0))


def blank_inline_html(text: str) -> str:
    """``text`` with HTML markup outside fenced code blocks and code spans
    replaced by spaces (newlines kept): same length, same offsets."""
    out: list[str] = []
    fence: str | None = None
    para: list[str] = []

    def flush() -> None:
        if para:
            chunk = "".join(para)
            pieces, pos = [], 0
            for m in _CODE.finditer(chunk):  # code spans are shown as written
                pieces.append(_HTML.sub(_blank, chunk[pos:m.start()]))
                pieces.append(m.group(0))
                pos = m.end()
            pieces.append(_HTML.sub(_blank, chunk[pos:]))
            out.append("".join(pieces))
            para.clear()

    for line in text.splitlines(keepends=True):
        m = _FENCE.match(line)
        if fence is not None:
            out.append(line)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
        elif m:
            flush()
            fence = m.group(1)
            out.append(line)
        elif line.startswith(("    ", "\t")) and not para:
            out.append(line)  # an indented code block (not a paragraph's continuation)
        elif not line.strip():
            para.append(line)
            flush()  # a blank line ends the paragraph (code spans do not cross it)
        else:
            para.append(line)
    flush()
    blanked = "".join(out)
    assert len(blanked) == len(text)
    return blanked


class MarkdownLoader(TextLoader):
    suffixes = (".md", ".markdown")
    name = "markdown"

    def extract(self, raw: bytes, path: Path) -> Extracted:
        text = blank_inline_html(decode_utf8(raw, path))
        title, meta = _title(_without_code(text), path)
        return Extracted(text=text, title=title, meta=meta, locators=markdown_sections(text))
