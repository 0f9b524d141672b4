"""PDF through pypdfium2 (PDFium, the engine in Chrome).

Chosen by measurement over pypdf and pdfplumber (``python bench/ingest.py
--compare``, docs/ingest.md): the same text quality on generated multi-page
PDFs (one- and two-column, justified, Unicode), 5-10x faster than pypdf and
~100x faster than pdfplumber.

The text is the pages' text joined by a blank line; every page with text gets
one locator (``page`` is 1-based), so any offset maps back to its page.
"""

from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path

from qa.ingest.base import INVISIBLE, Extracted, Loader, TextBuilder
from qa.errors import CorruptDocumentError, EncryptedDocumentError, NoTextLayerError

# PDFium marks line ends with \r\n, may emit \x02 for a hyphen it inserted at
# a line break, and \ufffe / NULs for unmapped glyphs; ligature glyphs come
# through as presentation forms (U+FB00..FB06) that no tokenizer expects.
# Zero width spaces and the like (qa.ingest.base.INVISIBLE) are dropped; a soft
# hyphen (U+00AD) is kept: in a PDF it is a glyph on the page, drawn as "-".
_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
                            "\ufb05": "st", "\ufb06": "st", "\x02": "-", "\ufffe": "", "\x00": "", "\r": "\n"})
_CONTROL = re.compile(r"[\x01\x03-\x08\x0b\x0e-\x1f\x7f]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
# PDFium is not thread-safe; the web app may load two uploads at once.
_PDFIUM_LOCK = threading.Lock()


def clean_page_text(text: str) -> str:
    text = INVISIBLE.sub("", text).replace("\r\n", "\n").translate(_LIGATURES)
    text = _CONTROL.sub("", text).replace("\x0c", "\n")
    return _TRAILING_SPACE.sub("\n", text).strip()


def clean_page_text_map(raw: str) -> tuple[str, list[int], list[int]]:
    """``clean_page_text(raw)`` with, for every character of the result, the index
    in ``raw`` it came from (PDFium's character index when ``raw`` is the page's
    whole text), and the positions in the result of hyphens PDFium marked as
    joining a word broken across lines (``\x02``).

    The same cleaning, step for step, so offsets into stored PDF text can be
    turned back into character boxes on the page (``qa.pages``)."""
    out: list[str] = []
    src: list[int] = []
    soft: list[int] = []
    invisible = {m.start() for m in INVISIBLE.finditer(raw)}
    i, n = 0, len(raw)
    while i < n:
        ch = raw[i]
        if i in invisible:
            i += 1
            continue
        if ch == "\r" and i + 1 < n and raw[i + 1] == "\n":
            out.append("\n")
            src.append(i)
            i += 2
            continue
        if ch == "\x02":
            soft.append(len(out))
        rep = ch.translate(_LIGATURES)
        if len(rep) == 1 and _CONTROL.match(rep):
            rep = ""
        elif rep == "\x0c":
            rep = "\n"
        for c in rep:
            out.append(c)
            src.append(i)
        i += 1
    # Spaces and tabs before a line end go (as _TRAILING_SPACE does).
    keep = [True] * len(out)
    j = len(out) - 1
    while j >= 0:
        if out[j] == "\n":
            k = j - 1
            while k >= 0 and out[k] in " \t":
                keep[k] = False
                k -= 1
            j = k
        else:
            j -= 1
    out2, src2, pos = [], [], {}
    for idx, (c, s, ok) in enumerate(zip(out, src, keep)):
        if ok:
            pos[idx] = len(out2)
            out2.append(c)
            src2.append(s)
    soft = [pos[p] for p in soft if p in pos]
    # strip()
    a, b = 0, len(out2)
    while a < b and out2[a].isspace():
        a += 1
    while b > a and out2[b - 1].isspace():
        b -= 1
    return "".join(out2[a:b]), src2[a:b], [p - a for p in soft if a <= p < b]


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
            soft: list[int] = []  # offsets (in the document text) of hyphens joining a line-broken word
            for i in range(n_pages):
                try:
                    page = doc[i]
                    tp = page.get_textpage()
                    text, _, page_soft = clean_page_text_map(tp.get_text_bounded())
                    tp.close()
                    page.close()
                except pdfium.PdfiumError as e:
                    raise CorruptDocumentError(
                        f"{path}: page {i + 1} of the PDF cannot be read ({e}); the file may be corrupt or truncated"
                    ) from e
                if text:
                    base = out.length + (len(out.sep) if out.length else 0)
                    soft.extend(base + p for p in page_soft)
                    out.add(text, page=i + 1)
                else:
                    empty.append(i + 1)
            text, locators = out.build()
            if not text:
                raise NoTextLayerError(
                    f"{path}: the PDF has no text layer ({n_pages} page{'s' * (n_pages > 1)} of images only, "
                    "probably a scan); OCR is out of scope: run it through OCR (e.g. ocrmypdf) and index the result")
            meta = {"pages": str(n_pages), "sha256": hashlib.sha256(raw).hexdigest()}
            if soft:  # for the display reflow only (qa.reflow); the text keeps them
                meta["soft_hyphens"] = ",".join(map(str, soft))
            if empty:
                meta["pages_without_text"] = ", ".join(map(str, empty))
            try:
                title = _clean_title(doc.get_metadata_dict().get("Title") or "")
            except Exception:  # noqa: BLE001 - a broken info dictionary is no reason to lose the text
                title = None
            return Extracted(text=text, title=title, meta=meta, locators=locators)
        finally:
            doc.close()
