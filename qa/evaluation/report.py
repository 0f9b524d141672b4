"""Reports people look at: a plain-text table and a plot of recall@k and the F1/abstention curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any


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
            _fmt(lat.get("p50") if lat else ret.get("latency_ms", {}).get("p50")),
            _fmt(lat.get("p95") if lat else ret.get("latency_ms", {}).get("p95")), _fmt(r.get("index_build_s")),
        ])
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    line = "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cols, widths)))
    body = ["  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths))) for row in rows]
    hows = sorted({r["latency_ms"]["how"] for r in results.values() if "latency_ms" in r})
    notes = ["(EM/F1/accuracies ×100 at the operating threshold; R@k, MRR and citation accuracy in %; "
             "p50/p95: per-question latency, " + ("; ".join(hows) if hows else
                                                  "here retrieval alone, batched: batch time / batch size") + ")"]
    thresholds = {r.get("threshold") for r in results.values() if r.get("threshold") is not None}
    if thresholds:
        notes.append("threshold: " + ", ".join(f"{t:.4g}" for t in sorted(thresholds)))
    table = "\n".join([line, "-" * len(line), *body, *notes])
    misses = format_misses(results)
    return table + ("\n\n" + misses if misses else "")


def format_misses(results: dict[str, dict[str, Any]]) -> str:
    """Where answers are lost: each answerable question answered right, or the
    first stage that lost it, at the operating threshold (counts and %)."""
    from qa.evaluation.metrics import MISS_CAUSES, MISS_LABELS

    with_m = {k: v["misses"] for k, v in results.items() if v.get("misses") and v["misses"]["n_answerable"]}
    if not with_m:
        return ""
    cols = ["where answers are lost", "answerable", "right", *(MISS_LABELS[c] for c in MISS_CAUSES),
            "answered unanswerable"]
    rows = []
    for label, m in with_m.items():
        pct = m["percent"]
        rows.append([label, str(m["n_answerable"]), f"{m['right']} ({pct['right']:.1f}%)",
                     *(f"{m[c]} ({pct[c]:.1f}%)" for c in MISS_CAUSES), str(m["answered_unanswerable"])])
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    head = "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cols, widths)))
    body = ["  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths))) for r in rows]
    note = ("(right: best candidate F1 >= 0.5 and shown; a wrong candidate is blamed on the first stage that lost "
            "the answer: no passage read holds it, another passage was chosen, or its own passage holds it)")
    return "\n".join([head, "-" * len(head), *body, note])


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
