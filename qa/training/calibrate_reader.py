"""Calibrate the reader: the answer-choice model, its probabilities and the default threshold.

    python -m qa.training.calibrate_reader --model qa/models/reader --predictions /tmp/calib-preds.json

(one command after a new reader lands: it reads the validation questions once,
caches the raw candidates in ``--predictions`` (reused while the weights are
the same), fits, and rewrites ``calibration.json`` beside the weights; a few
minutes on 2 cores.)

Only ``qa.evaluation.squad.VALIDATION_ARTICLES`` are used (v1.1 and the 2.0
half, so Huguenot brings unanswerable questions), never the held-out ones.
Three settings are read:

- ``reader``: each question with its gold paragraph alone (reading comprehension);
- ``open``: the product's own path: every paragraph of the validation articles
  indexed, each question asked without its paragraph, top-k passages read;
- ``offtopic``: questions of other training articles asked of that same index
  (the documents do not say: every answer is wrong).

Each candidate span is labelled right when its F1 against the gold answers is
at least 0.5 (any answer to an unanswerable question is wrong). A logistic
choice model over the candidate features of ``qa.reader.calibration`` is fitted
per setting (``reader``; ``open`` with ``offtopic``), the winner's probability
re-calibrated by a 1-D Platt step, and compared by leave-one-article-out cross
validation against the plain choice (the best raw margin, probability
sigmoid(a * margin + b)); the better one is kept (``--choice auto``).

The default threshold is chosen on the out-of-fold probabilities of the
validation questions so as not to hide right answers: the highest threshold at
which at least ``--min-answered`` of the answerable questions are answered in
the ``reader`` setting (in the ``open`` one, declining a question whose answer
was not retrieved is right, so only F1 counts there), and the answerable F1
stays within ``--max-f1-drop`` of always answering in both. Held-out and out-of-domain sets
are only ever measured (``python -m qa.evaluate``), never used here.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from qa._files import atomic_write_json, weights_fingerprint
from qa.config import ReaderConfig, Settings
from qa.evaluation import squad
from qa.reader import CALIBRATION_FILE, ReadResult, Span, SpanReader
from qa.reader.calibration import (
    OPEN_FEATURES,
    READER_FEATURES,
    Calibration,
    ChoiceModel,
)

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
SETTINGS = ("reader", "open", "offtopic")


# --- reading (cached) ----------------------------------------------------------------


def _record(qid, title, answers, contexts, retrieval, result: ReadResult) -> dict:
    return {"id": qid, "title": title, "answers": list(answers), "contexts": contexts, "retrieval": retrieval,
            "spans": [[s.start, s.end, s.score, s.null_score, s.passage] for s in result.spans]}


def _question(r: dict) -> Question:
    return Question(r["id"], r["title"], tuple(r["answers"]), r["contexts"], r["retrieval"],
                    [Span(int(a), int(b), float(c), float(d), int(e)) for a, b, c, d, e in r["spans"]])


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


def predict(reader: SpanReader, data: Path, n_offtopic: int, batch: int = 32) -> dict[str, list[dict]]:
    """Every setting's raw candidates (what ``ask`` and the evaluation see, before any choice)."""
    import tempfile

    from tqdm import tqdm

    from qa.evaluation.gold import squad_gold
    from qa.pipeline import QA

    val = validation_examples(data)
    out: dict[str, list[dict]] = {name: [] for name in SETTINGS}
    for i in tqdm(range(0, len(val), batch), desc="reader setting", unit="batch"):
        part = val[i:i + batch]
        for e, r in zip(part, reader.run([e.question for e in part], [[e.context] for e in part])):
            out["reader"].append(_record(e.id, e.title, e.answers, [e.context], None, r))
    _, docs = squad_gold(data / "dev-v1.1.json")
    docs = [d for d in docs if d.id.split("/")[0] in squad.VALIDATION_ARTICLES]
    off = offtopic_examples(data, n_offtopic)
    with tempfile.TemporaryDirectory(prefix="qa-calib-") as tmp:
        qa = QA(index_dir=tmp, corpus_dir=None, settings=replace(Settings(), reader=reader.config))
        qa.reader = reader
        qa.answerer.reader = reader
        qa.index_exactly(docs, progress=True)
        for name, examples in (("open", val), ("offtopic", off)):
            for i in tqdm(range(0, len(examples), batch), desc=f"{name} setting", unit="batch"):
                part = examples[i:i + batch]
                passages, results = qa.read([e.question for e in part])
                for j, (e, ps, r) in enumerate(zip(part, passages, results)):
                    title = e.title if name == "open" else f"offtopic-{(i + j) % 3}"
                    answers = e.answers if name == "open" else ()
                    out[name].append(_record(e.id, title, answers, [p.text for p in ps],
                                             [float(p.retrieval_score) for p in ps], r))
    return out


def load_or_predict(model_dir: Path, data: Path, cache: Path | None, n_offtopic: int) -> dict[str, list[Question]]:
    fp = weights_fingerprint(model_dir)
    if cache is not None and cache.exists():
        saved = json.loads(cache.read_text())
        if saved.get("version") == CACHE_VERSION and saved.get("weights") == fp \
                and saved.get("n_offtopic") == n_offtopic:
            print(f"re-using the predictions in {cache}")
            return {k: [_question(r) for r in v] for k, v in saved["settings"].items()}
        print(f"{cache} was made with other weights or settings: reading again")
    reader = SpanReader(replace(ReaderConfig(), path=model_dir), uncalibrated_ok=True)
    raw = predict(reader, data, n_offtopic)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"version": CACHE_VERSION, "weights": fp, "n_offtopic": n_offtopic,
                                     "settings": raw}))
    return {k: [_question(r) for r in v] for k, v in raw.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=ReaderConfig().path, help="reader folder (calibration.json is written there)")
    p.add_argument("--data", type=Path, default=squad.SQUAD_DIR)
    p.add_argument("--predictions", type=Path,
                   help="cache of the raw candidates: written after reading, re-used while the weights are the same")
    p.add_argument("--offtopic", type=int, default=300, help="off-topic questions for the open setting (default 300)")
    p.add_argument("--choice", choices=("auto", "model", "margin"), default="auto",
                   help="answer choice to store: the choice model, the raw margin, or whichever validates better")
    p.add_argument("--c", type=float, default=1.0, help="inverse L2 strength of the choice model")
    p.add_argument("--min-answered", type=float, default=0.95,
                   help="default threshold: answerable validation questions answered at least (default 0.95)")
    p.add_argument("--max-f1-drop", type=float, default=1.5,
                   help="default threshold: largest F1 drop on answerable validation questions (default 1.5)")
    p.add_argument("--dry-run", action="store_true", help="print the figures, do not write calibration.json")
    args = p.parse_args(argv)

    data = load_or_predict(args.model, args.data, args.predictions, args.offtopic)
    groups = {"reader": {"reader": data["reader"]}, "open": {"open": data["open"], "offtopic": data["offtopic"]}}
    feats = {"reader": READER_FEATURES, "open": OPEN_FEATURES}
    a, b = fit_margin(data["reader"] + data["open"])

    report: dict[str, Any] = {}
    final_models: dict[str, ChoiceModel] = {}
    oof: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for setting, g in groups.items():
        qs = [q for part in g.values() for q in part]
        mp, gp = cross_validate(g, feats[setting], args.c)
        om, og = outcomes(qs, mp), outcomes(qs, gp)
        sm, sg = summary(om), summary(og)
        keep_model = args.choice == "model" or (
            args.choice == "auto" and sm["best_f1"] >= sg["best_f1"] - 0.3
            and (sm["auc_right"] or 0) >= (sg["auc_right"] or 0))
        report[setting] = {"model": sm, "margin": sg, "kept": "model" if keep_model else "margin"}
        oof[setting] = {"model": om, "margin": og}
        if keep_model:
            final_models[setting] = fit_choice(qs, feats[setting], args.c)
        print(f"\n== {setting} setting ({len(qs)} questions; leave-one-article-out) ==")
        for name, s in (("raw margin", sg), ("choice model", sm)):
            a90 = s["at_90_answered"]
            print(f"  {name:13s} best-candidate F1 {s['best_f1']:.1f} EM {s['best_em']:.1f}  "
                  f"AUC(right) {s['auc_right']:.3f}  at 90% answered: F1 {a90['f1']:.1f}"
                  + (f", declined {a90['declined']:.1f}% of unanswerable" if "declined" in a90 else ""))
        print(f"  kept: {report[setting]['kept']}")

    # The default threshold, on the out-of-fold probabilities of what is kept.
    kept = {s: oof[s][report[s]["kept"]] for s in groups}
    grid = np.round(np.arange(0.0, 1.0005, 0.005), 3)
    threshold = 0.0
    for t in grid:
        ok = True
        for s, o in kept.items():
            best = at(o, 0.0)
            here = at(o, t)
            # Answered share: reading comprehension only (in the open setting a question
            # whose answer was not retrieved should be declined); F1 drop: both.
            if (s == "reader" and here["answered"] < 100 * args.min_answered - 1e-9) \
                    or here["f1"] < best["f1"] - args.max_f1_drop:
                ok = False
        if ok:
            threshold = float(t)
    print(f"\ndefault threshold {threshold:.3f} (reading comprehension: >= {args.min_answered:.0%} of answerable "
          f"answered; every setting: answerable F1 within {args.max_f1_drop} of always answering; out-of-fold)")
    curve = []
    for t in (0.0, 0.05, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, threshold):
        row = {"threshold": float(t)}
        for s, o in kept.items():
            row[s] = at(o, t)
        # the open setting's unanswerables split: adversarial (2.0) and off-topic
        off = [i for i, q in enumerate(groups["open"]["open"] + groups["open"]["offtopic"])
               if q.title.startswith("offtopic-")]
        o = kept["open"]
        row["offtopic_declined"] = float(100 * (~((o["p"][off] >= t) & o["has"][off])).mean()) if off else None
        curve.append(row)
    print(f"{'t':>6} | {'reader: ans%  F1  decl%':>26} | {'open: ans%  F1  decl%':>24} | off-topic decl%")
    for row in sorted(curve, key=lambda r: r["threshold"]):
        r, o = row["reader"], row["open"]
        print(f"{row['threshold']:6.3f} | {r['answered']:9.1f} {r['f1']:5.1f} {r.get('declined', float('nan')):5.1f}"
              f"      | {o['answered']:8.1f} {o['f1']:5.1f} {o.get('declined', float('nan')):5.1f}    | "
              f"{row['offtopic_declined']:.1f}")

    # Reliability of the kept probabilities (out of fold), all settings pooled.
    p_all = np.concatenate([o["p"] for o in kept.values()])
    r_all = np.concatenate([(o["f1"] >= 0.5) & o["has"] for o in kept.values()])
    reliability = []
    for lo in np.arange(0, 1, 0.1):
        hi = lo + 0.1
        m = (p_all >= lo) & ((p_all < hi) if hi < 0.999 else (p_all <= 1))
        if m.any():
            reliability.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": int(m.sum()), "mean_p": float(p_all[m].mean()),
                                "accuracy": float(r_all[m].mean())})
    out = {
        "a": a, "b": b, "threshold": threshold,
        "choice": {k: v.to_dict() for k, v in final_models.items()},
        "fitted_on": sorted(squad.VALIDATION_ARTICLES),
        "settings": {k: len(v) for k, v in data.items()},
        "threshold_rule": {"min_answered": args.min_answered, "max_f1_drop": args.max_f1_drop},
        "validation": _jsonable(report),
        "validation_curve": _jsonable(curve),
        "reliability": reliability,
    }
    if args.dry_run:
        print("(dry run: calibration.json not written)")
        return 0
    target = args.model / CALIBRATION_FILE
    atomic_write_json(target, out)
    Calibration.load(args.model)  # it must load
    print(f"wrote {target}")
    for r in reliability:
        print(f"  p in {r['bin']}: n={r['n']:4d} mean p={r['mean_p']:.2f} right={r['accuracy']:.2f}")
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
