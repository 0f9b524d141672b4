"""From raw span scores to a probability that can be thresholded, and the choice
of one answer among the candidates of every retrieved passage.

For each candidate span the reader computes the margin ``span_score -
null_score`` of its window (the SQuAD 2.0 "is there an answer here" log-odds).
Raw margins come from one window each and are not comparable across passages,
so the answer to a question is picked by a *choice model*: a logistic
regression over features of each candidate (its margin and null score, how far
it is behind the question's best span, its length, how many other candidates
say the same thing, its passage's rank, and how much of the question its
sentence covers; ``SIZE_FREE_FEATURES``: no retrieval scores, whose scale moves
with the size of the index, so one probability means the same on one document
and on thousands) fitted on validation questions
(``qa.training.calibrate_reader``). The candidate with the highest probability
wins; its probability is then re-calibrated on the winners (a second logistic
over the winner's choice log-odds and features, fitted across questions: the
choice model ranks candidates within a question, this one says how sure the
winner is compared with other questions' winners), giving ``Answer.score``:
P(the answer is right), comparable across questions and documents, so one
threshold decides when to say "not in the documents".

``calibration.json`` beside the weights holds ``{a, b, threshold}`` (the plain
margin calibration, still used when the file has no choice model, or when the
caller gives no passage texts) and optionally ``choice: {"open": ..., "reader":
...}`` (one model for passages that come from retrieval, one for a passage given
alone). Files without ``choice`` behave exactly as before.

A user's own operating point (``qa calibrate``) is stored with the index
(``qa.store.threshold``) and takes precedence over the model's threshold; the
``Answerer`` decides which one applies.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from qa.errors import ModelError
from qa.reader.decoding import ReadResult, Span


CALIBRATION_FILE = "calibration.json"

#: Features a choice model may use (names are stored in calibration.json).
FEATURES: tuple[str, ...] = (
    "margin",       # span score - its window's null score
    "null",         # the window's null score
    "gap",          # best margin of the question - this margin (>= 0)
    "span_rank",    # log(1 + rank of the span by margin among the question's candidates)
    "log_words",    # log(1 + words in the answer)
    "agree",        # log(1 + other candidates with the same normalised text)
    "retrieval",    # the passage's retrieval score
    "retrieval_gap",  # best retrieval score of the question - this passage's
    "passage_rank",  # log(1 + rank of the passage in retrieval order)
    "q_overlap",    # share of the question's content words in the answer's sentence
    "q_missing",    # log(1 + question content words found neither in that sentence nor its neighbours)
)
READER_FEATURES: tuple[str, ...] = FEATURES[:6]  # a passage given alone: no retrieval evidence
OPEN_FEATURES: tuple[str, ...] = FEATURES[:9]
#: Evidence that means the same however many chunks the index holds: the
#: reader's, the passage's rank, and how much of the question the answer's
#: sentence covers; no retrieval scores (their scale moves with corpus size).
#: One model serves both settings (a passage given alone has rank 0).
SIZE_FREE_FEATURES: tuple[str, ...] = FEATURES[:6] + ("passage_rank", "q_overlap", "q_missing")

_WORD = re.compile(r"\w+", re.UNICODE)
_ARTICLES = {"a", "an", "the"}
_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")
#: Question words that carry no content (the question's form, not its topic).
_STOP = frozenset("""a an the of in on at to for by with from as and or but is are was were be been being do does did
has have had what which who whom whose when where why how many much long old this that these those it its
he she they them his her their there than then into about after before during over under not no s""".split())


def _stem(w: str) -> str:
    """A crude stem (first five letters): "replaced" and "replacing" meet, no library needed."""
    return w[:5]


def content_words(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP}


def _sentence_cuts(context: str) -> list[int]:
    return [0] + [m.end() for m in _SENTENCE_END.finditer(context)] + [len(context)]


def _sentences_around(context: str, start: int, end: int, cuts: list[int] | None = None) -> tuple[str, str]:
    """(the sentence(s) holding [start, end), that with one sentence either side)."""
    cuts = _sentence_cuts(context) if cuts is None else cuts
    i = max(bisect.bisect_right(cuts, start) - 1, 0)
    j = min(bisect.bisect_left(cuts, end), len(cuts) - 1)
    return context[cuts[i]:cuts[j]], context[cuts[max(0, i - 1)]:cuts[min(len(cuts) - 1, j + 1)]]


def _norm(text: str) -> str:
    return " ".join(w for w in _WORD.findall(text.lower()) if w not in _ARTICLES)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    if z < -700:
        return 0.0
    e = math.exp(z)
    return e / (1.0 + e)


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


@dataclass(frozen=True)
class ChoiceModel:
    """p(candidate is right) = sigmoid(coef . (x - mean) / scale + intercept);
    the chosen candidate's probability then goes through sigmoid(answer_a *
    logit(p) + answer_b)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    answer_a: float = 1.0
    answer_b: float = 0.0
    #: Confidence of the winner across questions: weights of its (standardised)
    #: features added to the Platt step (empty: Platt step alone).
    answer_coef: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown:
            raise ModelError(f"calibration: unknown choice feature(s) {unknown}; known: {', '.join(FEATURES)}")
        n = len(self.features)
        if not (len(self.mean) == len(self.scale) == len(self.coef) == n) or len(self.answer_coef) not in (0, n):
            raise ModelError("calibration: choice model arrays do not match its feature list")

    @property
    def uses_retrieval(self) -> bool:
        return any(f.startswith("retrieval") for f in self.features)

    def candidate_probability(self, feats: Mapping[str, float]) -> float:
        z = self.intercept
        for f, m, s, c in zip(self.features, self.mean, self.scale, self.coef):
            z += c * (feats[f] - m) / (s or 1.0)
        return _sigmoid(z)

    def standardised(self, feats: Mapping[str, float]) -> list[float]:
        return [(feats[f] - m) / (s or 1.0) for f, m, s in zip(self.features, self.mean, self.scale)]

    def answer_probability(self, p: float, feats: Mapping[str, float] | None = None) -> float:
        """P(the winner is right) from its choice probability ``p`` (and its features)."""
        z = self.answer_a * _logit(p) + self.answer_b
        if self.answer_coef and feats is not None:
            z += sum(c * x for c, x in zip(self.answer_coef, self.standardised(feats)))
        return _sigmoid(z)

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(self.features), "mean": list(self.mean), "scale": list(self.scale),
                "coef": list(self.coef), "intercept": self.intercept,
                "answer": [self.answer_a, self.answer_b], "answer_coef": list(self.answer_coef)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ChoiceModel":
        try:
            a2, b2 = d.get("answer", (1.0, 0.0))
            return cls(tuple(d["features"]), tuple(map(float, d["mean"])), tuple(map(float, d["scale"])),
                       tuple(map(float, d["coef"])), float(d["intercept"]), float(a2), float(b2),
                       tuple(map(float, d.get("answer_coef", ()))))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"calibration: malformed choice model ({e})") from e


@dataclass(frozen=True)
class Calibration:
    """p(correct) = sigmoid(a * margin + b) for the plain margin; optional
    choice models (``choice["open"]``, ``choice["reader"]``); ``threshold``
    chosen on validation."""

    a: float = 1.0
    b: float = 0.0
    threshold: float = 0.5
    choice: Mapping[str, ChoiceModel] = field(default_factory=dict)

    def probability(self, margin: float) -> float:
        return _sigmoid(self.a * margin + self.b)

    def model_for(self, retrieval: bool) -> ChoiceModel | None:
        """The choice model for passages from retrieval (``open``) or given alone (``reader``)."""
        return self.choice.get("open" if retrieval else "reader")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Calibration":
        try:
            choice = {k: ChoiceModel.from_dict(v) for k, v in (d.get("choice") or {}).items()}
            return cls(a=float(d["a"]), b=float(d["b"]), threshold=float(d["threshold"]), choice=choice)
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"calibration: malformed file ({e})") from e

    @classmethod
    def load(cls, model_dir: Path) -> "Calibration":
        f = Path(model_dir) / CALIBRATION_FILE
        if not f.exists():
            return cls()
        try:
            d = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ModelError(f"{f}: cannot be read ({e})") from e
        return cls.from_dict(d)


# --- candidates and the choice ----------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One candidate answer with its probability of being right."""

    span: Span
    probability: float  # the choice model's candidate probability (or the margin calibration's)
    features: Mapping[str, float] | None = None


def candidate_features(result: ReadResult, contexts: Sequence[str] | None = None,
                       retrieval_scores: Sequence[float] | None = None,
                       question: str | None = None) -> list[dict[str, float]]:
    """Feature values of every span of ``result`` (in ``result.spans`` order).

    ``contexts`` are the passage texts the spans point into (for the answer's
    length, agreement and sentence); ``retrieval_scores`` the passages' retrieval
    scores in retrieval order (a passage's index is its rank); ``question`` for
    the question's coverage by the answer's sentence (an answer to another
    question often sits in a sentence that lacks one of this question's words)."""
    spans = result.spans
    if not spans:
        return []
    best = max(s.margin for s in spans)
    by_margin = sorted(range(len(spans)), key=lambda i: -spans[i].margin)
    span_rank = {i: r for r, i in enumerate(by_margin)}
    texts = [(_norm(contexts[s.passage][s.start:s.end]) if contexts is not None else "") for s in spans]
    counts: dict[str, int] = {}
    for t in texts:
        if t:
            counts[t] = counts.get(t, 0) + 1
    top_ret = max(retrieval_scores) if retrieval_scores else 0.0
    q_words = content_words(question) if question else set()
    cuts: dict[int, list[int]] = {}
    out = []
    for i, s in enumerate(spans):
        ret = float(retrieval_scores[s.passage]) if retrieval_scores else 0.0
        overlap = missing = 0.0
        if q_words and contexts is not None:
            ctx = contexts[s.passage]
            if s.passage not in cuts:
                cuts[s.passage] = _sentence_cuts(ctx)
            sentence, around = _sentences_around(ctx, s.start, s.end, cuts[s.passage])
            answer = content_words(contexts[s.passage][s.start:s.end])
            asked = q_words - answer or q_words
            overlap = len(asked & content_words(sentence)) / len(asked)
            missing = math.log1p(len(asked - content_words(around)))
        out.append({
            "margin": s.margin,
            "null": s.null_score,
            "gap": best - s.margin,
            "span_rank": math.log1p(span_rank[i]),
            "log_words": math.log1p(len(texts[i].split())) if contexts is not None else 0.0,
            "agree": math.log1p(counts.get(texts[i], 1) - 1) if texts[i] else 0.0,
            "retrieval": ret,
            "retrieval_gap": top_ret - ret,
            "passage_rank": math.log1p(s.passage),
            "q_overlap": overlap,
            "q_missing": missing,
        })
    return out


def rank_candidates(result: ReadResult, calibration: Calibration, contexts: Sequence[str] | None = None,
                    retrieval_scores: Sequence[float] | None = None,
                    question: str | None = None) -> list[Candidate]:
    """Every candidate with its probability, best first.

    With a choice model for the setting (``retrieval_scores`` given: ``open``,
    else ``reader``) and the passage texts, the probability is the model's;
    otherwise it is the plain margin calibration, which orders candidates by
    raw margin (the behaviour of files without a choice model)."""
    if not result.spans:
        return []
    model = calibration.model_for(retrieval_scores is not None) if contexts is not None else None
    if model is not None and model.uses_retrieval and retrieval_scores is None:
        model = None
    if model is None:
        cands = [Candidate(s, calibration.probability(s.margin)) for s in result.spans]
        return sorted(cands, key=lambda c: -c.span.margin)
    feats = candidate_features(result, contexts, retrieval_scores, question)
    cands = [Candidate(s, model.candidate_probability(f), f) for s, f in zip(result.spans, feats)]
    return sorted(cands, key=lambda c: (-c.probability, -c.span.margin))


def answer_probability(candidate: Candidate, calibration: Calibration, contexts: Sequence[str] | None,
                       retrieval_scores: Sequence[float] | None) -> float:
    """P(the chosen candidate is the right answer): the choice model's Platt step
    over the winner, or the margin calibration."""
    model = calibration.model_for(retrieval_scores is not None) if contexts is not None else None
    if model is None or (model.uses_retrieval and retrieval_scores is None):
        return candidate.probability
    return model.answer_probability(candidate.probability, candidate.features)


def choose(result: ReadResult, calibration: Calibration, threshold: float,
           contexts: Sequence[str] | None = None,
           retrieval_scores: Sequence[float] | None = None,
           question: str | None = None) -> tuple[Span | None, float]:
    """The answer span (None: "not in the documents") and its probability.

    The one place that decides between answering and abstaining, shared by
    ``QA.ask`` and the evaluation so both measure the same behaviour. Without
    ``contexts`` the best raw margin wins (the plain calibration)."""
    best, prob = choose_best(result, calibration, contexts, retrieval_scores, question)
    if best is None:
        return None, 0.0
    return (best.span if prob >= threshold else None), prob


def choose_best(result: ReadResult, calibration: Calibration, contexts: Sequence[str] | None = None,
                retrieval_scores: Sequence[float] | None = None,
                question: str | None = None) -> tuple[Candidate | None, float]:
    """The best candidate whatever the threshold, and its answer probability."""
    ranked = rank_candidates(result, calibration, contexts, retrieval_scores, question)
    if not ranked:
        return None, 0.0
    return ranked[0], answer_probability(ranked[0], calibration, contexts, retrieval_scores)


# --- the user's operating point, stored with the index ------------------------------


def calibration_fingerprint(calibration: Calibration) -> str:
    """A short hash of a model calibration (to tell whether a stored user
    threshold was chosen on the probabilities of the reader now loaded)."""
    d = {"a": calibration.a, "b": calibration.b,
         "choice": {k: v.to_dict() for k, v in sorted(calibration.choice.items())}}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
