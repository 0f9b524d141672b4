"""Evaluate the pipeline on gold questions: answers, abstentions, retrieval, citations, latency.

    python -m qa.evaluate tests/gold/seeds.jsonl                      # the seed gold set
    python -m qa.evaluate GOLD.jsonl --index DIR --json out.json --plot out.png
    python -m qa.evaluate --squad ../shared/data/squad/dev-v1.1.json --mode reader --held-out
    python -m qa.evaluate --squad ../shared/data/squad/dev-v1.1.json --mode open \\
        --index /work/eval_cache/squad-dev-index --retrieval dense,bm25,hybrid --retrieval-only

Gold JSONL holds one question a line: ``{"id", "question", "answers": [...]}``
plus an optional ``"doc_id"`` (the document that holds the answer, for retrieval
scoring). Empty ``answers`` means the documents do not say, and the right
response is ``""``.

Scoring is the official SQuAD one (``qa.squad``): normalised exact match and
token F1, best over the gold answers; an unanswerable question scores 1 only for
an empty prediction. Every question is answered once with the threshold at 0
(so the best candidate and its calibrated probability are known), and the
answer at any threshold ``t`` is that candidate when its probability is at least
``t`` and ``""`` otherwise: the figures at the operating threshold and the whole
F1/abstention trade-off curve come from the same run.

Retrieval ranks are over documents: chunks of the same document count once, at
the rank of its best chunk, so recall@k asks "is the gold document among the
first k distinct documents retrieved". MRR is over the retrieved list (depth
``--depth`` chunks); a gold document not retrieved scores 0.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from qa.squad import HELD_OUT_ARTICLES, best_scores, load_squad, normalize_answer

RECALL_KS: tuple[int, ...] = (1, 5, 10)
#: Thresholds for the F1/abstention trade-off curve.
SWEEP: tuple[float, ...] = tuple(round(i / 50, 2) for i in range(51))


class GoldFormatError(ValueError):
    """A gold file line that is not a valid question record."""


@dataclass(frozen=True)
class GoldQuestion:
    """One gold question; ``answers`` empty means the documents do not say."""

    id: str
    question: str
    answers: tuple[str, ...]
    doc_id: str | None = None
    title: str = ""  # SQuAD article (for held-out breakdowns)
    context: str | None = None  # the gold paragraph (SQuAD reader mode)

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


# --- gold files ---------------------------------------------------------------


def parse_gold_line(line: str, where: str = "line") -> GoldQuestion:
    """One JSONL record -> GoldQuestion; ``GoldFormatError`` naming ``where`` and why."""
    try:
        r = json.loads(line)
    except json.JSONDecodeError as e:
        raise GoldFormatError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from e
    if not isinstance(r, dict):
        raise GoldFormatError(f"{where}: expected a JSON object, got {type(r).__name__}")
    for key in ("id", "question", "answers"):
        if key not in r:
            raise GoldFormatError(f"{where}: missing required field {key!r}")
    if not isinstance(r["id"], (str, int)) or isinstance(r["id"], bool):
        raise GoldFormatError(f"{where}: 'id' must be a string")
    if not isinstance(r["question"], str) or not r["question"].strip():
        raise GoldFormatError(f"{where}: 'question' must be a non-empty string")
    answers = r["answers"]
    if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
        raise GoldFormatError(f"{where}: 'answers' must be a list of non-empty strings ([] = not answerable)")
    doc_id = r.get("doc_id")
    if doc_id is not None and not isinstance(doc_id, str):
        raise GoldFormatError(f"{where}: 'doc_id' must be a string")
    return GoldQuestion(str(r["id"]), r["question"].strip(), tuple(answers), doc_id)


def load_gold(path: str | Path) -> list[GoldQuestion]:
    """Read a gold JSONL file (blank lines allowed); errors say file and line."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as e:
        raise GoldFormatError(f"{p}: no such file") from e
    except UnicodeDecodeError as e:
        raise GoldFormatError(f"{p}: not valid UTF-8") from e
    out: list[GoldQuestion] = []
    seen: set[str] = set()
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        q = parse_gold_line(line, f"{p}:{n}")
        if q.id in seen:
            raise GoldFormatError(f"{p}:{n}: duplicate id {q.id!r}")
        seen.add(q.id)
        out.append(q)
    if not out:
        raise GoldFormatError(f"{p}: no questions")
    return out


def paragraph_doc_id(title: str, n: int) -> str:
    """Document id of the n-th paragraph of a SQuAD article (open mode)."""
    return f"{title}/{n:03d}"


def squad_gold(path: str | Path) -> tuple[list[GoldQuestion], list[Any]]:
    """All questions of a SQuAD file and one document per paragraph."""
    from qa.loading import document_from_text

    examples = load_squad(path)
    ids: dict[tuple[str, str], str] = {}
    per_title: dict[str, int] = {}
    docs = []
    gold = []
    for e in examples:
        key = (e.title, e.context)
        if key not in ids:
            n = per_title.get(e.title, 0)
            per_title[e.title] = n + 1
            ids[key] = paragraph_doc_id(e.title, n)
            docs.append(document_from_text(ids[key], e.context, title=e.title.replace("_", " ")))
        gold.append(GoldQuestion(e.id, e.question, e.answers, ids[key], e.title, e.context))
    return gold, docs


# --- metrics ----------------------------------------------------------------


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
    """Linear-interpolated percentile (q in [0, 100])."""
    if not xs:
        return None
    s = sorted(xs)
    pos = (len(s) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def at_threshold(candidates: Sequence[str], scores: Sequence[float], threshold: float) -> list[str]:
    """The answers ``ask`` gives at ``threshold``: the best candidate or ""."""
    return [c if s >= threshold else "" for c, s in zip(candidates, scores)]


def threshold_sweep(candidates: Sequence[str], scores: Sequence[float], golds: Sequence[Sequence[str]],
                    thresholds: Sequence[float] = SWEEP) -> list[dict[str, Any]]:
    """answer_metrics at each threshold (the F1/abstention trade-off)."""
    return [{"threshold": t, **answer_metrics(at_threshold(candidates, scores, t), golds)} for t in thresholds]


# --- running ----------------------------------------------------------------


@dataclass
class Run:
    """What one evaluation pass produced, question by question."""

    label: str
    gold: list[GoldQuestion]
    candidates: list[str] = field(default_factory=list)  # best span (threshold 0)
    scores: list[float] = field(default_factory=list)  # its calibrated probability
    first_citation: list[str] = field(default_factory=list)
    ranks: list[int | None] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    latency_kind: str = ""
    retrieval_ms: float | None = None  # per question, batched
    index_build_s: float | None = None


def _batches(n: int, size: int) -> Iterable[tuple[int, int]]:
    for i in range(0, n, size):
        yield i, min(n, i + size)


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="q", file=sys.stderr, dynamic_ncols=True)


def run_retrieval(qa: Any, run: Run, mode: str | None, depth: int, batch_size: int) -> None:
    """Gold-document ranks from ``qa.retrieve`` (batched; time per question = batch / n)."""
    qs = [g.question for g in run.gold]
    run.ranks = [None] * len(qs)
    total = 0.0
    with _progress(len(qs), f"retrieve {run.label}") as bar:
        for a, b in _batches(len(qs), batch_size):
            t0 = time.perf_counter()
            chunks = qa.retrieve(qs[a:b], top_k=depth, mode=mode)
            total += time.perf_counter() - t0
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
            for ans in answers:
                run.candidates.append(ans.answer)
                run.scores.append(ans.score)
                run.first_citation.append(ans.citations[0].text if ans.citations else "")
            bar.update(b - a)
    run.latency_kind = "single ask() call" if batch_size == 1 else f"ask_batch of {batch_size} / n"


def run_reader(reader: Any, run: Run, batch_size: int) -> None:
    """Gold paragraph straight to the reader; the answer picked as ``ask`` picks it."""
    from qa.reader import choose

    with _progress(len(run.gold), f"read {run.label}") as bar:
        for a, b in _batches(len(run.gold), batch_size):
            part = run.gold[a:b]
            t0 = time.perf_counter()
            results = reader.run([g.question for g in part], [[g.context or ""] for g in part])
            ms = 1000.0 * (time.perf_counter() - t0)
            run.latencies_ms.extend([ms / len(part)] * len(part))
            for g, r in zip(part, results):
                span, prob = choose(r, reader.calibration, 0.0)  # threshold applied later
                run.candidates.append((g.context or "")[span.start:span.end] if span else "")
                run.scores.append(prob)
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
    if run.latencies_ms:
        lat = [run.latencies_ms[i] for i in idx]
        out["latency_ms"] = {"p50": percentile(lat, 50), "p95": percentile(lat, 95),
                             "mean": statistics.fmean(lat), "how": run.latency_kind}
    if run.index_build_s is not None:
        out["index_build_s"] = run.index_build_s
    return out


# --- report -----------------------------------------------------------------


def _fmt(x: Any, pct: bool = False) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{100 * x:.1f}" if pct else f"{x:.1f}"
    return str(x)


def format_table(results: dict[str, dict[str, Any]]) -> str:
    """Plain-text table: one row per (run, subset)."""
    cols = ["run", "n", "EM", "F1", "EM ans", "F1 ans", "F1 unans", "noans acc", "cite acc",
            "R@1", "R@5", "R@10", "MRR", "p50 ms", "p95 ms", "build s"]
    rows = []
    for label, r in results.items():
        a = r.get("answers", {})
        ret = r.get("retrieval", {})
        lat = r.get("latency_ms", {})
        rows.append([
            label, str(r["n"]), _fmt(a.get("em")), _fmt(a.get("f1")), _fmt(a.get("em_answerable")),
            _fmt(a.get("f1_answerable")), _fmt(a.get("f1_unanswerable")), _fmt(a.get("no_answer_accuracy")),
            _fmt(r.get("citation_accuracy"), pct=True), _fmt(ret.get("recall@1"), pct=True),
            _fmt(ret.get("recall@5"), pct=True), _fmt(ret.get("recall@10"), pct=True),
            _fmt(ret.get("mrr"), pct=True),
            _fmt(lat.get("p50") if lat else ret.get("ms_per_question")),
            _fmt(lat.get("p95") if lat else None), _fmt(r.get("index_build_s")),
        ])
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    line = "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cols, widths)))
    body = ["  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths))) for row in rows]
    hows = sorted({r["latency_ms"]["how"] for r in results.values() if "latency_ms" in r})
    notes = ["(EM/F1/accuracies ×100 at the operating threshold; R@k, MRR and citation accuracy in %; "
             "p50/p95: per-question latency, " + ("; ".join(hows) if hows else
                                                  "here retrieval alone, batched: batch time / n") + ")"]
    thresholds = {r.get("threshold") for r in results.values() if r.get("threshold") is not None}
    if thresholds:
        notes.append("threshold: " + ", ".join(f"{t:.2f}" for t in sorted(thresholds)))
    return "\n".join([line, "-" * len(line), *body, *notes])


def plot(results: dict[str, dict[str, Any]], path: str | Path) -> None:
    """recall@k per run and the F1/abstention trade-off over the threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_ret = {k: v for k, v in results.items() if "retrieval" in v}
    with_ans = {k: v for k, v in results.items() if "sweep" in v}
    panels = int(bool(with_ret)) + int(bool(with_ans))
    if not panels:
        return
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.5), squeeze=False)
    ax_i = 0
    if with_ret:
        ax = axes[0][ax_i]
        ax_i += 1
        bases = list(dict.fromkeys(label.split(" [")[0] for label in with_ret))
        styles = {"": "-", "held-out": "--"}  # the train-article curves would only crowd the plot
        lowest = 1.0
        for label, r in with_ret.items():
            base, _, subset = label.partition(" [")
            subset = subset.rstrip("]")
            if subset not in styles:
                continue
            curve = r["retrieval"]["recall_curve"]
            ks = sorted(int(k.split("@")[1]) for k in curve if k.startswith("recall@"))
            ys = [curve[f"recall@{k}"] for k in ks]
            lowest = min(lowest, *ys)
            ax.plot(ks, ys, color=f"C{bases.index(base)}", ls=styles[subset], marker="o", ms=2.5, label=label)
        ax.set_xlabel("k (distinct documents)")
        ax.set_ylabel("recall@k of the gold document")
        ax.set_ylim(max(0.0, lowest - 0.05), 1.005)
        ax.set_xticks([1, 5, 10, 15, 20])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title("Retrieval")
    if with_ans:
        ax = axes[0][ax_i]
        for n, (label, r) in enumerate(with_ans.items()):
            ts = [p["threshold"] for p in r["sweep"]]
            color = f"C{n}"
            ax.plot(ts, [p["f1"] for p in r["sweep"]], color=color, label=f"{label}: F1")
            if r["answers"]["n_unanswerable"]:
                ax.plot(ts, [p["no_answer_accuracy"] for p in r["sweep"]], color=color, ls="--",
                        label=f"{label}: no-answer accuracy")
            ax.plot(ts, [p["answered"] for p in r["sweep"]], color=color, ls=":", label=f"{label}: % answered")
            if r.get("threshold") is not None:
                ax.axvline(r["threshold"], color=color, alpha=0.4, lw=1)
        ax.set_xlabel("confidence threshold (calibrated probability)")
        ax.set_ylabel("×100")
        ax.set_ylim(0, 101)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title("F1 / abstention trade-off")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- command line -------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qa eval", description="Evaluate qa on gold questions (official SQuAD scoring).")
    p.add_argument("gold", nargs="?", help="gold JSONL: {id, question, answers[, doc_id]} per line")
    p.add_argument("--squad", help="a SQuAD-format JSON file instead of GOLD")
    p.add_argument("--mode", choices=("open", "reader"), default="open",
                   help="SQuAD: 'reader' gives the gold paragraph to the reader; 'open' indexes every "
                        "paragraph and asks without it (default)")
    p.add_argument("--index", help="index folder (default: index/ for GOLD, a temporary one for --squad open; "
                                   "an existing one is reused)")
    p.add_argument("--limit", type=int, help="first N questions only")
    p.add_argument("--articles", help="SQuAD: comma-separated article titles")
    p.add_argument("--held-out", action="store_true", help="SQuAD: the fixed held-out articles only")
    p.add_argument("--train-articles", action="store_true", help="SQuAD: every article except the held-out ones")
    p.add_argument("--retrieval", default=None,
                   help="hybrid, dense, bm25 or rrf (default: the configured mode); a comma list evaluates each")
    p.add_argument("--retrieval-only", action="store_true", help="skip the reader: retrieval figures only")
    p.add_argument("--top-k", type=int, help="passages read per question (default: configured)")
    p.add_argument("--depth", type=int, default=50, help="chunks retrieved for recall@k/MRR (default 50)")
    p.add_argument("--min-score", type=float, help="operating threshold (default: the model's calibrated one)")
    p.add_argument("--batch-size", type=int,
                   help="questions per call (default 1 for GOLD, so latency is that of single ask() calls; "
                        "32 for SQuAD, reported as batch time / n)")
    p.add_argument("--json", help="write every figure to this JSON file")
    p.add_argument("--plot", help="write recall@k and the F1/threshold curves to this PNG")
    return p


def _select_squad(gold: list[GoldQuestion], args: argparse.Namespace) -> list[GoldQuestion]:
    if args.held_out and args.train_articles:
        raise SystemExit("error: --held-out and --train-articles exclude each other")
    if args.articles:
        wanted = {a.strip() for a in args.articles.split(",") if a.strip()}
        unknown = wanted - {g.title for g in gold}
        if unknown:
            raise SystemExit(f"error: no such article(s) in the file: {', '.join(sorted(unknown))}")
        gold = [g for g in gold if g.title in wanted]
    if args.held_out:
        gold = [g for g in gold if g.title in HELD_OUT_ARTICLES]
    if args.train_articles:
        gold = [g for g in gold if g.title not in HELD_OUT_ARTICLES]
    return gold


def _open_index(docs: list[Any], index_dir: Path) -> tuple[Any, float | None]:
    """A QA over every paragraph; (qa, build seconds or None when reused)."""
    from qa.pipeline import QA

    qa = QA(index_dir=index_dir, corpus_dir=None)
    t0 = time.perf_counter()
    if not qa.index_exactly(docs, progress=True):
        return qa, None
    return qa, time.perf_counter() - t0



def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if bool(args.gold) == bool(args.squad):
        print("error: give either a gold JSONL file or --squad FILE", file=sys.stderr)
        return 2
    from qa.errors import QAError

    try:
        return _main(args)
    except (GoldFormatError, QAError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def _main(args: argparse.Namespace) -> int:
    modes = [m.strip() for m in args.retrieval.split(",")] if args.retrieval else [None]
    from qa.config import RETRIEVAL_MODES

    for m in modes:
        if m is not None and m not in RETRIEVAL_MODES:
            print(f"error: unknown retrieval mode {m!r} ({', '.join(RETRIEVAL_MODES)})", file=sys.stderr)
            return 2
    tmp: tempfile.TemporaryDirectory | None = None
    build_s = None
    if args.squad:
        gold, docs = squad_gold(args.squad)
        gold = _select_squad(gold, args)
    else:
        gold, docs = load_gold(args.gold), []
    if args.limit:
        gold = gold[: args.limit]
    if not gold:
        print("error: no questions selected", file=sys.stderr)
        return 2
    batch = args.batch_size or (32 if args.squad else 1)
    runs: list[Run] = []
    qa = reader = None
    if args.squad and args.mode == "reader":
        from qa.config import ReaderConfig
        from qa.reader import SpanReader

        reader = SpanReader(ReaderConfig(min_score=args.min_score))
        run = Run("reader", gold)
        run_reader(reader, run, batch)
        runs.append(run)
    else:
        if args.squad:
            if args.index:
                index_dir = Path(args.index)
            else:
                tmp = tempfile.TemporaryDirectory(prefix="qa-eval-")
                index_dir = Path(tmp.name)
            qa, build_s = _open_index(docs, index_dir)
        elif args.index:
            from qa.pipeline import QA

            qa = QA(index_dir=args.index, corpus_dir=None)
        else:
            from qa import default_qa

            qa = default_qa()
        for m in modes:
            label = m or qa.settings.retrieval.mode
            run = Run(label, gold, index_build_s=build_s)
            if any(g.doc_id for g in gold):
                run_retrieval(qa, run, m, args.depth, max(batch, 32))
            if not args.retrieval_only:
                run_pipeline(qa, run, m, args.top_k, batch)
            runs.append(run)
        reader = qa.reader
    threshold = None
    if not args.retrieval_only:
        threshold = args.min_score if args.min_score is not None else reader.threshold
    results: dict[str, dict[str, Any]] = {}
    for run in runs:
        results[run.label] = summarise(run, threshold)
        titles = {g.title for g in gold}
        if args.squad and titles & HELD_OUT_ARTICLES and titles - HELD_OUT_ARTICLES:
            held = [i for i, g in enumerate(gold) if g.title in HELD_OUT_ARTICLES]
            rest = [i for i, g in enumerate(gold) if g.title not in HELD_OUT_ARTICLES]
            results[f"{run.label} [held-out]"] = summarise(run, threshold, held)
            results[f"{run.label} [train articles]"] = summarise(run, threshold, rest)
    print(format_table(results))
    if args.json:
        meta = {"gold": args.gold or args.squad, "mode": "gold" if args.gold else args.mode,
                "n": len(gold), "index": str(qa.settings.index_dir) if qa and not tmp else None,
                "reader": str(reader.path) if reader is not None else None,
                "retrieval_config": _asdict_or_none(qa.settings.retrieval) if qa else None}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    if args.plot:
        plot(results, args.plot)
    if tmp is not None:
        tmp.cleanup()
    return 0


def _asdict_or_none(x: Any) -> dict | None:
    from dataclasses import asdict, is_dataclass

    return asdict(x) if is_dataclass(x) else None


if __name__ == "__main__":
    raise SystemExit(main())
