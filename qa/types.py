"""The data that flows through the pipeline: plain, explicit, offset-carrying."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Locator:
    """Where a character range of a document's extracted text came from: the
    page of a PDF (1-based) and/or the section heading of HTML, DOCX or Markdown."""

    start: int
    end: int
    page: int | None = None
    section: str | None = None


@dataclass(frozen=True)
class Document:
    """A source document as indexed. ``text`` is what offsets point into; for a
    PDF, HTML or Word file it is the extracted text (``qa show DOC_ID`` prints
    it), and ``locators`` map its character ranges back to pages or sections."""

    id: str
    text: str
    title: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    locators: tuple[Locator, ...] = ()

    def locate(self, offset: int) -> Locator | None:
        """The locator whose range holds ``offset`` (the last one starting at or
        before it when ranges leave gaps), or None."""
        best = None
        for loc in self.locators:
            if loc.start <= offset:
                best = loc
                if offset < loc.end:
                    return loc
            else:
                break
        return best


@dataclass(frozen=True)
class Chunk:
    """A retrievable slice of a document: ``doc.text[start:end] == text``."""

    doc_id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Citation:
    """Where an answer (or a candidate passage) comes from.

    ``start``/``end`` are character offsets into the document's text, so
    ``document.text[start:end] == text``; ``answer_start``/``answer_end`` locate
    the answer inside the document too (-1 when the passage holds no answer).
    """

    doc_id: str
    title: str
    start: int
    end: int
    text: str
    score: float
    answer_start: int = -1
    answer_end: int = -1
    page: int | None = None  # PDF page (1-based) the passage (or its answer) starts on
    section: str | None = None  # section heading (HTML, DOCX, Markdown)


@dataclass(frozen=True)
class Answer:
    """The reply to one question.

    ``answer`` is a verbatim substring of the first citation's document, or
    ``""`` when the documents do not say (``citations`` then still lists the
    closest passages). ``score`` is the reader's calibrated probability that the
    best candidate is right, comparable across questions, so it can be
    thresholded: the answer is given when ``score >= threshold``.
    """

    question: str
    answer: str
    score: float
    citations: list[Citation] = field(default_factory=list)
    no_answer_reason: str = ""
    #: The reader's best candidate whatever the threshold (equal to ``answer``
    #: when it is given; when declined, the low-confidence guess a user may
    #: still want to see), with its citation (answer offsets set) and ``score``
    #: as its probability. "" / None when no passage held any candidate.
    best_candidate: str = ""
    best_candidate_citation: Citation | None = None
    #: The threshold the answer was held against.
    threshold: float | None = None
    #: Wall-clock milliseconds of the stages behind this answer: ``retrieve_ms``
    #: (embedding the question, vector + BM25 search, fusion) and ``read_ms``
    #: (the reader over the passages). In a batch they are the whole batch's
    #: times, which is what the caller waited for.
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return bool(self.answer)

    @property
    def low_confidence(self) -> bool:
        """True when the documents were judged not to say, yet a candidate exists
        (shown as a low-confidence guess, never as the answer)."""
        return not self.answer and bool(self.best_candidate)
