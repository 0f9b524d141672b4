"""Word (.docx) through python-docx: paragraphs, headings and tables in document order.

Each paragraph is one paragraph of the text and each table row one line
(cells joined by `` | ``, a merged cell once), blocks joined by a blank line.
Paragraphs styled Title or Heading N open a section locator.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from qa.ingest.base import Extracted, Loader, TextBuilder
from qa.errors import CorruptDocumentError, FormatMismatchError

_HEADING_STYLE = re.compile(r"^(heading\s*\d|title)$", re.I)


class _HeadingStyles:
    """Which paragraph style ids are a Title or Heading N, or based on one;
    each id resolved once per file (python-docx's own per-paragraph style
    lookup scans every style and took two thirds of the extraction time)."""

    def __init__(self, d) -> None:
        self._styles = d.part.styles.element  # CT_Styles
        self._known: dict[str, bool] = {}

    def __contains__(self, style_id: str | None) -> bool:
        if style_id is None:
            return False
        if style_id not in self._known:
            self._known[style_id] = self._resolve(style_id)
        return self._known[style_id]

    def _resolve(self, style_id: str) -> bool:
        seen = set()
        while style_id and style_id not in seen and len(seen) < 20:
            seen.add(style_id)
            try:
                el = self._styles.get_by_id(style_id)
            except Exception:  # noqa: BLE001 - a broken style definition is not a heading
                return False
            if el is None:
                return False
            if _HEADING_STYLE.match(el.name_val or ""):
                return True
            style_id = el.basedOn_val
        return False


def _cell_text(cell) -> str:
    return " ".join(p.text.strip() for p in cell.paragraphs if p.text.strip())


class DocxLoader(Loader):
    suffixes = (".docx",)
    name = "Word"

    def sniff(self, raw: bytes) -> bool:
        return raw.startswith(b"PK\x03\x04")

    def extract(self, raw: bytes, path: Path) -> Extracted:
        import docx
        from docx.opc.exceptions import PackageNotFoundError

        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as z:
                names = set(z.namelist())
        except (zipfile.BadZipFile, EOFError, ValueError) as e:
            raise CorruptDocumentError(
                f"{path}: not a readable .docx ({e}); the file may be corrupt or truncated") from e
        if "word/document.xml" not in names:
            kind = ("an Excel workbook" if "xl/workbook.xml" in names else
                    "a PowerPoint deck" if "ppt/presentation.xml" in names else "a ZIP archive, not a Word document")
            raise FormatMismatchError(f"{path}: the extension says .docx but the file is {kind}")
        try:
            d = docx.Document(io.BytesIO(raw))
        except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as e:
            raise CorruptDocumentError(
                f"{path}: not a readable .docx ({e}); the file may be corrupt or truncated") from e
        headings = _HeadingStyles(d)
        out = TextBuilder("\n\n")
        section: str | None = None
        first_heading: str | None = None
        for block in d.iter_inner_content():
            if hasattr(block, "rows"):  # a table
                for row in block.rows:
                    cells, seen = [], []
                    for cell in row.cells:
                        if any(cell._tc is tc for tc in seen):  # a merged cell repeats
                            continue
                        seen.append(cell._tc)
                        t = _cell_text(cell)
                        if t:
                            cells.append(t)
                    if cells:
                        out.add(" | ".join(cells), section=section)
                continue
            text = block.text.strip()
            if not text:
                continue
            if block._p.style in headings:
                section = " ".join(text.split())
                first_heading = first_heading or section
            out.add(text, section=section)
        text, locators = out.build()
        title = (d.core_properties.title or "").strip() or first_heading
        return Extracted(text=text, title=title, meta={}, locators=locators)
