"""Which loader reads which suffix: the authoritative list of supported types."""

from __future__ import annotations

from qa.ingest.base import Loader
from qa.ingest.docx import DocxLoader
from qa.ingest.html import HtmlLoader
from qa.ingest.pdf import PdfLoader
from qa.ingest.text import MarkdownLoader, TextLoader

#: One instance per format; the first two keep the historical order (.txt, .md).
LOADERS: tuple[Loader, ...] = (TextLoader(), MarkdownLoader(), PdfLoader(), HtmlLoader(), DocxLoader())

_BY_SUFFIX: dict[str, Loader] = {s: loader for loader in LOADERS for s in loader.suffixes}

#: Every suffix ``load_file`` accepts (lower case, with the dot).
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(_BY_SUFFIX)


def loader_for(suffix: str) -> Loader | None:
    """The loader for a suffix (".PDF" and ".pdf" alike), or None."""
    return _BY_SUFFIX.get(suffix.lower())


def suggest_suffix(raw: bytes) -> str | None:
    """The supported suffix whose loader recognises these bytes by their magic
    (PDF, DOCX), for the error message of a file whose extension lies."""
    for loader in (l for l in LOADERS if isinstance(l, (PdfLoader, DocxLoader))):
        if loader.sniff(raw):
            return loader.suffixes[0]
    return None
