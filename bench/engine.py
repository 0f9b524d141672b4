"""Both models on every engine, side by side with plain library fp32, in one run.

    python bench/engine.py [--parts embed,reader,index,ask] [--chunks 256] [--windows 128]
                           [--rounds 3] [--engines torch,onnx,onnx-int8] [--threads 0] [--json FILE]

Prints the CPU (model, flags that matter: AVX2/VNNI/AVX512-BF16/AMX), the load,
and for each part the median over ``--rounds`` interleaved rounds (background
load hits every variant alike) of process CPU seconds and wall seconds, with
the speed-up over the plain baseline (CPU-time ratio first: it barely moves
with other processes' load; wall ratios on a busy machine are noisy):

* embed:  ``SentenceTransformer.encode`` fp32 (batch 32; and at qa's batch size) vs ``qa.embedding.Embedder``
          on each engine, on SQuAD chunks; cosine of each embedding to the baseline's;
* reader: plain ``transformers`` ``AutoModelForQuestionAnswering`` fp32 forward
          (batch 32, padded to the longest; and at qa's batch size) vs ``SpanReader.run`` (tokenise, forward,
          decode) on each engine, on SQuAD dev question+paragraph pairs; agreement
          of the best span with the PyTorch fp32 reader's;
* index:  what ``qa index`` does (chunk, embed, BM25, vector index, save) per engine,
          chunks/s;
* ask:    ``QA.ask`` p50/p95 per engine on the seed questions (index built once).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _timed(fn):
    c, w = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c, time.perf_counter() - w


def _rounds(variants: dict, rounds: int) -> dict:
    """Median CPU/wall seconds per variant, variants interleaved round after round."""
    for fn in variants.values():
        fn()  # warm up
    cpu = {n: [] for n in variants}
    wall = {n: [] for n in variants}
    outs = {}
    for r in range(rounds):
        for n, fn in variants.items():
            outs[n], c, w = _timed(fn)
            cpu[n].append(c)
            wall[n].append(w)
        print(f"  round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    return {n: (statistics.median(cpu[n]), statistics.median(wall[n])) for n in variants}, outs


def _table(title: str, unit_count: int, unit: str, res: dict, base: str, extra: dict) -> list[dict]:
    print(f"\n{title} ({unit_count} {unit}; speed-up = baseline seconds / variant seconds)")
    print(f"| variant | CPU s | wall s | {unit}/CPU-s | speed-up CPU | speed-up wall | {extra.get('_name', '')} |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    bc, bw = res[base]
    for n, (c, w) in res.items():
        row = {"variant": n, "cpu_s": c, "wall_s": w, "per_cpu_s": unit_count / c, "speedup_cpu": bc / c,
               "speedup_wall": bw / w, "quality": extra.get(n)}
        rows.append(row)
        print(f"| {n} | {c:.2f} | {w:.2f} | {unit_count / c:.1f} | {bc / c:.2f}x | {bw / w:.2f}x | {extra.get(n, '')} |")
    return rows


def _squad() -> list[dict]:
    from qa.evaluation.squad import SQUAD_DIR  # ../shared/data beside the checkout, or $QA_DATA

    path = SQUAD_DIR / "dev-v1.1.json"
    if not path.exists():
        raise SystemExit(f"no {path}: set QA_DATA to the shared data folder")
    return json.loads(path.read_text(encoding="utf-8"))["data"]


def squad_chunks(limit: int) -> list[str]:
    """Chunks (the project's Chunker) of SQuAD dev paragraphs, in file order."""
    from qa.chunking import Chunker
    from qa.ingest.loading import document_from_text

    docs = [document_from_text(f"{a['title']}-{i}", p["context"]) for a in _squad() for i, p in enumerate(a["paragraphs"])]
    return [c.text for c in Chunker().run_many(docs)][:limit]


def dev_questions(limit: int) -> tuple[list[str], list[str]]:
    """A fixed random sample of SQuAD dev questions with their paragraphs."""
    pairs = [(q["question"].strip(), p["context"]) for a in _squad() for p in a["paragraphs"] for q in p["qas"]]
    order = np.random.default_rng(0).permutation(len(pairs))[:limit]
    return [pairs[i][0] for i in order], [pairs[i][1] for i in order]


def bench_embed(args, engines):
    from sentence_transformers import SentenceTransformer

    from qa.config import EMBED_BATCH, EngineConfig
    from qa.embedding import Embedder, packaged_minilm_path

    texts = squad_chunks(args.chunks)
    assert texts, "no SQuAD chunks"
    st = SentenceTransformer(str(packaged_minilm_path()), device="cpu")
    def plain(bs):
        return lambda: st.encode(texts, batch_size=bs, normalize_embeddings=True, convert_to_numpy=True)

    # The library default (32) is the baseline; the same library at qa's batch size shows how much of
    # qa's gain is the batch size alone.
    variants = {"st-fp32 (baseline)": plain(32), f"st-fp32, batch {EMBED_BATCH}": plain(EMBED_BATCH)}
    for e in engines:
        emb = Embedder(engine=EngineConfig(kind=e, threads=args.threads), bf16=True)
        emb.warm_up()
        variants[f"qa {emb.engine_id['engine']}"] = lambda emb=emb: emb.run(texts)
    res, outs = _rounds(variants, args.rounds)
    ref = outs["st-fp32 (baseline)"]
    extra = {"_name": "cosine to baseline min / mean"}
    for n, v in outs.items():
        cos = (np.asarray(v) * ref).sum(1)
        extra[n] = f"{cos.min():.4f} / {cos.mean():.4f}"
    return _table("Embedding", len(texts), "chunks", res, "st-fp32 (baseline)", extra)


def bench_reader(args, engines):
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from qa.config import READER_BATCH, EngineConfig, ReaderConfig
    from qa.reader import SpanReader

    qs, ctxs = dev_questions(args.windows)
    path = ReaderConfig().path
    tok = AutoTokenizer.from_pretrained(str(path))
    hf = AutoModelForQuestionAnswering.from_pretrained(str(path), dtype=torch.float32).eval()

    def plain(bs):
        def run():
            out = []
            for i in range(0, len(qs), bs):
                enc = tok(qs[i:i + bs], ctxs[i:i + bs], truncation="only_second", max_length=384, padding=True,
                          return_tensors="pt")
                with torch.inference_mode():
                    o = hf(**enc)
                out.append(o.start_logits.shape)
            return out
        return run

    variants = {"transformers-fp32 (baseline)": plain(32), f"transformers-fp32, batch {READER_BATCH}": plain(READER_BATCH)}
    for e in engines:
        r = SpanReader(ReaderConfig(engine=EngineConfig(kind=e, threads=args.threads)))
        r.warm_up()
        variants[f"qa {r.engine_id['engine']}"] = lambda r=r: r.best_spans(qs, ctxs)
    res, outs = _rounds(variants, args.rounds)
    extra = {"_name": "best span = PyTorch fp32's"}
    ref = outs.get("qa torch")
    for n, v in outs.items():
        if n.startswith("qa ") and ref is not None:
            same = np.mean([(a.start, a.end) == (b.start, b.end) if a and b else a is b for a, b in zip(v, ref)])
            extra[n] = f"{same:.3f}"
    return _table("Reader", len(qs), "questions", res, "transformers-fp32 (baseline)", extra)


def bench_index(args, engines):
    from qa.config import EngineConfig, Settings
    from qa.ingest.loading import document_from_text
    from qa.pipeline import QA

    texts = squad_chunks(args.chunks)
    docs = [document_from_text(f"d{i}.txt", t) for i, t in enumerate(texts)]
    variants = {}
    for e in engines:
        settings = Settings(engine=EngineConfig(kind=e, threads=args.threads))

        def run(settings=settings):
            with tempfile.TemporaryDirectory() as tmp:
                qa = QA(index_dir=Path(tmp) / "index", corpus_dir=None, settings=settings)
                qa.embedder.warm_up()
                qa.add_documents(docs)
                return qa.store.manifest.n_chunks

        variants[f"qa index, {e}"] = run
    res, outs = _rounds(variants, args.rounds)
    n = next(iter(outs.values()))
    base = next(iter(res))
    return _table("qa index, whole path (chunk, embed, BM25, vectors, save)", n, "chunks", res, base, {})


def bench_ask(args, engines):
    from qa.config import EngineConfig, Settings
    from qa.pipeline import QA

    gold = [json.loads(x)["question"] for x in (ROOT / "tests/gold/seeds.jsonl").read_text().splitlines() if x.strip()]
    print(f"\nask() on the seed corpus, {len(gold)} questions x {args.rounds} (wall ms, one at a time)")
    print("| engine | p50 ms | p95 ms | CPU ms/question |")
    print("|---|---|---|---|")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for e in engines:
            qa = QA(index_dir=Path(tmp) / "index", corpus_dir=ROOT / "seeds",
                    settings=Settings(engine=EngineConfig(kind=e, threads=args.threads)))
            qa.warm_up()
            qa.ask(gold[0])
            walls, cpu = [], 0.0
            for _ in range(args.rounds):
                for q in gold:
                    _, c, w = _timed(lambda: qa.ask(q))
                    walls.append(w * 1000)
                    cpu += c
            p50, p95 = np.percentile(walls, 50), np.percentile(walls, 95)
            rows.append({"engine": e, "p50_ms": p50, "p95_ms": p95, "cpu_ms": 1000 * cpu / len(walls)})
            print(f"| {e} | {p50:.1f} | {p95:.1f} | {1000 * cpu / len(walls):.1f} |")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default="embed,reader")
    p.add_argument("--engines", default="torch,onnx,onnx-int8")
    p.add_argument("--chunks", type=int, default=256)
    p.add_argument("--windows", type=int, default=128, help="reader: SQuAD dev questions with their paragraphs")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="intra-op threads for every variant (0: library default)")
    p.add_argument("--json", help="write every figure here too")
    args = p.parse_args()
    import torch

    from qa.engine import cpu_has_bf16, cpu_info

    if args.threads:
        torch.set_num_threads(args.threads)
    engines = args.engines.split(",")
    info = {"cpu": cpu_info(), "native_bf16": cpu_has_bf16(), "torch_threads": torch.get_num_threads(),
            "load": os.getloadavg(), "args": vars(args)}
    print(f"CPU: {info['cpu']['model']} ({info['cpu']['cores']} logical cores), flags: "
          f"{', '.join(info['cpu']['flags']) or 'none of note'}; native bf16: {info['native_bf16']}; "
          f"torch threads {info['torch_threads']}; load average {' '.join(f'{x:.1f}' for x in info['load'])}")
    for name, fn in (("embed", bench_embed), ("reader", bench_reader), ("index", bench_index), ("ask", bench_ask)):
        if name in args.parts.split(","):
            info[name] = fn(args, engines)
    info["load_after"] = os.getloadavg()
    print(f"\nload average at the end: {' '.join(f'{x:.1f}' for x in info['load_after'])}")
    if args.json:
        Path(args.json).write_text(json.dumps(info, indent=1, default=str))


if __name__ == "__main__":
    main()
