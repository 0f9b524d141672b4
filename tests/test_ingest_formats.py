"""Every format and every bad-file case, on real files the tests make.

PDFs are written with fpdf2 (known text per page), encrypted with pypdf, Word
files with python-docx; HTML pages carry navigation, a sidebar and a footer.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

import pytest

# Hypothesis keeps a cache (and, unless database=None, examples) in ./.hypothesis: not in the work tree.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "qa-hypothesis"))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from qa import errors  # noqa: E402
from qa.ingest import (  # noqa: E402
    SUPPORTED_SUFFIXES,
    CorruptDocumentError,
    EncryptedDocumentError,
    FileTooLargeError,
    FormatMismatchError,
    NoTextLayerError,
    document_from_bytes,
    iter_paths,
    load_batch,
    load_file,
    load_paths,
    sha256_text,
)
from qa.ingest.base import TextBuilder  # noqa: E402
from qa.ingest.text import markdown_sections  # noqa: E402
from qa.types import Document  # noqa: E402

# --- file makers ------------------------------------------------------------------------------


def page_text(n: int) -> str:
    return (f"Page {n} marker: the harbour master number {n} signed treaty {n * 7} on a windy day. "
            + "Ships unloaded grain and timber while the council debated the budget. " * 6)


def make_pdf(pages: list[str], title: str | None = None, blank: set[int] = frozenset()) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_font("Helvetica", size=11)
    for i, text in enumerate(pages, 1):
        pdf.add_page()
        if i not in blank:
            pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def encrypt(raw: bytes, user_password: str) -> bytes:
    import pypdf

    w = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(raw)))
    w.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="RC4-128")
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def image_only_pdf(pages: int = 2) -> bytes:
    from fpdf import FPDF
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (400, 120), "white")
    ImageDraw.Draw(img).text((10, 40), "SCANNED TEXT THAT IS ONLY PIXELS", fill="black")
    pdf = FPDF()
    for _ in range(pages):
        pdf.add_page()
        pdf.image(img, x=10, y=10, w=150)
    return bytes(pdf.output())


ARTICLE = [
    ("Installation", ["Download the installer and run it as an administrator.",
                      "The installer asks for a licence key printed on the box."]),
    ("Configuration", ["Open the settings file and set the harbour port to 8080.",
                       "Restart the service after every change to the settings."]),
]
NAV_WORDS = ["Homepage", "Pricing plans", "Careers at Example", "Sign in"]
FOOTER = "Copyright 2026 Example Media Ltd. All rights reserved. Privacy policy"


def make_html(semantic: bool = True) -> str:
    nav = "".join(f'<li><a href="/{i}">{w}</a></li>' for i, w in enumerate(NAV_WORDS))
    body = "".join(f"<h2>{h}</h2>" + "".join(f"<p>{p}</p>" for p in ps) for h, ps in ARTICLE)
    related = "".join(f'<li><a href="/r{i}">Related story {i}</a></li>' for i in range(4))
    if semantic:
        page = (f"<header><nav><ul>{nav}</ul></nav></header><main><article><h1>The Harbour Guide</h1>"
                f"<p>A short guide for <b>new</b> users.</p>{body}</article></main>"
                f"<aside><h3>Most read</h3><ul>{related}</ul></aside><footer><p>{FOOTER}</p></footer>")
    else:
        page = (f'<div class="top-menu"><ul>{nav}</ul></div><div class="c2"><h1>The Harbour Guide</h1>'
                f"<p>A short guide for <b>new</b> users.</p>{body}</div>"
                f'<div class="x9"><ul>{related}</ul></div><div class="x10"><p>{FOOTER}</p></div>')
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Harbour Guide | Example</title>'
            f"<script>var secretTracking = 1;</script><style>p {{color: red}}</style></head>"
            f"<body>{page}</body></html>")


def make_docx() -> bytes:
    import docx

    d = docx.Document()
    d.core_properties.title = "Quarterly Report"
    d.add_paragraph("Prepared by the finance team.")
    d.add_heading("Revenue", level=1)
    d.add_paragraph("Revenue grew by twelve percent in the third quarter.")
    t = d.add_table(rows=3, cols=3)
    for r, row in enumerate([["Region", "Q2", "Q3"], ["North", "100", "112"], ["South", "80", "95"]]):
        for c, v in enumerate(row):
            t.cell(r, c).text = v
    d.add_heading("Outlook", level=2)
    d.add_paragraph("The board expects steady growth next year.")
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def check_locators(doc: Document) -> None:
    prev_end = 0
    for loc in doc.locators:
        assert 0 <= prev_end <= loc.start < loc.end <= len(doc.text), loc
        assert loc.page is not None or loc.section is not None
        assert doc.locate(loc.start) == loc and doc.locate(loc.end - 1) == loc
        prev_end = loc.end


# --- PDF --------------------------------------------------------------------------------------


def test_pdf_pages_map_to_locators(tmp_path):
    f = tmp_path / "report.pdf"
    f.write_bytes(make_pdf([page_text(n) for n in range(1, 6)], title="Harbour Annual Report"))
    doc = load_file(f)
    assert doc.title == "Harbour Annual Report"
    assert doc.meta["pages"] == "5" and doc.meta["format"] == "pdf"
    assert [loc.page for loc in doc.locators] == [1, 2, 3, 4, 5]
    check_locators(doc)
    for n in range(1, 6):
        at = doc.text.index(f"Page {n} marker")
        assert doc.locate(at).page == n
        loc = doc.locators[n - 1]
        assert f"treaty {n * 7}" in doc.text[loc.start:loc.end]
    # The answer to "what did harbour master number 3 sign?" sits on page 3.
    answer = doc.text.index("treaty 21")
    assert doc.locate(answer).page == 3
    assert doc.text[answer:answer + 9] == "treaty 21"


def test_pdf_page_without_text_is_noted(tmp_path):
    doc = document_from_bytes(make_pdf([page_text(n) for n in range(1, 5)], blank={2}), tmp_path / "gap.pdf")
    assert [loc.page for loc in doc.locators] == [1, 3, 4]
    assert doc.meta["pages_without_text"] == "2"
    assert doc.locate(doc.text.index("Page 3 marker")).page == 3
    assert doc.title == "gap"  # no title in the PDF's info: the file name


def test_encrypted_pdf(tmp_path):
    f = tmp_path / "secret.pdf"
    f.write_bytes(encrypt(make_pdf([page_text(1)]), "hunter2"))
    with pytest.raises(EncryptedDocumentError, match=r"secret\.pdf: the PDF is encrypted \(password-protected\)"):
        load_file(f)
    assert issubclass(EncryptedDocumentError, errors.DocumentUnreadableError)


def test_pdf_with_owner_password_only_is_readable(tmp_path):
    doc = document_from_bytes(encrypt(make_pdf([page_text(1), page_text(2)]), ""), tmp_path / "restricted.pdf")
    assert doc.locate(doc.text.index("Page 2 marker")).page == 2


def test_image_only_pdf_says_ocr_is_out_of_scope(tmp_path):
    f = tmp_path / "scan.pdf"
    f.write_bytes(image_only_pdf(2))
    with pytest.raises(NoTextLayerError, match=r"scan\.pdf: the PDF has no text layer.*OCR is out of scope"):
        load_file(f)
    assert issubclass(NoTextLayerError, errors.EmptyDocumentError)


@pytest.mark.parametrize("cut", [0.3, 0.7, 0.97])
def test_truncated_pdf(tmp_path, cut):
    raw = make_pdf([page_text(n) for n in range(1, 4)])
    f = tmp_path / "cut.pdf"
    f.write_bytes(raw[: int(len(raw) * cut)])
    with pytest.raises(CorruptDocumentError, match=r"cut\.pdf: .*corrupt or truncated"):
        load_file(f)


def test_corrupt_pdf(tmp_path):
    f = tmp_path / "junk.pdf"
    f.write_bytes(b"%PDF-1.7\n" + os.urandom(2000))
    with pytest.raises(CorruptDocumentError, match="junk.pdf"):
        load_file(f)


# --- HTML -------------------------------------------------------------------------------------


@pytest.mark.parametrize("semantic", [True, False])
def test_html_main_content_without_boilerplate(tmp_path, semantic):
    f = tmp_path / "guide.html"
    f.write_text(make_html(semantic), encoding="utf-8")
    doc = load_file(f)
    for w in NAV_WORDS + ["Related story", "All rights reserved", "Most read", "secretTracking", "color: red"]:
        assert w not in doc.text, w
    assert doc.text.startswith("The Harbour Guide\n\nA short guide for new users.")
    for heading, paras in ARTICLE:
        for p in paras:
            at = doc.text.index(p)
            assert doc.locate(at).section == heading
    assert doc.title == "The Harbour Guide"
    assert doc.meta["format"] == "html"
    check_locators(doc)


def test_html_tables_lists_and_encoding(tmp_path):
    html = ("<html><head><meta charset='windows-1252'></head><body><h1>Caf\xe9 prices</h1><ul><li>Tea</li>"
            "<li>Coffee, strong</li></ul><table><tr><th>Item</th><th>Price</th></tr><tr><td>Tea</td><td>2</td>"
            "</tr></table><pre>code  block\n  indented</pre></body></html>").encode("cp1252")
    doc = document_from_bytes(html, tmp_path / "menu.htm")
    assert doc.text == ("Caf\xe9 prices\n\nTea\n\nCoffee, strong\n\nItem | Price\n\nTea | 2\n\n"
                        "code  block\n  indented")
    assert doc.locators[0].section == "Caf\xe9 prices" and doc.locators[0].end == len(doc.text)


@pytest.mark.parametrize("label", ["iso-8859-1", "ISO-8859-1", "latin1", "us-ascii"])
def test_html_latin1_label_is_read_as_windows_1252(tmp_path, label):
    """Browsers (the WHATWG Encoding standard) read a page labelled Latin-1 or
    ASCII as Windows-1252; Python's latin-1 turned its curly quotes, dash and
    euro sign into C1 control characters (U+0093 ...)."""
    raw = (f'<html><head><meta http-equiv="Content-Type" content="text/html; charset={label}"></head><body>'
           '<h1>Caf\xe9</h1><p>\u201cFees\u201d \u2013 \u20ac 5 a night.</p></body></html>').encode("cp1252")
    doc = document_from_bytes(raw, tmp_path / "old.html")
    assert doc.text == "Caf\xe9\n\n\u201cFees\u201d \u2013 \u20ac 5 a night."


def test_html_meta_saying_utf16_is_read_as_utf8(tmp_path):
    """A <meta charset=utf-16> readable as ASCII cannot be true: browsers read
    the page as UTF-8; it was decoded as UTF-16 into CJK garbage."""
    raw = '<html><head><meta charset="utf-16"></head><body><h1>Caf\xe9</h1><p>Open daily.</p></body></html>'
    doc = document_from_bytes(raw.encode("utf-8"), tmp_path / "page.html")
    assert doc.text == "Caf\xe9\n\nOpen daily."


def test_html_layout_table_is_read_as_blocks_once(tmp_path):
    """A page laid out in a table (an old site, an e-mail): each row was read as
    one line with every descendant row of the nested tables, so their text
    appeared three times, and the heading inside a cell opened no section."""
    html = ("<html><body><h1>Harbour</h1><table><tr><td><h2>Fees</h2><p>Mooring is paid at the office.</p>"
            "<table><tr><td>Nordlys</td><td>4,500 NOK</td></tr></table></td><td>Open daily.</td></tr></table>"
            "</body></html>")
    doc = document_from_bytes(html.encode(), tmp_path / "layout.html")
    assert doc.text == "Harbour\n\nFees\n\nMooring is paid at the office.\n\nNordlys | 4,500 NOK\n\nOpen daily."
    assert doc.locate(doc.text.index("Nordlys")).section == "Fees"
    check_locators(doc)


def test_html_soft_hyphens_are_not_kept_inside_words(tmp_path):
    """``&shy;`` marks where a browser may break a long word; it is invisible
    otherwise, and kept in the text it split the word for search and answers."""
    html = "<html><body><h1>Dampf&shy;schiff</h1><p>The Donau&shy;dampf&shy;schiff sails at nine.</p></body></html>"
    doc = document_from_bytes(html.encode(), tmp_path / "ship.html")
    assert doc.text == "Dampfschiff\n\nThe Donaudampfschiff sails at nine."
    assert doc.title == "Dampfschiff" and doc.locators[0].section == "Dampfschiff"


def test_html_line_break_is_a_line_not_a_paragraph(tmp_path):
    """``<br>`` became a blank line, i.e. a paragraph break: the chunker ends a
    sentence at a blank line, so an address or a poem was cut into as many
    "sentences" as it has lines. A ``<br>`` is one line break; two in a row
    (the old way to space paragraphs) still leave a blank line."""
    from qa.chunking import split_sentences

    html = ("<html><body><h1>Contact</h1><p>Harbour Office<br>12 Pier Road<br/>\n 9008 Troms\xf8</p>"
            "<p><br>First part<br><br>\n<br>Second part<br></p><ul><li>Ferry<br>daily</li></ul>"
            "<address><span>Open <b>Mon</b><br>to Fri</span></address></body></html>")
    doc = document_from_bytes(html.encode(), tmp_path / "contact.html")
    assert doc.text == ("Contact\n\nHarbour Office\n12 Pier Road\n9008 Troms\xf8\n\nFirst part\n\nSecond part"
                        "\n\nFerry\ndaily\n\nOpen Mon\nto Fri")
    address = doc.text.index("Harbour Office")
    assert (address, doc.text.index("\xf8") + 1) in split_sentences(doc.text)
    check_locators(doc)


# Invisible format characters as they come in copied and generated text: a zero
# width space, a word joiner, a BOM inside text, a zero width non-joiner in Latin
# text; and where they change what the reader sees (Persian, an emoji sequence).
INVISIBLE_IN = ("The Donau\u200bdampf\u2060schiff sails at nine from Zero\ufeffwidth Quay; "
                "see the Auf\u200clage.")
INVISIBLE_OUT = "The Donaudampfschiff sails at nine from Zerowidth Quay; see the Auflage."
VISIBLE_JOINERS = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \U0001f469\u200d\U0001f680"


def _bm25_words(text: str) -> list[str]:
    """The words BM25 indexes for ``text`` (bm25s's tokenizer, as the index uses it)."""
    import bm25s

    return bm25s.tokenize([text], stopwords=None, return_ids=False, show_progress=False)[0]


def test_html_invisible_characters_are_not_kept_inside_words(tmp_path):
    """A zero width space, word joiner or BOM inside a word split it in two
    for search ("donau", "dampf") and came back in the answer as invisible
    characters; a zero width (non-)joiner is kept only where it changes how
    the text looks (Persian, emoji sequences)."""
    html = (f"<html><body><h1>Donau\u200bdampf</h1><p>{INVISIBLE_IN}</p><pre>Zero\u200bwidth</pre>"
            f"<p>{VISIBLE_JOINERS}</p><table><tr><td>Pier\u2060 7</td></tr></table></body></html>")
    doc = document_from_bytes(html.encode(), tmp_path / "ship.html")
    assert doc.text == f"Donaudampf\n\n{INVISIBLE_OUT}\n\nZerowidth\n\n{VISIBLE_JOINERS}\n\nPier 7"
    assert doc.title == "Donaudampf" and doc.locators[0].section == "Donaudampf"
    assert "donaudampfschiff" in _bm25_words(doc.text)


def test_docx_invisible_characters_are_not_kept_inside_words(tmp_path):
    """As in HTML: Word keeps a zero width space typed or pasted into a word
    in its text (and other programs write a soft hyphen as U+00AD, not as
    Word's own <w:softHyphen/>), so the word matched no search."""
    import docx

    d = docx.Document()
    d.add_heading("Donau\u200bdampf", level=1)
    p = d.add_paragraph(INVISIBLE_IN[:20])
    p.add_run(INVISIBLE_IN[20:])
    d.add_paragraph("Dampf\xadschiff " + VISIBLE_JOINERS)
    buf = io.BytesIO()
    d.save(buf)
    doc = document_from_bytes(buf.getvalue(), tmp_path / "ship.docx")
    assert doc.text == f"Donaudampf\n\n{INVISIBLE_OUT}\n\nDampfschiff {VISIBLE_JOINERS}"
    assert doc.title == "Donaudampf" and doc.locators[0].section == "Donaudampf"


def test_pdf_invisible_characters_are_dropped_and_offsets_still_map_to_pdfium():
    """PDF text layers carry the same invisible characters; dropping them in
    the cleaning keeps every stored character mapped to the PDFium character
    it came from (page highlighting, qa.pages)."""
    from qa.ingest.pdf import clean_page_text, clean_page_text_map

    raw = "The Donau\u200bdampf\r\nsails from Zero\ufeffwidth Quay. " + VISIBLE_JOINERS
    text, src, _ = clean_page_text_map(raw)
    assert text == "The Donaudampf\nsails from Zerowidth Quay. " + VISIBLE_JOINERS == clean_page_text(raw)
    assert len(src) == len(text)
    for i, ch in enumerate(text):
        assert raw[src[i]] == ch or (ch == "\n" and raw[src[i]] == "\r"), (i, ch)


@pytest.mark.parametrize("name", ["notes.txt", "notes.md"])
def test_text_and_markdown_keep_invisible_characters_byte_exact(tmp_path, name):
    """Unlike the extracted formats, .txt and .md keep zero width spaces and
    the like: their stored text is the file, and every offset a file offset
    (docs/ingest.md, "Invisible characters")."""
    raw = f"# Ships\n\n{INVISIBLE_IN}\n".encode()
    doc = document_from_bytes(raw, tmp_path / name)
    assert doc.text == raw.decode()


def test_html_without_text(tmp_path):
    with pytest.raises(errors.EmptyDocumentError, match="no text found in this HTML file"):
        document_from_bytes(b"<html><body><nav><a href='/'>Home</a></nav><script>x()</script></body></html>",
                            tmp_path / "empty.html")


# --- DOCX -------------------------------------------------------------------------------------


def test_docx_headings_and_table(tmp_path):
    f = tmp_path / "report.docx"
    f.write_bytes(make_docx())
    doc = load_file(f)
    assert doc.title == "Quarterly Report"
    assert "Region | Q2 | Q3\n\nNorth | 100 | 112" in doc.text
    assert doc.locate(doc.text.index("North | 100")).section == "Revenue"
    assert doc.locate(doc.text.index("steady growth")).section == "Outlook"
    assert doc.text.startswith("Prepared by the finance team.")
    assert doc.locate(0) is None  # before the first heading: no section
    assert [loc.section for loc in doc.locators] == ["Revenue", "Outlook"]
    check_locators(doc)


def make_docx_with_markup() -> bytes:
    """A Word file as Word writes them once people edit it: tracked changes, a
    field, a smart tag, a content control, a text box (DrawingML with its VML
    fallback copy) and a table nested in a cell."""
    import docx
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    w = nsdecls("w")
    mc = 'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"'
    d = docx.Document()
    d.add_heading("Harbour", level=1)
    p = d.add_paragraph("The keeper is ")
    p._p.append(parse_xml(f'<w:ins {w} w:id="1" w:author="a"><w:r><w:t>Margit Halvorsen</w:t></w:r></w:ins>'))
    p._p.append(parse_xml(f'<w:del {w} w:id="2" w:author="a"><w:r><w:delText>Old Name</w:delText></w:r></w:del>'))
    p.add_run(".")
    p = d.add_paragraph("See page ")
    p._p.append(parse_xml(f'<w:fldSimple {w} w:instr="PAGE"><w:r><w:t>7</w:t></w:r></w:fldSimple>'))
    p.add_run(" in ")
    p._p.append(parse_xml(f'<w:smartTag {w} w:uri="u" w:element="place"><w:r><w:t>Oslo</w:t></w:r></w:smartTag>'))
    p.add_run(".")
    p = d.add_paragraph("The anchor paragraph.")
    box = "<w:txbxContent><w:p><w:r><w:t>The ferry leaves at noon.</w:t></w:r></w:p></w:txbxContent>"
    p._p.append(parse_xml(
        f'<w:r {w} {mc}><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wp:anchor '
        f'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"><a:graphic '
        f'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"><a:graphicData><wps:wsp '
        f'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape"><wps:txbx>{box}</wps:txbx>'
        f'</wps:wsp></a:graphicData></a:graphic></wp:anchor></w:drawing></mc:Choice><mc:Fallback><w:pict>'
        f'<v:shape xmlns:v="urn:schemas-microsoft-com:vml"><v:textbox>{box}</v:textbox></v:shape></w:pict>'
        f'</mc:Fallback></mc:AlternateContent></w:r>'))
    body = d.element.body
    body.insert(len(body) - 1, parse_xml(
        f'<w:sdt {w}><w:sdtPr/><w:sdtContent><w:p><w:r><w:t>Inside a content control.</w:t></w:r></w:p>'
        f'</w:sdtContent></w:sdt>'))
    t = d.add_table(rows=1, cols=2)
    t.cell(0, 0).text = "Dock fees"
    inner = t.cell(0, 1).add_table(rows=1, cols=2)
    inner.cell(0, 0).text = "Nordlys"
    inner.cell(0, 1).text = "4,500 NOK"
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def test_docx_keeps_text_in_revisions_fields_controls_boxes_and_nested_tables(tmp_path):
    """python-docx's Paragraph.text reads only runs directly under a paragraph:
    a tracked insertion, a field's result, a smart tag, a content control, a
    text box and a nested table were lost ("The keeper is .")."""
    f = tmp_path / "edited.docx"
    f.write_bytes(make_docx_with_markup())
    doc = load_file(f)
    assert doc.text.split("\n\n") == [
        "Harbour", "The keeper is Margit Halvorsen.", "See page 7 in Oslo.", "The anchor paragraph.",
        "The ferry leaves at noon.", "Inside a content control.", "Dock fees | Nordlys | 4,500 NOK"]
    assert "Old Name" not in doc.text  # deleted text stays deleted
    assert doc.locate(doc.text.index("Margit")).section == "Harbour"
    check_locators(doc)


def test_docx_page_and_column_breaks_inside_a_paragraph_do_not_glue_words(tmp_path):
    """A page or column break inside a paragraph (Ctrl+Enter in Word) gave
    nothing, so the words either side were glued: "one.Chapter", "oneChapter"
    (no sentence end, no word boundary for search)."""
    import docx
    from docx.enum.text import WD_BREAK

    d = docx.Document()
    p = d.add_paragraph("The end of chapter one.")
    p.add_run().add_break(WD_BREAK.PAGE)
    p.add_run("Chapter two begins")
    p.add_run().add_break(WD_BREAK.COLUMN)
    p.add_run("in the harbour.")
    buf = io.BytesIO()
    d.save(buf)
    doc = document_from_bytes(buf.getvalue(), tmp_path / "book.docx")
    assert doc.text == "The end of chapter one.\nChapter two begins\nin the harbour."


def make_docx_with_notes() -> bytes:
    """A Word file with footnotes and endnotes (python-docx cannot write them:
    the parts are added by hand, as Word lays them out), a footnote whose
    reference was deleted with tracked changes, and a page header."""
    import docx
    from docx.opc.constants import CONTENT_TYPE as CT, RELATIONSHIP_TYPE as RT
    from docx.opc.packuri import PackURI
    from docx.opc.part import Part
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    w = nsdecls("w")

    def ref(kind: str, note_id: int) -> str:
        return f'<w:r {w}><w:rPr><w:rStyle w:val="{kind}Reference"/></w:rPr><w:{kind}Reference w:id="{note_id}"/></w:r>'

    def notes(kind: str, texts: dict[int, str]) -> bytes:
        seps = (f'<w:{kind} w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:{kind}>'
                f'<w:{kind} w:type="continuationSeparator" w:id="0"><w:p><w:r><w:continuationSeparator/></w:r>'
                f'</w:p></w:{kind}>')
        body = "".join(f'<w:{kind} w:id="{i}"><w:p><w:r><w:{kind}Ref/></w:r><w:r><w:t xml:space="preserve"> '
                       f'{t}</w:t></w:r></w:p></w:{kind}>' for i, t in texts.items())
        return f'<w:{kind}s {w}>{seps}{body}</w:{kind}s>'.encode()

    d = docx.Document()
    d.sections[0].header.paragraphs[0].text = "CONFIDENTIAL DRAFT"
    d.sections[0].footer.paragraphs[0].text = "Harbour Authority, page 1"
    d.add_heading("Harbour", level=1)
    p = d.add_paragraph("The keeper has kept the light since 1994.")
    p._p.append(parse_xml(ref("footnote", 1)))
    p = d.add_paragraph("Ferries leave from the north pier.")
    p._p.append(parse_xml(f'<w:del {w} w:id="9" w:author="a">{ref("footnote", 2)}</w:del>'))
    p._p.append(parse_xml(ref("endnote", 1)))
    t = d.add_table(rows=1, cols=2)
    t.cell(0, 0).text = "Mooring"
    t.cell(0, 1).paragraphs[0]._p.append(parse_xml(ref("footnote", 3)))
    t.cell(0, 1).paragraphs[0].add_run("4,500 NOK")
    foot = Part(PackURI("/word/footnotes.xml"), CT.WML_FOOTNOTES,
                notes("footnote", {1: "Margit Halvorsen took over from her father.",
                                   2: "A note whose reference was deleted.", 3: "Prices include VAT."}), d.part.package)
    end = Part(PackURI("/word/endnotes.xml"), CT.WML_ENDNOTES,
               notes("endnote", {1: "Timetables change in winter."}), d.part.package)
    d.part.relate_to(foot, RT.FOOTNOTES)
    d.part.relate_to(end, RT.ENDNOTES)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def test_docx_footnotes_and_endnotes_are_extracted_after_the_body(tmp_path):
    """Footnotes and endnotes were not read at all: a question whose answer is
    in one could never be answered. They follow the body, in the order their
    references appear (as Word numbers them), each its own paragraph with a
    "Footnote N" / "Endnote N" section; a note whose reference was deleted
    stays out, and page headers and footers (repeated boilerplate) stay out."""
    f = tmp_path / "notes.docx"
    f.write_bytes(make_docx_with_notes())
    doc = load_file(f)
    assert doc.text.split("\n\n") == [
        "Harbour", "The keeper has kept the light since 1994.", "Ferries leave from the north pier.",
        "Mooring | 4,500 NOK", "Margit Halvorsen took over from her father.", "Prices include VAT.",
        "Timetables change in winter."]
    assert doc.locate(doc.text.index("Margit")).section == "Footnote 1"
    assert doc.locate(doc.text.index("Prices")).section == "Footnote 2"
    assert doc.locate(doc.text.index("Timetables")).section == "Endnote 1"
    assert doc.locate(doc.text.index("Mooring")).section == "Harbour"
    assert "CONFIDENTIAL" not in doc.text and "page 1" not in doc.text
    check_locators(doc)


def test_corrupt_and_truncated_docx(tmp_path):
    raw = make_docx()
    (tmp_path / "cut.docx").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptDocumentError, match=r"cut\.docx: not a readable \.docx"):
        load_file(tmp_path / "cut.docx")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("word/document.xml", "<not-xml")
        z.writestr("[Content_Types].xml", "<nope/>")
    (tmp_path / "broken.docx").write_bytes(buf.getvalue())
    with pytest.raises(CorruptDocumentError, match="broken.docx"):
        load_file(tmp_path / "broken.docx")


def test_docx_that_unpacks_to_too_much_xml_is_refused_before_parsing(tmp_path, monkeypatch):
    """A .docx is a ZIP: a 185 KB file whose document.xml unpacks to 51 MB
    took 690 MB of memory and 10 s to read, so a file under the 10 MB upload
    limit could unpack to gigabytes and take the server down. The unpacked
    size (the ZIP's own record, which zipfile enforces) is checked first."""
    import qa.ingest.docx as docx_loader

    d = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(make_docx())) as src, zipfile.ZipFile(d, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "word/document.xml":
                data = data.replace(b"<w:body>", b"<w:body>" + b"<w:p><w:r><w:t>a</w:t></w:r></w:p>" * 40_000)
            z.writestr(info.filename, data)
    raw = d.getvalue()
    monkeypatch.setattr(docx_loader, "MAX_UNPACKED_XML_BYTES", 1_000_000, raising=False)
    with pytest.raises(FileTooLargeError, match=r"big\.docx: unpacks to 2,[\d,]+ bytes of XML, over the "
                                                r"1,000,000-byte limit"):
        document_from_bytes(raw, tmp_path / "big.docx")
    monkeypatch.setattr(docx_loader, "MAX_UNPACKED_XML_BYTES", 3_000_000)
    assert document_from_bytes(raw, tmp_path / "big.docx").text.count("a") >= 40_000


def test_zip_that_is_not_word(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    (tmp_path / "sheet.docx").write_bytes(buf.getvalue())
    with pytest.raises(FormatMismatchError, match="the file is an Excel workbook"):
        load_file(tmp_path / "sheet.docx")


def test_encrypted_or_old_word_file(tmp_path):
    (tmp_path / "locked.docx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    with pytest.raises(FormatMismatchError, match="password-protected Office file"):
        load_file(tmp_path / "locked.docx")


# --- Markdown and text ------------------------------------------------------------------------


def test_markdown_sections_and_byte_exact(tmp_path):
    raw = ("Intro before any heading.\r\n\r\n# Guide\r\n\r\nWelcome.\r\n\r\n## Install *now*\r\n\r\nRun it.\r\n"
           "```\r\n# not a heading\r\n```\r\n\r\nSetext Title\r\n------------\r\n\r\nLast words.\r\n").encode()
    f = tmp_path / "guide.md"
    f.write_bytes(raw)
    doc = load_file(f)
    assert doc.text.encode("utf-8") == raw
    assert doc.title == "Guide"
    assert [loc.section for loc in doc.locators] == ["Guide", "Install now", "Setext Title"]
    assert doc.locate(doc.text.index("Run it")).section == "Install now"
    assert doc.locate(doc.text.index("# not a heading")).section == "Install now"
    assert doc.locate(doc.text.index("Last words")).section == "Setext Title"
    assert doc.locate(0) is None
    assert doc.locators[-1].end == len(doc.text)
    check_locators(doc)


def test_markdown_front_matter_is_no_section_and_code_is_no_title(tmp_path):
    """YAML front matter's closing ``---`` was read as a setext underline (a
    section named after its last line, "date: 2024-01-01"), and the title was a
    ``# comment`` inside a fenced code block."""
    raw = ("---\ntitle: Harbour notes\ndate: 2024-01-01\n---\n\nIntro.\n\n```sh\n# install it\nmake\n```\n\n"
           "Fees\n====\n\nMooring is paid at the office.\n")
    f = tmp_path / "harbour_notes.md"
    f.write_bytes(raw.encode())
    doc = load_file(f)
    assert doc.text == raw  # byte-exact as ever
    assert [loc.section for loc in doc.locators] == ["Fees"]
    assert doc.locate(doc.text.index("Intro")) is None
    assert doc.title == "harbour notes"  # the file name: no "# " heading outside code
    # a thematic break followed by text is not front matter
    assert [loc.section for loc in markdown_sections("---\nSome text\n---\n")] == ["Some text"]


def test_plain_text_has_no_locators(tmp_path):
    f = tmp_path / "n.txt"
    f.write_text("# Not markdown\n\nJust text.\n", encoding="utf-8")
    doc = load_file(f)
    assert doc.locators == () and doc.text == "# Not markdown\n\nJust text.\n"
    assert "format" not in doc.meta  # .txt / .md meta is what it always was


# --- bad files of every kind ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a.pdf", "a.docx", "a.html", "a.md", "a.txt"])
def test_zero_bytes(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(errors.EmptyDocumentError, match="empty"):
        load_file(tmp_path / name)


@pytest.mark.parametrize("name", ["big.pdf", "big.html", "big.txt"])
def test_over_the_size_limit(tmp_path, name):
    (tmp_path / name).write_bytes(b"x" * 2000)
    with pytest.raises(FileTooLargeError, match="2000 bytes is over the 1000-byte limit"):
        load_file(tmp_path / name, max_bytes=1000)
    with pytest.raises(FileTooLargeError):
        document_from_bytes(b"x" * 2000, name, max_bytes=1000)
    assert issubclass(FileTooLargeError, errors.DocumentUnreadableError)


def test_unsupported_lists_every_supported_type(tmp_path):
    (tmp_path / "slides.pptx").write_bytes(b"PK\x03\x04")
    with pytest.raises(errors.UnsupportedFormatError) as e:
        load_file(tmp_path / "slides.pptx")
    msg = str(e.value)
    assert "unsupported file type '.pptx'" in msg
    for s in (".txt", ".md", ".pdf", ".html", ".htm", ".docx"):
        assert s in SUPPORTED_SUFFIXES and s in msg


def test_extension_that_lies(tmp_path):
    pdf = make_pdf([page_text(1)])
    cases = {
        "paper.docx": (pdf, r"says \.docx but the content is a PDF; rename it to paper\.pdf"),
        "report.pdf": (make_docx(), r"says \.pdf but the content is a ZIP archive.*rename it to report\.docx"),
        "notes.txt": (pdf, r"says \.txt but the content is a PDF"),
        "page.html": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, r"says \.html but the content is a PNG image"),
        "saved.pdf": (make_html().encode(), r"says \.pdf but the content is HTML; rename"[:-8]),
        "readme.pdf": ("Plain words, no PDF at all.\n".encode(), r"says \.pdf but the content is plain text"),
    }
    for name, (raw, pattern) in cases.items():
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(FormatMismatchError, match=pattern):
            load_file(tmp_path / name)
    assert issubclass(FormatMismatchError, errors.UnsupportedFormatError)


@pytest.mark.parametrize("name, raw, error, pattern", [
    # a binary file that decodes as UTF-8 (every byte below 0x80)
    ("data.txt", b"HDR1" + bytes(range(0, 32)) * 8 + b"rows follow", FormatMismatchError, "NUL bytes: binary data"),
    ("log.txt", b"plain words\n" * 1000 + b"\x00\x01\x02 then binary", FormatMismatchError,  # past the first 4 KiB
     "NUL bytes: binary data"),
    ("notes.md", "# Notes\r\nUTF-16 without a byte order mark".encode("utf-16-le"), errors.DocumentEncodingError,
     "UTF-16 text, not UTF-8; save it as UTF-8"),
    ("notes.txt", "UTF-16, big-endian".encode("utf-16-be"), errors.DocumentEncodingError, "UTF-16 text"),
])
def test_text_with_nul_bytes_is_refused_not_indexed_as_words(tmp_path, name, raw, error, pattern):
    """A .txt/.md holding NUL bytes is binary data or UTF-16 text: both decode
    as "valid UTF-8" when every byte is below 0x80, and were indexed as text full
    of control characters (every offset and answer of it garbage)."""
    (tmp_path / name).write_bytes(raw)
    with pytest.raises(error, match=pattern):
        load_file(tmp_path / name)


def test_upper_case_suffix(tmp_path):
    (tmp_path / "SCAN.PDF").write_bytes(make_pdf([page_text(1)]))
    assert load_file(tmp_path / "SCAN.PDF").locators[0].page == 1


# --- batches ----------------------------------------------------------------------------------


def _mixed_folder(root: Path) -> Path:
    d = root / "docs"
    (d / "sub" / "deeper").mkdir(parents=True)
    (d / "report.pdf").write_bytes(make_pdf([page_text(n) for n in range(1, 4)]))
    (d / "sub" / "guide.html").write_text(make_html(), encoding="utf-8")
    (d / "sub" / "deeper" / "q.docx").write_bytes(make_docx())
    (d / "notes.md").write_text("# Notes\n\nThe ferry leaves at noon.\n", encoding="utf-8")
    (d / "z-copy-of-notes.md").write_text("# Notes\n\nThe ferry leaves at noon.\n", encoding="utf-8")
    (d / "broken.pdf").write_bytes(make_pdf([page_text(9)])[:300])
    (d / "empty.txt").write_bytes(b"")
    (d / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (d / ".hidden.md").write_text("# Hidden\n", encoding="utf-8")
    (d / ".git").mkdir()
    (d / ".git" / "HEAD.txt").write_text("ref", encoding="utf-8")
    outside = root / "outside.md"
    outside.write_text("# Outside\n\nNot in the folder.\n", encoding="utf-8")
    (d / "link-out.md").symlink_to(outside)
    (d / "link-in.md").symlink_to(d / "notes.md")
    (d / "linked-dir").symlink_to(d / "sub", target_is_directory=True)
    return d


def test_batch_loads_the_rest_and_reports_each_bad_file(tmp_path):
    d = _mixed_folder(tmp_path)
    calls = []
    res = load_batch([d], progress=lambda done, total, p: calls.append((done, total)))
    ids = [doc.id for doc in res.documents]
    assert sorted(ids) == ["notes.md", "report.pdf", "sub/deeper/q.docx", "sub/guide.html"]
    problems = {p.name: r for p, r in res.problems}
    assert set(problems) == {"broken.pdf", "empty.txt"}
    assert "corrupt or truncated" in problems["broken.pdf"] and "empty" in problems["empty.txt"]
    assert isinstance(res.errors[str(d / "broken.pdf")], CorruptDocumentError)
    skipped = {p.name: r for p, r in res.skipped}
    assert "the same text as 'notes.md'" in skipped["z-copy-of-notes.md"]
    assert isinstance(res.errors[str(d / "z-copy-of-notes.md")], errors.DocumentError)
    assert "unsupported file type '.png'" in skipped["picture.png"]
    assert "leads outside" in skipped["link-out.md"]
    assert "same file as 'notes.md'" in skipped["link-in.md"]
    assert "symlinked folder" in skipped["linked-dir"]
    assert not any(".hidden" in str(p) or ".git" in str(p) for p, _ in res.problems + res.skipped)
    assert calls[-1][0] == calls[-1][1] == len(calls)
    assert not res.ok and "4 loaded, 2 failed" in res.summary()
    for doc in res.documents:
        check_locators(doc)
    # The all-or-nothing loader stops at the first bad file; iter_paths sees the same files.
    with pytest.raises(errors.DocumentError):
        load_paths([d])
    assert "link-out.md" not in [i for _, i in iter_paths([d])]


def test_batch_explicit_files_skip_hook_and_existing(tmp_path):
    d = _mixed_folder(tmp_path)
    res = load_batch([d / "notes.md", d / "missing.pdf", d / "picture.png", d / "report.pdf"],
                     skip=lambda p, i: "unchanged" if i == "report.pdf" else None,
                     existing={"old.md": sha256_text(load_file(d / "notes.md").text)})
    assert res.documents == []
    assert {p.name for p, _ in res.problems} == {"missing.pdf", "picture.png"}
    reasons = {p.name: r for p, r in res.skipped}
    assert reasons["report.pdf"].endswith("unchanged")
    assert "same text as 'old.md'" in reasons["notes.md"]
    # Re-loading the id that holds the text is not a duplicate of itself.
    again = load_batch([d / "notes.md"], existing={"notes.md": "whatever"})
    assert [doc.id for doc in again.documents] == ["notes.md"]


def test_batch_size_limit_and_clash(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "n.md").write_text("One.", encoding="utf-8")
    (b / "n.md").write_text("Two.", encoding="utf-8")
    (a / "big.md").write_text("x" * 500, encoding="utf-8")
    res = load_batch([a / "n.md", b / "n.md", a / "big.md"], max_bytes=100)
    assert [doc.text for doc in res.documents] == ["One."]
    reasons = [r for _, r in res.problems]
    assert any("both be indexed as 'n.md'" in r for r in reasons)
    assert any("over the 100-byte limit" in r for r in reasons)


# --- invariants (property-based) --------------------------------------------------------------

_words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30)
_blocks = st.lists(st.tuples(st.booleans(), _words), min_size=1, max_size=15)


@settings(max_examples=60, deadline=None, database=None)
@given(_blocks, st.sampled_from([None, 1, 2]))
def test_text_builder_locators(blocks, page):
    b = TextBuilder()
    for is_heading, text in blocks:
        b.add(text, page=page, section=text if is_heading else None)
    text, locs = b.build()
    if not text.strip():
        return  # not a document (Document refuses a blank text)
    check_locators(Document(id="x", text=text, locators=locs))


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["h1", "h2", "h3", "p", "li", "div"]),
                          st.text(alphabet="abc xyz<>&\n\t\u00e9\u4e2d", min_size=0, max_size=20)),
                min_size=1, max_size=12))
def test_html_locators_are_ordered_and_inside(tmp_path, blocks):
    import html as _html

    body = "".join(f"<{t}>{_html.escape(s)}</{t}>" for t, s in blocks)
    try:
        doc = document_from_bytes(f"<html><body>{body}</body></html>".encode(), tmp_path / "p.html")
    except errors.EmptyDocumentError:
        return
    check_locators(doc)
    for loc in doc.locators:
        assert doc.text[loc.start:loc.end].startswith(loc.section)


@settings(max_examples=60, deadline=None, database=None)
@given(st.lists(st.one_of(st.sampled_from(["# A", "## B c", "```", "~~~", "", "text", "---", "===", "   # D #"]),
                          _words), max_size=25), st.sampled_from(["\n", "\r\n"]))
def test_markdown_locators_are_ordered_and_inside(lines, nl):
    text = nl.join(lines)
    if not text.strip():
        return  # not a document (Document refuses a blank text)
    check_locators(Document(id="x", text=text, locators=markdown_sections(text)))


@settings(max_examples=8, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(alphabet="abcdefghij KLMN.,", min_size=0, max_size=200), min_size=1, max_size=5))
def test_pdf_locators_are_ordered_and_inside(tmp_path, pages):
    try:
        doc = document_from_bytes(make_pdf(pages), tmp_path / "p.pdf")
    except NoTextLayerError:
        assert not any(p.strip(" ") for p in pages)
        return
    check_locators(doc)
    assert all(loc.page for loc in doc.locators)
    assert sorted({loc.page for loc in doc.locators}) == [i for i, p in enumerate(pages, 1) if p.strip()]


def test_html_rules_that_would_remove_everything_keep_the_body(tmp_path):
    html = ('<html><body><div class="layout has-sidebar"><p>' + "The pier opens at dawn. " * 20
            + "</p></div></body></html>")
    doc = document_from_bytes(html.encode(), tmp_path / "odd.html")
    assert doc.text.startswith("The pier opens at dawn.") and doc.meta["boilerplate"] == "kept"
