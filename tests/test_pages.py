"""Offsets in a PDF's stored text -> PDFium character boxes -> a highlighted page image.

PDFs are written with fpdf2 (known text and layout); the page is checked in
pixels: every highlight box must cover ink of the plain rendering, and the
highlight colour must be where the answer is and nowhere else.
"""

from __future__ import annotations

import io
import random

import numpy as np
import pytest

from qa.cli import main
from qa.config import PagesConfig
from qa.ingest.loading import document_from_bytes
from qa.ingest.pdf import clean_page_text, clean_page_text_map
from qa.errors import PageRenderError
from qa.pages import (PageCache, RenderedPage, char_indexes, find_pdf, keep_original,
                      page_ranges, prune_originals, render_document_page, render_page)

pytest.importorskip("fpdf")
pytest.importorskip("pypdfium2")

NAME = "Margarethe Olsson"


def report_pdf(rotate: int = 0) -> bytes:
    """Four pages; the chair's name on page 3 only; a word broken at a line end on page 2."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for i in range(1, 5):
        pdf.add_page()
        body = f"Page {i}. " + "The committee reviewed routine matters of procedure. " * 4
        if i == 2:
            body += "The auditors checked every exam-\nple of spending and the well-\nknown ledgers. "
        if i == 3:
            body += f"The chair of the audit committee is {NAME}, appointed in March. "
        pdf.multi_cell(0, 6, body + "Further boilerplate about procedure follows. " * 3)
    raw = bytes(pdf.output())
    if rotate:
        import pypdfium2 as pdfium

        doc = pdfium.PdfDocument(raw)
        for page in doc:
            page.set_rotation(rotate)
        buf = io.BytesIO()
        doc.save(buf)
        raw = buf.getvalue()
    return raw


def pixels(page: RenderedPage) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(page.png)).convert("RGB")).astype(int)


def highlight_mask(img: np.ndarray) -> np.ndarray:
    """Pixels of the translucent yellow fill over white paper."""
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    return (r > 230) & (g > 200) & (g < 245) & (b < 190)


@pytest.fixture
def report(tmp_path):
    raw = report_pdf()
    path = tmp_path / "report.pdf"
    path.write_bytes(raw)
    return document_from_bytes(raw, path), raw


def test_mapped_cleaning_is_the_loaders_cleaning():
    alphabet = list("ab \t\r\n\x02\x0c\x00\x01\x1f\x7f\ufffe\ufb01\ufb03\u00a0-")
    rng = random.Random(7)
    for _ in range(20000):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16)))
        text, src, soft = clean_page_text_map(raw)
        assert text == clean_page_text(raw), repr(raw)
        assert len(src) == len(text) and src == sorted(src)
        assert all(text[p] == "-" and raw[src[p]] == "\x02" for p in soft)


def test_ligatures_map_to_their_one_glyph():
    raw = "the \ufb01nal o\ufb03ce\r\nend"
    stored = clean_page_text(raw)
    assert stored == "the final office\nend"
    i = stored.index("final")
    assert char_indexes(raw, stored, i, i + 5) == [4, 5, 6, 7]  # "fi" is one glyph (index 4)
    j = stored.index("office")
    assert char_indexes(raw, stored, j, j + 6) == [9, 10, 11, 12]  # "ffi" is one glyph (index 10)


def test_text_from_another_pdfium_falls_back_to_the_nearest_occurrence():
    raw = "x name y name z"
    assert char_indexes(raw, "X name y name z!", 9, 13) == [9, 10, 11, 12]
    assert char_indexes(raw, "nothing alike", 0, 7) == []


def test_the_answer_is_highlighted_on_its_page_and_nowhere_else(report):
    doc, raw = report
    a0 = doc.text.index(NAME)
    a1 = a0 + len(NAME)
    assert page_ranges(doc, a0, a1) == [(3, a0 - doc.locators[2].start, a1 - doc.locators[2].start)]
    page = render_page(raw, doc, 3, (a0, a1))
    plain = pixels(render_page(raw, doc, 3, None))
    assert len(page.boxes) == 1
    l, t, r, b = page.boxes[0]
    assert r - l > 60 and 8 < b - t < 40
    ink = plain[t:b, l:r].min(axis=2) < 128
    assert ink.mean() > 0.05  # the box sits on the name's glyphs
    mask = highlight_mask(pixels(page))
    inside = mask[t:b, l:r].sum()
    assert inside > 200 and mask.sum() - inside < 0.02 * inside
    # the same range drawn on page 2 highlights nothing
    assert render_page(raw, doc, 2, (a0, a1)).boxes == ()


def test_a_range_across_a_page_break_is_split_by_page(report):
    doc, raw = report
    loc1, loc2 = doc.locators[0], doc.locators[1]
    s, e = loc1.end - 10, loc2.start + 6
    assert page_ranges(doc, s, e) == [(1, loc1.end - 10 - loc1.start, loc1.end - loc1.start), (2, 0, 6)]
    assert render_page(raw, doc, 1, (s, e)).boxes and render_page(raw, doc, 2, (s, e)).boxes


def test_a_word_hyphenated_at_a_line_end_is_highlighted_on_both_lines(report):
    doc, raw = report
    soft = [int(x) for x in doc.meta["soft_hyphens"].split(",")]
    a0 = doc.text.index("exam-ple")
    assert a0 + 4 in soft  # the loader recorded PDFium's line-break hyphen
    page = render_page(raw, doc, 2, (a0, a0 + len("exam-ple")))
    assert len(page.boxes) == 2  # "exam-" ends one line, "ple" starts the next
    (l1, t1, r1, b1), (l2, t2, r2, b2) = page.boxes
    assert t2 > b1 - 2 and l2 < l1


@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_rotated_pages_highlight_the_glyphs(rotate):
    raw = report_pdf(rotate)
    doc = document_from_bytes(raw, "report.pdf")
    a0 = doc.text.index(NAME)
    page = render_page(raw, doc, 3, (a0, a0 + len(NAME)))
    plain = pixels(render_page(raw, doc, 3, None))
    assert (page.width > page.height) == (rotate in (90, 270))
    assert len(page.boxes) == 1
    l, t, r, b = page.boxes[0]
    assert (b - t > r - l) == (rotate in (90, 270))  # the name runs down the rotated page
    assert (plain[t:b, l:r].min(axis=2) < 128).mean() > 0.05


def test_band_is_the_strip_around_the_highlight(report):
    doc, raw = report
    a0 = doc.text.index(NAME)
    page = render_page(raw, doc, 3, (a0, a0 + len(NAME)))
    band = page.band(0.2)
    assert band.width == page.width and band.height == int(page.height * 0.2)
    (l, t, r, b), = band.boxes
    assert 0 <= t < b <= band.height
    assert highlight_mask(pixels(band)).sum() > 200


def test_cache_is_bounded_and_serves_the_same_page(tmp_path, report):
    doc, raw = report
    cfg = PagesConfig(cache_dir=tmp_path / "cache", max_cache_files=2)
    cache = PageCache(cfg)
    a0 = doc.text.index(NAME)
    first = render_document_page(doc, None, (a0, a0 + len(NAME)), None, cfg, cache)
    assert first.page == 3
    again = render_document_page(doc, None, (a0, a0 + len(NAME)), None, cfg, cache)
    assert again == first
    for p in (1, 2, 4):
        render_document_page(doc, p, None, None, cfg, cache)
    assert len(list((tmp_path / "cache").glob("*.png"))) == 2
    small = PageCache(PagesConfig(cache_dir=tmp_path / "cache", max_cache_bytes=1))
    assert small.trim() == 2 and not list((tmp_path / "cache").glob("*.png"))


def test_the_kept_copy_is_used_when_the_source_changed(tmp_path, report):
    doc, raw = report
    index_dir = tmp_path / "index"
    assert find_pdf(doc, index_dir) == tmp_path / "report.pdf"
    (tmp_path / "report.pdf").write_bytes(report_pdf(90))  # another file under the same name
    assert find_pdf(doc, index_dir) is None
    with pytest.raises(PageRenderError, match="no longer available"):
        render_document_page(doc, 1, None, index_dir, PagesConfig(cache_dir=tmp_path / "c"))
    kept = keep_original(index_dir, raw)
    assert find_pdf(doc, index_dir) == kept
    assert prune_originals(index_dir, [doc]) == 0 and kept.exists()
    assert prune_originals(index_dir, []) == 1 and not kept.exists()


def test_bad_requests_say_what_is_wrong(tmp_path, report):
    doc, _ = report
    cfg = PagesConfig(cache_dir=tmp_path / "c")
    with pytest.raises(PageRenderError, match="no page 9"):
        render_document_page(doc, 9, None, None, cfg)
    with pytest.raises(PageRenderError, match="outside"):
        render_document_page(doc, None, (5, len(doc.text) + 5), None, cfg)
    text_doc = document_from_bytes(b"plain words", "notes.txt")
    with pytest.raises(PageRenderError, match="not a PDF"):
        render_document_page(text_doc, 1, None, None, cfg)


def test_cli_show_png(tmp_path, capsys, fake_models, monkeypatch, report):
    doc, raw = report
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "report.pdf").write_bytes(raw)
    (docs / "notes.txt").write_text("Plain notes about nothing.")
    idx = tmp_path / "index"
    assert main(["index", str(docs), "--index", str(idx)], qa_factory=fake_models) == 0
    capsys.readouterr()
    a0 = doc.text.index(NAME)
    out = tmp_path / "p.png"
    rc = main(["show", "report.pdf", "--index", str(idx), "--png", str(out), "--highlight", f"{a0}:{a0 + len(NAME)}"],
              qa_factory=fake_models)
    printed = capsys.readouterr().out
    assert rc == 0 and printed.startswith("page 3 of report.pdf") and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert highlight_mask(pixels(RenderedPage(3, out.read_bytes(), 0, 0))).sum() > 200
    rc = main(["show", "notes.txt", "--index", str(idx), "--png", str(out)], qa_factory=fake_models)
    err = capsys.readouterr().err
    assert rc == 1 and "not a PDF" in err and err.count("\n") == 1
    rc = main(["show", "report.pdf", "--index", str(idx), "--png", str(out), "--highlight", "x"],
              qa_factory=fake_models)
    assert rc == 2 and "START:END" in capsys.readouterr().err


def test_cli_show_png_to_a_place_that_cannot_take_it_names_that_place(tmp_path, capsys, fake_models, monkeypatch,
                                                                      report):
    # `--png no-such-folder/p.png` said "error: .../no-such-folder/.p.png-x1y2z3.tmp: No such file or directory"
    # and `--png some-folder` "error: .../.some-folder-x1y2z3.tmp: Is a directory": a hidden temp file the
    # user never named, instead of the path given.
    _, raw = report
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "report.pdf").write_bytes(raw)
    idx = tmp_path / "index"
    assert main(["index", str(docs), "--index", str(idx)], qa_factory=fake_models) == 0
    capsys.readouterr()
    (tmp_path / "folder").mkdir()
    for target, why in ((tmp_path / "missing" / "p.png", "no such folder"), (tmp_path / "folder", "is a folder")):
        rc = main(["show", "report.pdf", "--index", str(idx), "--png", str(target)], qa_factory=fake_models)
        out, err = capsys.readouterr()
        assert rc == 1 and out == "" and err.count("\n") == 1, err
        assert err.startswith(f"error: --png {target}: {why}") and ".tmp" not in err, err
    assert [p.name for p in tmp_path.rglob("*.tmp")] == []


def test_a_reversed_or_empty_highlight_is_not_called_outside_the_document(tmp_path, report):
    # `qa show report.pdf --png p.png --highlight 10:5` said "the highlight 10:5 is outside report.pdf
    # (0:1573)", well inside it: the range is reversed, and that is what to say.
    doc, _ = report
    cfg = PagesConfig(cache_dir=tmp_path / "c")
    for s, e in ((10, 5), (7, 7)):
        with pytest.raises(PageRenderError, match=f"the highlight {s}:{e} is empty: START must be below END") as err:
            render_document_page(doc, None, (s, e), None, cfg)
        assert "outside" not in str(err.value)
