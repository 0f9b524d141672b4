"""End to end: a question about a PDF's page 3 cites page 3; an HTML or Word
section is cited by its heading; navigation is never indexed (fake models:
plumbing; the reader's quality is tested elsewhere)."""

from __future__ import annotations

import pytest

from test_ingest_formats import make_docx, make_html, make_pdf

PAGES = [
    "The harbour office opens at eight. Ferries leave from the north pier.",
    "The museum keeps a collection of ship models. Entry is free on Sundays.",
    "The lighthouse keeper is Margit Halvorsen. She has kept the light since 1994.",
    "Fishing boats return before dusk. The market sells the catch at six.",
]


@pytest.fixture
def formats_qa(fake_models, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.pdf").write_bytes(make_pdf(PAGES, title="Harbour guide"))
    (docs / "page.html").write_text(make_html(), encoding="utf-8")
    (docs / "report.docx").write_bytes(make_docx())
    q = fake_models(index_dir=tmp_path / "index", corpus_dir=None)
    report = q.sync_paths([docs])
    assert not report.problems, report.problems
    return q


def test_a_question_about_page_3_cites_page_3(formats_qa):
    a = formats_qa.ask("Who is Halvorsen?", min_score=0.0)
    assert a.answer == "Halvorsen"
    c = a.citations[0]
    assert c.doc_id == "guide.pdf" and c.page == 3
    doc = formats_qa.store.documents["guide.pdf"]
    assert doc.text[c.answer_start:c.answer_end] == a.answer
    assert doc.text[c.start:c.end] == c.text


def test_every_citation_of_every_format_maps_back(formats_qa):
    for question in ("When do ferries leave?", "What does the museum keep?", "Who is Halvorsen?"):
        for c in formats_qa.ask(question, min_score=0.0, top_k=5).citations:
            doc = formats_qa.store.documents[c.doc_id]
            assert doc.text[c.start:c.end] == c.text
            if doc.id == "guide.pdf":
                assert c.page is not None


def test_navigation_and_footer_are_not_indexed(formats_qa):
    html = formats_qa.store.documents["page.html"]
    from test_ingest_formats import NAV_WORDS  # the navigation the fixture page carries

    for word in NAV_WORDS:
        assert word not in html.text
