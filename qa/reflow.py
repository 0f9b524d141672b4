"""Reading text of PDFs: hard-wrapped lines joined, line-end hyphenation undone.

For display only. The stored text (what offsets point into, what ``qa show``
prints) never changes: ``reflow`` returns the display text together with, for
each of its characters, the offset in the original it came from, so a span of
the original (the answer) is found in the display text by ``Reflowed.span``.

PDFium ends every visual line with a line break, so a passage of a PDF reads
"The committee reviewed / routine matters of procedure". A line break is
joined into a space unless it looks like the end of a paragraph, a heading or
a list item. A word broken across lines comes out of PDFium already joined
with a hyphen it marks as inserted (``\\x02``; the PDF loader records their
offsets in ``meta["soft_hyphens"]``); for display the hyphen is dropped when
the joined word is a word of the document ("exam-ple" -> "example") and kept
when the hyphenated form is ("well-known").
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from typing import Iterable

from qa.types import Document

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_LIST_ITEM = re.compile(r"\s*([-•*–·▪◦]|\d{1,3}[.)]|[a-z][.)])\s")
_PARAGRAPH_END = ".!?:;\"”’)]"
#: A line this much shorter than the block's longest line ends a paragraph (when it ends a sentence).
SHORT_LINE = 0.8
#: A line shorter than this share of the longest, without final punctuation, is a heading.
HEADING_LINE = 0.5


@dataclass(frozen=True)
class Reflowed:
    """Display text and, per display character, its offset in the original."""

    text: str
    source: tuple[int, ...]  # len(text) entries, increasing
    source_len: int

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The display range of the original range [start, end)."""
        return bisect_left(self.source, start), bisect_left(self.source, end)

    @classmethod
    def identity(cls, text: str) -> "Reflowed":
        return cls(text, tuple(range(len(text))), len(text))


def soft_hyphens(doc: Document | None) -> list[int]:
    """The recorded offsets of line-break hyphens in ``doc`` (PDF loader)."""
    if doc is None:
        return []
    raw = str(doc.meta.get("soft_hyphens", "") or "")
    return [int(x) for x in raw.split(",") if x.strip().isdigit()]


def is_pdf(doc: Document | None) -> bool:
    return doc is not None and str(doc.meta.get("format", "")).lower() == "pdf"


def _drop_hyphen(text: str, p: int, vocabulary: set[str]) -> bool:
    """Whether the hyphen at ``text[p]`` (joining a word broken at a line end) goes."""
    left = re.search(r"[^\W\d_]+$", text[:p])
    right = _WORD.match(text, p + 1)
    if not left or not right:
        return False
    joined = (left.group() + right.group()).lower()
    hyphenated = f"{left.group()}-{right.group()}".lower()
    if joined in vocabulary:
        return True
    if hyphenated in vocabulary:
        return False
    return right.group()[:1].islower()


def _line_breaks_to_keep(lines: list[str]) -> list[bool]:
    """For each line but the last of a block: keep the break after it?"""
    longest = max((len(x.rstrip()) for x in lines), default=0)
    keep = []
    for a, b in zip(lines, lines[1:]):
        a_s = a.rstrip()
        if not a_s or not b.strip():
            keep.append(True)
        elif _LIST_ITEM.match(b):
            keep.append(True)
        elif a_s[-1] in _PARAGRAPH_END and len(a_s) < SHORT_LINE * longest:
            keep.append(True)
        elif a_s[-1] not in _PARAGRAPH_END + ",-" and len(a_s) < HEADING_LINE * longest:
            keep.append(True)
        else:
            keep.append(False)
    return keep


def reflow(text: str, hyphens: Iterable[int] = (), vocabulary: set[str] | None = None) -> Reflowed:
    """``text`` for reading: single line breaks inside a paragraph become spaces,
    blank lines stay; the hyphens at ``hyphens`` (offsets into ``text``) are
    dropped where the joined word is a word (see the module docstring); a hyphen
    left at a line end with the line break ("exam-\\nple") is treated the same way.
    ``vocabulary``: the document's lower-cased words and hyphenated words
    (``vocabulary_of``); by default, those of ``text``."""
    hyphens = list(hyphens)
    vocab = vocabulary if vocabulary is not None else vocabulary_of(text, hyphens)
    drop: set[int] = set()
    for p in hyphens:
        if 0 <= p < len(text) and text[p] == "-" and _drop_hyphen(text, p, vocab):
            drop.add(p)
    # Line breaks: decide block by block (blocks are separated by blank lines).
    join: dict[int, str] = {}  # offset of a "\n" -> what it becomes ("" or " ")
    for block in re.finditer(r"[^\n]+(?:\n[^\n]+)*", text):
        lines = block.group().split("\n")
        if len(lines) < 2:
            continue
        keep = _line_breaks_to_keep(lines)
        pos = block.start()
        for line, k in zip(lines, keep):
            pos += len(line)  # at the "\n"
            if not k:
                stripped = line.rstrip()
                if stripped.endswith("-") and len(stripped) >= 2 and stripped[-2].isalpha() \
                        and _drop_hyphen(text, pos - (len(line) - len(stripped)) - 1, vocab):
                    drop.add(pos - (len(line) - len(stripped)) - 1)
                    join[pos] = ""
                elif stripped.endswith("-"):
                    join[pos] = ""
                else:
                    join[pos] = " "
            pos += 1
    out: list[str] = []
    src: list[int] = []
    for i, ch in enumerate(text):
        if i in drop:
            continue
        if i in join:
            for c in join[i]:
                out.append(c)
                src.append(i)
            continue
        out.append(ch)
        src.append(i)
    return Reflowed("".join(out), tuple(src), len(text))


def vocabulary_of(text: str, hyphens: Iterable[int] = ()) -> set[str]:
    """Lower-cased words and hyphenated words of ``text`` (for ``reflow``); the
    line-break hyphens at ``hyphens`` split words rather than join them (so
    "exam-ple" at a line break does not vouch for itself)."""
    hs = [p for p in hyphens if 0 <= p < len(text)]
    if hs:
        chars = list(text)
        for p in hs:
            chars[p] = " "
        text = "".join(chars)
    words = {w.lower() for w in _WORD.findall(text)}
    words.update(m.group().lower() for m in re.finditer(r"[^\W\d_]+(?:-[^\W\d_]+)+", text))
    return words


def display_passage(text: str, start: int, doc: Document | None) -> Reflowed:
    """How the passage ``text`` (starting at document offset ``start``) is shown:
    reflowed for a PDF, as stored otherwise."""
    if not is_pdf(doc):
        return Reflowed.identity(text)
    hyphens = [p - start for p in soft_hyphens(doc) if start <= p < start + len(text)]
    return reflow(text, hyphens, _vocabulary(doc))


_VOCAB_CACHE: dict[tuple[str, int, int], set[str]] = {}


def _vocabulary(doc: Document) -> set[str]:
    key = (doc.id, len(doc.text), hash(doc.text))
    v = _VOCAB_CACHE.get(key)
    if v is None:
        if len(_VOCAB_CACHE) > 64:
            _VOCAB_CACHE.clear()
        v = _VOCAB_CACHE[key] = vocabulary_of(doc.text, soft_hyphens(doc))
    return v
