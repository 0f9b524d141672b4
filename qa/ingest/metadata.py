"""A document's title and date from its first lines: used by every text loader and by ``loading``, so
it sits below both (``registry`` → ``text`` must not import ``loading``)."""

from __future__ import annotations

import re

from qa._files import sha256_text  # re-exported: ingest names documents by it

# The seed's first line: " date 2023-07-13 Title: ...", then "Subtitle: ...".
_HEADER = re.compile(r"^\s*date\s+(?P<date>\d{4}-\d{2}-\d{2})\s+Title:\s*(?P<title>.+?)\s*$")
_SUBTITLE = re.compile(r"^\s*Subtitle:\s*(?P<subtitle>.+?)\s*$", re.MULTILINE)
_MD_TITLE = re.compile(r"^#\s+(?P<title>.+?)\s*$", re.MULTILINE)


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
