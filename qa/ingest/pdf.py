"""PDF through pypdfium2 (PDFium, the engine in Chrome).

Chosen by measurement over pypdf and pdfplumber (``python bench/ingest.py
--compare``, docs/ingest.md): the same text quality on generated multi-page
PDFs (one- and two-column, justified, Unicode), 5-10x faster than pypdf and
~100x faster than pdfplumber.

The text is the pages' text joined by a blank line; every page with text gets
one locator (``page`` is 1-based), so any offset maps back to its page.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from qa.ingest.base import Extracted, Loader, TextBuilder
from qa.errors import CorruptDocumentError, EncryptedDocumentError, NoTextLayerError

# PDFium marks line ends with \r\n, may emit \x02 for a hyphen it inserted at
# a line break, and \ufffe / NULs for unmapped glyphs; ligature glyphs come
# through as presentation forms (U+FB00..FB06) that no tokenizer expects.
_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
                            "\ufb05": "st", "\ufb06": "st", "\x02": "-", "\ufffe": "", "\x00": "", "\r": "\n"})
_CONTROL = re.compile(r"[\x01\x03-\x08\x0b\x0e-\x1f\x7f]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
# PDFium is not thread-safe; the web app may load two uploads at once.
_PDFIUM_LOCK = threading.Lock()


def clean_page_text(text: str) -> str:
    text = text.replace("\r\n", "\n").translate(_LIGATURES)
    text = _CONTROL.sub("", text).replace("\x0c", "\n")
    return _TRAILING_SPACE.sub("\n", text).strip()


def _clean_title(title: str) -> str | None:
    """The info dictionary's title, unless it is a word processor's placeholder."""
    title = re.sub(r"^Microsoft (Word|PowerPoint) - ", "", " ".join(title.split()))
    if title.lower() in ("", "untitled", "untitled document", "title") or re.fullmatch(r"[\w.-]+\.(docx?|pdf)", title):
        return None
    return title


class PdfLoader(Loader):
    suffixes = (".pdf",)
    name = "PDF"

    def sniff(self, raw: bytes) -> bool:
        return b"%PDF-" in raw[:1024]

    def extract(self, raw: bytes, path: Path) -> Extracted:
        with _PDFIUM_LOCK:
            return self._extract(raw, path)

    def _extract(self, raw: bytes, path: Path) -> Extracted:
        import pypdfium2 as pdfium

        try:
            doc = pdfium.PdfDocument(raw)
        except pdfium.PdfiumError as e:
            msg = str(e)
            if "password" in msg.lower():
                raise EncryptedDocumentError(
                    f"{path}: the PDF is encrypted (password-protected); save a copy without the password "
                    "(e.g. print it to PDF) and index that") from e
            raise CorruptDocumentError(f"{path}: not a readable PDF ({msg}); the file may be corrupt or truncated") from e
        try:
            n_pages = len(doc)
            if n_pages == 0:
                raise CorruptDocumentError(f"{path}: the PDF has no pages; the file may be corrupt or truncated")
            out = TextBuilder("\n\n")
            empty: list[int] = []
            for i in range(n_pages):
                try:
                    page = doc[i]
                    tp = page.get_textpage()
                    text = clean_page_text(tp.get_text_bounded())
                    tp.close()
                    page.close()
                except pdfium.PdfiumError as e:
                    raise CorruptDocumentError(
                        f"{path}: page {i + 1} of the PDF cannot be read ({e}); the file may be corrupt or truncated"
                    ) from e
                if text:
                    out.add(text, page=i + 1)
                else:
                    empty.append(i + 1)
            text, locators = out.build()
            if not text:
                raise NoTextLayerError(
                    f"{path}: the PDF has no text layer ({n_pages} page{'s' * (n_pages > 1)} of images only, "
                    "probably a scan); OCR is out of scope: run it through OCR (e.g. ocrmypdf) and index the result")
            meta = {"pages": str(n_pages)}
            if empty:
                meta["pages_without_text"] = ", ".join(map(str, empty))
            try:
                title = _clean_title(doc.get_metadata_dict().get("Title") or "")
            except Exception:  # noqa: BLE001 - a broken info dictionary is no reason to lose the text
                title = None
            return Extracted(text=text, title=title, meta=meta, locators=locators)
        finally:
            doc.close()
