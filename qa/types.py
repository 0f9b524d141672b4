"""The data that flows through the pipeline: plain, explicit, offset-carrying."""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from qa.errors import DocumentFieldError

#: Longest document id accepted (ids are shown, stored in every snapshot and used as file-like names).
MAX_ID_CHARS = 1024


@dataclass(frozen=True)
class Locator:
    """Where a character range of a document's extracted text came from: the
    page of a PDF (1-based) and/or the section heading of HTML, DOCX or Markdown."""

    start: int
    end: int
    page: int | None = None
    section: str | None = None


def _unencodable(s: str) -> int | None:
    """Position of the first lone surrogate in ``s`` (not storable as UTF-8), or None."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        return e.start
    return None


def check_doc_id(doc_id: Any, field_name: str = "id") -> str:
    """``doc_id`` when the index can store it and show it back unchanged: a
    non-empty string of printable characters, a relative name whose parts are
    separated by ``/`` (as folder indexing makes them: ``notes/a.txt``), with no
    backslash and no empty, ``.`` or ``..`` part; else a ``DocumentFieldError``."""
    if not isinstance(doc_id, str):
        raise DocumentFieldError(field_name, f"must be a string, not {type(doc_id).__name__} ({doc_id!r:.60})")
    if not doc_id.strip():
        raise DocumentFieldError(field_name, "must not be empty or blank")
    if len(doc_id) > MAX_ID_CHARS:
        raise DocumentFieldError(field_name, f"is {len(doc_id):,} characters long; the limit is {MAX_ID_CHARS:,}")
    bad = _unencodable(doc_id)
    if bad is not None:
        raise DocumentFieldError(field_name, f"holds a lone surrogate at position {bad} (not valid text)")
    for i, ch in enumerate(doc_id):
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch != "\u200d":
            raise DocumentFieldError(field_name, f"holds the control character {ch!r} at position {i}")
    if "\\" in doc_id:
        raise DocumentFieldError(field_name, f"{doc_id!r:.80} holds a backslash; use / between folder names")
    parts = doc_id.split("/")
    if doc_id.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise DocumentFieldError(field_name, f"{doc_id!r:.80} is not a relative name (no leading /, no empty, "
                                             "'.' or '..' parts)")
    return doc_id


def _check_json(value: Any, field_name: str) -> None:
    try:
        dumped = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise DocumentFieldError(field_name, f"must be JSON data (strings, numbers, lists, objects): {e}") from None
    bad = _unencodable(dumped)
    if bad is not None:
        raise DocumentFieldError(field_name, "holds a lone surrogate (not valid text)")
    if json.loads(dumped) != value:  # tuples, non-string keys: would come back as something else
        raise DocumentFieldError(field_name, "would not read back unchanged from JSON (use lists and string keys)")


def _check_locators(locators: Any, n_chars: int) -> tuple[Locator, ...]:
    if isinstance(locators, (str, bytes, dict)):
        raise DocumentFieldError("locators", f"must be a tuple of Locator, not {type(locators).__name__}")
    try:
        locs = tuple(locators)
    except TypeError:
        raise DocumentFieldError("locators", f"must be a tuple of Locator, not {type(locators).__name__}") from None
    for n, lc in enumerate(locs):
        if not isinstance(lc, Locator):
            raise DocumentFieldError("locators", f"item {n} is a {type(lc).__name__}, not a Locator")
        ints = (lc.start, lc.end) + ((lc.page,) if lc.page is not None else ())
        if any(isinstance(x, bool) or not isinstance(x, int) for x in ints):
            raise DocumentFieldError("locators", f"item {n}: start, end and page must be whole numbers")
        if not 0 <= lc.start <= lc.end <= n_chars:
            raise DocumentFieldError("locators", f"item {n} ({lc.start}..{lc.end}) is outside the text "
                                                 f"(0..{n_chars})")
        if lc.page is not None and lc.page < 1:
            raise DocumentFieldError("locators", f"item {n}: page {lc.page} (pages count from 1)")
        if lc.section is not None and (not isinstance(lc.section, str) or _unencodable(lc.section) is not None):
            raise DocumentFieldError("locators", f"item {n}: section must be valid text or None")
    return locs


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

    def __post_init__(self) -> None:
        """Checked once, here, so nothing the index cannot store and read back
        (a ``None`` id, a ``../`` id, a lone surrogate, an empty text) ever gets
        as far as a snapshot: each is a ``DocumentFieldError`` naming the field."""
        check_doc_id(self.id)
        if not isinstance(self.text, str):
            raise DocumentFieldError("text", f"must be a string, not {type(self.text).__name__}")
        if not self.text.strip():
            raise DocumentFieldError("text", "is empty or blank: there is nothing to index")
        bad = _unencodable(self.text)
        if bad is not None:
            raise DocumentFieldError("text", f"holds a lone surrogate at position {bad} (not valid text)")
        if not isinstance(self.title, str):
            raise DocumentFieldError("title", f"must be a string, not {type(self.title).__name__}")
        if _unencodable(self.title) is not None:
            raise DocumentFieldError("title", "holds a lone surrogate (not valid text)")
        if not isinstance(self.meta, dict):
            raise DocumentFieldError("meta", f"must be a dict, not {type(self.meta).__name__}")
        _check_json(self.meta, "meta")
        object.__setattr__(self, "locators", _check_locators(self.locators, len(self.text)))

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
