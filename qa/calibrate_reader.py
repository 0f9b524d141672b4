"""Calibrate the reader's confidence and choose its no-answer threshold.

Raw span logits are not comparable across questions, which is why users of
other readers cannot threshold them. Here the margin (best span score minus the
window's null score) is mapped by a logistic fit to P(answer is right), where
"right" means F1 >= 0.5 against the gold answers and any answer to an
unanswerable question is wrong. The threshold on that probability is the one
that maximises SQuAD 2.0 F1 on the validation articles that carry unanswerable
questions. Only ``qa.squad.VALIDATION_ARTICLES`` are used, never the held-out
ones.

    python -m qa.calibrate_reader --model models/reader
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from qa import squad
from qa.config import ReaderConfig
from qa.reader import CALIBRATION_FILE, SpanReader
from qa.train_reader import DEFAULT_DATA


def predict(reader: SpanReader, examples: list[squad.SquadExample], batch: int = 64) -> tuple[np.ndarray, list[str]]:
    """Best-span margin and text for each example, reading its gold paragraph."""
    margins, texts = [], []
    for i in tqdm(range(0, len(examples), batch), desc="reading", unit="batch"):
        chunk = examples[i : i + batch]
        results = reader.run([e.question for e in chunk], [[e.context] for e in chunk])
        for e, r in zip(chunk, results):
            if r.spans:
                sp = r.spans[0]
                margins.append(sp.margin)
                texts.append(e.context[sp.start : sp.end])
            else:
                margins.append(-1e3)
                texts.append("")
    return np.asarray(margins), texts


def fit_logistic(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """1-D logistic regression p = sigmoid(a*x + b) (scikit-learn, no regularisation)."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e6, max_iter=1000).fit(x.reshape(-1, 1), y.astype(int))
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def sweep(probs: np.ndarray, f1_if_answered: np.ndarray, impossible: np.ndarray) -> list[dict]:
    """SQuAD 2.0 scores at each candidate threshold on the probability."""
    rows = []
    for t in np.unique(np.round(np.concatenate([[0.0, 1.01], probs]), 4)):
        answered = probs >= t
        f1 = np.where(answered, f1_if_answered, impossible.astype(float))
        rows.append({
            "threshold": float(t),
            "f1": float(f1.mean() * 100),
            "f1_answerable": float(f1[~impossible].mean() * 100) if (~impossible).any() else 0.0,
            "no_answer_accuracy": float((~answered[impossible]).mean() * 100) if impossible.any() else 0.0,
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=ReaderConfig().path)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = p.parse_args(argv)

    reader = SpanReader(replace(ReaderConfig(), path=args.model))
    v1 = squad.select(squad.load_squad(args.data / "dev-v1.1.json"), include=squad.VALIDATION_ARTICLES)
    v2 = squad.select(squad.load_squad(args.data / "dev-v2.0-half.json"), include=squad.VALIDATION_ARTICLES)
    everything = squad.dedupe(v2 + v1)
    margins, texts = predict(reader, everything)
    f1 = np.asarray([squad.best_scores(t, e.answers)[1] if e.answers else 0.0 for t, e in zip(texts, everything)])
    impossible = np.asarray([e.is_impossible for e in everything])
    correct = (f1 >= 0.5) & ~impossible
    a, b = fit_logistic(margins, correct)
    probs = 1 / (1 + np.exp(-(a * margins + b)))

    # Threshold on the 2.0-style subset (answerable and unanswerable questions of
    # the same articles, in their natural mix).
    v2_keys = {(e.context, e.question) for e in v2}
    in_v2 = np.asarray([(e.context, e.question) in v2_keys for e in everything])
    rows = sweep(probs[in_v2], f1[in_v2], impossible[in_v2])
    best = max(rows, key=lambda r: (r["f1"], r["threshold"]))
    bins = np.linspace(0, 1, 11)
    reliability = []
    for lo, hi in zip(bins[:-1], bins[1:]):
        m = (probs >= lo) & (probs < hi if hi < 1 else probs <= hi)
        if m.any():
            reliability.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": int(m.sum()),
                                "mean_p": float(probs[m].mean()), "accuracy": float(correct[m].mean())})
    out = {
        "a": a, "b": b, "threshold": best["threshold"],
        "fitted_on": sorted(squad.VALIDATION_ARTICLES),
        "n_questions": len(everything), "n_unanswerable": int(impossible.sum()),
        "validation_at_threshold": best,
        "validation_answerable_f1_no_threshold": float(f1[~impossible].mean() * 100),
        "reliability": reliability,
    }
    (args.model / CALIBRATION_FILE).write_text(json.dumps(out, indent=2))
    print(json.dumps({k: v for k, v in out.items() if k != "reliability"}, indent=2))
    for r in reliability:
        print(f"  p in {r['bin']}: n={r['n']:4d} mean p={r['mean_p']:.2f} accuracy={r['accuracy']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
