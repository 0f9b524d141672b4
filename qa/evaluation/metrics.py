"""Scores: official SQuAD EM/F1 with abstention, retrieval recall@k/MRR, citation checks, threshold sweeps.

Every question is answered once with the threshold at 0 (so the best candidate
and its calibrated probability are known), and the answer at any threshold
``t`` is that candidate when its probability is at least ``t`` and ``""``
otherwise: figures at the operating threshold and the whole F1/abstention
curve come from the same run.

Retrieval ranks are over documents: chunks of the same document count once, at
the rank of its best chunk, so recall@k asks "is the gold document among the
first k distinct documents retrieved".
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from qa.evaluation.squad import best_scores, normalize_answer

RECALL_KS: tuple[int, ...] = (1, 5, 10)
#: Thresholds for the F1/abstention trade-off curve.
SWEEP: tuple[float, ...] = tuple(round(i / 50, 2) for i in range(51))


def answer_metrics(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Official EM/F1 ×100 overall, on answerable and on unanswerable questions,
    plus no-answer accuracy (abstained exactly when the gold is empty) and the
    share of questions answered."""
    if len(predictions) != len(golds):
        raise ValueError("predictions and golds must match one to one")
    rows = [(best_scores(p, g), bool(g), bool(p.strip())) for p, g in zip(predictions, golds)]

    def mean(xs: list[float]) -> float | None:
        return 100.0 * sum(xs) / len(xs) if xs else None

    ans = [r for r in rows if r[1]]
    una = [r for r in rows if not r[1]]
    return {
        "n": len(rows),
        "n_answerable": len(ans),
        "n_unanswerable": len(una),
        "em": mean([r[0][0] for r in rows]),
        "f1": mean([r[0][1] for r in rows]),
        "em_answerable": mean([r[0][0] for r in ans]),
        "f1_answerable": mean([r[0][1] for r in ans]),
        "em_unanswerable": mean([r[0][0] for r in una]),
        "f1_unanswerable": mean([r[0][1] for r in una]),
        "no_answer_accuracy": mean([float(answered == answerable) for _, answerable, answered in rows]),
        "answered": mean([float(answered) for _, _, answered in rows]),
    }


def gold_rank(ranked_doc_ids: Iterable[str], gold_doc_id: str) -> int | None:
    """1-based rank of the gold document among distinct retrieved documents."""
    seen: set[str] = set()
    for d in ranked_doc_ids:
        if d in seen:
            continue
        seen.add(d)
        if d == gold_doc_id:
            return len(seen)
    return None


def retrieval_metrics(ranks: Sequence[int | None], ks: Sequence[int] = RECALL_KS) -> dict[str, float | None]:
    """recall@k (gold within the first k documents) and MRR (0 when not retrieved)."""
    n = len(ranks)
    out: dict[str, float | None] = {}
    for k in ks:
        out[f"recall@{k}"] = sum(1 for r in ranks if r is not None and r <= k) / n if n else None
    out["mrr"] = sum(1.0 / r for r in ranks if r is not None) / n if n else None
    return out


def contains_answer(text: str, answers: Iterable[str]) -> bool:
    """True when the normalised text holds a normalised gold answer as whole words."""
    hay = f" {normalize_answer(text)} "
    return any(f" {normalize_answer(a)} " in hay for a in answers if normalize_answer(a))


def percentile(xs: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in [0, 100]); None for no values."""
    return float(np.percentile(np.asarray(xs, dtype=float), q)) if len(xs) else None


def at_threshold(candidates: Sequence[str], scores: Sequence[float], threshold: float) -> list[str]:
    """The answers ``ask`` gives at ``threshold``: the best candidate or ""."""
    return [c if s >= threshold else "" for c, s in zip(candidates, scores)]


def threshold_sweep(candidates: Sequence[str], scores: Sequence[float], golds: Sequence[Sequence[str]],
                    thresholds: Sequence[float] = SWEEP) -> list[dict[str, Any]]:
    """answer_metrics at each threshold (the F1/abstention trade-off)."""
    return [{"threshold": t, **answer_metrics(at_threshold(candidates, scores, t), golds)} for t in thresholds]


#: Why an answerable question was missed, in the order they are checked.
MISS_CAUSES: tuple[str, ...] = ("not_retrieved", "other_passage", "wrong_span", "declined_right")
MISS_LABELS: dict[str, str] = {
    "not_retrieved": "gold not retrieved",
    "other_passage": "another passage chosen",
    "wrong_span": "right passage, wrong span",
    "declined_right": "declined although right",
}


def miss_cause(candidate_right: bool, given: bool, in_read: bool | None, in_chosen: bool | None) -> str | None:
    """Why one answerable question was missed (None: answered right).

    ``candidate_right``: the best candidate has F1 >= 0.5; ``given``: it was
    shown (score at or above the threshold); ``in_read``: a passage read holds
    the gold answer (of the gold document when known); ``in_chosen``: the
    candidate's own passage does. A right candidate below the threshold is
    "declined although right"; a wrong one is blamed on the first stage that
    lost the answer (``None`` flags, as in reading comprehension where the gold
    paragraph is given, count as held)."""
    if candidate_right:
        return None if given else "declined_right"
    if in_read is False:
        return "not_retrieved"
    if in_chosen is False:
        return "other_passage"
    return "wrong_span"


def miss_breakdown(candidates: Sequence[str], scores: Sequence[float], golds: Sequence[Sequence[str]],
                   threshold: float, in_read: Sequence[bool | None] | None = None,
                   in_chosen: Sequence[bool | None] | None = None) -> dict[str, Any]:
    """Counts (and % of the answerable questions) of each miss cause at ``threshold``,
    plus the answers given to unanswerable questions."""
    n = len(candidates)
    in_read = list(in_read) if in_read else [None] * n
    in_chosen = list(in_chosen) if in_chosen else [None] * n
    counts = {c: 0 for c in MISS_CAUSES}
    right = answerable = wrongly_answered = 0
    for i, (c, s, g) in enumerate(zip(candidates, scores, golds)):
        given = bool(c.strip()) and s >= threshold
        if not g:
            wrongly_answered += given
            continue
        answerable += 1
        cause = miss_cause(best_scores(c, g)[1] >= 0.5, given, in_read[i], in_chosen[i])
        if cause is None:
            right += 1
        else:
            counts[cause] += 1
    out: dict[str, Any] = {"threshold": threshold, "n_answerable": answerable, "right": right, **counts,
                           "answered_unanswerable": wrongly_answered}
    out["percent"] = {k: (100.0 * v / answerable if answerable else None)
                      for k, v in (("right", right), *counts.items())}
    return out
