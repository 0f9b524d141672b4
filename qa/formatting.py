"""Answers as HTML for the web chat (no models, no retrieval: presentation only).

Every piece of document text is HTML-escaped; the only markup is ours. The
reply is one HTML block without blank lines, so a Markdown renderer (Gradio's
chatbot) passes it through untouched instead of reading the passage as Markdown.
"""

from __future__ import annotations

import html
import re
from dataclasses import asdict
from typing import Any, Callable, Mapping, Sequence

from qa.reflow import Reflowed, display_passage
from qa.types import Answer, Citation, Document

NO_ANSWER = "The documents don't say."
#: Characters of context shown on each side of the answer in the source box
#: (cut at a word; the whole passage is one click away, so the box never scrolls).
EXCERPT_CONTEXT = 200
#: A passage up to this many characters is shown whole.
EXCERPT_MAX = 520
#: HTML for a citation's page image (or ""): supplied by the app (``qa.ui.chat``).
PageHtml = Callable[[Citation], str]


def _esc(text: str) -> str:
    """Escape text for HTML; newlines become <br> so no blank line ever reaches
    Markdown, and ``$`` cannot start a LaTeX formula."""
    out = html.escape(text, quote=True).replace("$", "&#36;")
    return out.replace("\r\n", "\n").replace("\n", "<br>")


_MD_SPECIAL = re.compile(r"([\\`*\[\]|!~$])")


def md_escape(text: str) -> str:
    """Document text (a title, a file name) safe inside Markdown, on one line:
    HTML-escaped (no tags, so no ``<script>``, no ``<a href="javascript:...">``)
    and the Markdown punctuation that could make a link, an image, code or
    emphasis backslash-escaped."""
    one_line = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(one_line, quote=False))


def answer_offsets(c: Citation) -> tuple[int, int] | None:
    """The answer's position inside ``c.text`` (None when the citation holds no answer)."""
    if c.answer_start < 0 or c.answer_end <= c.answer_start:
        return None
    i, j = c.answer_start - c.start, c.answer_end - c.start
    if i < 0 or j > len(c.text):
        return None
    return i, j


def highlight(c: Citation, doc: Document | None = None, mark: str = "<mark>") -> str:
    """The whole cited passage as escaped HTML with the answer span in <mark>
    (for a PDF, reflowed for reading: ``qa.reflow``)."""
    shown = display_passage(c.text, c.start, doc)
    span = answer_offsets(c)
    if span is None:
        return _esc(shown.text.strip())
    i, j = shown.span(*span)
    t = shown.text
    return _esc(t[:i].lstrip()) + mark + _esc(t[i:j]) + "</mark>" + _esc(t[j:].rstrip())


def _cut(text: str, a: int, b: int) -> tuple[int, int]:
    """[a, b) widened to whole words (never past the text)."""
    if a > 0:
        m = re.search(r"\s", text[a:])
        a = a + m.end() if m and a + m.end() <= b else a
    if b < len(text):
        m = re.search(r"\s\S*$", text[a:b])
        b = a + m.start() if m else b
    return a, b


def excerpt(c: Citation, doc: Document | None = None) -> tuple[str, bool]:
    """The part of the passage the source box shows, as escaped HTML, and
    whether it is shorter than the passage: the answer with up to
    ``EXCERPT_CONTEXT`` characters either side, so the answer is always in view
    without scrolling (the start of the passage when it holds no answer)."""
    shown: Reflowed = display_passage(c.text, c.start, doc)
    t = shown.text
    lead = len(t) - len(t.lstrip())
    t_end = len(t.rstrip())
    span = answer_offsets(c)
    if t_end - lead <= EXCERPT_MAX:
        if span is None:
            return _esc(t[lead:t_end]), False
        i, j = shown.span(*span)
        return _esc(t[lead:i]) + "<mark>" + _esc(t[i:j]) + "</mark>" + _esc(t[j:t_end]), False
    if span is None:
        a, b = _cut(t, lead, lead + EXCERPT_MAX)
        return _esc(t[a:b].strip()) + " …", True
    i, j = shown.span(*span)
    a, b = _cut(t, max(lead, i - EXCERPT_CONTEXT), min(t_end, j + EXCERPT_CONTEXT))
    a, b = min(a, i), max(b, j)
    pre = ("… " if a > lead else "") + _esc(t[a:i].lstrip())
    post = _esc(t[j:b].rstrip()) + (" …" if b < t_end else "")
    return pre + "<mark>" + _esc(t[i:j]) + "</mark>" + post, (a > lead or b < t_end)


def _apart(score: float, threshold: float, specs: Sequence[str]) -> tuple[str, str]:
    """Both figures in the first format of ``specs`` that tells them apart (the last when none does)."""
    for spec in specs:
        a, b = format(score, spec), format(threshold, spec)
        if a != b:
            break
    return a, b


def percents(score: float, threshold: float) -> tuple[str, str]:
    """``score`` and ``threshold`` as percentages that differ whenever the two do:
    a guess at 0.108 under the default 0.110 read "confidence 11%, below the 11%
    threshold". Whole percents, one or two decimals only where they round alike."""
    return _apart(score, threshold, (".0%", ".1%", ".2%"))


def fractions(score: float, threshold: float) -> tuple[str, str]:
    """``percents`` for figures shown as probabilities (the CLI, ``no_answer_reason``):
    two decimals, three or four only where two round alike (0.108 and 0.110 both
    read "0.11", so a guess seemed to score the threshold it fell below)."""
    return _apart(score, threshold, (".2f", ".3f", ".4f"))


def location(c: Citation) -> str:
    """"p. 7", "§ Installation", both, or "" (plain text has neither)."""
    return " · ".join(x for x in (f"p. {c.page}" if c.page else "", f"§ {c.section}" if c.section else "") if x)


def guess_first(lead: Citation, citations: Sequence[Citation]) -> list[Citation]:
    """The citations to show for a low-confidence guess: the guess's own passage
    first, then the others, less those that hold the guess again (overlapping
    chunks). One rule for the chat and the CLI."""
    return [lead] + [c for c in citations if not (c.doc_id == lead.doc_id and c.start <= lead.start
                                                  and lead.end <= c.end)]


def _source_line(c: Citation, documents: Mapping[str, Document] | None, score: bool) -> str:
    doc = documents.get(c.doc_id) if documents else None
    date = doc.meta.get("date") if doc is not None else None
    parts = [f'<span class="qa-title">{_esc(c.title or c.doc_id)}</span>']
    if date:
        parts.append(f'<span class="qa-date">{_esc(str(date))}</span>')
    where = location(c)
    if where:
        parts.append(f'<span class="qa-where">{_esc(where)}</span>')
    parts.append(f'<span class="qa-docid">{_esc(c.doc_id)}</span>')
    if score:
        parts.append(f'<span class="qa-score">score {c.score:.2f}</span>')
    return '<div class="qa-source-line">' + '<span class="qa-sep"> · </span>'.join(parts) + "</div>"


def _passage(c: Citation, documents: Mapping[str, Document] | None, score: bool,
             page_html: PageHtml | None = None) -> str:
    """One source: its line (title, date, page, id), the excerpt around the
    answer, the page image when the app supplies one, and the whole passage
    behind a click."""
    doc = documents.get(c.doc_id) if documents else None
    shown, cut = excerpt(c, doc)
    parts = [f'<div class="qa-cite">{_source_line(c, documents, score)}',
             f'<blockquote class="qa-passage qa-excerpt">{shown}</blockquote>']
    if page_html is not None:
        parts.append(page_html(c))
    if cut:
        parts.append('<details class="qa-whole"><summary>Whole passage</summary>'
                     f'<blockquote class="qa-passage">{highlight(c, doc, mark="<mark class=qa-whole-mark>")}'
                     "</blockquote></details>")
    parts.append("</div>")
    return "".join(parts)


def format_timings(timings: Mapping[str, float] | None) -> str:
    """"retrieve 41 ms · read 312 ms" (empty when unknown)."""
    if not timings:
        return ""
    names = (("retrieve_ms", "retrieve"), ("read_ms", "read"))
    parts = [f"{label} {timings[k]:,.0f} ms" for k, label in names if k in timings]
    return " · ".join(parts)


def format_answer(answer: Answer, documents: Mapping[str, Document] | None = None,
                  page_html: PageHtml | None = None) -> str:
    """The chat reply: the short answer, its source (title, date, passage with the
    answer marked), then the other passages in a collapsible "Sources" section.
    Without an answer: "The documents don't say.", why, and the closest passages;
    when a candidate scored below the threshold, it is shown as a low-confidence
    guess (marked as such) with its passage, the guess highlighted.

    ``documents`` (doc id -> Document) supplies dates (and, for PDFs, what the
    display reflow needs); without it they are left out. ``page_html`` gives the
    page image of the first source (the app renders PDF pages); the last line
    says how long retrieving and reading took.
    """
    parts = ['<div class="qa-reply">']
    cites = list(answer.citations)
    if answer.answer:
        parts.append(f'<div class="qa-answer">{_esc(answer.answer)}</div>')
        parts.append(f'<div class="qa-confidence">confidence {answer.score:.0%}</div>')
        label, summary = "Source", "Other sources"
    elif answer.low_confidence and answer.best_candidate_citation is not None:
        # Below the threshold: say so first, then show the guess and where it is,
        # never styled as an answer.
        lead = answer.best_candidate_citation
        parts.append(f'<div class="qa-answer qa-none">{_esc(NO_ANSWER)}</div>')
        score, threshold = f"{answer.score:.0%}", ""
        if answer.threshold is not None:
            score, below = percents(answer.score, answer.threshold)
            threshold = f", below the {below} threshold"
        parts.append('<div class="qa-lowconf"><span class="qa-lowconf-tag">Low confidence</span> '
                     f'Possible answer: <span class="qa-guess">{_esc(answer.best_candidate)}</span> '
                     f'<span class="qa-lowconf-score">(confidence {score}{threshold})</span></div>')
        cites = guess_first(lead, cites)
        label, summary = "Where the answer may be (low confidence)", "Other passages"
    else:
        reason = answer.no_answer_reason.strip()
        reason = (reason[:1].upper() + reason[1:]).rstrip(".") + "." if reason else ""
        parts.append(f'<div class="qa-answer qa-none">{_esc(NO_ANSWER)}</div>')
        if reason:
            parts.append(f'<div class="qa-reason">{_esc(reason)}</div>')
        label, summary = "Closest passage", "Other passages"
    if cites:
        parts.append(f'<div class="qa-label">{label}</div>')
        parts.append(_passage(cites[0], documents, score=not answer.answer,
                              page_html=page_html if answer_offsets(cites[0]) else None))
    others = cites[1:]
    if others:
        parts.append(f'<details class="qa-sources"><summary>{summary} ({len(others)})</summary>')
        parts.extend(_passage(c, documents, score=True) for c in others)
        parts.append("</details>")
    took = format_timings(answer.timings)
    if took:
        parts.append(f'<div class="qa-timings">{_esc(took)}</div>')
    parts.append("</div>")
    return "".join(parts)


def format_error(message: str) -> str:
    """A problem with the question (empty, too long, nothing indexed) as a reply."""
    return f'<div class="qa-reply qa-error">⚠️ {_esc(message)}</div>'


def answer_to_dict(answer: Answer) -> dict[str, Any]:
    """The Answer as plain JSON-friendly data (for API callers)."""
    return asdict(answer)


#: Styles for the classes above (passed to ``launch(css=...)``).
CSS = """
.qa-reply { line-height: 1.5; }
.qa-answer { font-size: 1.25em; font-weight: 600; margin-bottom: 2px; }
.qa-answer.qa-none { font-weight: 600; }
.qa-confidence, .qa-reason { font-size: 0.85em; opacity: 0.75; margin-bottom: 8px; }
.qa-label { font-size: 0.75em; text-transform: uppercase; letter-spacing: 0.06em; opacity: 0.65; margin-top: 6px; }
.qa-cite { margin: 4px 0 8px 0; }
.qa-source-line { font-size: 0.85em; margin-bottom: 4px; }
.qa-title { font-weight: 600; }
.qa-date, .qa-docid, .qa-score, .qa-sep { opacity: 0.7; }
.qa-date, .qa-docid, .qa-score { white-space: nowrap; }
.qa-docid { font-family: ui-monospace, monospace; font-size: 0.9em; }
blockquote.qa-passage { margin: 0 !important; padding: 6px 10px !important; overflow: visible; border-left: 3px solid var(--color-accent, #f97316) !important;
  background: var(--background-fill-secondary, rgba(0,0,0,0.03)); border-radius: 4px; font-size: 0.92em; }
.qa-sources blockquote.qa-passage { border-left-color: var(--border-color-primary, #ccc) !important; }
.qa-reply mark { background: #fde047; color: #111; padding: 0 2px; border-radius: 3px; }
details.qa-whole { margin-top: 4px; }
details.qa-whole > summary, details.qa-page-full > summary { cursor: pointer; font-size: 0.85em; opacity: 0.8; }
.qa-page { margin-top: 6px; }
.qa-page-label { font-size: 0.8em; opacity: 0.7; margin-bottom: 2px; }
.qa-reply .qa-page img { display: block; width: 100% !important; max-width: 100% !important; max-height: none !important;
  height: auto !important; border: 1px solid var(--border-color-primary, #ccc); border-radius: 4px; cursor: zoom-in; }
details.qa-page-full > summary { list-style: none; }
details.qa-page-full > summary::-webkit-details-marker { display: none; }
details.qa-page-full[open] img.qa-page-band { display: none; }
.qa-timings { font-size: 0.75em; opacity: 0.55; margin-top: 6px; }
details.qa-sources { margin-top: 8px; }
details.qa-sources > summary { cursor: pointer; font-size: 0.9em; font-weight: 600; margin-bottom: 6px; }
.qa-error { color: var(--error-text-color, #b91c1c); }
.qa-lowconf { font-size: 0.95em; margin: 2px 0 8px 0; }
.qa-lowconf-tag { font-size: 0.75em; font-weight: 600; text-transform: uppercase; letter-spacing: 0.05em;
  padding: 1px 6px; border-radius: 3px; border: 1px dashed currentColor; opacity: 0.8; }
.qa-guess { font-style: italic; }
.qa-lowconf-score { opacity: 0.7; font-size: 0.9em; }
.qa-lowconf ~ .qa-cite mark { background: transparent; border-bottom: 2px dashed #ca8a04; color: inherit; }
"""
