"""Small corpora with the real models: near-duplicate boilerplate, and what grouping costs.

    python bench/small_corpus.py

1. A made corpus (the one of tests/test_small_corpora.py): a report whose eight
   pages repeat the same committee boilerplate (one document per page, as a
   PDF's pages are chunked apart) and one short note that answers the questions. Each question is asked with near-duplicate grouping off
   (``duplicate_cosine=None``, the old behaviour) and on (the default): is the
   note among the passages read, the answer, its probability, and ask() time.
2. The cost of finding the near-duplicate groups of a whole index (done once
   per snapshot, up to ``retrieval.duplicate_stats_max`` chunks): random unit
   vectors of the embedder's size, n = 500 ... 4,096.

Prints the CPU, load and thread count; times are medians of 3 runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import replace

import numpy as np
import torch

from qa.config import RetrievalConfig, Settings
from qa.engine import cpu_info
from qa.fusion import duplicate_groups
from qa.api import QA
from qa.types import Document

PAGE = ("Minutes of the Finance Committee of the Riverside Town Council. The committee reviewed the annual "
        "budget, the funding requests of every department and the spending of the previous year. Members "
        "present: the chair, the treasurer and five councillors. The minutes were approved. Page {n} of 8.")
NOTE = "The library on Harbour Street gets 4.2 million euros from the town; Lena Varga designed it."
QUESTIONS = [
    ("What amount did the committee approve for the library?", "4.2 million euros"),
    ("How much funding did the finance committee approve for the library?", "4.2 million euros"),
    ("Who designed the library?", "Lena Varga"),
    ("How much does the library get from the town?", "4.2 million euros"),
]


def corpus() -> list[Document]:
    docs = [Document(id=f"minutes.pdf#page={n}", text=PAGE.format(n=n), title="Minutes") for n in range(1, 9)]
    return docs + [Document(id="library.html", text=NOTE, title="Library news")]


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    torch.set_num_threads(1)
    cpu = cpu_info()
    print(f"CPU: {cpu['model']}; {cpu['cores']} cores; flags: {', '.join(cpu['flags']) or 'none of note'}; "
          f"load {os.getloadavg()[0]:.1f}; torch threads 1")
    base = QA(index_dir=tempfile.mkdtemp(prefix="qa-small-"), corpus_dir=None)
    base.add_documents(corpus())
    print(f"\n1. boilerplate corpus: {len(base.store)} chunks")
    print(f"{'question':58s} {'grouping':8s} {'note read':9s} {'answer':22s} {'p':>5s} {'ms':>6s}")
    for dup in (None, 0.95):
        s = replace(base.settings, retrieval=replace(RetrievalConfig(), duplicate_cosine=dup))
        qa = QA(index_dir=base.settings.index_dir, corpus_dir=None, settings=s, embedder=base.embedder,
                reader=base.reader)
        for q, gold in QUESTIONS:
            times = []
            for _ in range(3):
                t = time.perf_counter()
                a = qa.ask(q, min_score=0.0)
                times.append(1000 * (time.perf_counter() - t))
            read = any(c.doc_id == "library.html" for c in a.citations)
            print(f"{q[:58]:58s} {'on' if dup else 'off':8s} {'yes' if read else 'no':9s} "
                  f"{(a.answer or a.best_candidate or '')[:22]:22s} {a.score:5.2f} {statistics.median(times):6.0f}"
                  f"{'  (right)' if gold.lower() in (a.answer or '').lower() else ''}")
    print("\n2. near-duplicate groups of a whole index (once per snapshot)")
    rng = np.random.default_rng(0)
    for n in (500, 1000, 2048, 4096):
        v = rng.standard_normal((n, 384)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            duplicate_groups(v, 0.95)
            times.append(1000 * (time.perf_counter() - t))
        print(f"  n={n:5d}: {statistics.median(times):7.1f} ms")


if __name__ == "__main__":
    main()
