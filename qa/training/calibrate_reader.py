"""Calibrate the reader: the answer-choice model, its probabilities and the default threshold.

    python -m qa.training.calibrate_reader --model qa/models/reader --predictions /tmp/calib-preds.json

(one command after a new reader lands: it reads the validation questions once,
caches the raw candidates in ``--predictions`` (reused while the weights are
the same), fits, and rewrites ``calibration.json`` beside the weights; a few
minutes on 2 cores.)

Only ``qa.evaluation.squad.VALIDATION_ARTICLES`` are used (v1.1 and the 2.0
half, so Huguenot brings unanswerable questions), never the held-out ones.
A probability must mean the same whatever the corpus size (docs/calibration.md),
so the settings are read at three sizes, each with off-topic questions
(questions of other training articles: the documents do not say):

- one paragraph: ``reader`` (each question with its gold paragraph alone, which
  is what a one-paragraph corpus reads) and ``offtopic_paragraph``;
- one article: ``article`` (each validation article indexed alone, its own
  questions asked) and ``offtopic_article``;
- three articles: ``open`` (every validation paragraph indexed, each question
  asked without its paragraph, top-k passages read) and ``offtopic``.

Each candidate span is labelled right when its F1 against the gold answers is
at least 0.5 (any answer to an unanswerable question is wrong). One logistic
choice model over the size-free candidate features of ``qa.reader.calibration``
(no retrieval scores: their scale moves with the index) is fitted on every size
together, the winner's probability re-calibrated by a Platt step, and compared
by leave-one-article-out cross validation against the plain choice (the best
raw margin, probability sigmoid(a * margin + b)); the better one is kept
(``--choice auto``). Per size it reports ECE, a reliability table, and
precision / answered / declined at the default threshold (``--plot``,
``--report``).

The default threshold is chosen on the out-of-fold probabilities so as not to
hide right answers: the highest threshold at which at least ``--min-answered``
of the answerable questions are answered with one paragraph (with more, declining
a question whose answer was not retrieved is right, so only F1 counts there), and
the answerable F1 stays within ``--max-f1-drop`` of always answering at every
size. Held-out and out-of-domain sets are only ever measured
(``python -m qa.evaluate``), never used here.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from qa._files import atomic_write_json, weights_fingerprint
from qa.config import ReaderConfig, Settings
from qa.evaluation import squad
from qa.reader import CALIBRATION_FILE, ReadResult, Span, SpanReader
from qa.reader.calibration import FEATURES, SIZE_FREE_FEATURES, Calibration

from qa.training.calibration_fit import (
    Question,
    at,
    cross_validate,
    fit_choice,
    fit_margin,
    outcomes,
    summary,
)

CACHE_VERSION = 2
#: reader: gold paragraph alone (= a one-paragraph corpus: its chunks merge into one passage);
#: article: each validation article indexed alone; open: the three together;
#: offtopic / offtopic_article: questions of other articles asked of those indexes.
SETTINGS = ("reader", "article", "open", "offtopic", "offtopic_article", "offtopic_paragraph")
#: Corpus sizes reported (and fitted together): setting(s) read for each.
SIZES: dict[str, tuple[str, ...]] = {
    "one paragraph": ("reader", "offtopic_paragraph"),
    "one article": ("article", "offtopic_article"),
    "three articles": ("open", "offtopic"),
}


# --- reading (cached) ----------------------------------------------------------------


def _record(qid, title, question, answers, contexts, retrieval, result: ReadResult) -> dict:
    return {"id": qid, "title": title, "question": question, "answers": list(answers), "contexts": contexts,
            "retrieval": retrieval,
            "spans": [[s.start, s.end, s.score, s.null_score, s.passage] for s in result.spans]}


def _question(r: dict, questions: dict[str, str]) -> Question:
    return Question(r["id"], r["title"], tuple(r["answers"]), r["contexts"], r["retrieval"],
                    [Span(int(a), int(b), float(c), float(d), int(e)) for a, b, c, d, e in r["spans"]],
                    r.get("question") or questions.get(r["id"], ""))


def validation_examples(data: Path) -> list[squad.SquadExample]:
    v1 = squad.select(squad.load_squad(data / "dev-v1.1.json"), include=squad.VALIDATION_ARTICLES)
    v2 = squad.select(squad.load_squad(data / "dev-v2.0-half.json"), include=squad.VALIDATION_ARTICLES)
    return squad.dedupe(v2 + v1)


def offtopic_examples(data: Path, n: int, seed: int = 0) -> list[squad.SquadExample]:
    """``n`` questions of training articles that are neither held out nor validation."""
    pool = squad.select(squad.load_squad(data / "dev-v1.1.json"),
                        exclude=squad.HELD_OUT_ARTICLES | squad.VALIDATION_ARTICLES)
    random.Random(seed).shuffle(pool)
    return pool[:n]


def predict(reader: SpanReader, data: Path, n_offtopic: int, settings: Sequence[str],
            batch: int = 32) -> dict[str, list[dict]]:
    """The raw candidates of each of ``settings`` (what ``ask`` and the evaluation see, before any choice)."""
    import tempfile

    from tqdm import tqdm

    from qa.evaluation.gold import squad_gold
    from qa.pipeline import QA

    val = validation_examples(data)
    out: dict[str, list[dict]] = {name: [] for name in settings}
    if "reader" in settings:
        for i in tqdm(range(0, len(val), batch), desc="reader setting", unit="batch"):
            part = val[i:i + batch]
            for e, r in zip(part, reader.run([e.question for e in part], [[e.context] for e in part])):
                out["reader"].append(_record(e.id, e.title, e.question, e.answers, [e.context], None, r))
    off = offtopic_examples(data, n_offtopic)
    if "offtopic_paragraph" in settings:  # each off-topic question with a validation paragraph
        paragraphs = sorted({e.context for e in val})
        random.Random(1).shuffle(paragraphs)
        for i in tqdm(range(0, len(off), batch), desc="offtopic_paragraph setting", unit="batch"):
            part = off[i:i + batch]
            ctxs = [paragraphs[(i + j) % len(paragraphs)] for j in range(len(part))]
            for j, (e, c, r) in enumerate(zip(part, ctxs, reader.run([e.question for e in part],
                                                                      [[c] for c in ctxs]))):
                out["offtopic_paragraph"].append(_record(e.id, f"offtopic-{(i + j) % 3}", e.question, (), [c],
                                                         None, r))
    _, docs = squad_gold(data / "dev-v1.1.json")
    docs = [d for d in docs if d.id.split("/")[0] in squad.VALIDATION_ARTICLES]

    def ask(qa, name: str, examples, offtopic: bool, fold: str | None = None) -> None:
        for i in tqdm(range(0, len(examples), batch), desc=f"{name} setting", unit="batch"):
            part = examples[i:i + batch]
            passages, results = qa.read([e.question for e in part])
            for j, (e, ps, r) in enumerate(zip(part, passages, results)):
                title = (fold or f"offtopic-{(i + j) % 3}") if offtopic else e.title
                out[name].append(_record(e.id, title, e.question, () if offtopic else e.answers,
                                         [p.text for p in ps], [float(p.retrieval_score) for p in ps], r))

    def fresh_qa(tmp: str) -> QA:
        qa = QA(index_dir=tmp, corpus_dir=None, settings=replace(Settings(), reader=reader.config))
        qa.reader = reader
        qa.answerer.reader = reader
        return qa

    if "open" in settings or "offtopic" in settings:
        with tempfile.TemporaryDirectory(prefix="qa-calib-") as tmp:
            qa = fresh_qa(tmp)
            qa.index_exactly(docs, progress=True)
            if "open" in settings:
                ask(qa, "open", val, False)
            if "offtopic" in settings:
                ask(qa, "offtopic", off, True)
    if "article" in settings or "offtopic_article" in settings:
        arts = sorted(squad.VALIDATION_ARTICLES)
        for k, art in enumerate(arts):
            with tempfile.TemporaryDirectory(prefix="qa-calib-") as tmp:
                qa = fresh_qa(tmp)
                qa.index_exactly([d for d in docs if d.id.split("/")[0] == art])
                if "article" in settings:
                    ask(qa, "article", [e for e in val if e.title == art], False)
                if "offtopic_article" in settings:  # the same off-topic questions, a third per article
                    ask(qa, "offtopic_article", off[k::len(arts)], True, fold=f"offtopic-{k}")
    return out


def load_or_predict(model_dir: Path, data: Path, cache: Path | None, n_offtopic: int,
                    settings: Sequence[str] = SETTINGS) -> dict[str, list[Question]]:
    """Every setting's questions: from ``cache`` where it holds them for these weights,
    the missing settings read now (and added to the cache)."""
    fp = weights_fingerprint(model_dir)
    raw: dict[str, list[dict]] = {}
    if cache is not None and cache.exists():
        saved = json.loads(cache.read_text())
        if saved.get("version") == CACHE_VERSION and saved.get("weights") == fp \
                and saved.get("n_offtopic") == n_offtopic:
            raw = {k: v for k, v in saved["settings"].items() if k in settings}
            print(f"re-using the predictions in {cache} ({', '.join(raw)})")
        else:
            print(f"{cache} was made with other weights or settings: reading again")
    missing = [s for s in settings if s not in raw]
    if missing:
        reader = SpanReader(replace(ReaderConfig(), path=model_dir), uncalibrated_ok=True)
        raw.update(predict(reader, data, n_offtopic, missing))
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(cache, {"version": CACHE_VERSION, "weights": fp, "n_offtopic": n_offtopic,
                                      "settings": raw}, indent=None)
    texts: dict[str, str] = {}
    if any(not r.get("question") for v in raw.values() for r in v):  # a cache written before questions were kept
        texts = {e.id: e.question for e in validation_examples(data) + offtopic_examples(data, n_offtopic)}
    return {k: [_question(r, texts) for r in v] for k, v in raw.items()}


def ece(p: np.ndarray, right: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the gap between mean probability and accuracy in each of
    ``bins`` equal-width probability bins, weighted by the share of all questions in it."""
    idx = np.minimum((p * bins).astype(int), bins - 1)
    return float(sum(abs(p[idx == b].mean() - right[idx == b].mean()) * (idx == b).sum()
                     for b in range(bins) if (idx == b).any()) / max(1, len(p)))


def reliability_bins(p: np.ndarray, right: np.ndarray, bins: int = 10) -> list[dict]:
    idx = np.minimum((p * bins).astype(int), bins - 1)
    return [{"bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}", "n": int((idx == b).sum()),
             "mean_p": float(p[idx == b].mean()), "accuracy": float(right[idx == b].mean())}
            for b in range(bins) if (idx == b).any()]


def size_report(o: dict[str, np.ndarray], offtopic: np.ndarray, threshold: float) -> dict[str, Any]:
    """Per corpus size: ECE, reliability, and the figures at ``threshold``."""
    right = (o["f1"] >= 0.5) & o["has"] & o["answerable"]
    here = at(o, threshold)
    given = (o["p"] >= threshold) & o["has"]
    return {"n": int(len(o["p"])), "answerable": int(o["answerable"].sum()),
            "unanswerable": int((~o["answerable"] & ~offtopic).sum()), "offtopic": int(offtopic.sum()),
            "ece": ece(o["p"], right), "reliability": reliability_bins(o["p"], right),
            "precision": here.get("precision"), "answered": here.get("answered"), "f1": here.get("f1"),
            "unanswerable_declined": float(100 * (~given[~o["answerable"] & ~offtopic]).mean())
            if (~o["answerable"] & ~offtopic).any() else None,
            "offtopic_declined": float(100 * (~given[offtopic]).mean()) if offtopic.any() else None,
            "mean_p_right": float(o["p"][right].mean()) if right.any() else None,
            "best_f1": float(100 * o["f1"][o["answerable"]].mean())}


def plot_sizes(reports: dict[str, dict], threshold: float, path: Path) -> None:
    """Reliability diagram per corpus size, and precision / answered against the threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.2))
    a.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    for name, r in reports.items():
        rel = r["reliability"]
        a.plot([x["mean_p"] for x in rel], [x["accuracy"] for x in rel], marker="o",
               label=f"{name} (ECE {r['ece']:.3f})")
        b.plot([c["threshold"] for c in r["curve"]], [c["precision"] for c in r["curve"]], label=f"{name}: precision")
        b.plot([c["threshold"] for c in r["curve"]], [c["answered"] for c in r["curve"]], ls="--",
               label=f"{name}: answered")
    a.set(xlabel="predicted P(right)", ylabel="share right", title="Reliability (out of fold)")
    a.legend(fontsize=8)
    b.axvline(threshold, color="grey", lw=0.8)
    b.set(xlabel="threshold", ylabel="% (answerable answered / precision)", title="By corpus size", xlim=(0, 0.6))
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=ReaderConfig().path, help="reader folder (calibration.json is written there)")
    p.add_argument("--data", type=Path, default=squad.SQUAD_DIR)
    p.add_argument("--predictions", type=Path,
                   help="cache of the raw candidates: written after reading, re-used while the weights are the same")
    p.add_argument("--offtopic", type=int, default=300, help="off-topic questions for the open setting (default 300)")
    p.add_argument("--choice", choices=("auto", "model", "margin"), default="auto",
                   help="answer choice to store: the choice model, the raw margin, or whichever validates better")
    p.add_argument("--features", default=",".join(SIZE_FREE_FEATURES),
                   help="choice model features (default: the size-free set; known: " + ", ".join(FEATURES) + ")")
    p.add_argument("--c", type=float, default=1.0, help="inverse L2 strength of the choice model")
    p.add_argument("--min-answered", type=float, default=0.95,
                   help="default threshold: answerable validation questions answered at least (default 0.95)")
    p.add_argument("--max-f1-drop", type=float, default=1.5,
                   help="default threshold: largest F1 drop on answerable validation questions (default 1.5)")
    p.add_argument("--plot", type=Path, help="write the per-size reliability / precision plot here")
    p.add_argument("--report", type=Path, help="write the per-size figures as JSON here")
    p.add_argument("--dry-run", action="store_true", help="print the figures, do not write calibration.json")
    args = p.parse_args(argv)
    features = tuple(f.strip() for f in args.features.split(",") if f.strip())
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        p.error(f"unknown feature(s) {unknown}; known: {', '.join(FEATURES)}")
    if any(f.startswith("retrieval") for f in features):
        p.error("retrieval scores move with corpus size: the size-free calibration cannot use them")

    data = load_or_predict(args.model, args.data, args.predictions, args.offtopic)
    # One model for every corpus size, fitted on all of them together.
    groups = {name: data[name] for name in SETTINGS}
    qs = [q for g in groups.values() for q in g]
    a, b = fit_margin(data["reader"] + data["open"])
    mp, gp = cross_validate(groups, features, args.c)
    om, og = outcomes(qs, mp), outcomes(qs, gp)
    sm, sg = summary(om), summary(og)
    keep_model = args.choice == "model" or (
        args.choice == "auto" and sm["best_f1"] >= sg["best_f1"] - 0.3
        and (sm["auc_right"] or 0) >= (sg["auc_right"] or 0))
    kept_name = "model" if keep_model else "margin"
    kept = om if keep_model else og
    print(f"\n== every corpus size together ({len(qs)} questions; leave-one-article-out) ==")
    for name, sx in (("raw margin", sg), ("choice model", sm)):
        print(f"  {name:13s} best-candidate F1 {sx['best_f1']:.1f} EM {sx['best_em']:.1f}  AUC(right) "
              f"{sx['auc_right']:.3f}")
    print(f"  kept: {kept_name}; features: {', '.join(features)}")

    # Slices of the pooled out-of-fold outcomes, one per corpus size.
    offsets, n0 = {}, 0
    for name, g in groups.items():
        offsets[name] = np.arange(n0, n0 + len(g))
        n0 += len(g)
    size_idx = {size: np.concatenate([offsets[s] for s in parts]) for size, parts in SIZES.items()}
    off_all = np.asarray([q.title.startswith("offtopic-") for q in qs])
    sliced = {size: {k: v[i] for k, v in kept.items()} for size, i in size_idx.items()}

    # The default threshold, on the out-of-fold probabilities: reading one paragraph
    # still answers >= min_answered of the answerable questions, and at every size
    # the answerable F1 stays within max_f1_drop of always answering.
    grid = np.round(np.arange(0.0, 1.0005, 0.005), 3)
    threshold = 0.0
    for t in grid:
        ok = True
        for size, o in sliced.items():
            here, best = at(o, t), at(o, 0.0)
            if (size == "one paragraph" and here["answered"] < 100 * args.min_answered - 1e-9) \
                    or here["f1"] < best["f1"] - args.max_f1_drop:
                ok = False
        if ok:
            threshold = float(t)
    print(f"\ndefault threshold {threshold:.3f} (one paragraph: >= {args.min_answered:.0%} of answerable answered; "
          f"every size: answerable F1 within {args.max_f1_drop} of always answering; out-of-fold)")

    reports = {}
    for size, o in sliced.items():
        r = size_report(o, off_all[size_idx[size]], threshold)
        r["curve"] = [dict(at(o, float(t)), threshold=float(t)) for t in np.round(np.arange(0, 0.605, 0.025), 3)]
        reports[size] = r
    print(f"\n{'corpus size':15s} {'n':>5s} {'ECE':>6s} {'precision':>9s} {'answered':>8s} {'F1':>5s} "
          f"{'unans decl':>10s} {'off-topic decl':>14s} {'mean p right':>12s}")
    for size, r in reports.items():
        fmt = lambda x, f="{:.1f}": "-" if x is None else f.format(x)  # noqa: E731
        print(f"{size:15s} {r['n']:5d} {r['ece']:6.3f} {fmt(r['precision']):>9s} {fmt(r['answered']):>8s} "
              f"{fmt(r['f1']):>5s} {fmt(r['unanswerable_declined']):>10s} {fmt(r['offtopic_declined']):>14s} "
              f"{fmt(r['mean_p_right'], '{:.3f}'):>12s}")
    if args.plot:
        plot_sizes(reports, threshold, args.plot)
        print(f"wrote {args.plot}")
    if args.report:
        args.report.write_text(json.dumps(_jsonable(reports), indent=2))

    final = fit_choice(qs, features, args.c) if keep_model else None
    p_all, r_all = kept["p"], (kept["f1"] >= 0.5) & kept["has"]
    out = {
        "a": a, "b": b, "threshold": threshold,
        # the same size-free model for passages from retrieval and for a passage given alone
        "choice": {"open": final.to_dict(), "reader": final.to_dict()} if final else {},
        "fitted_on": sorted(squad.VALIDATION_ARTICLES),
        "settings": {k: len(v) for k, v in data.items()},
        "sizes": {k: list(v) for k, v in SIZES.items()},
        "threshold_rule": {"min_answered": args.min_answered, "max_f1_drop": args.max_f1_drop},
        "validation": _jsonable({"model": sm, "margin": sg, "kept": kept_name}),
        "by_size": _jsonable({k: {x: y for x, y in v.items() if x != "curve"} for k, v in reports.items()}),
        "reliability": reliability_bins(p_all, r_all),
    }
    if args.dry_run:
        print("(dry run: calibration.json not written)")
        return 0
    target = args.model / CALIBRATION_FILE
    atomic_write_json(target, out)
    Calibration.load(args.model)  # it must load
    print(f"wrote {target}")
    return 0


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


if __name__ == "__main__":
    raise SystemExit(main())
