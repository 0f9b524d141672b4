"""Answers as HTML for the web chat (no models, no retrieval: presentation only).

Every piece of document text is HTML-escaped; the only markup is ours. The
reply is one HTML block without blank lines, so a Markdown renderer (Gradio's
chatbot) passes it through untouched instead of reading the passage as Markdown.
"""

from __future__ import annotations

import html
from dataclasses import asdict
from typing import Any, Mapping, Sequence

from qa.types import Answer, Citation, Document

NO_ANSWER = "The documents don't say."


def _esc(text: str) -> str:
    """Escape text for HTML; newlines become <br> so no blank line ever reaches
    Markdown, and ``$`` cannot start a LaTeX formula."""
    out = html.escape(text, quote=True).replace("$", "&#36;")
    return out.replace("\r\n", "\n").replace("\n", "<br>")


def answer_offsets(c: Citation) -> tuple[int, int] | None:
    """The answer's position inside ``c.text`` (None when the citation holds no answer)."""
    if c.answer_start < 0 or c.answer_end <= c.answer_start:
        return None
    i, j = c.answer_start - c.start, c.answer_end - c.start
    if i < 0 or j > len(c.text):
        return None
    return i, j


def highlight(c: Citation) -> str:
    """The cited passage as escaped HTML with the answer span in <mark>."""
    span = answer_offsets(c)
    if span is None:
        return _esc(c.text.strip())
    i, j = span
    return (_esc(c.text[:i].lstrip()) + "<mark>" + _esc(c.text[i:j]) + "</mark>"
            + _esc(c.text[j:].rstrip()))


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


def _passage(c: Citation, documents: Mapping[str, Document] | None, score: bool) -> str:
    return (f'<div class="qa-cite">{_source_line(c, documents, score)}'
            f'<blockquote class="qa-passage">{highlight(c)}</blockquote></div>')


def format_answer(answer: Answer, documents: Mapping[str, Document] | None = None) -> str:
    """The chat reply: the short answer, its source (title, date, passage with the
    answer marked), then the other passages in a collapsible "Sources" section.
    Without an answer: "The documents don't say.", why, and the closest passages;
    when a candidate scored below the threshold, it is shown as a low-confidence
    guess (marked as such) with its passage, the guess highlighted.

    ``documents`` (doc id -> Document) supplies dates; without it they are left out.
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
        threshold = f", below the {answer.threshold:.0%} threshold" if answer.threshold is not None else ""
        parts.append('<div class="qa-lowconf"><span class="qa-lowconf-tag">Low confidence</span> '
                     f'Possible answer: <span class="qa-guess">{_esc(answer.best_candidate)}</span> '
                     f'<span class="qa-lowconf-score">(confidence {answer.score:.0%}{threshold})</span></div>')
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
        parts.append(_passage(cites[0], documents, score=not answer.answer))
    others = cites[1:]
    if others:
        parts.append(f'<details class="qa-sources"><summary>{summary} ({len(others)})</summary>')
        parts.extend(_passage(c, documents, score=True) for c in others)
        parts.append("</details>")
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
blockquote.qa-passage { margin: 0 !important; padding: 6px 10px !important; max-height: 16em; overflow-y: auto; border-left: 3px solid var(--color-accent, #f97316) !important;
  background: var(--background-fill-secondary, rgba(0,0,0,0.03)); border-radius: 4px; font-size: 0.92em; }
.qa-sources blockquote.qa-passage { border-left-color: var(--border-color-primary, #ccc) !important; max-height: 12em; overflow-y: auto; }
.qa-reply mark { background: #fde047; color: #111; padding: 0 2px; border-radius: 3px; }
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
