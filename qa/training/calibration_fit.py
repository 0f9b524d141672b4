"""Fitting the reader's calibration on validation questions: the cross-passage
choice model, the margin logistic, threshold sweeps, cross-validation by article.

Pure NumPy/scikit-learn over cached reader output (``Question``), so a refit
after a change of features or rule takes seconds, not a re-read.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from qa.evaluation import squad
from qa.reader import ReadResult, Span
from qa.reader.calibration import ChoiceModel, candidate_features


@dataclass
class Question:
    """One validation question as read in one setting."""

    qid: str
    title: str  # article (the cross-validation fold)
    answers: tuple[str, ...]
    contexts: list[str]
    retrieval: list[float] | None
    spans: list[Span]
    question: str = ""

    @property
    def answerable(self) -> bool:
        return bool(self.answers)

    def text(self, s: Span) -> str:
        return self.contexts[s.passage][s.start:s.end]

    @functools.cached_property
    def features(self) -> list[dict[str, float]]:
        """Every span's choice features (computed once: cross-validation refits many times)."""
        return candidate_features(ReadResult(self.spans, 0.0), self.contexts, self.retrieval, self.question)

    @functools.cached_property
    def f1s(self) -> list[float]:
        """Every span's F1 against the gold answers (0 for an unanswerable question)."""
        return [squad.best_scores(self.text(s), self.answers)[1] if self.answers else 0.0 for s in self.spans]


# --- fitting ---------------------------------------------------------------------------


def candidate_f1(q: Question, s: Span) -> float:
    return squad.best_scores(q.text(s), q.answers)[1] if q.answers else 0.0


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float = 1e6) -> tuple[np.ndarray, float]:
    """Logistic regression p = sigmoid(x . w + b) (scikit-learn; large C: barely regularised)."""
    from sklearn.linear_model import LogisticRegression

    x = x.reshape(len(x), -1)
    if len(set(y.tolist())) < 2:  # degenerate: everything right or everything wrong
        p = float(np.clip(y.mean(), 1e-3, 1 - 1e-3))
        return np.zeros(x.shape[1]), math.log(p / (1 - p))
    lr = LogisticRegression(C=c, max_iter=2000).fit(x, y.astype(int))
    return lr.coef_[0].astype(float), float(lr.intercept_[0])


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


def fit_choice(questions: Sequence[Question], features: Sequence[str], c: float = 1.0) -> ChoiceModel:
    """The choice model over every candidate of ``questions``, then the Platt step over the winners."""
    rows, labels = [], []
    for q in questions:
        for f, f1 in zip(q.features, q.f1s):
            rows.append([f[k] for k in features])
            labels.append(f1 >= 0.5)
    x = np.asarray(rows, dtype=float)
    y = np.asarray(labels)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    w, b = fit_logistic((x - mean) / scale, y, c)
    model = ChoiceModel(tuple(features), tuple(mean.tolist()), tuple(scale.tolist()), tuple(w.tolist()), b)
    # How sure is the winner, compared with other questions' winners? A second
    # logistic over the winner's choice log-odds and its own features.
    rows, right = [], []
    for q in questions:
        ranked = _rank(model, q)
        if ranked:
            s, pr, f = ranked[0]
            rows.append([_logit(np.asarray([pr]))[0], *model.standardised(f)])
            right.append(candidate_f1(q, s) >= 0.5)
    w2, b2 = fit_logistic(np.asarray(rows), np.asarray(right), c)
    return replace(model, answer_a=float(w2[0]), answer_b=float(b2), answer_coef=tuple(float(x) for x in w2[1:]))


def _rank(model: ChoiceModel, q: Question) -> list[tuple[Span, float, dict]]:
    scored = [(s, model.candidate_probability(f), f) for s, f in zip(q.spans, q.features)]
    return sorted(scored, key=lambda t: (-t[1], -t[0].margin))


def choose_with(model: ChoiceModel | None, ab: tuple[float, float], q: Question) -> tuple[str, float]:
    """(best candidate text, its answer probability) by the model, or by the raw margin."""
    if not q.spans:
        return "", 0.0
    if model is None:
        s = max(q.spans, key=lambda s: s.margin)
        return q.text(s), 1 / (1 + math.exp(-(ab[0] * s.margin + ab[1])))
    s, p, f = _rank(model, q)[0]
    return q.text(s), model.answer_probability(p, f)


def fit_margin(questions: Sequence[Question]) -> tuple[float, float]:
    """The plain calibration: sigmoid(a * best margin + b)."""
    m, y = [], []
    for q in questions:
        if q.spans:
            s = max(q.spans, key=lambda s: s.margin)
            m.append(s.margin)
            y.append(candidate_f1(q, s) >= 0.5)
    (a,), b = fit_logistic(np.asarray(m), np.asarray(y))
    return float(a), float(b)


# --- scoring a choice ------------------------------------------------------------------


def sweep(probs: np.ndarray, f1_if_answered: np.ndarray, impossible: np.ndarray,
          thresholds: Sequence[float]) -> list[dict]:
    """SQuAD 2.0 scores at each threshold on the probability (one row per threshold)."""
    rows = []
    for t in thresholds:
        answered = probs >= t
        f1 = np.where(answered, f1_if_answered, impossible.astype(float))
        rows.append({
            "threshold": float(t),
            "f1": float(f1.mean() * 100),
            "f1_answerable": float(f1[~impossible].mean() * 100) if (~impossible).any() else 0.0,
            "no_answer_accuracy": float((~answered[impossible]).mean() * 100) if impossible.any() else 0.0,
        })
    return rows


def outcomes(questions: Sequence[Question], picks: Sequence[tuple[str, float]]) -> dict[str, np.ndarray]:
    f1 = np.asarray([squad.best_scores(t, q.answers)[1] if q.answers else 0.0 for q, (t, _) in zip(questions, picks)])
    em = np.asarray([squad.best_scores(t, q.answers)[0] if q.answers else 0.0 for q, (t, _) in zip(questions, picks)])
    return {"f1": f1, "em": em, "p": np.asarray([p for _, p in picks]),
            "answerable": np.asarray([q.answerable for q in questions]),
            "has": np.asarray([bool(t) for t, _ in picks])}


def at(o: dict[str, np.ndarray], t: float) -> dict[str, float]:
    """Figures at threshold ``t`` (F1/EM ×100 on the answerable questions; % answered; % declined)."""
    ans = o["answerable"]
    given = (o["p"] >= t) & o["has"]
    out = {"threshold": float(t)}
    if ans.any():
        out.update(answered=100 * given[ans].mean(), f1=100 * np.where(given, o["f1"], 0)[ans].mean(),
                   em=100 * np.where(given, o["em"], 0)[ans].mean(),
                   precision=100 * (o["f1"][given & ans] >= 0.5).sum() / max(1, given.sum()))
    if (~ans).any():
        out["declined"] = 100 * (~given[~ans]).mean()
    return out


def threshold_for_answered(o: dict[str, np.ndarray], share: float) -> float:
    """The highest threshold at which at least ``share`` of the answerable questions are answered."""
    p = np.sort(o["p"][o["answerable"] & o["has"]])
    n = o["answerable"].sum()
    k = int(math.ceil(share * n))  # answered = count of p >= t must be >= k
    drop = len(p) - k
    return float(p[drop]) if 0 <= drop < len(p) else 0.0


def auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    pos, neg = scores[labels], scores[~labels]
    if not len(pos) or not len(neg):
        return None
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def summary(o: dict[str, np.ndarray]) -> dict[str, Any]:
    ans = o["answerable"]
    right = (o["f1"] >= 0.5) & o["has"]
    s: dict[str, Any] = {"best_f1": 100 * o["f1"][ans].mean(), "best_em": 100 * o["em"][ans].mean(),
                         "auc_right": auc(o["p"], right)}
    t90 = threshold_for_answered(o, 0.90)
    s["at_90_answered"] = at(o, t90)
    return s


def cross_validate(groups: dict[str, list[Question]], features: Sequence[str], c: float
                   ) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Out-of-fold picks (model, margin) for the questions of ``groups`` (folds: articles)."""
    qs = [q for g in groups.values() for q in g]
    folds = sorted({q.title.replace("offtopic-", "") if q.title.startswith("offtopic-") else q.title for q in qs})
    arts = sorted(squad.VALIDATION_ARTICLES)

    def fold(q: Question) -> int:
        if q.title.startswith("offtopic-"):
            return int(q.title.split("-")[1])
        return arts.index(q.title)

    del folds
    model_picks: list[tuple[str, float] | None] = [None] * len(qs)
    margin_picks: list[tuple[str, float] | None] = [None] * len(qs)
    for k in range(len(arts)):
        train = [q for q in qs if fold(q) != k]
        model = fit_choice(train, features, c)
        ab = fit_margin(train)
        for i, q in enumerate(qs):
            if fold(q) == k:
                model_picks[i] = choose_with(model, ab, q)
                margin_picks[i] = choose_with(None, ab, q)
    return model_picks, margin_picks  # type: ignore[return-value]


# --- main ----------------------------------------------------------------------------------


