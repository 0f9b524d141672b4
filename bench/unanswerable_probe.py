"""How much does the reader know about "this paragraph does not say"? A probe of its hidden states.

    python bench/unanswerable_probe.py [--data ../shared/data/squad] [--model qa/models/reader]

SQuAD 2.0's unanswerable questions are written against a paragraph to look
answerable (the seed gold set's are the same kind: "Who replaced Popov?"). The
choice model can only decline them if the reader's evidence separates them from
answerable questions. This measures that ceiling, per question with its gold
paragraph (first window of 384 tokens):

- AUC of the reader's own no-answer evidence (``null - best span``, the margin
  with its sign turned) for "unanswerable" on the validation article of the 2.0
  half (Huguenot: 207 unanswerable, 217 answerable);
- AUC of logistic probes fitted on the 2.0 questions of the training articles
  (the 2.0 train prefix and the non-held-out, non-validation half: 7,196
  questions, 1,617 unanswerable) over the last layer's hidden states: the
  [CLS] token, the mean over the paragraph, and the tokens where the best start
  and end fall; with 25 / 50 / 100% of that data, to tell whether more data of
  this kind would help.

Held-out articles are not read. Figures go to docs/calibration.md.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from qa.evaluation import squad

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HIDDEN_BLOCKS = ("cls", "paragraph mean", "best start + end")


def two_point_o(data: Path, include: set[str] | None = None,
                exclude: frozenset[str] | None = None) -> list[squad.SquadExample]:
    ex = squad.load_squad(data / "dev-v2.0-half.json") + squad.load_squad(data / "train/train-v2.0-prefix.json")
    return squad.dedupe(squad.select(ex, include=include, exclude=exclude))


def reader_features(model_dir: Path, examples: list[squad.SquadExample], batch: int = 32) -> np.ndarray:
    """Per question: [null score, best start + end - null, CLS, paragraph mean, start state, end state]."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer
    from tqdm import tqdm

    from qa.engine.cpu import bf16_autocast

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForQuestionAnswering.from_pretrained(model_dir, dtype=torch.float32).eval()
    out = []
    for i in tqdm(range(0, len(examples), batch), desc="reading", unit="batch"):
        part = examples[i:i + batch]
        enc = tok([e.question for e in part], [e.context for e in part], truncation="only_second",
                  max_length=384, padding=True, return_tensors="pt")
        with torch.no_grad(), bf16_autocast():  # bf16 where the CPU has it, as qa reads
            o = model(**enc, output_hidden_states=True)
        st, en = o.start_logits.float(), o.end_logits.float()
        ctx = (enc["token_type_ids"] == 1) & (enc["attention_mask"] == 1)
        st_c, en_c = st.masked_fill(~ctx, -1e4), en.masked_fill(~ctx, -1e4)
        null = st[:, 0] + en[:, 0]
        h = o.hidden_states[-1].float()
        rows = torch.arange(len(part))
        out.append(torch.cat([
            torch.stack([null, st_c.max(1).values + en_c.max(1).values - null], 1),
            h[:, 0],
            (h * ctx[..., None]).sum(1) / ctx.sum(1, keepdim=True),
            torch.cat([h[rows, st_c.argmax(1)], h[rows, en_c.argmax(1)]], 1),
        ], 1).numpy())
    return np.concatenate(out)


def probe_auc(xt: np.ndarray, yt: np.ndarray, xv: np.ndarray, yv: np.ndarray, c: float) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(xt)
    m = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(sc.transform(xt), yt)
    return float(roc_auc_score(yv, m.predict_proba(sc.transform(xv))[:, 1]))


def main() -> None:
    from sklearn.metrics import roc_auc_score

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=squad.SQUAD_DIR)
    p.add_argument("--model", type=Path, default=Path("qa/models/reader"))
    p.add_argument("--c", type=float, default=0.01, help="inverse L2 strength of the probes")
    p.add_argument("--no-probes", action="store_true",
                   help="only the reader's own evidence on validation (to compare weights; seconds, not minutes)")
    args = p.parse_args()

    train = two_point_o(args.data, exclude=squad.HELD_OUT_ARTICLES | squad.VALIDATION_ARTICLES)
    val = two_point_o(args.data, include=set(squad.VALIDATION_ARTICLES))
    yt = np.asarray([e.is_impossible for e in train])
    yv = np.asarray([e.is_impossible for e in val])
    print(f"probe data: {len(train)} questions ({yt.sum()} unanswerable); "
          f"validation: {len(val)} ({yv.sum()} unanswerable)")
    t0 = time.perf_counter()
    xv = reader_features(args.model, val)
    if args.no_probes:
        print(f"{args.model}: reader's null - best span, validation AUC for unanswerable "
              f"{roc_auc_score(yv, -xv[:, 1]):.3f}")
        return
    xt = reader_features(args.model, train)
    print(f"read {len(val) + len(train)} questions in {time.perf_counter() - t0:.0f} s")
    h = (xt.shape[1] - 2) // 4
    blocks = {"cls": slice(2, 2 + h), "paragraph mean": slice(2 + h, 2 + 2 * h),
              "best start + end": slice(2 + 2 * h, 2 + 4 * h)}
    print(f"\n{'evidence for unanswerable':<38s} validation AUC")
    print(f"{'reader: null - best span (no fit)':<38s} {roc_auc_score(yv, -xv[:, 1]):.3f}")
    print(f"{'probe: null, margin':<38s} {probe_auc(xt[:, :2], yt, xv[:, :2], yv, 1.0):.3f}")
    for name, sl in blocks.items():
        print(f"{'probe: ' + name:<38s} {probe_auc(xt[:, sl], yt, xv[:, sl], yv, args.c):.3f}")
    sl = blocks["best start + end"]
    rng = np.random.default_rng(0)
    for frac in (0.25, 0.5, 1.0):
        runs = []
        for _ in range(3):
            idx = rng.permutation(len(yt))[: int(frac * len(yt))]
            runs.append(probe_auc(xt[idx][:, sl], yt[idx], xv[:, sl], yv, args.c))
        print(f"{f'probe: best start + end, {frac:.0%} of data':<38s} {np.mean(runs):.3f} "
              f"(3 draws: {', '.join(f'{r:.3f}' for r in runs)})")


if __name__ == "__main__":
    main()
