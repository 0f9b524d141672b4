"""The page's tabs over a real ``QA`` with the fake models (fast): the documents
table, the check-and-tune evaluation and the threshold it stores, the page
image in the chat, timings over the API."""

from __future__ import annotations

import json

import pytest

from conftest import TINY_DOCS, make_fake_qa
from qa.evaluation.gold import GoldQuestion
from qa.ui.chat import page_html_for
from qa.ui.documents import describe, doc_extent, doc_type, documents_table
from qa.formatting import md_escape
from qa.ui.tune import curve_plot, evaluate, misses_table, summary_markdown
from qa.uploads import index_uploads
from test_pages import NAME, report_pdf


@pytest.fixture
def qa_with_pdf(tmp_path, write_docs, monkeypatch):
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    folder = write_docs(TINY_DOCS)
    (folder / "report.pdf").write_bytes(report_pdf())
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    for p in folder.iterdir():
        (uploads / p.name).write_bytes(p.read_bytes())
    q = make_fake_qa(index_dir=tmp_path / "index", corpus_dir=None)
    report = index_uploads(q, sorted(uploads.iterdir()), delete_under=uploads)
    assert sorted(report.added) == sorted([*TINY_DOCS, "report.pdf"])
    assert not list(uploads.iterdir())  # the uploaded copies are gone ...
    return q


def test_documents_table_says_what_the_index_holds(qa_with_pdf):
    rows = {r[5]: r for r in documents_table(qa_with_pdf)}
    assert set(rows) == {*TINY_DOCS, "report.pdf"}
    title, kind, extent, chunks, added, _ = rows["report.pdf"]
    assert (kind, extent) == ("PDF", "4 pages") and chunks >= 2 and added.endswith("UTC")
    assert rows["beta.md"][1] == "Markdown" and rows["alpha.txt"][1] == "text" and rows["alpha.txt"][2] == ""
    doc = qa_with_pdf.store.documents["beta.md"]
    assert doc_type(doc) == "Markdown" and doc_extent(doc) == "1 section"


def test_hostile_names_are_escaped_in_markdown():
    evil = '[click](javascript:alert(1)) <img src=x onerror=alert(2)> *x*'
    out = md_escape(evil)
    assert "<img" not in out and "](" not in out.replace("\\](", "") and "\\*x\\*" in out
    from qa.types import Document

    assert "<img" not in describe(Document(evil, "text", evil), 1)


def test_the_chat_shows_the_pdf_page_with_the_answer(qa_with_pdf):
    a = qa_with_pdf.ask(f"Who is {NAME}?", min_score=0.0)
    c = a.citations[0]
    assert c.doc_id == "report.pdf" and c.page == 3
    html = page_html_for(qa_with_pdf)(c)  # ... yet the page is drawn from the kept copy
    assert 'class="qa-page-band" src="data:image/png;base64,' in html and "On page 3" in html
    assert html.count("data:image/png;base64,") == 2  # the band, and the whole page behind the click
    text_cite = qa_with_pdf.ask("Who is the harbour master?", min_score=0.0).citations[0]
    assert text_cite.doc_id == "beta.md" and page_html_for(qa_with_pdf)(text_cite) == ""


def test_answers_carry_their_timings(qa_with_pdf):
    a = qa_with_pdf.ask("When was the lighthouse painted?")
    assert set(a.timings) == {"retrieve_ms", "read_ms"} and all(v >= 0 for v in a.timings.values())


def gold_questions() -> list[GoldQuestion]:
    return [
        GoldQuestion("g1", "Who is the harbour master?", ["Solberg"], "beta.md"),
        GoldQuestion("g2", "When did the mill wheel break?", ["1911"], "gamma.txt"),
        GoldQuestion("g3", "Which station records snowfall?", ["Alpha Station"], "alpha.txt"),
        GoldQuestion("g4", "What colour is the moon cheese?", [], None),
    ]


def test_evaluation_shows_scores_misses_curve_and_stores_a_threshold_ask_uses(qa_with_pdf, tmp_path):
    q = qa_with_pdf
    before = q.threshold
    seen = []
    ev = evaluate(q, gold_questions(), "best F1", progress=lambda x, desc="": seen.append(x))
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert ev.n == 4 and ev.threshold == before
    assert ev.metrics["n_answerable"] == 3 and ev.metrics["n_unanswerable"] == 1
    rows = {r[0]: r[1] for r in misses_table(ev)}
    assert sum(v for k, v in rows.items() if k != "answered although not in the documents") == 3
    text = summary_markdown(ev)
    assert "4 questions" in text and "Suggested threshold" in text
    fig = curve_plot(ev)
    assert len(fig.axes[0].lines) >= 4
    # the tab asks each question once; its suggestion is what `qa calibrate` chooses
    asked = q.calibrate(gold_questions(), store=False)
    assert (ev.report.threshold, ev.report.curve) == (asked.threshold, asked.curve)
    # store what the tab suggests; ask() then holds answers against it
    from qa.store.threshold import THRESHOLD_FILE, save_threshold

    record = dict(ev.report.record, threshold=0.97)
    save_threshold(q.settings.index_dir, record)
    assert q.threshold == pytest.approx(0.97)
    assert q.ask("Who is the harbour master?").threshold == pytest.approx(0.97)
    stored = json.loads((q.settings.index_dir / THRESHOLD_FILE).read_text())
    assert stored["n"] == 4 and stored["reader_fingerprint"]


def test_the_tune_tab_names_thresholds_as_they_are_used(qa_with_pdf):
    """The tab showed the threshold in use to two decimals (0.125 read "0.12", and a
    guess at 0.121 was "below the 0.12 threshold"), the suggestion to three: both now
    as `qa eval` names them (up to four significant digits)."""
    from dataclasses import replace

    ev = evaluate(qa_with_pdf, gold_questions(), "best F1")
    ev = replace(ev, threshold=0.125, report=replace(ev.report, threshold=0.2387))
    text = summary_markdown(ev)
    assert "**0.125**" in text and "0.2387" in text, text
    labels = [t.get_text() for t in curve_plot(ev).axes[0].get_legend().get_texts()]
    assert "in use (0.125)" in labels and "suggested (0.2387)" in labels, labels


def test_evaluation_refuses_an_empty_gold_file(qa_with_pdf):
    from qa.errors import QAError

    with pytest.raises(QAError, match="no questions"):
        evaluate(qa_with_pdf, [])


def test_the_documents_tab_and_the_tune_tab_show_no_server_paths(qa_with_pdf, tmp_path):
    """A PDF whose file is gone: the Documents tab warned every user 'the PDF of report.pdf is no
    longer available (its file /home/.../uploads/report.pdf moved or changed)'; a gold file with a
    bad line: '/tmp/gradio/<hash>/gold.jsonl:1: ...'. Both now name the file only."""
    import shutil

    import gradio as gr

    from qa.pages import ORIGINALS
    from qa.ui.documents import _page_image
    from qa.ui.tune import build_tune_tab

    q = qa_with_pdf
    shutil.rmtree(q.settings.index_dir / ORIGINALS)
    with pytest.warns(UserWarning) as warned:
        assert _page_image(q, q.store.documents["report.pdf"], 1) is None
    text = " ".join(str(w.message) for w in warned)
    assert "report.pdf" in text and str(tmp_path) not in text

    with gr.Blocks() as demo:
        build_tune_tab(q, gr.Slider())
    run = next(bf.fn for bf in demo.fns.values() if getattr(bf.fn, "__name__", "") == "run")
    gold = tmp_path / "uploaded" / "gold.jsonl"
    gold.parent.mkdir()
    gold.write_text("not json\n", encoding="utf-8")
    message = run(str(gold), "best F1", 0.9)[0]
    assert "gold.jsonl" in message and str(tmp_path) not in message
