"""The reader's learning curve: validation F1 against training windows seen.

Every export of the long training run is measured the same way, so that anyone
can see whether more compute still pays: best-span F1 on all 732 questions of
the validation articles (``squad.VALIDATION_ARTICLES``; never the held-out ones),
each question read in its gold paragraph through the product's own decoding
(``SpanReader.best_spans``: same windows, stride, span length and n-best as ``ask``).

    python -m qa.training.reader_curve --validate DIR [--add LABEL --windows N]
    python -m qa.training.reader_curve --plot        # docs/reader-curve.{png,md} from docs/reader-curve.json

``docs/reader-curve.json`` holds the points. Those measured on all 732
questions are the ones to choose by; the periodic points a run logs while it
trains (``val.jsonl``) use a 400-question sample and are drawn apart. "Windows"
counts 384-token training windows since the round-1 reader, the x axis of every
point: a run's own step × batch plus the windows of the weights it started from.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from qa._files import atomic_write_text
from qa.config import ReaderRunConfig
from qa.errors import QAError
from qa.evaluation import squad

DOCS = Path(__file__).resolve().parents[2] / "docs"
CURVE_JSON = DOCS / "reader-curve.json"
ALL_VALIDATION = 732  # v1.1 dev questions of the three validation articles
#: Points measured on all validation questions from weights on disk: the ones a ship may take.
MEASURED_KINDS = ("export", "cooldown")
COOLDOWN_SUFFIX = " + cooldown"


@dataclass
class CurvePoint:
    """One measurement of one set of weights."""

    label: str
    windows: int  # training windows seen since the round-1 reader
    f1: float  # best-span F1, gold paragraph
    questions: int  # 732: all validation questions (choose by these); 400: a run's periodic sample
    #: "export" (a run's weights measured with --validate), "cooldown" (an export's short low-rate
    #: branch, measured the same way: ``reader_runs cooldown``) or "periodic" (a run's val.jsonl)
    kind: str = "export"
    run: str = ""
    note: str = ""


def validation_examples(data_dir: Path | None = None) -> list[squad.SquadExample]:
    """All v1.1 dev questions of the validation articles (732)."""
    path = Path(data_dir or squad.SQUAD_DIR) / "dev-v1.1.json"
    return squad.select(squad.load_squad(path), include=squad.VALIDATION_ARTICLES)


def score_spans(examples: list[squad.SquadExample], spans) -> tuple[float, float]:
    """(EM, F1) in percent of the best spans against each question's gold answers."""
    scores = [squad.best_scores(e.context[sp.start:sp.end] if sp else "", e.answers) for e, sp in zip(examples, spans)]
    n = max(1, len(scores))
    return 100.0 * sum(s[0] for s in scores) / n, 100.0 * sum(s[1] for s in scores) / n


def validate(model_dir: Path, data_dir: Path | None = None, progress: bool = True) -> dict:
    """Best-span EM/F1 of the reader in ``model_dir`` on all validation questions."""
    from qa.config import ReaderConfig
    from qa.reader import SpanReader

    examples = validation_examples(data_dir)
    reader = SpanReader(ReaderConfig(path=Path(model_dir)), uncalibrated_ok=True)
    spans = []
    step = 64
    for i in range(0, len(examples), step):
        part = examples[i : i + step]
        spans.extend(reader.best_spans([e.question for e in part], [e.context for e in part]))
        if progress:
            print(f"\rvalidating {model_dir}: {len(spans)}/{len(examples)}", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    em, f1 = score_spans(examples, spans)
    return {"model": str(model_dir), "questions": len(examples), "em": round(em, 2), "f1": round(f1, 2)}


# -- the curve file -------------------------------------------------------------------------------


def load_curve(path: Path = CURVE_JSON) -> dict:
    if path.exists():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON ({e}): restore it (git checkout, or its last copy)") from e
    return {"shipped": None, "runs": {}, "points": []}


def save_curve(curve: dict, path: Path = CURVE_JSON) -> None:
    """Atomic write (temp file + rename): a crash never leaves half a curve."""
    path.parent.mkdir(parents=True, exist_ok=True)
    curve["points"].sort(key=lambda p: (p["windows"], p["kind"] != "export", p["label"]))
    atomic_write_text(path, json.dumps(curve, indent=1) + "\n")


def add_point(curve: dict, point: CurvePoint) -> dict:
    """Add ``point``, replacing an earlier one of the same label and kind."""
    curve["points"] = [p for p in curve["points"] if (p["label"], p["kind"]) != (point.label, point.kind)]
    curve["points"].append(asdict(point))
    return curve


def read_jsonl(path: Path) -> list[dict]:
    """The records of a run's ``val.jsonl``; a line that does not parse (the run is appending it, or
    stopped mid-line on a full disk) is skipped."""
    out = []
    for line in Path(path).read_text().splitlines():
        try:
            rec = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def add_run_log(curve: dict, val_jsonl: Path, run: str, origin_windows: int, batch_size: int = 32) -> int:
    """Add a run's periodic validation points (its ``val.jsonl``); returns how many."""
    n = 0
    for rec in read_jsonl(val_jsonl):
        windows = origin_windows + int(rec.get("windows", rec["step"] * batch_size))
        questions = int(rec.get("questions", 400))
        add_point(curve, CurvePoint(f"{run} step {rec['step']}", windows, float(rec["f1"]), questions,
                                    kind="periodic", run=run, note=f"periodic, {questions}-question sample"))
        n += 1
    return n


def shipped_f1(curve: dict) -> float | None:
    """The shipped reader's F1 on all validation questions, as recorded on the curve."""
    point = shipped_point(curve)
    return point["f1"] if point else None


def shipped_point(curve: dict) -> dict | None:
    """The curve's point of the shipped reader (an export or a cooldown of one)."""
    label = curve.get("shipped")
    return next((p for p in curve["points"] if p["label"] == label and p["kind"] in MEASURED_KINDS), None)


def ship_verdict(f1: float, curve: dict, margin: float | None = None) -> str:
    """The ship rule in words: ship only at ≥ ``margin`` F1 over the shipped reader."""
    margin = ReaderRunConfig().ship_margin_f1 if margin is None else margin
    best = shipped_f1(curve)
    if best is None:
        return "no shipped reader on the curve: measure it first (--validate qa/models/reader --add LABEL --shipped)"
    if f1 >= best + margin:
        return f"SHIP: {f1:.2f} is {f1 - best:+.2f} over the shipped reader's {best:.2f} (rule: >= {margin:+.1f})"
    return f"keep the shipped reader: {f1:.2f} is {f1 - best:+.2f} vs its {best:.2f} (rule: ship at >= {margin:+.1f})"


# -- the plot and table ---------------------------------------------------------------------------


def write_table(curve: dict, path: Path) -> None:
    shipped = curve.get("shipped")
    lines = [
        "# Reader learning curve",
        "",
        "Validation best-span F1 (gold paragraph, the product's decoding) against training windows seen since the",
        "round-1 reader (one window = one 384-token question+paragraph window; one epoch of the full mix is ~115k).",
        "**Bold**: measured on all 732 validation questions (`python -m qa.training.reader_curve --validate DIR`),",
        "the figures to choose by; the others are a run's periodic 400-question samples (`val.jsonl`), noisier.",
        "Ship rule: a new export replaces the shipped reader only at >= "
        f"{ReaderRunConfig().ship_margin_f1:.0f} F1 over it on all 732 questions.",
        "Regenerate: `python -m qa.training.reader_curve --plot`; add an export of the running run:"
        " `make train-reader-export`.",
        "`+ cooldown`: that export trained a few minutes more with the learning rate decaying to zero"
        " (`make train-reader-cooldown`), a branch the run itself does not take (it goes on from its checkpoint).",
        "",
        "![reader curve](reader-curve.png)",
        "",
        "| weights | windows seen | validation F1 | questions | note |",
        "|---|---:|---:|---:|---|",
    ]
    for p in curve["points"]:
        f1 = f"**{p['f1']:.2f}**" if p["questions"] >= ALL_VALIDATION else f"{p['f1']:.2f}"
        name = p["label"] + (" (shipped)" if p["label"] == shipped and p["kind"] in MEASURED_KINDS else "")
        lines.append(f"| {name} | {p['windows']:,} | {f1} | {p['questions']} | {p.get('note', '')} |")
    path.write_text("\n".join(lines) + "\n")


def plot(curve: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=90)
    periodic: dict[str, list[dict]] = {}
    for p in curve["points"]:
        if p["kind"] == "periodic":
            periodic.setdefault(p["run"], []).append(p)
    for run, pts in sorted(periodic.items()):
        ax.plot([p["windows"] for p in pts], [p["f1"] for p in pts], "o--", ms=4, alpha=0.6, mfc="none",
                label=f"{run}: periodic, {pts[0]['questions']} q")
    ex = [p for p in curve["points"] if p["kind"] == "export"]
    ax.plot([p["windows"] for p in ex], [p["f1"] for p in ex], "s-", color="black", label="exports, all 732 q")
    for p in ex:
        ax.annotate(f"{p['f1']:.1f}", (p["windows"], p["f1"]), textcoords="offset points", xytext=(4, 5), fontsize=8)
    by_label = {p["label"]: p for p in ex}
    cool = [p for p in curve["points"] if p["kind"] == "cooldown"]
    for i, p in enumerate(cool):  # each drawn from the export it branched off
        base = by_label.get(p["label"].removesuffix(COOLDOWN_SUFFIX))
        if base is not None:
            ax.plot([base["windows"], p["windows"]], [base["f1"], p["f1"]], ":", color="tab:purple", lw=1)
        ax.plot([p["windows"]], [p["f1"]], "^", color="tab:purple", ms=7,
                label="cooldown branches, all 732 q" if i == 0 else None)
        ax.annotate(f"{p['f1']:.1f}", (p["windows"], p["f1"]), textcoords="offset points", xytext=(-26, 4),
                    fontsize=8, color="tab:purple")
    best = shipped_f1(curve)
    if best is not None:
        ax.axhline(best + ReaderRunConfig().ship_margin_f1, color="tab:red", lw=0.8, ls=":",
                   label="ship bar (shipped + 1)")
    ax.set_xlabel("training windows seen since the round-1 reader")
    ax.set_ylabel("validation F1, best span")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)


def render(curve_path: Path = CURVE_JSON) -> None:
    curve = load_curve(curve_path)
    curve_path.parent.mkdir(parents=True, exist_ok=True)
    write_table(curve, curve_path.with_suffix(".md"))  # the table and plot are derived: plain writes
    plot(curve, curve_path.with_suffix(".png"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--validate", type=Path, metavar="DIR", help="measure the reader in DIR on all validation questions")
    p.add_argument("--data", type=Path, help="SQuAD folder (default: ../shared/data/squad, QA_DATA)")
    p.add_argument("--add", metavar="LABEL", help="with --validate: put the measurement on the curve as LABEL")
    p.add_argument("--windows", type=int, help="with --add: training windows seen by these weights")
    p.add_argument("--note", default="", help="with --add: a note for the table")
    p.add_argument("--shipped", action="store_true", help="with --add: these are the shipped weights")
    p.add_argument("--run-log", type=Path, metavar="VAL_JSONL", help="add a run's periodic points (val.jsonl)")
    p.add_argument("--run", help="with --run-log: the run's name")
    p.add_argument("--origin-windows", type=int, default=0, help="with --run-log: windows of the run's --init")
    p.add_argument("--plot", action="store_true", help="write docs/reader-curve.png and .md from the JSON")
    p.add_argument("--curve", type=Path, default=CURVE_JSON, help="the curve file (default docs/reader-curve.json)")
    args = p.parse_args(argv)
    if not (args.validate or args.run_log or args.plot):
        p.error("give --validate DIR, --run-log FILE or --plot")
    if args.add and (not args.validate or args.windows is None):
        p.error("--add needs --validate DIR and --windows N")
    if args.run_log and not args.run:
        p.error("--run-log needs --run NAME")
    try:
        return _main(args)
    except (QAError, OSError, ValueError) as e:  # no model in the folder, no log yet, a damaged curve file
        print(f"error: {e}", file=sys.stderr)
        return 1


def _main(args: argparse.Namespace) -> int:
    curve = load_curve(args.curve)
    if args.validate:
        res = validate(args.validate, args.data)
        print(json.dumps(res))
        if args.add:
            add_point(curve, CurvePoint(args.add, args.windows, res["f1"], res["questions"], note=args.note))
            if args.shipped:
                curve["shipped"] = args.add
            save_curve(curve, args.curve)
        print(ship_verdict(res["f1"], curve))
    if args.run_log:
        n = add_run_log(curve, args.run_log, args.run, args.origin_windows)
        save_curve(curve, args.curve)
        print(f"{n} periodic points of {args.run} on the curve")
    if args.plot or args.add or args.run_log:
        render(args.curve)
        print(f"wrote {args.curve.with_suffix('.md')} and {args.curve.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
