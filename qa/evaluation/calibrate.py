"""``qa calibrate``: choose the operating threshold from the user's own gold questions.

    qa calibrate GOLD.jsonl [--index DIR] [--precision P | --max-withheld W]

Every gold question is asked once with the threshold at 0 (the best candidate
and its calibrated probability are known), so the whole trade-off is known at
once: at a threshold ``t`` the candidate is shown when its probability is at
least ``t``. Per threshold:

- ``answered``: share of all questions given an answer;
- ``precision``: share of the answers given that are right (F1 >= 0.5 against
  the gold; any answer to a question whose gold is empty is wrong);
- ``withheld``: share of the right best candidates that the threshold hides;
- ``F1``: SQuAD 2.0-style F1 over all questions (declining an unanswerable
  question scores 1);
- ``declined``: share of unanswerable questions declined.

The criterion: ``precision=P`` takes the lowest threshold whose precision is at
least P (as many answers as that precision allows); ``max_withheld=W`` the
highest threshold that hides at most W of the right answers; neither: the
threshold with the best F1. The chosen threshold is stored with the index
(``index_dir/threshold.json``, ``qa.store.threshold``) and used by ``ask``, the CLI and the app
whenever a call names no ``min_score``.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from qa.errors import ArgumentError
from qa.evaluation.gold import GoldQuestion, load_gold
from qa.evaluation.squad import best_scores
from qa.reader.calibration import calibration_fingerprint
from qa.store.threshold import save_threshold

#: Thresholds shown in the printed curve (the chosen one is added).
CURVE_POINTS: tuple[float, ...] = tuple(round(i / 20, 2) for i in range(21))


@dataclass
class CalibrationReport:
    """What ``calibrate`` found: the chosen point, the curve, where it was stored."""

    threshold: float
    criterion: dict[str, Any]
    at_threshold: dict[str, Any]
    curve: list[dict[str, Any]]
    n: int
    n_answerable: int
    stored: Path | None = None
    note: str = ""
    record: dict[str, Any] = field(default_factory=dict)

    def format(self) -> str:
        cols = ["threshold", "answered", "precision", "withheld", "F1", "declined"]
        rows, marks = [], []
        points = sorted({round(p["threshold"], 4): p for p in self.curve}.values(), key=lambda p: p["threshold"])
        for p in points:
            # the mark goes after the row: inside the last cell it set that column's width
            marks.append("  <- chosen" if abs(p["threshold"] - self.threshold) < 1e-9 else "")
            rows.append([f"{p['threshold']:.3f}", _pct(p["answered"]), _pct(p["precision"]), _pct(p["withheld"]),
                         f"{p['f1']:.1f}", _pct(p["declined"])])
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
        lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths))]
        lines.append("-" * len(lines[0]))
        lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) + mark for r, mark in zip(rows, marks)]
        a = self.at_threshold
        head = (f"{self.n} gold questions ({self.n_answerable} answerable). Chosen threshold {self.threshold:.3f} "
                f"({self.criterion['rule']}): precision {_pct(a['precision'])}, withheld {_pct(a['withheld'])} "
                f"of right answers, F1 {a['f1']:.1f}, {_pct(a['answered'])} answered, "
                f"{_pct(a['declined'])} of unanswerable declined.")
        tail = [self.note] if self.note else []
        if self.stored is not None:
            tail.append(f"stored in {self.stored} (used by ask, the CLI and the app when no min_score is given)")
        return "\n".join([head, "", *lines, "", "(answered: % of all questions; precision: % of answers given that "
                          "are right; withheld: % of right best candidates hidden; F1 ×100 over all questions, "
                          "declining an unanswerable one scores 1; declined: % of unanswerable declined)", *tail])


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}%"


def point(threshold: float, candidates: Sequence[str], scores: Sequence[float], right: Sequence[bool],
          golds: Sequence[Sequence[str]]) -> dict[str, Any]:
    """The figures at one threshold."""
    given = [bool(c) and s >= threshold for c, s in zip(candidates, scores)]
    n = len(candidates)
    n_given = sum(given)
    n_right = sum(right)
    unans = [i for i, g in enumerate(golds) if not g]
    f1 = sum(best_scores(c if gv else "", g)[1] for c, gv, g in zip(candidates, given, golds))
    return {
        "threshold": float(threshold),
        "answered": 100.0 * n_given / n if n else None,
        "precision": 100.0 * sum(r and gv for r, gv in zip(right, given)) / n_given if n_given else None,
        "withheld": 100.0 * sum(r and not gv for r, gv in zip(right, given)) / n_right if n_right else None,
        "f1": 100.0 * f1 / n if n else 0.0,
        "declined": 100.0 * sum(not given[i] for i in unans) / len(unans) if unans else None,
        "n_given": n_given,
        "n_right_given": sum(r and gv for r, gv in zip(right, given)),
    }


def choose_threshold(candidates: Sequence[str], scores: Sequence[float], right: Sequence[bool],
                     golds: Sequence[Sequence[str]], precision: float | None = None,
                     max_withheld: float | None = None) -> tuple[float, dict[str, Any], str]:
    """(threshold, criterion, note) by the rule in the module docstring.

    ``precision`` and ``max_withheld`` are fractions in [0, 1]. Candidate
    thresholds are 0, every candidate's own score (exact, so "at least t"
    keeps it) and the next thousandth above the highest (none is shown)."""
    if precision is not None and max_withheld is not None:
        raise ArgumentError("give either precision or max_withheld, not both")
    for name, v in (("precision", precision), ("max_withheld", max_withheld)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0):
            raise ArgumentError(f"{name} must be a fraction between 0 and 1, not {v!r}")
    grid = sorted({0.0, *(float(s) for c, s in zip(candidates, scores) if c)})
    # and one above every score (declines every question; thresholds are probabilities, so none above 1)
    above = min(1.0, math.floor(grid[-1] * 1000) / 1000 + 0.001)
    if above > grid[-1]:
        grid.append(above)
    pts = [point(t, candidates, scores, right, golds) for t in grid]
    note = ""
    if precision is not None:
        ok = [p for p in pts if p["precision"] is not None and p["precision"] >= 100 * precision - 1e-9]
        if ok:
            best = min(ok, key=lambda p: p["threshold"])
        else:
            given = [p for p in pts if p["precision"] is not None]
            best = max(given, key=lambda p: (p["precision"], -p["threshold"])) if given else pts[-1]
            note = (f"note: no threshold reaches {precision:.0%} precision on these questions; "
                    f"the most precise one is chosen")
        crit = {"rule": f"lowest threshold with precision >= {precision:.0%}", "precision": precision}
    elif max_withheld is not None:
        ok = [p for p in pts if p["withheld"] is None or p["withheld"] <= 100 * max_withheld + 1e-9]
        best = max(ok, key=lambda p: p["threshold"])  # threshold 0 withholds nothing, so ok is never empty
        crit = {"rule": f"highest threshold withholding <= {max_withheld:.0%} of right answers",
                "max_withheld": max_withheld}
    else:
        best = max(pts, key=lambda p: (round(p["f1"], 9), -p["threshold"]))
        crit = {"rule": "best F1 over all questions"}
        if not any(not g for g in golds):  # F1 then never rewards a decline: said, as the threshold is stored
            note = (f"note: the gold has no unanswerable questions (answers []), so best F1 cannot weigh a "
                    f"decline and {best['threshold']:.3f} may answer questions the documents do not answer; "
                    f"add some, or choose by --precision or --max-withheld")
    return best["threshold"], crit, note


def _gold_list(gold: Any) -> list[GoldQuestion]:
    """``gold`` as a list of ``GoldQuestion``, or an ``ArgumentError`` saying what
    to pass (a list of dicts was an AttributeError from deep in the loop, one
    ``GoldQuestion`` a TypeError)."""
    hint = "give a gold JSONL path or a list of GoldQuestion (qa.evaluation.load_gold reads a file)"
    if isinstance(gold, (GoldQuestion, dict, bytes)):
        raise ArgumentError(f"gold must be a path or a list, not one {type(gold).__name__}: {hint}")
    try:
        questions = list(gold)
    except TypeError:
        raise ArgumentError(f"gold must be a path or a list, not {type(gold).__name__}: {hint}") from None
    for n, q in enumerate(questions):
        if not isinstance(q, GoldQuestion):
            raise ArgumentError(f"gold item {n} is a {type(q).__name__}, not a GoldQuestion: {hint}")
    return questions


def calibrate(qa: Any, gold: str | Path | Sequence[GoldQuestion], precision: float | None = None,
              max_withheld: float | None = None, top_k: int | None = None, store: bool = True,
              batch_size: int = 16, progress: bool = False, answers: Sequence[Any] | None = None) -> CalibrationReport:
    """Ask every gold question, choose the threshold, store it with ``qa``'s index.

    ``answers``: the gold questions already asked at ``min_score=0`` (one
    ``Answer`` each, in order), so a caller that shows other figures from the
    same answers (the app's Check and tune tab) asks each question once."""
    questions = load_gold(gold) if isinstance(gold, (str, Path)) else _gold_list(gold)
    if not questions:
        raise ArgumentError("no gold questions")
    candidates: list[str] = []
    scores: list[float] = []
    if answers is not None:
        if len(answers) != len(questions):
            raise ArgumentError(f"{len(answers)} answers for {len(questions)} gold questions")
        candidates = [a.best_candidate or a.answer for a in answers]
        scores = [float(a.score) for a in answers]
        questions_to_ask: list[GoldQuestion] = []
    else:
        questions_to_ask = questions
    bar = None
    if progress and questions_to_ask:
        import sys

        from tqdm import tqdm

        # disable=None: off where stderr is not a terminal (a log file got every frame of it)
        bar = tqdm(total=len(questions), desc="asking", unit="q", file=sys.stderr, disable=None)
    try:
        for i in range(0, len(questions_to_ask), batch_size):
            part = questions_to_ask[i:i + batch_size]
            for a in qa.ask_batch([q.question for q in part], top_k=top_k, min_score=0.0):
                candidates.append(a.best_candidate or a.answer)
                scores.append(float(a.score))
            if bar is not None:
                bar.update(len(part))
    finally:  # also on an error, so its message starts a line of its own
        if bar is not None:
            bar.close()
    golds = [q.answers for q in questions]
    right = [bool(g) and bool(c) and best_scores(c, g)[1] >= 0.5 for c, g in zip(candidates, golds)]
    t, crit, note = choose_threshold(candidates, scores, right, golds, precision, max_withheld)
    at = point(t, candidates, scores, right, golds)
    curve = [point(x, candidates, scores, right, golds) for x in CURVE_POINTS] + [at]
    reader = qa.reader
    record = {
        "threshold": t,
        "criterion": crit,
        "at_threshold": {k: at[k] for k in ("answered", "precision", "withheld", "f1", "declined")},
        "gold": str(gold) if isinstance(gold, (str, Path)) else f"{len(questions)} questions",
        "n": len(questions),
        "n_answerable": sum(bool(g) for g in golds),
        "top_k": top_k,
        "reader": str(getattr(reader, "path", "")),
        "reader_fingerprint": calibration_fingerprint(reader.calibration),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    report = CalibrationReport(t, crit, at, curve, len(questions), record["n_answerable"], note=note, record=record)
    if store:
        report.stored = save_threshold(qa.settings.index_dir, record)
    return report
