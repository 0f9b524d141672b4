"""The Check and tune tab: measure the chat on your own questions, then choose
its confidence threshold.

Upload a gold JSONL (the format ``qa eval`` and ``qa calibrate`` read: one
``{"id", "question", "answers": [...], "doc_id"?}`` a line; ``answers: []``
means "not in the documents"). Every question is asked once at threshold 0
(``QA.ask_batch``); from those answers the tab shows EM/F1 at the threshold
now in use, how many were answered and declined, why answerable questions
were missed (``qa.evaluation.metrics.miss_breakdown``), and the precision /
withheld / F1 curve along the threshold with the threshold ``qa calibrate``
would choose (``qa.evaluation.calibrate.calibrate`` on the same answers).
"Store" writes it with the index (``qa.store.threshold.save_threshold``): ``ask()``, the
CLI and this app then use it whenever a call names no ``min_score``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from qa.errors import QAError
from qa.evaluation.calibrate import CalibrationReport, calibrate
from qa.evaluation.gold import GoldQuestion, load_gold
from qa.evaluation.metrics import MISS_CAUSES, MISS_LABELS, answer_metrics, at_threshold, miss_breakdown
from qa.evaluation.runs import answer_whereabouts
from qa.store.threshold import save_threshold
from qa.formatting import md_escape
from qa.serving import require_editor, web_errors, without_server_paths, without_temp_file_leak

log = logging.getLogger("qa.app")

#: Gold questions asked per batch (progress moves once a batch).
BATCH = 8
#: Questions in one evaluation run from the page (a bigger file: use `qa eval`).
MAX_GOLD = 2000
CRITERIA = ["best F1", "precision at least", "withhold at most"]


@dataclass
class Evaluation:
    """What one run found (kept in the page session until stored)."""

    n: int
    threshold: float  # the one in use during the run
    metrics: dict[str, Any]
    misses: dict[str, Any]
    report: CalibrationReport
    examples: list[list[Any]] = field(default_factory=list)


def evaluate(qa_instance, gold: list[GoldQuestion], criterion: str = "best F1", target: float = 0.9,
             top_k: int | None = None, progress=None) -> Evaluation:
    """Ask every gold question once and compute everything the tab shows."""
    if not gold:
        raise QAError("the gold file holds no questions")
    if len(gold) > MAX_GOLD:
        raise QAError(f"{len(gold)} gold questions; the page runs up to {MAX_GOLD} at a time "
                      "(run bigger sets with `qa eval` and `qa calibrate`)")
    answers = []
    for i in range(0, len(gold), BATCH):
        part = gold[i:i + BATCH]
        if progress is not None:
            progress(i / len(gold), desc=f"Asking question {i + 1}-{i + len(part)} of {len(gold)}")
        answers.extend(qa_instance.ask_batch([g.question for g in part], top_k=top_k, min_score=0.0))
    if progress is not None:
        progress(1.0, desc="Scoring")
    threshold = float(qa_instance.threshold)
    candidates = [a.best_candidate or a.answer for a in answers]
    scores = [float(a.score) for a in answers]
    golds = [g.answers for g in gold]
    where = [answer_whereabouts(g, a) for g, a in zip(gold, answers)]
    metrics = answer_metrics(at_threshold(candidates, scores, threshold), golds)
    misses = miss_breakdown(candidates, scores, golds, threshold, [w[0] for w in where], [w[1] for w in where])
    rule = {"precision at least": {"precision": target}, "withhold at most": {"max_withheld": target}}.get(criterion, {})
    report = calibrate(qa_instance, gold, top_k=top_k, store=False, answers=answers, **rule)
    examples = []
    for g, c, s in zip(gold, candidates, scores):
        given = c if s >= threshold else ""
        examples.append([g.question, " | ".join(g.answers) or "(not in the documents)", given or "(declined)",
                         round(s, 3)])
    return Evaluation(len(gold), threshold, metrics, misses, report, examples)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f}%"


def summary_markdown(ev: Evaluation) -> str:
    m, a = ev.metrics, ev.report.at_threshold
    lines = [
        f"**{ev.n} questions** ({m['n_answerable']} answerable, {m['n_unanswerable']} not in the documents), "
        f"at the threshold in use now (**{ev.threshold:.4g}**):",
        "",
        "| EM | F1 | answered | declined (of not in the documents) |",
        "|---:|---:|---:|---:|",
        f"| {m['em']:.1f} | {m['f1']:.1f} | {_pct(m['answered'])} | "
        f"{_pct(_declined(m))} |",
        "",
        f"**Suggested threshold: {ev.report.threshold:.4g}** ({md_escape(ev.report.criterion['rule'])}): "
        f"precision {_pct(a['precision'])}, withheld {_pct(a['withheld'])} of the right answers, "
        f"F1 {a['f1']:.1f}, answered {_pct(a['answered'])}.",
    ]
    if ev.report.note:
        lines += ["", md_escape(ev.report.note)]
    return "\n".join(lines)


def _declined(m: dict[str, Any]) -> float | None:
    """Share of unanswerable questions declined (their EM is 1 exactly when declined)."""
    return m.get("em_unanswerable")


def misses_table(ev: Evaluation) -> list[list[Any]]:
    ms = ev.misses
    rows = [["answered right", ms["right"], _pct(ms["percent"]["right"])]]
    rows += [[MISS_LABELS[c], ms[c], _pct(ms["percent"][c])] for c in MISS_CAUSES]
    rows.append(["answered although not in the documents", ms["answered_unanswerable"], ""])
    return rows


def curve_plot(ev: Evaluation):
    """Precision, withheld and F1 along the threshold, with the thresholds in use and suggested."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = sorted({round(p["threshold"], 4): p for p in ev.report.curve}.values(), key=lambda p: p["threshold"])
    xs = [p["threshold"] for p in pts]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=90)
    for key, label, style, colour in (("precision", "precision of answers given", "-", "#2563eb"),
                                      ("withheld", "right answers withheld", "--", "#f97316"),
                                      ("f1", "F1 (all questions)", ":", "#334155"),
                                      ("answered", "answered", "-.", "#16a34a")):
        ys = [p[key] if p[key] is not None else float("nan") for p in pts]
        ax.plot(xs, ys, style, label=label, linewidth=1.8, color=colour)
    ax.axvline(ev.threshold, color="grey", linewidth=1, label=f"in use ({ev.threshold:.4g})")
    ax.axvline(ev.report.threshold, color="#dc2626", linewidth=1.5, label=f"suggested ({ev.report.threshold:.4g})")
    ax.set_title("Precision and withheld answers along the threshold", fontsize=10)
    ax.set_xlim(0, 1)
    ax.set_ylim(-2, 104)
    ax.set_xlabel("confidence threshold")
    ax.set_ylabel("%")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False)
    fig.tight_layout()
    plt.close(fig)
    return fig


def build_tune_tab(qa_instance, min_score_slider, credentials=None) -> tuple[Any, Any]:
    """The tab's components and events (inside an open ``gr.Tab``); returns the gold
    file and the run button (the page turns them off for readers). ``credentials``
    (``qa.serving.Credentials``): only editors may run an evaluation or store a
    threshold (None: everyone may)."""
    gr.Markdown(
        "Measure the answers on **your own questions** and choose when the chat should say "
        "\"the documents don't say\". Upload a JSONL file, one question a line: "
        "`{\"id\": \"q1\", \"question\": \"...\", \"answers\": [\"...\"]}` "
        "(`\"answers\": []` for a question the documents do not answer; an optional `\"doc_id\"` "
        "names the document that holds the answer). The same file works with `qa eval` and `qa calibrate`.")
    with gr.Row():
        gold_file = without_temp_file_leak(gr.File(
            label="Gold questions (.jsonl)", file_types=[".jsonl", ".json"], file_count="single",
            elem_id="qa-gold", height=110, scale=3))
        with gr.Column(scale=2):
            criterion = gr.Radio(CRITERIA, value="best F1", label="Choose the threshold by", elem_id="qa-criterion")
            target = gr.Slider(0.5, 1.0, value=0.9, step=0.01, label="Target (for precision / withheld)",
                               elem_id="qa-target")
    run_btn = gr.Button("Run the evaluation", variant="primary", elem_id="qa-tune-run")
    summary = gr.Markdown(elem_id="qa-tune-summary")
    with gr.Row():
        misses = gr.Dataframe(headers=["Outcome", "Questions", "% of answerable"], datatype=["str", "number", "str"],
                              interactive=False, label="Misses by cause", elem_id="qa-tune-misses", scale=2,
                              column_widths=["58%", "18%", "24%"], wrap=True)
        plot = gr.Plot(label="Precision / withheld along the threshold", show_label=False, elem_id="qa-tune-plot",
                       scale=3)
    store_btn = gr.Button("Store the suggested threshold for this index", variant="secondary",
                          elem_id="qa-tune-store", interactive=False)
    stored = gr.Markdown(elem_id="qa-tune-stored")
    with gr.Accordion("Every question", open=False):
        per_q = gr.Dataframe(headers=["Question", "Gold", "Answer at the threshold in use", "Confidence"],
                             datatype=["str", "str", "str", "number"], interactive=False, wrap=True,
                             elem_id="qa-tune-questions", max_height=360)
    state = gr.State(None)

    def run(file, crit, tgt, request: gr.Request | None = None, progress=gr.Progress()):
        # An evaluation asks up to MAX_GOLD questions with no time budget: editors only, like storing
        # its threshold (the page's queue runs it for anyone who names its function otherwise).
        require_editor(request, credentials, "run an evaluation")
        path = file if isinstance(file, str) else getattr(file, "name", None)
        if not path:
            return "Choose a gold JSONL file first.", gr.skip(), gr.skip(), gr.skip(), gr.update(interactive=False), None, ""
        try:
            gold = load_gold(Path(path))
            ev = evaluate(qa_instance, gold, crit, float(tgt), progress=progress)
        except QAError as e:
            # (a gold file's errors name its upload copy: /tmp/gradio/<hash>/gold.jsonl)
            return f"⚠ {md_escape(without_server_paths(e))}", None, None, None, gr.update(interactive=False), None, ""
        except Exception as e:  # keep the page alive; the log has the traceback
            log.exception("evaluation from the page failed")
            return (f"⚠ Something went wrong: {md_escape(type(e).__name__)}: {md_escape(without_server_paths(e))}", None, None, None,
                    gr.update(interactive=False), None, "")
        label = f"Store threshold {ev.report.threshold:.4g} for this index"
        return (summary_markdown(ev), misses_table(ev), curve_plot(ev), ev.examples,
                gr.update(interactive=True, value=label), ev.report.record, "")

    @web_errors("storing a threshold")
    def store(record, request: gr.Request):
        require_editor(request, credentials, "store a threshold")
        if not record:
            return "Run the evaluation first.", gr.skip()
        try:
            where = save_threshold(qa_instance.settings.index_dir, record)
        except (OSError, ValueError) as e:
            return f"⚠ Not stored: {md_escape(without_server_paths(e))}", gr.skip()
        t = float(record["threshold"])
        in_use = float(qa_instance.threshold)
        note = ("" if abs(in_use - t) < 1e-9 else
                f" (note: the settings fix the threshold at {in_use:.3f}, which overrides it)")
        return (f"Stored threshold **{t:.4g}** with the index ({md_escape(where.name)}): answers below it now say "
                f"\"the documents don't say\"{note}.", gr.update(value=min(1.0, max(0.0, in_use))))

    run_btn.click(run, [gold_file, criterion, target], [summary, misses, plot, per_q, store_btn, state, stored],
                  concurrency_id="tune", concurrency_limit=1, api_visibility="private")
    store_btn.click(store, state, [stored, min_score_slider], concurrency_id="index", concurrency_limit=1,
                    api_visibility="private")
    return gold_file, run_btn
