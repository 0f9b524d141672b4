"""The scale curve on real text: >= 100k real chunks per vector backend, with recall end to end.

    python bench/real_scale.py embed                     # resumable; ~/.cache/qa/bench-real (QA_BENCH_REAL)
    python bench/real_scale.py run [--sizes 10000,100000,all] [--backends ...]
    python bench/real_scale.py table | plot

``bench/vector_scale.py`` had to grow 10k real vectors into 100k and 1M with perturbed copies, and its
HNSW recall at 1M said more about those copies than about text. Here every vector is a real chunk:

* **Text.** Every distinct paragraph we have, in a fixed order: SQuAD v1.1 dev first (so the dev
  questions' gold paragraphs are inside every size), then the full v1.1 train set, QED train and dev,
  and SQuADShifts new-wiki: 30,541 paragraphs, 3.7M words. With the project's default chunks
  (~100 words) that is ~57k chunks, so the curve uses the same ``Chunker`` at ``--max-words 50``
  (one sentence of overlap, as by default): ~115k real chunks. Smaller chunks are a setting users pick;
  no vector is synthetic.
* **Embedded once**, by ``qa.embedding.Embedder`` (the engine ``auto`` picks on this CPU), in blocks
  saved as they finish, so a killed run resumes. The cache lives outside the work tree.
* **Per backend and size** (each in a fresh process, so the RSS is its own): the figures of
  ``vector_scale.py`` (build, RSS, disk, single and batched query latency with CPU time, recall@10
  against exact search, copy / add 1,000 / delete 1,000), plus **end to end on SQuAD open**: all 10,570
  dev questions, the gold paragraph among the paragraphs of the top k chunks (R@1/R@5/R@10), dense
  alone and hybrid (the project's candidate fusion with BM25 over the same chunks).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

DATA = Path(os.environ.get("QA_DATA", ROOT.parent / "shared" / "data"))
CACHE = Path(os.environ.get("QA_BENCH_REAL", Path.home() / ".cache" / "qa" / "bench-real"))
SOURCES = ("squad/dev-v1.1.json", "squad/train/train-v1.1-full.json", "squad/train/qed-train.json",
           "ood/qed-dev.json", "ood/squadshifts-new-wiki.json")
BLOCK = 2048
DEFAULT_OUT = ROOT / "docs" / "scale-real.json"


# ------------------------------------------------------------------- the text
def paragraphs() -> tuple[list[str], list[str]]:
    """Every distinct paragraph, in SOURCES order; with the source each came from."""
    texts, src, seen = [], [], set()
    for rel in SOURCES:
        for art in json.loads((DATA / rel).read_text(encoding="utf-8"))["data"]:
            for para in art["paragraphs"]:
                if para["context"] not in seen:
                    seen.add(para["context"])
                    texts.append(para["context"])
                    src.append(rel)
    return texts, src


def dev_questions() -> tuple[list[str], list[str]]:
    """All SQuAD v1.1 dev questions and their gold paragraphs, in file order."""
    qs, ctx = [], []
    for art in json.loads((DATA / SOURCES[0]).read_text(encoding="utf-8"))["data"]:
        for para in art["paragraphs"]:
            for q in para["qas"]:
                qs.append(q["question"].strip())
                ctx.append(para["context"])
    return qs, ctx


def chunk_all(max_words: int) -> dict:
    """Chunk every paragraph once; written to the cache so that every later step sees the same chunks."""
    from qa.chunking import Chunker
    from qa.config import ChunkingConfig
    from qa.ingest.loading import document_from_text

    paras, src = paragraphs()
    chunker = Chunker(ChunkingConfig(max_words=max_words))
    texts, para_of = [], []
    for i, p in enumerate(paras):
        for c in chunker.run(document_from_text(f"p{i}", p)):
            texts.append(c.text)
            para_of.append(i)
    per_source: dict[str, int] = {}
    for i in para_of:
        per_source[src[i]] = per_source.get(src[i], 0) + 1
    return {"max_words": max_words, "paragraphs": len(paras), "chunks": len(texts), "per_source": per_source,
            "texts": texts, "para_of": para_of}


def load_chunks(cache: Path) -> dict:
    path = cache / "chunks.json"
    if not path.exists():
        raise SystemExit(f"no chunks in {cache}: run `python bench/real_scale.py embed` first")
    return json.loads(path.read_text(encoding="utf-8"))


def load_vectors(cache: Path, n: int | None = None) -> np.ndarray:
    parts = sorted(cache.glob("vec-*.npy"))
    if not parts:
        raise SystemExit(f"no vectors in {cache}: run `python bench/real_scale.py embed` first")
    vecs = np.concatenate([np.load(p) for p in parts]).astype(np.float32)
    return vecs if n is None else vecs[:n]


# ------------------------------------------------------------------ embedding
def cmd_embed(args) -> None:
    from tqdm import tqdm

    from qa.embedding import Embedder

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    meta_path = cache / "chunks.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta["max_words"] != args.max_words:
            raise SystemExit(f"{cache} holds chunks of {meta['max_words']} words; use another --cache")
    else:
        meta = chunk_all(args.max_words)
        tmp = meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta), encoding="utf-8")
        os.replace(tmp, meta_path)
    print(f"{meta['chunks']:,} chunks of <= {meta['max_words']} words from {meta['paragraphs']:,} paragraphs: "
          f"{meta['per_source']}", flush=True)
    emb = Embedder()
    print(f"embedder engine: {emb.engine_id}", flush=True)
    qfile = cache / "questions.npy"
    if not qfile.exists():
        qs, _ = dev_questions()
        t = time.perf_counter()
        vecs = emb.run(qs)
        np.save(cache / "questions.tmp.npy", vecs)
        os.replace(cache / "questions.tmp.npy", qfile)
        print(f"{len(qs):,} dev questions embedded in {time.perf_counter() - t:.0f} s", flush=True)
    texts = meta["texts"]
    done = sum(len(np.load(f, mmap_mode="r")) for f in sorted(cache.glob("vec-*.npy")))
    bar = tqdm(total=len(texts), initial=done, unit="chunk", desc="embedding", mininterval=30)
    log = cache / "embed.log"
    while done < len(texts):
        t, c = time.perf_counter(), time.process_time()
        part = texts[done : done + BLOCK]
        vecs = emb.run(part)
        np.save(cache / "vec.tmp.npy", vecs)
        os.replace(cache / "vec.tmp.npy", cache / f"vec-{done:08d}.npy")  # a killed run never leaves half a block
        with log.open("a") as f:
            f.write(json.dumps({"at": time.strftime("%Y-%m-%d %H:%M:%S"), "start": done, "n": len(part),
                                "wall_s": round(time.perf_counter() - t, 2),
                                "cpu_s": round(time.process_time() - c, 2), "engine": emb.engine_id}) + "\n")
        done += len(part)
        bar.update(len(part))
    bar.close()
    print(f"all {len(texts):,} chunks embedded", flush=True)


# ------------------------------------------------------------ backends, sizes
def cpu_flags() -> str:
    try:
        flags = next(line.split(":", 1)[1].split() for line in open("/proc/cpuinfo") if line.startswith("flags"))
    except (OSError, StopIteration):
        return ""
    keep = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16")
    return " ".join(f for f in keep if f in flags)


def _sizes(spec: str, total: int) -> list[int]:
    """'10000,100000,all': 'all' is every chunk but the last 1,000 (kept back as the real chunks added
    in the add_1k step)."""
    top = total - 1000
    out = []
    for part in spec.split(","):
        n = top if part.strip() == "all" else int(part)
        if n > top:
            raise SystemExit(f"size {n} > {top} real chunks (less the 1,000 kept back for add_1k)")
        out.append(n)
    return out


def cmd_run(args) -> None:
    from vector_scale import machine

    cache = Path(args.cache)
    meta = load_chunks(cache)
    out = Path(args.out)
    records = json.loads(out.read_text())["records"] if out.exists() and not args.fresh else []
    done = {(r["backend"], r["n"]) for r in records}
    n_vec = len(load_vectors(cache))
    if n_vec < meta["chunks"]:
        raise SystemExit(f"{n_vec:,} of {meta['chunks']:,} chunks embedded: finish `real_scale.py embed` first")
    info = {**machine(), "cpu_flags": cpu_flags(), "chunks": meta["chunks"], "max_words": meta["max_words"],
            "per_source": meta["per_source"]}
    print(json.dumps(info), flush=True)
    for n in _sizes(args.sizes, meta["chunks"]):
        for name in args.backends.split(","):
            if (name, n) in done:
                continue
            if name.startswith("milvus") and n > args.milvus_max:
                print(f"skip {name} at {n:,}: above --milvus-max {args.milvus_max:,}", flush=True)
                continue
            cmd = [sys.executable, __file__, "--cache", str(cache), "one", "--backend", name, "--n", str(n),
                   "--queries", str(args.queries)] + (["--no-hybrid"] if args.no_hybrid else [])
            env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
            t = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
            if proc.returncode or not lines:
                print(f"{name} at {n:,} failed:\n{proc.stderr[-3000:]}", flush=True)
                continue
            rec = json.loads(lines[-1])
            rec["child_wall_s"] = round(time.perf_counter() - t, 1)
            print(json.dumps(rec), flush=True)
            records.append(rec)
            tmp = out.with_suffix(".tmp")
            tmp.write_text(json.dumps({"machine": info, "records": records}, indent=1))
            os.replace(tmp, out)


def _recall(rows: np.ndarray, para_of: np.ndarray, gold: np.ndarray, ks=(1, 5, 10)) -> dict:
    """Gold paragraph among the paragraphs of the top k chunks (-1 rows are padding)."""
    paras = np.where(rows >= 0, para_of[np.maximum(rows, 0)], -1)
    return {f"R@{k}": round(float(np.mean((paras[:, :k] == gold[:, None]).any(axis=1))), 4) for k in ks}


def end_to_end(meta: dict, n: int, cache: Path, hybrid: bool):
    """``on_built`` for ``bench_one``: SQuAD open over the first n chunks, every dev question."""
    from qa.config import BM25Config, RetrievalConfig
    from qa.fusion import DenseStats, candidate_hybrid
    from qa.store.backends import Bm25Index

    qs, qctx = dev_questions()
    paras, _ = paragraphs()
    first = {}
    for i, p in enumerate(paras):
        first.setdefault(p, i)
    gold = np.array([first[c] for c in qctx], dtype=np.int64)
    para_of = np.asarray(meta["para_of"][:n], dtype=np.int64)
    qvecs = np.load(cache / "questions.npy").astype(np.float32)
    texts = meta["texts"][:n]

    def measure(index) -> dict:
        rec: dict = {"e2e_questions": len(qs)}
        t = time.perf_counter()
        rows = np.concatenate([index.search(qvecs[a:a + 512], 10)[1] for a in range(0, len(qs), 512)])
        rec["dense_s"] = round(time.perf_counter() - t, 2)
        rec.update({f"dense_{k}": v for k, v in _recall(rows, para_of, gold).items()})
        if hybrid:
            t = time.perf_counter()
            lexical = Bm25Index.build(np.arange(n, dtype=np.int64), texts, BM25Config())
            rec["bm25_build_s"] = round(time.perf_counter() - t, 2)
            cfg = RetrievalConfig()
            stats = DenseStats.from_index(index)
            t = time.perf_counter()
            got = []
            for a in range(0, len(qs), 256):
                _, ids = candidate_hybrid(index, lexical, qvecs[a:a + 256], qs[a:a + 256], 10,
                                          candidates=cfg.fusion_candidates, dense_weight=cfg.dense_weight,
                                          bm25_weight=cfg.bm25_weight, dense_stats=stats)
                got.append(ids)
            rec["hybrid_s"] = round(time.perf_counter() - t, 2)
            rec.update({f"hybrid_{k}": v for k, v in _recall(np.concatenate(got), para_of, gold).items()})
        return rec

    return measure


def cmd_one(args) -> None:
    import faiss

    from vector_scale import bench_one

    cache = Path(args.cache)
    meta = load_chunks(cache)
    real = load_vectors(cache)
    corpus = real[: args.n].copy()
    extra = real[-1000:]
    allq = np.load(cache / "questions.npy").astype(np.float32)
    queries = allq[np.random.default_rng(0).permutation(len(allq))[: args.queries]]
    exact = faiss.IndexFlatIP(corpus.shape[1])
    exact.add(corpus)
    _, truth = exact.search(queries, 10)
    del exact, real
    rec = bench_one(args.backend, corpus, queries, truth, extra,
                    on_built=end_to_end(meta, args.n, cache, hybrid=not args.no_hybrid))
    rec["real_vectors"] = args.n
    rec["corpus_mb"] = round(corpus.nbytes / 2**20, 1)
    rec["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(rec), flush=True)


COLUMNS = ["backend", "n", "build_s", "build_cpu_s", "rss_mb", "disk_mb", "single_p50_ms", "single_p95_ms",
           "single_cpu_p50_ms", "batch_p50_ms", "recall_at_10", "add_1k_s", "delete_1k_s", "dense_R@1",
           "dense_R@5", "hybrid_R@1", "hybrid_R@5", "hybrid_s"]


def cmd_table(args) -> None:
    data = json.loads(Path(args.out).read_text())
    print(json.dumps(data["machine"]))
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for r in sorted(data["records"], key=lambda r: (r["n"], r["backend"])):
        cells = []
        for c in COLUMNS:
            v = r.get(c, "")
            cells.append(f"{v:,}" if isinstance(v, int) else (f"{v:.3g}" if isinstance(v, float) else str(v)))
        print("| " + " | ".join(cells) + " |")


def cmd_plot(args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads(Path(args.out).read_text())["records"]
    names = sorted({r["backend"] for r in data})
    panels = [("build_s", "build (s, wall)", True), ("single_cpu_p50_ms", "query p50 (ms CPU, 1 thread)", True),
              ("rss_mb", "RSS growth (MiB)", True), ("recall_at_10", "recall@10 vs exact", False),
              ("hybrid_R@5", "SQuAD open hybrid R@5 (10,570 q)", False)]
    fig, axes = plt.subplots(1, len(panels), figsize=(22, 4.2))
    for ax, (key, label, log) in zip(axes, panels):
        for name in names:
            rows = sorted((r for r in data if r["backend"] == name and key in r), key=lambda r: r["n"])
            ax.plot([r["n"] for r in rows], [r[key] for r in rows], marker="o", label=name)
        ax.set_xscale("log")
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("real chunks")
        ax.set_title(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.suptitle("qa vector backends on real text: MiniLM vectors of real chunks only, 2 CPU cores")
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)
    print(f"wrote {args.png}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", default=str(CACHE), help="chunks and vectors (default %(default)s)")
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("embed", help="chunk every paragraph and embed it (resumable)")
    e.add_argument("--max-words", type=int, default=50)
    r = sub.add_parser("run", help="every backend at every size, each in a fresh process (resumable)")
    r.add_argument("--sizes", default="10000,100000,all")
    r.add_argument("--backends", default="faiss-flat,faiss-hnsw,faiss-ivf,milvus-lite")
    r.add_argument("--milvus-max", type=int, default=100_000)
    r.add_argument("--queries", type=int, default=256, help="questions timed one by one (recall@10 vs exact)")
    r.add_argument("--no-hybrid", action="store_true", help="dense end-to-end recall only")
    r.add_argument("--out", default=str(DEFAULT_OUT))
    r.add_argument("--fresh", action="store_true")
    o = sub.add_parser("one")
    o.add_argument("--backend", required=True)
    o.add_argument("--n", type=int, required=True)
    o.add_argument("--queries", type=int, default=256)
    o.add_argument("--no-hybrid", action="store_true")
    for name in ("table", "plot"):
        t = sub.add_parser(name)
        t.add_argument("--out", default=str(DEFAULT_OUT))
        t.add_argument("--png", default=str(ROOT / "docs" / "scale-real.png"))
    args = p.parse_args()
    {"embed": cmd_embed, "run": cmd_run, "one": cmd_one, "table": cmd_table, "plot": cmd_plot}[args.cmd](args)


if __name__ == "__main__":
    main()
