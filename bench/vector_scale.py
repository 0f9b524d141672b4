"""Vector search cost curve: 10k, 100k and 1M chunks, per backend.

    python bench/vector_scale.py embed [--real 20000] [--cache /tmp/qa-bench]   # real MiniLM vectors, resumable
    python bench/vector_scale.py run [--sizes 10000,100000,1000000] [--backends ...] [--out docs/scale.json]
    python bench/vector_scale.py plot [--out docs/scale.json] [--png docs/scale.png]

Vectors: SQuAD paragraphs (dev, then train-v1.1-full) chunked with the project's
Chunker and embedded with ``qa.embedding.Embedder`` (the real thing, cached under
--cache). Sizes beyond the real count are made by perturbing real vectors
(v + noise of norm ~0.35, renormalised), which keeps the cluster structure of
real embeddings, unlike uniform random vectors, for which ANN recall is
pessimistic. Queries: real SQuAD dev questions embedded the same way.

Per backend and size: build time, process RSS growth and bytes on disk, single
query and batched (64) query p50/p95, recall@10 against exact search, the cost
of adding 1,000 and deleting 1,000 chunks into the built index (on ``copy()``
for in-memory backends, as the indexer does, and without the copy time).
Results are appended to a JSON file (one record per backend and size) so that
a run can be resumed; ``plot`` draws docs/scale.png from it.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))



def squad_file(name: str) -> Path:
    """A SQuAD file of the shared data ($QA_DATA, else ../shared/data beside the checkout, as everywhere
    else); the dev set must be there (without it every caller measured 0 chunks)."""
    from qa.evaluation.squad import squad_dir

    path = squad_dir() / name
    if name == "dev-v1.1.json" and not path.exists():
        raise SystemExit(f"no {path}: set QA_DATA to the shared data folder")
    return path
DEFAULT_CACHE = Path(os.environ.get("QA_BENCH_CACHE", "/tmp/qa-bench"))


# --------------------------------------------------------------------- vectors
def squad_chunks(limit: int, with_context: bool = False):
    """Chunk texts of SQuAD paragraphs (dev first, then the full v1.1 train set), in a fixed order
    (with ``with_context``: also the paragraph each chunk comes from)."""
    from qa.chunking import Chunker
    from qa.ingest.loading import document_from_text

    chunker, out, ctxs, seen = Chunker(), [], [], set()
    for path in (squad_file("dev-v1.1.json"), squad_file("train/train-v1.1-full.json")):
        if not path.exists():
            continue
        for art in json.loads(path.read_text(encoding="utf-8"))["data"]:
            for p_i, para in enumerate(art["paragraphs"]):
                ctx = para["context"]
                if ctx in seen:
                    continue
                seen.add(ctx)
                doc = document_from_text(f"{art['title']}-{p_i}", ctx, title=art["title"])
                for c in chunker.run(doc):
                    out.append(c.text)
                    ctxs.append(ctx)
                    if len(out) >= limit:
                        return (out, ctxs) if with_context else out
    return (out, ctxs) if with_context else out


def dev_questions(limit: int, with_context: bool = False):
    """A fixed random sample of SQuAD dev questions (with ``with_context``: also their gold paragraphs)."""
    qs, ctxs = [], []
    for art in json.loads(squad_file("dev-v1.1.json").read_text(encoding="utf-8"))["data"]:
        for para in art["paragraphs"]:
            for q in para["qas"]:
                qs.append(q["question"].strip())
                ctxs.append(para["context"])
    order = np.random.default_rng(0).permutation(len(qs))[:limit]
    if with_context:
        return [qs[i] for i in order], [ctxs[i] for i in order]
    return [qs[i] for i in order]


def cmd_embed(args) -> None:
    """Embed up to --real chunks in blocks, appending to the cache (resumable)."""
    from qa.embedding import Embedder

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    emb = Embedder()
    qfile = cache / "queries.npy"
    if not qfile.exists():
        t = time.perf_counter()
        np.save(qfile, emb.run(dev_questions(args.queries)))
        print(f"queries: {args.queries} in {time.perf_counter() - t:.1f}s", flush=True)
    texts = squad_chunks(args.real)
    done = sum(len(np.load(f, mmap_mode="r")) for f in sorted(cache.glob("chunks-*.npy")))
    block = 1024
    t0, n0 = time.perf_counter(), done
    while done < len(texts):
        part = texts[done : done + block]
        vecs = emb.run(part)
        np.save(cache / f"chunks-{done:08d}.npy", vecs)
        done += len(part)
        rate = (done - n0) / (time.perf_counter() - t0)
        print(f"embedded {done}/{len(texts)} chunks ({rate:.1f}/s)", flush=True)


def real_vectors(cache: Path) -> np.ndarray:
    parts = sorted(Path(cache).glob("chunks-*.npy"))
    if not parts:
        raise SystemExit(f"no cached vectors in {cache}: run `python bench/vector_scale.py embed` first")
    return np.concatenate([np.load(p) for p in parts]).astype(np.float32)


def make_corpus(real: np.ndarray, n: int, seed: int = 0, noise: float = 0.35) -> np.ndarray:
    """n unit vectors: the real ones, then perturbed copies of random real ones."""
    if n <= len(real):
        return real[:n].copy()
    rng = np.random.default_rng(seed)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    out[: len(real)] = real
    step = 100_000
    for a in range(len(real), n, step):
        b = min(n, a + step)
        src = real[rng.integers(0, len(real), b - a)]
        noise_v = rng.standard_normal(src.shape).astype(np.float32) * (noise / np.sqrt(real.shape[1]))
        v = src + noise_v
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out[a:b] = v
    return out




# ----------------------------------------------------------------- measuring
def _psutil():
    """psutil (the bench extra): its absence is one line, not a traceback in the middle of a run."""
    try:
        import psutil
    except ImportError:
        raise SystemExit("psutil is missing (memory figures): pip install -e '.[bench]'") from None
    return psutil


def _rss_mb(include_children: bool = False) -> float:
    psutil = _psutil()
    proc = psutil.Process()
    rss = proc.memory_info().rss
    if include_children:  # Milvus Lite runs its engine in a child process
        for ch in proc.children(recursive=True):
            try:
                rss += ch.memory_info().rss
            except psutil.Error:
                pass
    return rss / 2**20


def _du_mb(path: Path) -> float:
    path = Path(path)
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def _pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1000, q))  # ms


def make_backend(name: str, dim: int, workdir: Path):
    from qa.store.backends import FaissHnswIndex, FaissIvfIndex
    from qa.store.backends.faiss_flat import FaissFlatIndex

    if name == "faiss-flat":
        return FaissFlatIndex(dim)
    if name == "faiss-hnsw":
        return FaissHnswIndex(dim)
    if name == "faiss-ivf":
        return FaissIvfIndex(dim)
    if name in ("milvus-lite", "milvus-lite-flat"):
        from qa.store.backends.milvus import MilvusIndex

        return MilvusIndex(dim, uri=workdir / "milvus.db", index_type="HNSW" if name == "milvus-lite" else "FLAT")
    raise SystemExit(f"unknown backend {name}")


def bench_one(name: str, corpus: np.ndarray, queries: np.ndarray, truth: np.ndarray, extra: np.ndarray,
              batch: int = 64, on_built=None) -> dict:
    """One backend at one size; ``on_built(index)`` may add figures of its own (end-to-end recall) to the
    record, measured on the built index before the copy/add/delete step."""
    import faiss

    n, dim = corpus.shape
    ids = np.arange(n, dtype=np.int64)
    work = Path(tempfile.mkdtemp(prefix=f"vs-{name}-"))
    rec: dict = {"backend": name, "n": n, "dim": dim,
                 "threads": {"build": os.cpu_count(), "single": 1, "batch": 1}}
    try:
        gc.collect()
        milvus = name.startswith("milvus")
        rss0 = _rss_mb(milvus)
        faiss.omp_set_num_threads(os.cpu_count() or 1)  # build: every core
        t, c = time.perf_counter(), time.process_time()
        index = make_backend(name, dim, work)
        step = 50_000
        for a in range(0, n, step):
            index.add(ids[a : a + step], corpus[a : a + step])
        if milvus:  # searchable and indexed
            index._client.flush(index.collection)
            index.search(queries[:1], 10)
        rec["build_s"] = time.perf_counter() - t
        rec["build_cpu_s"] = time.process_time() - c  # all threads of this process (not Milvus Lite's server)
        gc.collect()
        rec["rss_mb"] = _rss_mb(milvus) - rss0
        folder = work / "saved"
        folder.mkdir()
        index.save(folder)
        rec["disk_mb"] = _du_mb(work / "milvus.db") if milvus else _du_mb(folder)
        index.search(queries[:8], 10)  # warm
        faiss.omp_set_num_threads(1)  # single queries: one thread each (a server runs one per request)
        single = []
        got = np.empty((len(queries), 10), np.int64)
        single_cpu = []  # this thread's CPU time: robust to other processes on shared cores
        for i, q in enumerate(queries):
            t, c = time.perf_counter(), time.thread_time()
            _, got[i] = index.search(q[None], 10)
            single.append(time.perf_counter() - t)
            single_cpu.append(time.thread_time() - c)
        rec["single_p50_ms"], rec["single_p95_ms"] = _pct(single, 50), _pct(single, 95)
        if not milvus:  # Milvus searches in its own process: the client's CPU time says nothing
            rec["single_cpu_p50_ms"], rec["single_cpu_p95_ms"] = _pct(single_cpu, 50), _pct(single_cpu, 95)
        # batches on one thread too: with the cores shared (a training job ran beside this
        # benchmark), a 2-thread OpenMP batch waited on its straggler (65 ms for a 2k flat batch)
        batched = []
        batched_cpu = []
        for _ in range(2):
            for a in range(0, len(queries), batch):
                t, c = time.perf_counter(), time.thread_time()
                index.search(queries[a : a + batch], 10)
                batched.append(time.perf_counter() - t)
                batched_cpu.append(time.thread_time() - c)
        rec["batch"] = batch
        rec["batch_p50_ms"], rec["batch_p95_ms"] = _pct(batched, 50), _pct(batched, 95)
        if not milvus:
            rec["batch_cpu_p50_ms"] = _pct(batched_cpu, 50)
        rec["recall_at_10"] = float(np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got.tolist(), truth.tolist())]))
        if on_built is not None:
            rec.update(on_built(index))
        # an update as the indexer does it: copy, add 1,000, delete 1,000
        t = time.perf_counter()
        clone = index.copy()
        if milvus:
            clone._own()  # copy-on-write materialises on the first write
        rec["copy_s"] = time.perf_counter() - t
        t = time.perf_counter()
        clone.add(np.arange(n, n + len(extra), dtype=np.int64), extra)
        rec["add_1k_s"] = time.perf_counter() - t
        t = time.perf_counter()
        clone.delete(np.random.default_rng(1).choice(n, 1000, replace=False))
        rec["delete_1k_s"] = time.perf_counter() - t
        if milvus:
            for ix in (clone, index):
                try:
                    ix.drop()
                except Exception as e:  # Milvus Lite 3.2.2 at 100k: "No such file ... .vector.hnsw.idx"
                    rec.setdefault("drop_errors", []).append(str(e)[:200])
        del clone, index
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rec


def machine() -> dict:
    import faiss

    psutil = _psutil()
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    from qa.engine import cpu_info

    return {"cpu": cpu, "flags": cpu_info()["flags"], "cores": os.cpu_count(),
            "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "faiss": faiss.__version__, "python": platform.python_version(), "faiss_threads": faiss.omp_get_max_threads()}


def cmd_run(args) -> None:
    real = real_vectors(Path(args.cache))
    queries = np.load(Path(args.cache) / "queries.npy")[: args.queries]
    out = Path(args.out)
    records = json.loads(out.read_text())["records"] if out.exists() and not args.fresh else []
    done = {(r["backend"], r["n"]) for r in records}
    print(f"{len(real)} real vectors; machine {machine()}", flush=True)
    for n in [int(x) for x in args.sizes.split(",")]:
        for name in args.backends.split(","):
            if (name, n) in done:
                continue
            if name.startswith("milvus") and n > args.milvus_max:
                print(f"skip {name} at {n}: above --milvus-max {args.milvus_max}", flush=True)
                continue
            rec = _bench_in_child(args, name, n)
            if rec is None:
                continue
            print(json.dumps(rec), flush=True)
            records.append(rec)
            out.write_text(json.dumps({"machine": machine(), "records": records}, indent=1))


def _bench_in_child(args, name: str, n: int) -> dict | None:
    """One backend at one size in a fresh process, so its RSS is its own."""
    import subprocess

    cmd = [sys.executable, __file__, "--cache", args.cache, "one", "--backend", name, "--n", str(n),
           "--queries", str(args.queries)]
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")  # no spinning on shared cores
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        print(f"{name} at {n} failed:\n{proc.stderr[-3000:]}", flush=True)
        return None
    return json.loads(lines[-1])


def cmd_one(args) -> None:
    import resource

    import faiss

    real = real_vectors(Path(args.cache))
    queries = np.load(Path(args.cache) / "queries.npy")[: args.queries]
    corpus = make_corpus(real, args.n)
    exact = faiss.IndexFlatIP(corpus.shape[1])
    exact.add(corpus)
    _, truth = exact.search(queries, 10)
    del exact
    extra = make_corpus(real, len(real) + 1000, seed=99)[len(real):]
    rec = bench_one(args.backend, corpus, queries, truth, extra)
    rec["real_vectors"] = int(min(args.n, len(real)))
    rec["corpus_mb"] = corpus.nbytes / 2**20
    rec["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(rec), flush=True)


def cmd_plot(args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads(Path(args.out).read_text())["records"]
    names = sorted({r["backend"] for r in data})
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    panels = [("build_s", "build time (s, wall)"), ("single_cpu_p50_ms", "single query p50 (ms of CPU, 1 thread)"),
              ("rss_mb", "memory: RSS growth (MiB)"), ("recall_at_10", "recall@10 vs exact")]
    for ax, (key, label) in zip(axes, panels):
        for name in names:
            rows = sorted((r for r in data if r["backend"] == name and key in r), key=lambda r: r["n"])
            ax.plot([r["n"] for r in rows], [r[key] for r in rows], marker="o", label=name)
        ax.set_xscale("log")
        if key != "recall_at_10":
            ax.set_yscale("log")
        ax.set_xlabel("chunks")
        ax.set_title(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.suptitle("qa vector backends: MiniLM (384-d) vectors, 2 CPU cores")
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)
    print(f"wrote {args.png}")


def cmd_table(args) -> None:
    data = json.loads(Path(args.out).read_text())["records"]
    cols = ["backend", "n", "build_s", "build_cpu_s", "rss_mb", "peak_rss_mb", "disk_mb", "single_p50_ms",
            "single_p95_ms", "single_cpu_p50_ms", "batch_p50_ms", "batch_p95_ms", "batch_cpu_p50_ms", "recall_at_10",
            "copy_s", "add_1k_s", "delete_1k_s"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in sorted(data, key=lambda r: (r["n"], r["backend"])):
        cells = []
        for c in cols:
            v = r.get(c, "")
            cells.append(f"{v:,}" if isinstance(v, int) else (f"{v:.3g}" if isinstance(v, float) else str(v)))
        print("| " + " | ".join(cells) + " |")


# ------------------------------------------------------- hybrid over candidates
def _recall(got_ctx_rows, gold, ks=(1, 5, 10)):
    return {f"R@{k}": float(np.mean([g in row[:k] for row, g in zip(got_ctx_rows, gold)])) for k in ks}


def _dev_setup(cache: Path, n_questions: int):
    texts, ctxs = squad_chunks(10**9, with_context=True)
    dev = {p["context"] for a in json.loads(squad_file("dev-v1.1.json").read_text())["data"] for p in a["paragraphs"]}
    n_dev = sum(c in dev for c in ctxs)
    assert all(c in dev for c in ctxs[:n_dev])
    qs, qctx = dev_questions(n_questions, with_context=True)
    return texts[:n_dev], ctxs[:n_dev], qs, qctx


def cmd_fusion(args) -> None:
    """Candidate-based hybrid vs all-chunk hybrid on SQuAD dev (open): agreement and recall vs gold."""
    from qa.config import BM25Config
    from qa.store.backends import Bm25Index
    from qa.fusion import DenseStats, candidate_hybrid
    from qa.store.backends import FaissHnswIndex
    from qa.store.backends.faiss_flat import FaissFlatIndex

    cache = Path(args.cache)
    texts, ctxs, qs, qctx = _dev_setup(cache, args.queries)
    real = real_vectors(cache)
    if len(real) < len(texts):
        raise SystemExit(f"need {len(texts)} cached vectors (the dev chunks), have {len(real)}")
    vecs = real[: len(texts)]
    qvecs = np.load(cache / "queries.npy")[: len(qs)]
    ids = np.arange(len(texts), dtype=np.int64)
    lexical = Bm25Index.build(ids, texts, BM25Config())
    ctx_arr = np.array(ctxs, dtype=object)

    def z(x):
        m, s = x.mean(axis=1, keepdims=True), x.std(axis=1, keepdims=True)
        return np.where(s > 1e-9, (x - m) / np.maximum(s, 1e-9), 0.0)

    lex = lexical.scores(qs)
    full = 0.65 * z(qvecs @ vecs.T) + 0.35 * z(lex)
    ref = np.argsort(-full, axis=1, kind="stable")[:, :10]
    rows = [{"method": "all-chunk", "C": len(texts), **_recall([list(ctx_arr[r]) for r in ref], qctx)}]
    print(json.dumps(rows[-1]), flush=True)
    for vname, cls in (("faiss-flat", FaissFlatIndex), ("faiss-hnsw", FaissHnswIndex)):
        index = cls(vecs.shape[1])
        index.add(ids, vecs)
        stats = DenseStats.from_index(index, size=2048)
        for c in (10, 20, 50, 100, 200):
            for st in ("corpus", "candidates"):
                t = time.perf_counter()
                _, got = candidate_hybrid(index, lexical, qvecs, qs, 10, candidates=c, dense_stats=stats, stats=st)
                dt = (time.perf_counter() - t) / len(qs)
                rec = {"method": f"candidates/{st}", "vectors": vname, "C": c, "ms_per_q": dt * 1000,
                       "top1_agree": float(np.mean(got[:, 0] == ref[:, 0])),
                       "overlap@5": float(np.mean([len(set(a[:5]) & set(b[:5])) / 5 for a, b in zip(got, ref)])),
                       "overlap@10": float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, ref)])),
                       **_recall([list(ctx_arr[r[r >= 0]]) for r in got], qctx)}
                rows.append(rec)
                print(json.dumps(rec), flush=True)
    Path(args.fusion_out).write_text(json.dumps({"chunks": len(texts), "questions": len(qs), "rows": rows}, indent=1))


# --------------------------------------------------------- BM25: Milvus vs bm25s
def cmd_bm25(args) -> None:
    """Milvus's BM25 function (Milvus Lite) against bm25s on SQuAD dev open retrieval (R@k of the gold paragraph)."""
    from pymilvus import DataType, Function, FunctionType

    from qa.config import BM25Config
    from qa.store.backends import Bm25Index
    from qa.store.backends.milvus import client

    texts, ctxs, _, _ = _dev_setup(Path(args.cache), 1)
    qs, qctx = dev_questions(args.questions, with_context=True)
    ids = np.arange(len(texts), dtype=np.int64)
    ctx_arr = np.array(ctxs, dtype=object)
    results = []
    t = time.perf_counter()
    lexical = Bm25Index.build(ids, texts, BM25Config())
    build = time.perf_counter() - t
    t = time.perf_counter()
    _, got = lexical.search(qs, 10)
    rec = {"engine": "bm25s (lucene, k1 0.5, b 0.5, English stop words + Snowball stemmer)", "build_s": build,
           "ms_per_q": (time.perf_counter() - t) / len(qs) * 1000,
           **_recall([list(ctx_arr[r[r >= 0]]) for r in got], qctx)}
    results.append(rec)
    print(json.dumps(rec), flush=True)
    work = Path(tempfile.mkdtemp(prefix="bm25-milvus-"))
    c = client(str(work / "bm25.db"))
    analyzer = {"tokenizer": "standard", "filter": ["lowercase", {"type": "stop", "stop_words": ["_english_"]},
                                                     {"type": "stemmer", "language": "english"}]}
    for k1, b in ((0.5, 0.5), (1.2, 0.75)):
        name = f"bm25_{int(k1 * 10)}_{int(b * 100)}"
        schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("text", DataType.VARCHAR, max_length=65535, enable_analyzer=True, analyzer_params=analyzer)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                                     output_field_names=["sparse"]))
        params = c.prepare_index_params()
        params.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                         params={"bm25_k1": k1, "bm25_b": b})
        t = time.perf_counter()
        c.create_collection(name, schema=schema, index_params=params, consistency_level="Strong")
        for a in range(0, len(texts), 2000):
            c.insert(name, [{"id": int(i), "text": texts[i]} for i in range(a, min(a + 2000, len(texts)))])
        c.flush(name)
        build = time.perf_counter() - t
        t = time.perf_counter()
        rows = []
        for a in range(0, len(qs), 100):
            res = c.search(name, data=qs[a : a + 100], anns_field="sparse", limit=10, output_fields=["id"],
                           search_params={"metric_type": "BM25"})
            for hits in res:
                rows.append([ctxs[h["id"]] for h in sorted(hits, key=lambda h: -abs(h["distance"]))])
        rec = {"engine": f"Milvus Lite BM25 function (k1 {k1}, b {b}, standard tokenizer + lowercase + "
                         "English stop words + English stemmer)", "build_s": build,
               "ms_per_q": (time.perf_counter() - t) / len(qs) * 1000, **_recall(rows, qctx)}
        results.append(rec)
        print(json.dumps(rec), flush=True)
    Path(args.bm25_out).write_text(json.dumps({"chunks": len(texts), "questions": len(qs), "rows": results}, indent=1))
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", default=str(DEFAULT_CACHE), help="cached embeddings (default %(default)s)")
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("embed", help="embed real SQuAD chunks and dev questions into the cache (resumable)")
    e.add_argument("--real", type=int, default=20000)
    e.add_argument("--queries", type=int, default=1000)
    r = sub.add_parser("run", help="the cost curve")
    r.add_argument("--sizes", default="10000,100000,1000000")
    r.add_argument("--backends", default="faiss-flat,faiss-hnsw,faiss-ivf,milvus-lite")
    r.add_argument("--milvus-max", type=int, default=100_000,
                   help="largest size Milvus Lite is run at (inserting through gRPC on 2 cores; default %(default)s)")
    r.add_argument("--queries", type=int, default=256)
    r.add_argument("--out", default=str(ROOT / "docs" / "scale.json"))
    r.add_argument("--fresh", action="store_true", help="start a new result file instead of resuming")
    pl = sub.add_parser("plot")
    pl.add_argument("--out", default=str(ROOT / "docs" / "scale.json"))
    pl.add_argument("--png", default=str(ROOT / "docs" / "scale.png"))
    o = sub.add_parser("one", help="(internal) one backend at one size, JSON on stdout")
    o.add_argument("--backend", required=True)
    o.add_argument("--n", type=int, required=True)
    o.add_argument("--queries", type=int, default=256)
    tb = sub.add_parser("table")
    tb.add_argument("--out", default=str(ROOT / "docs" / "scale.json"))
    f = sub.add_parser("fusion", help="candidate-based hybrid vs all-chunk hybrid on SQuAD dev")
    f.add_argument("--queries", type=int, default=1000)
    f.add_argument("--fusion-out", default=str(ROOT / "docs" / "scale-fusion.json"))
    b = sub.add_parser("bm25", help="Milvus BM25 vs bm25s on SQuAD dev open")
    b.add_argument("--questions", type=int, default=10570)
    b.add_argument("--bm25-out", default=str(ROOT / "docs" / "scale-bm25.json"))
    args = p.parse_args()
    {"embed": cmd_embed, "run": cmd_run, "plot": cmd_plot, "table": cmd_table, "fusion": cmd_fusion, "one": cmd_one,
     "bm25": cmd_bm25}[args.cmd](args)


if __name__ == "__main__":
    main()
