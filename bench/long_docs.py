"""Long documents: how many passages to read when each document is a whole article.

    python bench/long_docs.py [--recall-limit 300] [--read-limit 60] [--ks 3,5,8,12] [--read-ks 5,10]

Each held-out SQuAD v1.1 dev article becomes one document (its paragraphs joined
by blank lines), and its questions are asked of the 12 documents. Questions are
the first N of each article in turn, so every article is represented. Printed per k (passages read = top-k chunks,
merged where they touch):

- passage recall: a gold answer's text lies inside a passage read (text
  containment, so a string that also occurs elsewhere counts; retrieval only,
  cheap);
- end-to-end answerable F1 (best span, threshold 0) and ms per question
  (batch of 16 / n) for the ``--read-ks``, on the first ``--read-limit`` questions;
- the same F1 with each paragraph indexed as its own document (the open setting) at
  the default k, the reference for "within 5 points".

Held-out articles are only measured here, never used to choose anything in the
code; the numbers go to docs/retrieval.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import defaultdict

import torch

from qa.api import QA
from qa.engine import cpu_info
from qa.evaluation import squad
from qa.pipeline import merge_hits
from qa.types import Document


def articles(examples: list[squad.SquadExample]) -> dict[str, list[str]]:
    paras: dict[str, list[str]] = defaultdict(list)
    for e in examples:
        if e.context not in paras[e.title]:
            paras[e.title].append(e.context)
    return paras


def interleave(examples: list[squad.SquadExample], n: int) -> list[squad.SquadExample]:
    by: dict[str, list[squad.SquadExample]] = defaultdict(list)
    for e in examples:
        by[e.title].append(e)
    out, i = [], 0
    while len(out) < n and any(i < len(v) for v in by.values()):
        out.extend(v[i] for v in by.values() if i < len(v))
        i += 1
    return out[:n]


def f1_and_ms(qa: QA, qs: list[squad.SquadExample], k: int) -> tuple[float, float]:
    t = time.perf_counter()
    answers = []
    for a in range(0, len(qs), 16):
        answers += qa.ask_batch([e.question for e in qs[a:a + 16]], top_k=k, min_score=0.0)
    ms = 1000 * (time.perf_counter() - t) / len(qs)
    f1 = sum(squad.best_scores(x.best_candidate or x.answer, e.answers)[1] for x, e in zip(answers, qs))
    return 100 * f1 / len(qs), ms


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recall-limit", type=int, default=300)
    p.add_argument("--read-limit", type=int, default=60)
    p.add_argument("--ks", default="3,5,8,12")
    p.add_argument("--read-ks", default="5,10")
    args = p.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    cpu = cpu_info()
    print(f"CPU: {cpu['model']}, flags: {', '.join(cpu['flags']) or 'none of note'}; "
          f"load {os.getloadavg()[0]:.1f}; {os.cpu_count()} cores; torch threads {torch.get_num_threads()}")
    ex = squad.select(squad.load_squad(squad.squad_dir() / "dev-v1.1.json"), include=squad.HELD_OUT_ARTICLES)
    paras = articles(ex)
    docs = [Document(id=t, text="\n\n".join(ps), title=t) for t, ps in paras.items()]
    qs = interleave(ex, args.recall_limit)
    with tempfile.TemporaryDirectory() as tmp:
        qa = QA(index_dir=f"{tmp}/long", corpus_dir=None)
        qa.add_documents(docs)
        store = qa.store
        print(f"{len(docs)} documents, {len(store)} chunks; {len(qs)} questions for recall")
        print(f"{'k':>3} {'passage recall':>14} {'passages (mean)':>15} {'words read (mean)':>17}")
        for k in [int(x) for x in args.ks.split(",")]:
            hits = qa.answerer._retrieve(store, [e.question for e in qs], [None] * len(qs), k, None)
            found, n_pass, words = 0, 0, 0
            for e, h in zip(qs, hits):
                ps = [ps for ps in merge_hits(store, h) if ps.doc_id == e.title]
                found += any(any(a in ps_.text for a in e.answers) for ps_ in ps)
                all_ps = merge_hits(store, h)
                n_pass += len(all_ps)
                words += sum(len(x.text.split()) for x in all_ps)
            print(f"{k:3d} {found / len(qs):14.3f} {n_pass / len(qs):15.1f} {words / len(qs):17.0f}")
        read = qs[:args.read_limit]
        print(f"\nend to end, first {len(read)} questions (best span, answerable F1; ms per question, batches of 16)")
        for k in [int(x) for x in args.read_ks.split(",")]:
            f1, ms = f1_and_ms(qa, read, k)
            print(f"  whole articles, k={k:2d}: F1 {f1:5.1f}  {ms:6.0f} ms")
        flat = QA(index_dir=f"{tmp}/paragraphs", corpus_dir=None, embedder=qa.embedder, reader=qa.reader)
        flat.add_documents([Document(id=f"{t}/{i}", text=x, title=t) for t, ps in paras.items()
                            for i, x in enumerate(ps)])
        f1, ms = f1_and_ms(flat, read, 5)
        print(f"  paragraphs as documents, k= 5: F1 {f1:5.1f}  {ms:6.0f} ms")


if __name__ == "__main__":
    main()
