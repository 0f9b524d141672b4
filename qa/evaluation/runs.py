"""Evaluation passes over the pipeline, the retriever or the reader alone, and their summaries."""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from qa.evaluation.gold import GoldQuestion
from qa.evaluation.metrics import (
    answer_metrics,
    at_threshold,
    contains_answer,
    gold_rank,
    miss_breakdown,
    percentile,
    retrieval_metrics,
    threshold_sweep,
)


@dataclass
class Run:
    """What one evaluation pass produced, question by question."""

    label: str
    gold: list[GoldQuestion]
    candidates: list[str] = field(default_factory=list)  # best span (threshold 0)
    scores: list[float] = field(default_factory=list)  # its calibrated probability
    first_citation: list[str] = field(default_factory=list)
    # Where the gold answer was (for the miss causes): in a passage read / in the candidate's own passage.
    in_read: list[bool | None] = field(default_factory=list)
    in_chosen: list[bool | None] = field(default_factory=list)
    ranks: list[int | None] = field(default_factory=list)
    latencies_ms: list[float | None] = field(default_factory=list)  # None: not timed (from a cache)
    latency_kind: str = ""
    retrieval_ms: float | None = None  # per question, batched: all batches' time / n
    retrieval_latencies_ms: list[float] = field(default_factory=list)  # per question: its batch's time / batch size
    index_build_s: float | None = None


def _batches(n: int, size: int) -> Iterable[tuple[int, int]]:
    for i in range(0, n, size):
        yield i, min(n, i + size)


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="q", file=sys.stderr, dynamic_ncols=True)


def run_retrieval(qa: Any, run: Run, mode: str | None, depth: int, batch_size: int) -> None:
    """Gold-document ranks from ``qa.retrieve`` (batched; time per question = its batch's time / batch size)."""
    qs = [g.question for g in run.gold]
    run.ranks = [None] * len(qs)
    total = 0.0
    with _progress(len(qs), f"retrieve {run.label}") as bar:
        for a, b in _batches(len(qs), batch_size):
            t0 = time.perf_counter()
            chunks = qa.retrieve(qs[a:b], top_k=depth, mode=mode)
            dt = time.perf_counter() - t0
            total += dt
            run.retrieval_latencies_ms.extend([1000.0 * dt / (b - a)] * (b - a))
            for i, cs in zip(range(a, b), chunks):
                if run.gold[i].doc_id is not None:
                    run.ranks[i] = gold_rank((c.doc_id for c in cs), run.gold[i].doc_id)
            bar.update(b - a)
    run.retrieval_ms = 1000.0 * total / max(1, len(qs))


def run_pipeline(qa: Any, run: Run, mode: str | None, top_k: int | None, batch_size: int) -> None:
    """Answers from ``qa.ask_batch`` at threshold 0; batch size 1 times single questions."""
    qs = [g.question for g in run.gold]
    with _progress(len(qs), f"answer {run.label}") as bar:
        for a, b in _batches(len(qs), batch_size):
            t0 = time.perf_counter()
            answers = qa.ask_batch(qs[a:b], top_k=top_k, min_score=0.0, mode=mode)
            ms = 1000.0 * (time.perf_counter() - t0)
            run.latencies_ms.extend([ms / (b - a)] * (b - a))
            for g, ans in zip(run.gold[a:b], answers):
                run.candidates.append(ans.answer)
                run.scores.append(ans.score)
                run.first_citation.append(ans.citations[0].text if ans.citations else "")
                held, chosen = answer_whereabouts(g, ans)
                run.in_read.append(held)
                run.in_chosen.append(chosen)
            bar.update(b - a)
    run.latency_kind = "single ask() call" if batch_size == 1 else f"ask_batch of {batch_size} / n"


def answer_whereabouts(g: GoldQuestion, ans: Any) -> tuple[bool | None, bool | None]:
    """(a passage read holds the gold answer, the best candidate's own passage does),
    by the answer text, within the gold document when the gold names one; None
    for unanswerable questions. The candidate's passage is its citation (the
    tightest retrieved chunk that holds it); the others are the whole passages."""
    if not g.answerable:
        return None, None

    def holds(c: Any) -> bool:
        return (g.doc_id is None or c.doc_id == g.doc_id) and contains_answer(c.text, g.answers)

    chosen_cite = getattr(ans, "best_candidate_citation", None) or (ans.citations[0] if ans.citations else None)
    chosen = chosen_cite is not None and holds(chosen_cite)
    return chosen or any(holds(c) for c in ans.citations), chosen


def run_reader(reader: Any, run: Run, batch_size: int, cache: dict[str, Any] | None = None) -> None:
    """Gold paragraph straight to the reader; the answer picked as ``ask`` picks it.

    ``cache`` (question id -> raw spans, see ``predictions_cache``) skips the
    model for questions already read, so a new calibration is re-measured in
    seconds; questions read here are added to it."""
    from qa.reader import ReadResult, Span, choose

    with _progress(len(run.gold), f"read {run.label}") as bar:
        for a, b in _batches(len(run.gold), batch_size):
            part = run.gold[a:b]
            todo = [g for g in part if cache is None or g.id not in cache]
            t0 = time.perf_counter()
            fresh = reader.run([g.question for g in todo], [[g.context or ""] for g in todo]) if todo else []
            ms = 1000.0 * (time.perf_counter() - t0)
            if cache is not None:
                for g, r in zip(todo, fresh):
                    cache[g.id] = [[sp.start, sp.end, sp.score, sp.null_score, sp.passage] for sp in r.spans]
            # Per question, only for the questions read here: one taken from the
            # cache was not timed (None), and its place keeps the list aligned with gold.
            fresh_ids = {g.id for g in todo}
            run.latencies_ms.extend([ms / len(todo) if g.id in fresh_ids else None for g in part])
            if cache is not None:
                results = [ReadResult([Span(*sp) for sp in cache[g.id]], 0.0) for g in part]
            else:
                results = fresh
            for g, r in zip(part, results):
                ctx = g.context or ""
                span, prob = choose(r, reader.calibration, 0.0, contexts=[ctx], question=g.question)  # threshold later
                run.candidates.append(ctx[span.start:span.end] if span else "")
                run.scores.append(prob)
                run.in_read.append(True if g.answerable else None)  # the gold paragraph is given
                run.in_chosen.append(True if g.answerable else None)
            bar.update(len(part))
    run.latency_kind = f"reader batch of {batch_size} / n"


def summarise(run: Run, threshold: float | None, subset: Sequence[int] | None = None) -> dict[str, Any]:
    """All figures of a run (or of the questions at the ``subset`` positions)."""
    idx = list(range(len(run.gold))) if subset is None else list(subset)
    gold = [run.gold[i] for i in idx]
    out: dict[str, Any] = {"n": len(gold)}
    if run.ranks and any(g.doc_id is not None for g in gold):
        scored = [i for i in idx if run.gold[i].doc_id is not None and run.gold[i].answerable]
        out["retrieval"] = {"n": len(scored), **retrieval_metrics([run.ranks[i] for i in scored])}
        out["retrieval"]["recall_curve"] = retrieval_metrics([run.ranks[i] for i in scored], range(1, 21))
        if run.retrieval_ms is not None:
            out["retrieval"]["ms_per_question"] = run.retrieval_ms
        if len(run.retrieval_latencies_ms) == len(run.gold):
            rl = [run.retrieval_latencies_ms[i] for i in idx]
            out["retrieval"]["latency_ms"] = {"p50": percentile(rl, 50), "p95": percentile(rl, 95),
                                              "mean": statistics.fmean(rl) if rl else None}
    if run.candidates:
        golds = [run.gold[i].answers for i in idx]
        cands = [run.candidates[i] for i in idx]
        scores = [run.scores[i] for i in idx]
        out["threshold"] = threshold
        out["answers"] = answer_metrics(at_threshold(cands, scores, threshold), golds)
        out["best_candidate"] = answer_metrics(cands, golds)  # threshold 0: never abstains
        answered_ok = [i for i in idx if run.gold[i].answerable and run.scores[i] >= threshold
                       and run.candidates[i]]
        answerable = [i for i in idx if run.gold[i].answerable]
        cites = run.first_citation  # none in reader mode: the passage is given, not cited
        out["citation_accuracy"] = (
            sum(contains_answer(cites[i], run.gold[i].answers) for i in answered_ok) / len(answered_ok)
            if answered_ok and cites else None)
        out["citation_accuracy_best_candidate"] = (
            sum(contains_answer(cites[i], run.gold[i].answers) for i in answerable) / len(answerable)
            if answerable and cites else None)
        out["sweep"] = threshold_sweep(cands, scores, golds)
        in_read = [run.in_read[i] for i in idx] if run.in_read else None
        in_chosen = [run.in_chosen[i] for i in idx] if run.in_chosen else None
        out["misses"] = miss_breakdown(cands, scores, golds, threshold, in_read, in_chosen)
        out["misses_best_candidate"] = miss_breakdown(cands, scores, golds, 0.0, in_read, in_chosen)
    lat = [x for i in idx if (x := run.latencies_ms[i] if i < len(run.latencies_ms) else None) is not None]
    if lat:
        how = run.latency_kind
        if len(lat) < len(idx):
            how += f"; {len(lat)} of {len(idx)} questions timed, the rest from the --predictions cache"
        out["latency_ms"] = {"p50": percentile(lat, 50), "p95": percentile(lat, 95),
                             "mean": statistics.fmean(lat), "n": len(lat), "how": how}
    if run.index_build_s is not None:
        out["index_build_s"] = run.index_build_s
    return out
