"""Index build time and ask() latency on the seed corpus (real models).

    python bench/latency.py [--gold tests/gold/seeds.jsonl] [--repeat 3]

Prints: model load time, index build time (seeds/ into a temp dir), and p50/p95
of single ask() calls over the gold questions (each asked --repeat times).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from qa.engine import cpu_info
from qa.pipeline import QA

ROOT = Path(__file__).resolve().parents[1]  # the checkout: seeds/ and tests/gold/


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gold", type=Path, default=ROOT / "tests" / "gold" / "seeds.jsonl")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    questions = [json.loads(line)["question"] for line in args.gold.read_text().splitlines() if line.strip()]

    with tempfile.TemporaryDirectory() as tmp:
        qa = QA(index_dir=tmp, corpus_dir=ROOT / "seeds")
        t = time.perf_counter()
        qa.embedder.warm_up()
        qa.reader.warm_up()
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        store = qa.store
        build_s = time.perf_counter() - t
        qa.ask(questions[0])  # first call pays one-off kernel set-up
        times = []
        for _ in range(args.repeat):
            for q in questions:
                t = time.perf_counter()
                qa.ask(q)
                times.append((time.perf_counter() - t) * 1000)
    cpu = cpu_info()
    print(f"# {cpu['model']} ({', '.join(cpu['flags']) or 'no bf16/AVX-512 flags'}), {cpu['cores']} cores")
    print(f"threads {torch.get_num_threads()}; corpus: {len(store.documents)} document(s), {len(store)} chunks")
    print(f"model load        {load_s:8.2f} s")
    print(f"index build       {build_s:8.2f} s  (chunk + embed + FAISS + BM25 + atomic save)")
    print(f"ask() p50         {statistics.median(times):8.1f} ms  over {len(times)} calls")
    print(f"ask() p95         {float(np.percentile(times, 95)):8.1f} ms")
    print(f"ask() mean        {statistics.fmean(times):8.1f} ms")


if __name__ == "__main__":
    main()
