"""The data that flows through the pipeline: plain, explicit, offset-carrying."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """A source document as indexed. ``text`` is what offsets point into."""

    id: str
    text: str
    title: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


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


@dataclass(frozen=True)
class Answer:
    """The reply to one question.

    ``answer`` is a verbatim substring of the first citation's document, or
    ``""`` when the documents do not say (``citations`` then still lists the
    closest passages). ``score`` is the reader's calibrated probability that the
    answer is right, comparable across questions, so it can be thresholded.
    """

    question: str
    answer: str
    score: float
    citations: list[Citation] = field(default_factory=list)
    no_answer_reason: str = ""

    @property
    def found(self) -> bool:
        return bool(self.answer)
