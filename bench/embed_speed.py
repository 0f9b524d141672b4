"""Embedding throughput: ``qa.embedding.Embedder`` vs plain sentence-transformers fp32.

    python bench/embed_speed.py [--chunks 512] [--rounds 3] [--variants st-fp32,qa-embedder,int8-dynamic]

Same SQuAD chunks (dev paragraphs, the project's Chunker), same process; the
variants run interleaved, round after round, so background load hits them
alike; the median chunks/s over rounds is reported with the speed-up over
plain sentence-transformers fp32 and the cosine of each embedding to the fp32
one (min and mean). Variants:

* ``st-fp32``: ``SentenceTransformer(...).encode(texts, batch_size=32)``, the baseline;
* ``qa-embedder``: ``qa.embedding.Embedder().run(texts)`` as shipped (batch 64,
  bf16 autocast only where the CPU has AMX/AVX512-BF16, else fp32);
* ``int8-dynamic``: the same model with ``torch.ao.quantization.quantize_dynamic``
  on its ``nn.Linear`` layers (int8 weights, fbgemm/oneDNN VNNI kernels), batch 64;
* ``int8-perchannel``: the same with per-channel weight scales;
* ``int8-ffn``: per-channel int8 on the feed-forward layers only;
* ``fp32-b128``: plain fp32, batch 128 (larger batches; sentence-transformers
  already sorts texts by length inside ``encode``).

Also ``--pipeline``: chunking + embedding + BM25 + vector index + save for the
same texts as documents, in chunks/s (what ``qa index`` does, without its
manifest bookkeeping).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def _st_model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    from qa.embedding import packaged_minilm_path

    return SentenceTransformer(str(packaged_minilm_path()), device="cpu")


def make_variants(names: list[str]):
    import torch

    from qa.embedding import Embedder

    base = _st_model()
    out = {}
    for name in names:
        if name == "st-fp32":
            out[name] = lambda t, m=base: m.encode(t, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        elif name == "fp32-b128":
            out[name] = lambda t, m=base: m.encode(t, batch_size=128, normalize_embeddings=True, convert_to_numpy=True)
        elif name == "qa-embedder":
            emb = Embedder()
            emb.warm_up()
            out[name] = emb.run
        elif name in ("int8-dynamic", "int8-perchannel", "int8-ffn"):
            tq = torch.ao.quantization
            if name == "int8-dynamic":
                spec = {torch.nn.Linear}
            elif name == "int8-perchannel":
                spec = {torch.nn.Linear: tq.per_channel_dynamic_qconfig}
            else:  # only the feed-forward layers; attention projections stay fp32
                spec = {n: tq.per_channel_dynamic_qconfig for n, m in base.named_modules()
                        if isinstance(m, torch.nn.Linear) and (".intermediate." in n or n.endswith("output.dense"))
                        and ".attention." not in n}
            q = tq.quantize_dynamic(copy.deepcopy(base), spec, dtype=torch.qint8)

            def run(t, m=q):
                with torch.inference_mode():
                    return m.encode(t, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)

            out[name] = run
        else:
            raise SystemExit(f"unknown variant {name}")
    return out


def pipeline(texts: list[str]) -> dict:
    """Chunk + embed + BM25 + vector index + save, for texts as documents."""
    from qa.chunking import Chunker
    from qa.embedding import Embedder
    from qa.ingest.loading import document_from_text
    from qa.store.backends import Bm25Index, FaissFlatIndex

    emb = Embedder()
    emb.warm_up()
    t0 = time.perf_counter()
    docs = [document_from_text(f"d{i}", t) for i, t in enumerate(texts)]
    chunks = Chunker().run_many(docs)
    t1 = time.perf_counter()
    vecs = emb.run([c.text for c in chunks])
    t2 = time.perf_counter()
    ids = np.arange(len(chunks), dtype=np.int64)
    lex = Bm25Index.build(ids, [c.text for c in chunks])
    index = FaissFlatIndex(vecs.shape[1])
    index.add(ids, vecs)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "v").mkdir()
        (Path(tmp) / "l").mkdir()
        index.save(Path(tmp) / "v")
        lex.save(Path(tmp) / "l")
    t3 = time.perf_counter()
    return {"chunks": len(chunks), "chunk_s": t1 - t0, "embed_s": t2 - t1, "index_save_s": t3 - t2,
            "chunks_per_s": len(chunks) / (t3 - t0)}


def main() -> None:
    import torch

    from vector_scale import squad_chunks

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chunks", type=int, default=512)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--variants", default="st-fp32,qa-embedder,int8-dynamic,int8-perchannel,int8-ffn,fp32-b128")
    p.add_argument("--pipeline", action="store_true")
    p.add_argument("--out", default=None, help="write the results as JSON here too")
    args = p.parse_args()

    from qa.engine import cpu_has_bf16, cpu_info

    cpu_ = cpu_info()
    print(f"CPU: {cpu_['model']} ({cpu_['cores']} cores), flags: {', '.join(cpu_['flags']) or 'none of note'}; "
          f"native bf16: {cpu_has_bf16()}; load average {os.getloadavg()[0]:.1f}", flush=True)
    texts = squad_chunks(args.chunks)
    names = args.variants.split(",")
    variants = make_variants(names)
    for fn in variants.values():  # warm up (first call allocates)
        fn(texts[:16])
    times = {n: [] for n in names}
    cpu = {n: [] for n in names}  # process CPU seconds (all threads): robust to other jobs on the cores
    vecs = {}
    for r in range(args.rounds):
        for n in names:
            t, c = time.perf_counter(), time.process_time()
            vecs[n] = np.asarray(variants[n](texts), dtype=np.float32)
            times[n].append(time.perf_counter() - t)
            cpu[n].append(time.process_time() - c)
            print(f"round {r + 1} {n}: {len(texts) / times[n][-1]:.1f} chunks/s, "
                  f"{cpu[n][-1] / len(texts) * 1000:.1f} CPU-ms/chunk", flush=True)
    ref = vecs.get("st-fp32")
    base = len(texts) / statistics.median(times["st-fp32"]) if "st-fp32" in times else None
    rows = []
    for n in names:
        rate = len(texts) / statistics.median(times[n])
        cpu_ms = statistics.median(cpu[n]) / len(texts) * 1000
        row = {"variant": n, "chunks_per_s": rate, "speedup": rate / base if base else None, "cpu_ms_per_chunk": cpu_ms}
        if "st-fp32" in cpu:
            row["cpu_speedup"] = statistics.median(cpu["st-fp32"]) / statistics.median(cpu[n])
        if ref is not None:
            v = vecs[n] / np.linalg.norm(vecs[n], axis=1, keepdims=True)
            cos = np.sum(v * ref, axis=1)
            row.update(cos_min=float(cos.min()), cos_mean=float(cos.mean()))
        rows.append(row)
    info = {"cpu": cpu_, "cpu_bf16": cpu_has_bf16(),
            "torch": torch.__version__, "threads": torch.get_num_threads(), "chunks": len(texts),
            "rounds": args.rounds, "python": platform.python_version()}
    print(json.dumps(info))
    print("| variant | chunks/s (wall, median) | speed-up (wall) | CPU-ms per chunk | speed-up (CPU) | cosine to fp32 min / mean |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        sp = f"{row['speedup']:.2f}x" if row["speedup"] else ""
        csp = f"{row['cpu_speedup']:.2f}x" if row.get("cpu_speedup") else ""
        cos = f"{row['cos_min']:.4f} / {row['cos_mean']:.4f}" if "cos_min" in row else ""
        print(f"| {row['variant']} | {row['chunks_per_s']:.1f} | {sp} | {row['cpu_ms_per_chunk']:.1f} | {csp} | {cos} |")
    result = {"info": info, "rows": rows}
    if args.pipeline:
        result["pipeline"] = pipeline(texts)
        print("pipeline:", json.dumps(result["pipeline"]))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
