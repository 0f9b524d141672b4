"""Answering: retrieve chunks, merge overlapping ones into passages, read, choose, cite.

``Answerer`` holds no index of its own: each call takes the current snapshot
once (from the ``snapshot`` callable it was given) and answers from it from
start to end, whatever a writer publishes meanwhile.
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass, replace
from numbers import Integral, Real
from typing import Any, Callable, Sequence

from qa.config import Settings
from qa.errors import ArgumentError, EmptyCorpusError, LimitError, QuestionError
from qa.formatting import fractions
from qa.reader import ReadResult
from qa.reader.calibration import answer_probability, calibration_fingerprint, rank_candidates
from qa.retrieval import Hit, Retriever, rrf
from qa.store import IndexStore
from qa.store.threshold import load_threshold
from qa.types import Answer, Chunk, Citation

History = Sequence[tuple[str, str]]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Passage:
    """Retrieved chunks of one document merged where they touch, so overlapping
    chunks are read (and cited) once."""

    doc_id: str
    start: int
    end: int
    text: str
    chunks: tuple[Chunk, ...]
    retrieval_score: float


_VISIBLE = re.compile(r"\S")


def _touch(store: IndexStore, a: Chunk, b: Chunk) -> bool:
    """Chunks of one document that overlap, or sit side by side with nothing but
    white space between them (a run-on sentence cut at ``max_words``, or no room
    for the overlap sentence): read apart, an answer across the cut would come
    out in halves."""
    if a.doc_id != b.doc_id:
        return False
    if a.start <= b.end and b.start <= a.end:
        return True
    lo, hi = (a.end, b.start) if a.end < b.start else (b.end, a.start)
    # searched in place, stopping at the first visible character: slicing the gap
    # copied up to the whole document for every pair of hits, on every question
    return _VISIBLE.search(store.documents[a.doc_id].text, lo, hi) is None


def merge_hits(store: IndexStore, hits: list[Hit]) -> list[Passage]:
    """Group hits by document and merge overlapping or adjacent chunks (``_touch``),
    keeping the order of each group's best hit."""
    groups: list[list[tuple[Chunk, float]]] = []
    for h in hits:
        c = store.chunks[h.row]
        for g in groups:
            if any(_touch(store, o, c) for o, _ in g):
                g.append((c, h.score))
                break
        else:
            groups.append([(c, h.score)])
    # A chunk may bridge two earlier groups: merge until stable.
    merged = True
    while merged:
        merged = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                if any(_touch(store, a, b) for a, _ in groups[i] for b, _ in groups[j]):
                    groups[i].extend(groups.pop(j))
                    merged = True
                    break
            if merged:
                break
    out = []
    for g in groups:
        doc = store.documents[g[0][0].doc_id]
        start = min(c.start for c, _ in g)
        end = max(c.end for c, _ in g)
        chunks = tuple(sorted({c for c, _ in g}, key=lambda c: c.start))
        out.append(Passage(doc.id, start, end, doc.text[start:end], chunks, max(s for _, s in g)))
    return out


def retrieval_query(question: str, history: History | None, turns: int) -> str:
    """The question followed by the last turns, so "he" finds the right passage."""
    if not history or turns <= 0:
        return question
    context = " ".join(f"{q} {a}" for q, a in list(history)[-turns:])
    return f"{question} {context}"


_PERSONAL = re.compile(r"\b(he|she|him|her|his)\b", re.IGNORECASE)
_NAME = re.compile(r"(?:[A-Z][\w'.-]*\s+)*[A-Z][\w'.-]*")


def antecedent(history: History | None) -> str | None:
    """Whom "he" or "she" in a follow-up most likely means: the answer to a
    "who" question, else the last proper name in the previous question.

    The reader sees one question and one passage; a bare "he" there gets
    matched to whichever person the passage names first, so the follow-up is
    read with the person put back in.
    """
    if not history:
        return None
    q, a = list(history)[-1]
    if re.match(r"\s*(who|whom|whose)\b", q, re.IGNORECASE):
        return a.strip() or None  # a declined "who" leaves no one to point at
    names = [m.group(0) for m in _NAME.finditer(q) if m.start() > 0]
    return names[-1] if names else None


def reader_question(question: str, history: History | None) -> str:
    """The question as the reader reads it: personal pronouns replaced by their
    antecedent (``antecedent``); retrieval still gets ``retrieval_query``."""
    who = antecedent(history)
    if not who or any(w in question for w in who.split() if w[:1].isupper()):
        return question  # the question names the person itself
    return _PERSONAL.sub(lambda m: who + "'s" if _possessive(m) else who, question)


#: Words after which "her" is the object ("gave her the medal", "told her about it"),
#: not the possessive ("her name"): articles, prepositions, conjunctions, adverbs.
_AFTER_OBJECT_HER = frozenset("""a an the this that these those some any each every to about with for from in
on at by as into onto of up down out off over under after before during when while if and or but nor so
because again too first last back away there then now today once twice why what how where who whom
than yet also not""".split())
_NEXT_WORD = re.compile(r"\s+([A-Za-z][\w'-]*)")


def _possessive(m: re.Match) -> bool:
    """'his' always; 'her' when a word follows that is not one it is the object before."""
    word = m.group(1).lower()
    if word == "his":
        return True
    if word != "her":
        return False
    nxt = _NEXT_WORD.match(m.string, m.end())
    return nxt is not None and nxt.group(1).lower() not in _AFTER_OBJECT_HER


def check_question(question: Any, limit: int) -> str:
    """The question stripped, or a ``QuestionError`` saying what is wrong with it."""
    if not isinstance(question, str):
        raise QuestionError(f"the question must be a string, not {type(question).__name__}")
    q = question.strip()
    if not q:
        raise QuestionError("the question is empty: type a question about your documents")
    if len(q) > limit:
        raise QuestionError(f"the question is {len(q)} characters long; the limit is {limit}")
    try:
        q.encode("utf-8")
    except UnicodeEncodeError as e:
        raise QuestionError(f"the question holds a character that is not valid text (position {e.start}); "
                            "retype or paste it again") from None
    if not any(ch.isalnum() for ch in q):
        raise QuestionError("the question has no words in it: type a question about your documents")
    return q


def check_questions(questions: Any, limit: int) -> list[str]:
    """Each question checked by ``check_question``; a bare string (which would
    be read as one question per character) or a non-list is an ``ArgumentError``."""
    if isinstance(questions, (str, bytes)) or not isinstance(questions, Sequence):
        raise ArgumentError(f"questions must be a list of strings, not {type(questions).__name__}")
    return [check_question(q, limit) for q in questions]


def check_top_k(top_k: Any, default: int, limit: int | None = None) -> int:
    if top_k is None:
        return default
    if isinstance(top_k, bool) or not isinstance(top_k, Integral):
        raise ArgumentError(f"top_k must be a whole number of passages, not {top_k!r:.40}")
    if top_k < 1:
        raise ArgumentError(f"top_k must be at least 1, not {top_k}")
    if limit is not None and top_k > limit:
        raise LimitError(f"top_k is {top_k:,} passages; the limit is {limit} (limits.max_top_k)")
    return int(top_k)


def check_min_score(min_score: Any) -> float | None:
    if min_score is None:
        return None
    if isinstance(min_score, bool) or not isinstance(min_score, Real) or math.isnan(min_score) \
            or not 0.0 <= min_score <= 1.0:
        raise ArgumentError(f"min_score must be a probability between 0 and 1, not {min_score!r}")
    return float(min_score)


def check_history(history: Any, limit: int, max_turns: int | None = None,
                  max_chars: int | None = None) -> list[tuple[str, str]] | None:
    """A conversation as (question, answer) pairs of strings, or an ``ArgumentError``
    (a ``LimitError`` when it has more turns or characters than allowed)."""
    if history is None:
        return None
    if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
        raise ArgumentError("history must be a list of (question, answer) pairs")
    if max_turns is not None and len(history) > max_turns:
        raise LimitError(f"the history has {len(history):,} turns; the limit is {max_turns} "
                         "(limits.max_history_turns): start a new conversation")
    out = []
    for n, turn in enumerate(history):
        if isinstance(turn, (str, bytes)) or not isinstance(turn, Sequence) or len(turn) != 2 \
                or not all(isinstance(x, str) for x in turn):
            raise ArgumentError(f"history turn {n} must be a (question, answer) pair of strings, not {turn!r}")
        out.append((check_question(turn[0], limit), turn[1]))
        try:
            turn[1].encode("utf-8")
        except UnicodeEncodeError as e:
            raise ArgumentError(f"history turn {n}: the answer holds a character that is not valid text "
                                f"(position {e.start})") from None
    if max_chars is not None:
        total = sum(len(q) + len(a) for q, a in out)
        if total > max_chars:
            raise LimitError(f"the history holds {total:,} characters; the limit is {max_chars:,} "
                             "(limits.max_history_chars): start a new conversation")
    return out


class Answerer:
    """Questions in, cited answers out, from a given snapshot."""

    def __init__(self, retriever: Retriever, reader: Any, settings: Settings,
                 snapshot: Callable[[], IndexStore]) -> None:
        self.retriever = retriever
        self.reader = reader
        self.settings = settings
        self.snapshot = snapshot
        self._warned: set[str] = set()

    def ask_batch(
        self,
        questions: Sequence[str],
        histories: Sequence[History | None] | None = None,
        top_k: int | None = None,
        min_score: float | None = None,
        mode: str | None = None,
    ) -> list[Answer]:
        """Answer many questions with one batched retrieval and one batched read."""
        limit = self.settings.max_question_chars
        qs = check_questions(questions, limit)
        if histories is None:
            histories = [None] * len(qs)
        if isinstance(histories, (str, bytes)) or not isinstance(histories, Sequence) or len(histories) != len(qs):
            raise ArgumentError("histories must be a list matching questions one to one")
        lim = self.settings.limits
        hs = [check_history(h, limit, lim.max_history_turns, lim.max_history_chars) for h in histories]
        k = check_top_k(top_k, self.settings.retrieval.top_k, lim.max_top_k)
        threshold = check_min_score(min_score)
        store = self.snapshot()
        if len(store) == 0:
            # The folder named, as IndexMissingError does: `qa index PATH...` alone adds to the default index.
            raise EmptyCorpusError(f"no documents are indexed: add some with "
                                   f"`qa index PATH... --index {self.settings.index_dir}`")
        timings: dict[str, float] = {}
        passages, results = self._read(store, qs, hs, k, mode, timings)
        threshold = self.effective_threshold(threshold)
        return [replace(self._assemble(store, q, ps, r, threshold), timings=dict(timings))
                for q, ps, r in zip(qs, passages, results)]

    def effective_threshold(self, min_score: float | None = None) -> float:
        """The one place the operating threshold is decided: a call's own
        ``min_score``, else the configured ``reader.min_score``, else the one
        ``qa calibrate`` stored with the index, else the reader's calibrated one
        (chosen on validation articles). ``QA.threshold``, the CLI, the app and
        evaluation all ask this."""
        return self.operating_point(min_score)[0]

    def operating_point(self, min_score: float | None = None) -> tuple[float, str]:
        """``effective_threshold`` and where it came from (``qa info`` says it: a
        threshold a user did not expect is the first thing to check)."""
        t = check_min_score(min_score)
        if t is not None:
            return t, "this call's min_score"
        t = getattr(self.reader.config, "min_score", None)
        if t is not None:
            return float(t), "settings: reader.min_score"
        record = load_threshold(self.settings.index_dir)
        if record is not None:
            fp = record.get("reader_fingerprint")
            if fp and self.reader.loaded and fp != calibration_fingerprint(self.reader.calibration) \
                    and fp not in self._warned:
                self._warned.add(fp)
                log.warning("the threshold in %s was chosen with another reader's calibration; "
                            "run `qa calibrate` again", self.settings.index_dir)
            return float(record["threshold"]), "`qa calibrate`, stored with the index"
        return float(self.reader.threshold), "the reader's calibration (chosen on validation articles)"

    def read(self, questions: Sequence[str], top_k: int | None = None,
             mode: str | None = None) -> tuple[list[list[Passage]], list[ReadResult]]:
        """The passages and raw reader output behind ``ask_batch``, before any
        threshold (for calibrating the threshold on exactly what ``ask`` sees)."""
        qs = check_questions(questions, self.settings.max_question_chars)
        k = check_top_k(top_k, self.settings.retrieval.top_k, self.settings.limits.max_top_k)
        return self._read(self.snapshot(), qs, [None] * len(qs), k, mode)

    def _read(self, store: IndexStore, qs: list[str], histories: list, k: int,
              mode: str | None, timings: dict[str, float] | None = None) -> tuple[list[list[Passage]], list[ReadResult]]:
        t0 = time.perf_counter()
        hits = self._retrieve(store, qs, histories, k, mode)
        passages = [merge_hits(store, h) for h in hits]
        read_qs = [reader_question(q, h) for q, h in zip(qs, histories)]
        t1 = time.perf_counter()
        results = self.reader.run(read_qs, [[p.text for p in ps] for ps in passages])
        if timings is not None:
            timings["retrieve_ms"] = round(1000.0 * (t1 - t0), 1)
            timings["read_ms"] = round(1000.0 * (time.perf_counter() - t1), 1)
        return passages, results

    def retrieve(self, questions: Sequence[str], top_k: int | None = None,
                 mode: str | None = None) -> list[list[Chunk]]:
        """Retrieval alone (for evaluation and debugging): top-k chunks per question."""
        # Not capped by limits.max_top_k (evaluation ranks 100 deep; retrieval alone is cheap),
        # but never deeper than the index.
        qs = check_questions(questions, self.settings.max_question_chars)
        k = check_top_k(top_k, self.settings.retrieval.top_k)
        store = self.snapshot()
        k = max(1, min(k, len(store)))
        hits = self._retrieve(store, qs, [None] * len(qs), k, mode)
        return [[store.chunks[h.row] for h in hs] for hs in hits]

    def _retrieve(self, store: IndexStore, qs: list[str], histories: list, k: int, mode: str | None) -> list[list[Hit]]:
        turns = self.settings.history_turns
        expanded = [retrieval_query(q, h, turns) for q, h in zip(qs, histories)]
        extra = [i for i, (q, e) in enumerate(zip(qs, expanded)) if e != q]
        ranked = self.retriever.run(store, qs + [expanded[i] for i in extra], top_k=k, mode=mode)
        out = ranked[: len(qs)]
        # Follow-ups: fuse the plain question's ranking with the history-aware one,
        # so an unrelated earlier turn cannot push the right passage out.
        for n, i in enumerate(extra):
            out[i] = rrf([out[i], ranked[len(qs) + n]], [1.0, 1.0], self.settings.retrieval.rrf_k)[:k]
        return out

    def _assemble(self, store: IndexStore, question: str, passages: list[Passage], result: ReadResult,
                  threshold: float) -> Answer:
        """Pick the answer across all passages (``qa.reader.calibration``: a choice
        model over the reader's evidence, the passage's rank and the question's
        coverage when the reader's calibration has one, else the best raw margin),
        hold it against the threshold, cite."""
        cal = self.reader.calibration
        contexts = [p.text for p in passages]
        retrieval = [p.retrieval_score for p in passages]
        ranked = rank_candidates(result, cal, contexts, retrieval, question)
        best_by_passage: dict[int, float] = {}
        for cand in ranked:  # best first: the first seen per passage is its best
            if cand.span.passage not in best_by_passage:
                best_by_passage[cand.span.passage] = answer_probability(cand, cal, contexts, retrieval)

        def cite(i: int, answer_span: tuple[int, int] | None = None) -> Citation:
            ps = passages[i]
            doc = store.documents[ps.doc_id]
            score = best_by_passage.get(i, 0.0)
            if answer_span is None:
                loc = doc.locate(ps.start)
                return Citation(ps.doc_id, doc.title, ps.start, ps.end, ps.text, score,
                                page=loc.page if loc else None, section=loc.section if loc else None)
            a0, a1 = answer_span
            # Cite the tightest retrieved chunk that holds the whole answer, and
            # the page or section the answer itself is on.
            holding = [c for c in ps.chunks if c.start <= a0 and a1 <= c.end]
            c = min(holding, key=lambda c: c.end - c.start) if holding else None
            start, end, text = (c.start, c.end, c.text) if c else (ps.start, ps.end, ps.text)
            loc = doc.locate(a0)
            return Citation(ps.doc_id, doc.title, start, end, text, score, a0, a1,
                            page=loc.page if loc else None, section=loc.section if loc else None)

        if not ranked:
            order = sorted(range(len(passages)), key=lambda i: -best_by_passage.get(i, 0.0))
            return Answer(question, "", 0.0, [cite(i) for i in order], "the documents do not seem to say",
                          threshold=threshold)
        best = ranked[0].span
        prob = best_by_passage[best.passage]
        ps = passages[best.passage]
        a0, a1 = ps.start + best.start, ps.start + best.end
        text = store.documents[ps.doc_id].text[a0:a1]
        best_cite = cite(best.passage, (a0, a1))
        if prob < threshold:
            order = sorted(range(len(passages)), key=lambda i: -best_by_passage.get(i, 0.0))
            shown, below = fractions(prob, threshold)
            reason = f"the closest candidate, {text!r}, scored {shown}, below the {below} threshold"
            return Answer(question, "", prob, [cite(i) for i in order], reason,
                          best_candidate=text, best_candidate_citation=best_cite, threshold=threshold)
        others = sorted((i for i in range(len(passages)) if i != best.passage),
                        key=lambda i: -best_by_passage.get(i, 0.0))
        return Answer(question, text, prob, [best_cite] + [cite(i) for i in others],
                      best_candidate=text, best_candidate_citation=best_cite, threshold=threshold)
