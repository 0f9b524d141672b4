"""Word (.docx) through python-docx: paragraphs, headings and tables in document order.

Each paragraph is one paragraph of the text and each table row one line
(cells joined by `` | ``, a merged cell once), blocks joined by a blank line.
Paragraphs styled Title or Heading N open a section locator.

A paragraph's text is every ``w:t`` in it, in order, as Word shows it with
tracked changes accepted: python-docx's ``Paragraph.text`` reads only the runs
and hyperlinks directly under the paragraph, so it loses inserted text
(``w:ins``), fields (``w:fldSimple``), smart tags and content controls
(``w:sdt``); its ``iter_inner_content`` skips block content controls (cover
pages, forms) and a cell's ``paragraphs`` its nested tables. Deleted and
moved-away text stays out; a text box's paragraphs follow the paragraph that
anchors it (once: the VML fallback copy of a shape is skipped). Zero width
spaces, word joiners and soft hyphens are dropped (``drop_invisible``).

Footnotes, then endnotes, follow the body, in the order their references
appear in it (the order Word numbers them in), each note its own paragraph(s)
with a "Footnote N" / "Endnote N" section locator: a passage cited from one
reads as a note and says which. A note whose reference was deleted (tracked)
stays out. Page headers and footers are not read: they are the same few words
repeated on every page (a company name, "Confidential", page numbers) that
would crowd real passages out of retrieval (docs/ingest.md).
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Iterator

from qa.ingest.base import Extracted, Loader, TextBuilder, drop_invisible
from qa.errors import CorruptDocumentError, FileTooLargeError, FormatMismatchError

#: The most XML a .docx may unpack to. python-docx parses its parts whole
#: with lxml: 51 MB of document.xml (from a 185 KB file) took 690 MB of memory
#: and 10 s, so a file under the 10 MB upload limit could unpack to gigabytes
#: and take the server down. A 1,000-page text document holds ~20-50 MB.
MAX_UNPACKED_XML_BYTES = 256 * 1024 * 1024
#: The most all parts together may unpack to (pictures are held in memory as bytes).
MAX_UNPACKED_BYTES = 2 * 1024 * 1024 * 1024

_HEADING_STYLE = re.compile(r"^(heading\s*\d|title)$", re.I)
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
#: Containers whose blocks are read as if they stood in their place (content controls, custom XML, revisions).
_BLOCK_WRAPPERS = {_W + "sdt", _W + "sdtContent", _W + "customXml", _W + "ins", _W + "moveTo"}
#: Inside a paragraph, subtrees that are not its visible text (or are read elsewhere: text boxes).
_SKIP_IN_PARAGRAPH = {_W + "del", _W + "moveFrom", _W + "txbxContent", _MC_FALLBACK, _W + "pPr", _W + "rPr",
                      _W + "sdtPr", _W + "instrText", _W + "footnoteReference", _W + "endnoteReference"}


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


def _blocks(container) -> Iterator:
    """The paragraphs (``w:p``) and tables (``w:tbl``) of a body, cell or text
    box in document order, including those inside content controls."""
    for el in container:
        if el.tag in (_W + "p", _W + "tbl"):
            yield el
        elif el.tag in _BLOCK_WRAPPERS:
            yield from _blocks(el)


def _paragraph_text(p) -> tuple[str, list]:
    """The text of paragraph ``p`` as Word shows it (tracked changes accepted),
    and the text boxes anchored in it (``w:txbxContent`` elements)."""
    parts: list[str] = []
    boxes: list = []

    def visit(el) -> None:
        for child in el:
            tag = child.tag
            if not isinstance(tag, str) or tag in _SKIP_IN_PARAGRAPH:
                if tag == _W + "txbxContent":
                    boxes.append(child)
                continue
            if tag == _W + "t":
                parts.append(child.text or "")
            elif tag in (_W + "tab", _W + "ptab"):
                parts.append("\t")
            elif tag in (_W + "br", _W + "cr"):
                # A line, page or column break: a page break inside a paragraph
                # (Ctrl+Enter) glued the words either side ("one.Chapter").
                parts.append("\n")
            elif tag == _W + "noBreakHyphen":
                parts.append("-")
            else:
                visit(child)

    visit(p)
    return drop_invisible("".join(parts)), boxes


def _in_removed_text(el) -> bool:
    """True when ``el`` sits in deleted or moved-away text, or in the VML
    fallback copy of a shape (read once, from its DrawingML original)."""
    return any(a.tag in (_W + "del", _W + "moveFrom", _MC_FALLBACK) for a in el.iterancestors())


def _notes(d, body, kind: str) -> list:
    """The ``w:footnote`` / ``w:endnote`` elements (``kind``) the body refers to,
    in the order of their first visible reference; the separators Word keeps
    in the same part, and notes whose reference was deleted, left out."""
    from docx.opc.constants import RELATIONSHIP_TYPE as RT
    from docx.oxml.parser import parse_xml

    reltype = RT.FOOTNOTES if kind == "footnote" else RT.ENDNOTES
    part = next((r.target_part for r in d.part.rels.values() if r.reltype == reltype and not r.is_external), None)
    if part is None:
        return []
    root = parse_xml(part.blob)
    by_id = {n.get(_W + "id"): n for n in root.iter(_W + kind) if n.get(_W + "type") in (None, "normal")}
    order: list[str] = []
    for ref in body.iter(_W + kind + "Reference"):
        note_id = ref.get(_W + "id")
        if note_id in by_id and note_id not in order and not _in_removed_text(ref):
            order.append(note_id)
    return [by_id[i] for i in order]


def _rows(tbl, parent) -> Iterator[list[str]]:
    """Each row of table ``tbl`` as its cells' texts (a merged cell once)."""
    from docx.table import Table

    for row in Table(tbl, parent).rows:
        cells, seen = [], []
        for cell in row.cells:
            if any(cell._tc is tc for tc in seen):  # a merged cell repeats
                continue
            seen.append(cell._tc)
            t = _cell_text(cell._tc, parent)
            if t:
                cells.append(t)
        yield cells


def _cell_text(tc, parent) -> str:
    """A cell's paragraphs (and nested tables' rows) on one line."""
    texts: list[str] = []
    for el in _blocks(tc):
        if el.tag == _W + "tbl":
            texts.extend(" | ".join(cells) for cells in _rows(el, parent) if cells)
            continue
        text, boxes = _paragraph_text(el)
        texts.append(text.strip())
        texts.extend(_cell_text(box, parent) for box in boxes)
    return " ".join(t for t in texts if t)


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
                infos = z.infolist()
                names = {i.filename for i in infos}
        except (zipfile.BadZipFile, EOFError, ValueError) as e:
            raise CorruptDocumentError(
                f"{path}: not a readable .docx ({e}); the file may be corrupt or truncated") from e
        if "word/document.xml" not in names:
            kind = ("an Excel workbook" if "xl/workbook.xml" in names else
                    "a PowerPoint deck" if "ppt/presentation.xml" in names else "a ZIP archive, not a Word document")
            raise FormatMismatchError(f"{path}: the extension says .docx but the file is {kind}")
        # The sizes the ZIP records: zipfile never unpacks more than that (a
        # part that claims less fails its CRC check), so this bounds the work.
        xml = sum(i.file_size for i in infos if i.filename.lower().endswith((".xml", ".rels")))
        total = sum(i.file_size for i in infos)
        for size, limit, what in ((xml, MAX_UNPACKED_XML_BYTES, " of XML"), (total, MAX_UNPACKED_BYTES, "")):
            if size > limit:
                raise FileTooLargeError(
                    f"{path}: unpacks to {size:,} bytes{what}, over the {limit:,}-byte limit; a document's "
                    "text is far smaller, so the file is probably malformed (a 'ZIP bomb')")
        try:
            d = docx.Document(io.BytesIO(raw))
        except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as e:
            raise CorruptDocumentError(
                f"{path}: not a readable .docx ({e}); the file may be corrupt or truncated") from e
        headings = _HeadingStyles(d)
        out = TextBuilder("\n\n")
        section: str | None = None
        first_heading: str | None = None

        def add(container) -> None:
            nonlocal section, first_heading
            for el in _blocks(container):
                if el.tag == _W + "tbl":
                    for cells in _rows(el, d._body):
                        if cells:
                            out.add(" | ".join(cells), section=section)
                    continue
                raw, boxes = _paragraph_text(el)
                text = raw.strip()
                if text:
                    if el.style in headings:
                        section = " ".join(text.split())
                        first_heading = first_heading or section
                    out.add(text, section=section)
                for box in boxes:
                    add(box)

        body = d.element.body
        add(body)
        title = (d.core_properties.title or "").strip() or first_heading
        for kind in ("footnote", "endnote"):
            for n, note in enumerate(_notes(d, body, kind), 1):
                section = f"{kind.capitalize()} {n}"
                add(note)
        text, locators = out.build()
        return Extracted(text=text, title=title, meta={}, locators=locators)
