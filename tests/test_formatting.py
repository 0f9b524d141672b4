"""Replies as HTML: the answer in view (an excerpt around it, the whole passage
behind a click), PDF text reflowed for reading with exact offsets, timings,
and document text escaped everywhere (no models)."""

from __future__ import annotations

import html
import re

from qa.formatting import EXCERPT_CONTEXT, EXCERPT_MAX, excerpt, format_answer, format_timings, highlight
from qa.reflow import Reflowed, display_passage, reflow
from qa.types import Answer, Citation, Document

FILLER = "The committee reviewed routine matters of procedure and approved the minutes. "


def cite(text: str, answer: str | None, start: int = 0, doc_id: str = "d", title: str = "T") -> Citation:
    if answer is None:
        return Citation(doc_id, title, start, start + len(text), text, 0.5)
    i = text.index(answer)
    return Citation(doc_id, title, start, start + len(text), text, 0.5, start + i, start + i + len(answer))


def pdf_doc(text: str, hyphens: list[int] = ()) -> Document:
    meta = {"format": "pdf", "pages": "1"}
    if hyphens:
        meta["soft_hyphens"] = ",".join(map(str, hyphens))
    return Document("r.pdf", text, "Report", meta)


def plain(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def test_reflow_joins_wrapped_lines_and_keeps_paragraphs():
    text = ("The committee reviewed the\nroutine matters of procedure and\nadjourned at noon.\n\n"
            "Results\nThe vote was carried by a large majority of the\nmembers present.")
    r = reflow(text)
    assert r.text == ("The committee reviewed the routine matters of procedure and adjourned at noon.\n\n"
                      "Results\nThe vote was carried by a large majority of the members present.")
    assert len(r.source) == len(r.text)


def test_reflow_keeps_list_items_and_short_sentence_ends():
    text = "Agenda for the meeting of the full board:\n- budget\n- audit\nThe long line that goes on and on here.\nEnd."
    r = reflow(text)
    assert "\n- budget\n- audit\n" in r.text


def test_line_break_hyphens_are_undone_when_the_word_is_a_word():
    # PDFium joins a word broken at a line end with a hyphen it marks (recorded by the loader)
    text = "An example here. Every exam-ple of a well-known rule, well-\nknown to all, and a non-sense- word."
    soft = [text.index("exam-") + 4]
    r = reflow(text, soft)
    assert "Every example of" in r.text  # "example" is a word of the text
    assert "well-known to all" in r.text  # the hyphenated form is: the hyphen stays, the line joins
    i = text.index("rule")
    assert r.text[slice(*r.span(i, i + 4))] == "rule"


def test_reflow_offsets_round_trip():
    text = "Alpha beta gam-\nma delta.\nEpsilon zeta eta theta iota kappa lambda mu nu xi omicron.\n\nPi rho."
    r = reflow(text, [])
    for word in ("Alpha", "delta", "Epsilon", "omicron", "Pi rho"):
        i = text.index(word)
        a, b = r.span(i, i + len(word))
        assert r.text[a:b] == word
    for k, src in enumerate(r.source):
        assert r.text[k] == text[src] or (text[src] == "\n" and r.text[k] == " ")


def test_only_pdfs_are_reflowed():
    text = "line one\nline two"
    assert display_passage(text, 0, Document("a.txt", text)).text == text
    assert display_passage(text, 0, pdf_doc(text)).text == "line one line two"
    assert display_passage(text, 0, None) == Reflowed.identity(text)


def test_a_long_passage_opens_on_an_excerpt_around_the_answer():
    text = FILLER * 12 + "The chair is Margarethe Olsson, appointed in March. " + FILLER * 12
    c = cite(text, "Margarethe Olsson")
    shown, cut = excerpt(c)
    assert cut and len(plain(shown)) <= 2 * EXCERPT_CONTEXT + len("Margarethe Olsson") + 8
    assert shown.startswith("… ") and shown.endswith(" …")
    assert "<mark>Margarethe Olsson</mark>" in shown
    reply = format_answer(Answer("q", "Margarethe Olsson", 0.8, [c]))
    head, whole = reply.split('<details class="qa-whole">', 1)
    assert "<mark>Margarethe Olsson</mark>" in head
    assert "<summary>Whole passage</summary>" in whole and "qa-whole-mark>Margarethe Olsson</mark>" in whole
    assert plain(whole).count("committee") == 24
    # the source box never scrolls: no height cap in the styles
    from qa.formatting import CSS

    assert "max-height" not in CSS.split("blockquote.qa-passage", 1)[1].split("}", 1)[0]


def test_the_answer_at_either_end_of_a_passage_is_in_the_excerpt():
    for text in ("Olsson chairs. " + FILLER * 10, FILLER * 10 + "The chair: Olsson"):
        shown, cut = excerpt(cite(text, "Olsson"))
        assert cut and "<mark>Olsson</mark>" in shown


def test_a_short_passage_is_shown_whole_without_a_details_block():
    text = FILLER + "The chair is Olsson."
    assert len(text) < EXCERPT_MAX
    reply = format_answer(Answer("q", "Olsson", 0.8, [cite(text, "Olsson")]))
    assert "qa-whole" not in reply and "<mark>Olsson</mark>" in reply and "…" not in reply


def test_pdf_passages_are_reflowed_and_marked_at_the_right_place():
    text = "The audit was chaired\nby Margarethe Olsson who\nsigned the report."
    doc = pdf_doc(text)
    c = cite(text, "Olsson")
    assert plain(highlight(c, doc)) == "The audit was chaired by Margarethe Olsson who signed the report."
    assert "<mark>Olsson</mark>" in highlight(c, doc)
    reply = format_answer(Answer("q", "Olsson", 0.9, [c]), {"d": doc})
    assert "chaired<br>by" not in reply and "chaired by Margarethe <mark>Olsson</mark>" in reply


def test_timings_line_and_page_hook():
    c = cite(FILLER + "Olsson.", "Olsson")
    other = cite(FILLER, None, doc_id="e")
    a = Answer("q", "Olsson", 0.9, [c, other], timings={"retrieve_ms": 41.2, "read_ms": 1312.0})
    called = []
    reply = format_answer(a, page_html=lambda cc: called.append(cc.doc_id) or '<div class="qa-page">P</div>')
    assert called == ["d"]  # only the cited answer's page, not the other sources'
    assert '<div class="qa-timings">retrieve 41 ms · read 1,312 ms</div>' in reply
    assert format_timings({}) == ""
    assert "qa-timings" not in format_answer(Answer("q", "Olsson", 0.9, [c]))


def test_hostile_text_stays_text_in_excerpts_and_titles():
    evil = '<img src=x onerror="alert(1)"> <script>alert(2)</script> <a href="javascript:alert(3)">x</a> '
    text = FILLER * 8 + evil + "The code is 4711. " + evil + FILLER * 8
    c = cite(text, "4711", title=evil, doc_id=evil)
    reply = format_answer(Answer("q", "4711", 0.9, [c], timings={"read_ms": 1.0}), {})
    assert "<img" not in reply and "<script" not in reply and "<a " not in reply
    assert "&lt;script&gt;" in reply and "javascript:alert(3)" in plain(reply)


def test_a_guess_just_below_the_threshold_does_not_read_as_equal_to_it():
    """A guess at 0.108 under the default 0.110 read "confidence 11%, below the 11% threshold"."""
    guess = cite("The harbour master is Ingrid Solberg.", "Ingrid Solberg")

    def shown(score: float, threshold: float) -> str:
        a = Answer("Who is the harbour master?", "", score, [], "below the threshold",
                   best_candidate="Ingrid Solberg", best_candidate_citation=guess, threshold=threshold)
        return re.search(r'class="qa-lowconf-score">\((.*?)\)<', format_answer(a)).group(1)

    assert shown(0.108, 0.110) == "confidence 10.8%, below the 11.0% threshold"
    assert shown(0.4996, 0.5) == "confidence 49.96%, below the 50.00% threshold"
    assert shown(0.2, 0.4) == "confidence 20%, below the 40% threshold"  # whole percents where they differ
