"""Reliability trials (issues 12 and 18): kill -9 during writes, concurrent writers,
chat latency under load and during an upload, and bad inputs everywhere.

    python bench/reliability.py                                # everything (real models for chat)
    python bench/reliability.py --only kill,writers,bad        # the model-free trials
    python bench/reliability.py --only bad                     # >= 300 bad inputs (~3 min)
    python bench/reliability.py --only kill --kill-trials 20 --publish-trials 3   # 52 kills
    python bench/reliability.py --only chat --clients 20 --questions 5 --upload-mb 1

Trials and what they count:
  kill     kill -9 at a random moment of `qa index` (a process) and of an app upload
           (a served app in a process), and at each step of the publish (snapshot
           renamed, pointer replaced, old snapshots half removed): the index afterwards
           is the previous or the new one, never a mix, loads whole, and nothing is left
           behind once a process opens it. Fake models unless --real-writers.
  writers  N pairs of writer processes started together on one index, each adding
           its own document: documents reported as indexed but missing (lost).
  chat     C concurrent clients x Q questions over /answer with the real models, p50
           against one client alone on the same server in the same run: 5 questions
           shared by all clients (merged and cached as shipped, and with the cache off),
           all questions distinct, and during an upload.
  bad      >= 300 distinct bad inputs across the Python API (Documents the store could
           not round-trip, limits), the CLI, the web API and raw HTTP: answers that are a
           traceback, an empty or null error or an HTTP 5xx, and inputs after which the
           index changed, could not be loaded or stayed locked.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(TESTS))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

FAKE = TESTS / "_fake_qa.py"
PY = sys.executable


def doc_text(i: int, words: int = 40) -> str:
    return (f"Document {i} is about the river Vandel{i} and its ferry number {i}. " * max(1, words // 14)).strip() + "\n"


def write_docs(folder: Path, n: int, start: int = 0, words: int = 40) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + n):
        p = folder / f"doc{i:04d}.txt"
        p.write_text(doc_text(i, words), encoding="utf-8")
        out.append(p)
    return out


def fake_qa(index_dir):
    from fakes import make_fake_qa

    return make_fake_qa(index_dir=index_dir, corpus_dir=None)


def doc_ids(index_dir) -> set[str]:
    from qa.store import IndexStore

    return set(IndexStore.load(index_dir).documents)  # verifies sizes and checksums


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


# --- kill -9 ----------------------------------------------------------------------------

APP_SCRIPT = r"""
import sys, os
sys.path.insert(0, {tests!r}); sys.path.insert(0, {root!r})
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
import app
if {real}:
    from qa.pipeline import QA
    q = QA(index_dir={idx!r}, corpus_dir=None); q.warm_up()
else:
    from fakes import make_fake_qa
    q = make_fake_qa(index_dir={idx!r}, corpus_dir=None)
demo = app.build_app(q)
app.launch(demo, "127.0.0.1", {port}, max_file_bytes=q.settings.max_file_bytes, prevent_thread_lock=True, quiet=True)
print("ready", flush=True)
import time
while True: time.sleep(1)
"""


def upload_via_api(url: str, files: list[Path]) -> str:
    from gradio_client import Client, handle_file

    c = Client(url, verbose=False)
    return c.predict([handle_file(str(f)) for f in files], api_name="/add_documents")[1]


def kill_trials(n: int, real: bool, work: Path, publish_trials: int = 3) -> dict:
    out = {}
    # `qa index` killed at a random moment of its update
    results = []
    for t in range(n):
        idx, docs = work / f"k-cli-{t}" / "index", work / f"k-cli-{t}" / "docs"
        fake_qa(idx).add_paths(write_docs(docs / "old", 3)) if not real else \
            subprocess.run([PY, "-m", "qa", "index", *map(str, write_docs(docs / "old", 3)), "--index", str(idx)],
                           check=True, capture_output=True)
        before = doc_ids(idx)
        batch = write_docs(docs / "new", 200 if not real else 400, start=100)
        cmd = [PY, str(FAKE), "add", str(idx), *map(str, batch)] if not real else \
            [PY, "-m", "qa", "index", str(docs / "new"), "--index", str(idx)]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if not real:
            p.stdout.readline()  # "indexing": imports done
            time.sleep(random.uniform(0, 3.0))  # the update takes ~0.5 s idle, several s on a loaded machine
        else:
            time.sleep(random.uniform(2, 15))
        p.send_signal(signal.SIGKILL)
        p.wait()
        try:
            after = doc_ids(idx)
            state = "old" if after == before else "new" if after == before | {f.name for f in batch} else "MIX"
        except Exception as e:  # noqa: BLE001
            state = f"UNLOADABLE ({type(e).__name__})"
        results.append(state)
    out["kill -9 during qa index"] = {s: results.count(s) for s in set(results)}
    # an app upload killed at a random moment
    results = []
    for t in range(n):
        base = work / f"k-app-{t}"
        idx = base / "index"
        fake_qa(idx).add_paths(write_docs(base / "old", 3)) if not real else None
        before = doc_ids(idx) if (idx / "CURRENT").exists() else set()
        port = free_port()
        script = APP_SCRIPT.format(tests=str(TESTS), root=str(ROOT), real=real, idx=str(idx), port=port)
        log = open(base / "app.log", "w")
        p = subprocess.Popen([PY, "-c", script], stdout=subprocess.PIPE, stderr=log, text=True)
        if p.stdout.readline().strip() != "ready":  # e.g. the port was taken meanwhile: not a trial
            p.kill()
            p.wait()
            log.close()
            results.append("app did not start (not a trial)")
            continue
        batch = write_docs(base / "new", 60, start=100, words=400)
        th = threading.Thread(target=lambda: _ignore(upload_via_api, f"http://127.0.0.1:{port}/", batch), daemon=True)
        th.start()
        time.sleep(random.uniform(0.5, 12.0))  # upload + one update: a few s idle, more under load
        p.send_signal(signal.SIGKILL)
        p.wait()
        log.close()
        try:
            after = doc_ids(idx) if (idx / "CURRENT").exists() else set()
            state = "old" if after == before else "new" if after == before | {f.name for f in batch} else "MIX"
        except Exception as e:  # noqa: BLE001
            state = f"UNLOADABLE ({type(e).__name__})"
        results.append(state)
    out["kill -9 during an app upload"] = {s: results.count(s) for s in set(results)}
    # kills timed into each step of the publish (the process stops there and is killed)
    sys.path.insert(0, str(TESTS))
    from _fake_qa import PUBLISH_STAGES

    for stage in PUBLISH_STAGES:
        results = []
        for t in range(publish_trials):
            base = work / f"k-pub-{stage}-{t}"
            idx = base / "index"
            fake_qa(idx).add_paths(write_docs(base / "old", 3))
            fake_qa(idx).add_paths(write_docs(base / "old2", 1, start=50))  # an older snapshot to clean up
            before = doc_ids(idx)
            batch = write_docs(base / "new", 20, start=100)
            p = subprocess.Popen([PY, str(FAKE), "add-pause", stage, str(idx), *map(str, batch)],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            lines = [p.stdout.readline().strip() for _ in range(2)]  # "indexing", "at STAGE"
            p.send_signal(signal.SIGKILL)
            p.wait()
            try:
                after = doc_ids(idx)
                state = "old" if after == before else "new" if after == before | {f.name for f in batch} else "MIX"
                fake_qa(idx).store  # a new process opens it: leftovers are cleaned
                left = sorted(x.name for x in idx.iterdir() if x.name.startswith((".tmp", ".CURRENT"))
                              or (x.name.startswith("snap-") and x.name != (idx / "CURRENT").read_text().strip()))
                if left:
                    state += f" (left behind: {', '.join(left)})"
            except Exception as e:  # noqa: BLE001
                state = f"UNLOADABLE ({type(e).__name__})"
            if lines[1] != f"at {stage}":
                state = f"NOT AT {stage} ({lines})"
            results.append(state)
        out[f"kill -9 at publish step '{stage}'"] = {s: results.count(s) for s in set(results)}
    counts = [v for k, v in out.items() if k.startswith("kill")]
    out["trials"] = sum(n for c in counts for state, n in c.items() if "not a trial" not in state)
    out["safe (old or new, whole, nothing left)"] = sum(c.get("old", 0) + c.get("new", 0) for c in counts)
    return out


def _ignore(fn, *a):
    try:
        return fn(*a)
    except Exception:  # noqa: BLE001
        return None


# --- concurrent writers -----------------------------------------------------------------

def writer_pairs(n: int, work: Path) -> dict:
    idx = work / "pairs" / "index"
    docs = write_docs(work / "pairs" / "docs", 2 * n)
    reported, failed = set(), 0
    t0 = time.time()
    for i in range(n):
        procs = [subprocess.Popen([PY, str(FAKE), "add", str(idx), str(f)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for f in docs[2 * i: 2 * i + 2]]
        for p in procs:
            o, _ = p.communicate()
            failed += p.returncode != 0
            reported |= set(o.split()[1:])
    present = doc_ids(idx)
    return {"pairs": n, "reported": len(reported), "lost": len(reported - present), "failed": failed,
            "seconds": round(time.time() - t0, 1)}


# --- chat under load ----------------------------------------------------------------------

QUESTIONS = [
    "Who commanded the 58th Combined Arms Army?",
    "Whom did General Popov accuse of treason?",
    "Who made the recording of Popov's voice memo public?",
    "What weapon struck the 58th Army reserve command post?",
    "Who led a short-lived mutiny three weeks earlier?",
]


def call_api(url: str, name: str, data: list) -> tuple[str, object]:
    body = json.dumps({"data": data}).encode()
    req = urllib.request.Request(f"{url}gradio_api/call/{name}", body, {"Content-Type": "application/json"})
    event_id = json.loads(urllib.request.urlopen(req, timeout=60).read())["event_id"]
    stream = urllib.request.urlopen(f"{url}gradio_api/call/{name}/{event_id}", timeout=600).read().decode()
    event, payload = None, None
    for line in stream.splitlines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event in ("complete", "error"):
            payload = json.loads(line[6:])
    return event, payload


def run_clients(url: str, clients: int, per_client: int,
                questions: list[str] | None = None) -> tuple[list[float], list[tuple[str, str]]]:
    """``clients`` threads start together, each asking ``per_client`` questions one
    after another over ``/answer``. Without ``questions``: client c asks
    QUESTIONS[(c + k) % 5] (5 distinct questions shared by all: the issue's
    pattern); with it, client c asks questions[c * per_client + k] (all distinct)."""
    lat, got = [], []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def client(c):
        barrier.wait()
        for k in range(per_client):
            q = QUESTIONS[(c + k) % len(QUESTIONS)] if questions is None else questions[c * per_client + k]
            t0 = time.perf_counter()
            event, payload = call_api(url, "answer", [q, None, None, None])
            dt = time.perf_counter() - t0
            with lock:
                lat.append(dt)
                got.append((q, payload[0]["answer"] if event == "complete" else f"ERROR {payload}"))

    ths = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    return lat, got


class OneByOne:
    """The QA without ask_batch: the app answers one question at a time (the old behaviour)."""

    def __init__(self, qa):
        self._qa = qa

    def __getattr__(self, name):
        if name == "ask_batch":
            raise AttributeError(name)
        return getattr(self._qa, name)


def gold_questions() -> list[str]:
    return [json.loads(line)["question"] for line in (TESTS / "gold" / "seeds.jsonl").read_text().splitlines()
            if line.strip()]


def distinct_questions(n: int, prefix: str = "") -> list[str]:
    """n different question texts about the seed: the gold questions, then the same
    reworded ("In the article, who ..."); every one is read (no cache, no merging)."""
    gold = gold_questions()
    out = [prefix + q for q in gold]
    for lead in ("In the article, ", "According to the text, ", "From the report: "):
        out += [prefix + lead + q[0].lower() + q[1:] for q in gold]
    if len(out) < n:
        raise SystemExit(f"only {len(out)} distinct questions; ask for fewer clients x questions")
    return out[:n]


def chat_trials(clients: int, per_client: int, upload_mb: float, work: Path, one_by_one: bool = False) -> dict:
    """p50 of C clients x Q questions against one client alone, side by side in one run
    and one served app: (a) the issue's pattern (5 distinct questions shared by all
    clients) with the batcher as shipped (identical questions read once, answers
    kept per snapshot); (b) the same with the answer cache off; (c) all distinct
    questions (nothing shared: the model's cost per question is what remains);
    (d) pattern (b) while an upload is being indexed."""
    import app
    from qa.pipeline import QA

    idx = work / "chat-index"
    qa = QA(index_dir=idx, corpus_dir=ROOT / "seeds")
    qa.warm_up()
    expected = {q: qa.ask(q).answer for q in QUESTIONS}
    from qa.engine import cpu_info

    out: dict = {"cpu": cpu_info()}
    try:
        out["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        pass

    def serve(instance, **kw):
        demo = app.build_app(instance, **kw)
        port = free_port()
        app.launch(demo, "127.0.0.1", port, max_file_bytes=qa.settings.max_file_bytes, prevent_thread_lock=True,
                   quiet=True)
        return demo, f"http://127.0.0.1:{port}/"

    def summarise(lat, got, one_p50, check=True):
        out = {"p50 s": round(statistics.median(lat), 3), "p95 s": round(pct(lat, 0.95), 3),
               "p50 / one client p50": round(statistics.median(lat) / one_p50, 2),
               "errors": sum(a.startswith("ERROR") for _, a in got)}
        if check:
            out["right (= one-client answer)"] = f"{sum(expected[q] == a for q, a in got)}/{len(got)}"
        return out

    demo, url = serve(qa)
    batcher = demo.batcher
    call_api(url, "answer", [QUESTIONS[0], None, None, None])  # warm
    # one client alone, the same server: distinct questions, never cached
    alone_qs = distinct_questions(5, prefix="Please answer: ")
    alone = []
    for q in alone_qs + alone_qs[:0]:
        t0 = time.perf_counter()
        call_api(url, "answer", [q, None, None, None])
        alone.append(time.perf_counter() - t0)
    one_p50 = statistics.median(alone)
    out["one client alone (5 distinct questions), p50 s"] = round(one_p50, 3)
    # the same questions again: answered from the cache, so this is the web round trip alone
    again = []
    for q in alone_qs:
        t0 = time.perf_counter()
        call_api(url, "answer", [q, None, None, None])
        again.append(time.perf_counter() - t0)
    out["one client, cached answer (web round trip alone), p50 s"] = round(statistics.median(again), 3)

    def run(label, questions=None, cache=True):
        batcher._cache.clear()
        batcher.cache_size = 256 if cache else 0
        batcher.batches.clear()
        batcher.reads.clear()
        hits0, merged0 = batcher.cache_hits, batcher.merged
        t0 = time.perf_counter()
        lat, got = run_clients(url, clients, per_client, questions)
        res = summarise(lat, got, one_p50, check=questions is None)
        res |= {"wall s": round(time.perf_counter() - t0, 1), "batches": len(batcher.batches),
                "largest batches": sorted(batcher.batches, reverse=True)[:6],
                "questions read": sum(batcher.reads), "cache hits": batcher.cache_hits - hits0,
                "waited for the same question's read": batcher.merged - merged0}
        out[label] = res
        print(json.dumps({label: res}, ensure_ascii=False), flush=True)
        return lat

    n = clients * per_client
    run(f"{clients} clients x {per_client}, 5 shared questions (as shipped: merged + cached)")
    base = run(f"{clients} clients x {per_client}, 5 shared questions, answer cache off", cache=False)
    run(f"{clients} clients x {per_client}, all {n} questions distinct", distinct_questions(n))
    if one_by_one:
        demo1, url1 = serve(OneByOne(qa), concurrency_limit=1)
        lat, got = run_clients(url1, clients, per_client)
        out["one at a time (concurrency 1, no batching)"] = summarise(lat, got, one_p50)
        demo1.close()
    if upload_mb > 0:
        big = work / "big-upload.txt"
        para = next((ROOT / "seeds").glob("*.txt")).read_text(encoding="utf-8")
        with open(big, "w", encoding="utf-8") as fh:
            k = 0
            while fh.tell() < upload_mb * 1024 * 1024:
                fh.write(para.replace("Popov", f"Popov{k}") + "\n\n")
                k += 1
        status = {}

        def upload():
            t = time.perf_counter()
            status["msg"] = _ignore(upload_via_api, url, [big])
            status["s"] = time.perf_counter() - t

        up = threading.Thread(target=upload)
        up.start()
        time.sleep(5)  # the upload is being read and embedded
        during = run(f"{clients} clients x {per_client}, 5 shared questions, cache off, during a "
                     f"{upload_mb:g} MB upload", cache=False)
        out["upload still running after the clients"] = up.is_alive()
        up.join()
        out["upload"] = {"seconds": round(status.get("s", 0), 1), "status": (status.get("msg") or "FAILED")[:120]}
        out["p50 ratio (during upload / without)"] = round(statistics.median(during) / statistics.median(base), 2)
    try:
        import psutil

        out["rss, MB"] = round(psutil.Process().memory_info().rss / 2**20)
    except ImportError:
        pass
    demo.close()
    return out


# --- bad inputs ----------------------------------------------------------------------------

def index_state(idx: Path) -> tuple:
    """(published snapshot, its documents, writer lock held?): what a bad input must not change."""
    from filelock import Timeout

    from qa.store import writer_lock

    name = (idx / "CURRENT").read_text().strip()
    ids = frozenset(doc_ids(idx))
    try:
        with writer_lock(idx).acquire(timeout=0):
            locked = False
    except Timeout:
        locked = True
    return name, ids, locked


class Tally:
    """Bad inputs by channel: how many, how many answered badly (a traceback, an
    empty or null error, an HTTP 5xx), how many changed, lost or locked the index."""

    def __init__(self, idx: Path) -> None:
        self.idx = idx
        self.state = index_state(idx)
        self.by: dict[str, dict] = {}

    def record(self, channel: str, label: str, bad_answer: str | None) -> None:
        c = self.by.setdefault(channel, {"cases": 0, "tracebacks or empty errors": 0, "index changed/lost/locked": 0,
                                         "examples": []})
        c["cases"] += 1
        if bad_answer:
            c["tracebacks or empty errors"] += 1
            c["examples"].append(f"{label[:70]}: {bad_answer[:160]}")
        try:
            now = index_state(self.idx)
        except Exception as e:  # noqa: BLE001
            now = ("UNLOADABLE", type(e).__name__, False)
        if now != self.state:
            c["index changed/lost/locked"] += 1
            c["examples"].append(f"{label[:70]}: INDEX {self.state[0]} -> {now[0]}, "
                                 f"docs {len(self.state[1])} -> {len(now[1]) if isinstance(now[1], frozenset) else now[1]}"
                                 f", locked {now[2]}")
            if now[0] != "UNLOADABLE":
                self.state = now  # count each change once

    def summary(self) -> dict:
        out = {k: v | {"examples": v["examples"][:8]} for k, v in self.by.items()}
        out["distinct bad inputs"] = sum(v["cases"] for v in self.by.values())
        out["tracebacks or empty errors"] = sum(v["tracebacks or empty errors"] for v in self.by.values())
        out["index changed/lost/locked"] = sum(v["index changed/lost/locked"] for v in self.by.values())
        return out


def bad_documents() -> list[dict]:
    """Document fields the store could not round-trip (issue 18)."""
    from qa.types import Locator

    t = "Some text about the river."
    return ([dict(id=v, text=t) for v in (None, 5, 4.2, b"x.txt", "", "   ", "../../x.txt", "a/../b.txt",
                                          "/etc/passwd", "a//b.txt", "a\\b.txt", "a\x00b", "two\nlines", "tab\there",
                                          "bidi\u202eevil.txt", "\ud800", "a\udcffb", "x" * 5000, ".", "..", "a/",
                                          ["list"], {"d": 1})]
            + [dict(id="a.txt", text=v) for v in ("", " \n\t", None, b"bytes", 42, "bad \udcff text", ["t"])]
            + [dict(id="a.txt", text=t, title=v) for v in (None, 3, "\ud800")]
            + [dict(id="a.txt", text=t, meta=v) for v in (None, "s", {"x": object()}, {"x": float("nan")},
                                                            {1: "int key"}, {"t": (1, 2)}, {"s": "\udcff"},
                                                            {"b": b"bytes"})]
            + [dict(id="a.txt", text=t, locators=v) for v in ((Locator(0, 99),), (Locator(-1, 3),),
                                                                (Locator(0, 3, page=0),), ((0, 3),), "abc",
                                                                (Locator(5, 2),), (Locator(0, 3, section=5),))])


def bad_inputs(work: Path) -> dict:
    import math

    from fakes import SEED_FILE, make_fake_qa
    from qa.errors import QAError
    from qa.types import Document

    idx = work / "bad-index"
    qa = make_fake_qa(index_dir=idx, corpus_dir=None)
    qa.add_paths([SEED_FILE])
    tally = Tally(idx)
    Q = "Which army did Popov command?"

    def api(label, fn):
        try:
            fn()
        except QAError as e:
            tally.record("api", label, None if str(e).strip() else "empty message")
        except Exception as e:  # noqa: BLE001
            tally.record("api", label, f"{type(e).__name__}: {e}")
        else:
            tally.record("api", label, None)

    questions = ["", " ", "\n\t", "\ud800", "a\udcffb", "\x00", None, 42, 4.2, b"bytes", ["list"], {"d": 1},
                 "x" * 1001, "x" * 100000, object()]
    kwargs = [dict(top_k=v) for v in (0, -1, 2.5, "3", True, None.__class__, [], 1e9, math.nan, 51, 10**9, 10**18)] + \
             [dict(min_score=v) for v in (-0.5, 1.5, math.nan, math.inf, -math.inf, "0.5", True, [0.5])] + \
             [dict(history=v) for v in ("abc", b"abc", 3, [("q",)], [(1, 2)], [("q", "a", "b")], [["\ud800", "a"]],
                                        {"q": "a"}, [None], [("Who?", "him")] * 51, [("Who?", "x" * 20001)],
                                        [("Who?", "\ud800")])]
    paths = ["", " ", [""], ["", str(SEED_FILE)], "/nonexistent/x.txt", str(work), "/dev/null", b"a.txt", None, 3,
             ["/etc/shadow-nope"], str(SEED_FILE) + "\x00"]
    for q in questions:
        api(f"ask({q!r:.30})", lambda q=q: qa.ask(q))
    for kw in kwargs:
        api(f"ask(Q, {kw!r:.40})", lambda kw=kw: qa.ask(Q, **kw))
    for v in paths:
        api(f"add_paths({v!r:.40})", lambda v=v: qa.add_paths(v))
        api(f"sync_paths({v!r:.40})", lambda v=v: qa.sync_paths(v))
    for v in ("nope.txt", [None], None, b"x", 3, ["\ud800"], "", [""], ["../x"]):
        api(f"remove_documents({v!r:.40})", lambda v=v: qa.remove_documents(v))
    for v in ("abc", [None], [Q, ""], None):
        api(f"ask_batch({v!r:.40})", lambda v=v: qa.ask_batch(v))
    for v in ([], ["/nonexistent"], [""]):
        api(f"rebuild({v!r:.40})", lambda v=v: qa.rebuild(v))
    for kw in bad_documents():
        for entry in ("add_documents", "add_new_documents", "index_exactly"):
            api(f"{entry}([Document({kw!r:.50})])",
                lambda kw=kw, entry=entry: getattr(qa, entry)([Document(**kw)]))
    for v in ([{"id": "d.txt", "text": "t"}], ["a string"], [None], None, 42, "x.txt"):
        api(f"add_documents({v!r:.40})", lambda v=v: qa.add_documents(v))

    # CLI, in a subprocess each (real argv bytes, real stdout/stderr)
    bad_dir = work / "bad-files"
    bad_dir.mkdir(exist_ok=True)
    (bad_dir / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (bad_dir / "empty.txt").write_bytes(b"")
    (bad_dir / "bin.txt").write_bytes(os.urandom(2000))
    (bad_dir / "x.exe").write_bytes(b"MZ")
    (bad_dir / "two\nlines.txt").write_text("Oddly named.\n")
    garbage_idx = work / "garbage-index"
    shutil.copytree(idx, garbage_idx)
    (garbage_idx / "CURRENT").write_bytes(os.urandom(40))
    I = ["--index", str(idx)]
    cli_cases = [["ask", b"caf\xe9 \xff?"] + I, ["ask", ""] + I, ["ask", "  "] + I, ["ask", "x" * 5000] + I,
                 ["ask", Q, "--top-k", "0"] + I, ["ask", Q, "--top-k", "2.5"] + I, ["ask", Q, "--min-score", "1.5"] + I,
                 ["ask", Q, "--min-score", "nan"] + I, ["ask", Q, "--min-score", "abc"] + I,
                 ["ask", Q, "--top-k", "51"] + I, ["ask", Q, "--top-k", "1000000000"] + I,
                 ["ask", Q, "--index", str(work / "nope")], ["ask", Q, "--index", str(garbage_idx)],
                 ["docs", "--index", str(garbage_idx)], ["index", str(bad_dir / "latin1.txt")] + I,
                 ["index", str(bad_dir / "empty.txt")] + I, ["index", str(bad_dir / "bin.txt")] + I,
                 ["index", str(bad_dir / "x.exe")] + I, ["index", "/nonexistent"] + I, ["index", "/dev/null"] + I,
                 ["index", str(bad_dir / "two\nlines.txt")] + I, ["index", ""] + I,
                 ["index", str(bad_dir / "latin1.txt"), "--index", str(garbage_idx)], ["remove", "nope.txt"] + I,
                 ["remove", b"\xff"] + I, ["remove", ""] + I, ["show", "nope.txt"] + I, ["show", b"\xff"] + I,
                 ["bogus"], [], ["ask"], ["index"] + I, ["docs", "--index", "/dev/null"],
                 ["index", str(SEED_FILE), "--index", "/proc/version"], ["index", "--rebuild", "/nonexistent"] + I]
    for argv in cli_cases:
        argv_b = [a if isinstance(a, bytes) else a.encode("utf-8", "surrogateescape") for a in argv]
        r = subprocess.run([PY.encode(), str(FAKE).encode(), b"cli", *argv_b], capture_output=True, timeout=180)
        err = r.stderr.decode("utf-8", "replace")
        lines = [line for line in err.splitlines() if line.strip()]
        bad = None
        if "Traceback" in err or r.returncode not in (0, 1, 2):
            bad = f"rc {r.returncode}: {err[-200:]}"
        elif r.returncode == 1 and (not lines or any(not line.startswith("error: ") for line in lines)):
            bad = f"rc 1 without one error line per problem: {err[-200:]!r}"
        tally.record("cli", repr(argv), bad)

    # web API, raw JSON and raw HTTP (anything a client can send)
    from _app_server import serve

    served = serve(make_fake_qa(index_dir=idx, corpus_dir=None))
    url = served.url

    def web(name, data):
        try:
            event, payload = call_api(url, name, data)
        except urllib.error.HTTPError as e:
            tally.record("web", f"{name} {data!r:.60}", f"HTTP {e.code}" if e.code >= 500 else None)
            return
        except Exception as e:  # noqa: BLE001
            tally.record("web", f"{name} {data!r:.60}", f"{type(e).__name__}: {e}")
            return
        bad = None
        if event == "error" and (not isinstance(payload, dict) or not str(payload.get("error") or "").strip()
                                 or "Traceback" in str(payload)):
            bad = f"error {payload!r:.80}"
        tally.record("web", f"{name} {data!r:.60}", bad)

    answer_cases = [[q, None, None, None] for q in ("", " ", "\ud800", "a\udcffb", None, 42, ["l"], {"d": 1},
                                                    "x" * 1001, "\x00")] + \
                   [[Q, h, None, None] for h in ("abc", 3, [["q"]], [[1, 2]], [["q", "a", "b"]], {"q": "a"}, [None],
                                                 [["\ud800", "a"]], [["Who?", "him"]] * 51, [["Who?", "x" * 20001]])] + \
                   [[Q, None, k, None] for k in (0, -1, 2.5, "3", True, [], 1e9, 51, 10**9, "x", {"k": 1})] + \
                   [[Q, None, None, m] for m in (-0.5, 1.5, "0.5", True, [0.5], 1e308, "x")] + \
                   [[Q], [Q, None, None, None, None], [], [None, None, None, None]]
    for data in answer_cases:
        web("answer", data)
    # /ask: question, top_k, use_default, min_score, pairs, messages
    ask_cases = [[q, 5, True, 0.5, [], []] for q in ("\ud800", None, 42, "x" * 1001)] + \
                [[Q, k, True, 0.5, [], []] for k in ("x", None, 10**9, -3, [1])] + \
                [[Q, 5, d, 0.5, [], []] for d in ("yes", None, [1])] + \
                [[Q, 5, False, m, [], []] for m in ("x", 7, -1, None)] + \
                [[Q, 5, True, 0.5, p, []] for p in ("abc", [["q"]], [[1, 2]], {"a": 1})] + \
                [[Q, 5, True, 0.5, [], m] for m in ("abc", [1, 2], {"a": 1})] + [[], [Q]]
    for data in ask_cases:
        web("ask", data)
    for data in ([["nope"]], [None], "abc", [[{"path": "/etc/passwd"}]], [42], [[{"path": str(SEED_FILE)}]],
                 [[{"path": "../../etc/passwd", "meta": {"_type": "gradio.FileData"}}]], [[]], []):
        web("add_documents", [data] if data != [] else data)
    raw_http = [("gradio_api/call/answer", b"not json", "application/json"),
                ("gradio_api/call/answer", b"\xff\xfe", "application/json"),
                ("gradio_api/call/answer", b"[]", "application/json"),
                ("gradio_api/call/answer", b'{"data": 3}', "application/json"),
                ("gradio_api/call/nope", b'{"data": []}', "application/json"),
                ("gradio_api/queue/join", b"{", "application/json"),
                ("gradio_api/queue/join", b'{"data": [], "fn_index": 999, "session_hash": "x"}', "application/json"),
                ("gradio_api/upload", b"garbage", "multipart/form-data; boundary=XyZ"),
                ("gradio_api/upload", b"garbage", "text/plain"),
                ("gradio_api/upload", b"--XyZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"\"\r\n\r\n"
                 b"hi\r\n--XyZ--\r\n", "multipart/form-data; boundary=XyZ"),
                ("gradio_api/upload", b"--XyZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"../../x\""
                 b"\r\n\r\nhi\r\n--XyZ--\r\n", "multipart/form-data; boundary=XyZ")]
    for path, body, ctype in raw_http:
        req = urllib.request.Request(url + path, body, {"Content-Type": ctype})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                code, text = r.status, r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            code, text = e.code, e.read().decode("utf-8", "replace")
        tally.record("http", f"{path} {body[:30]!r}",
                     f"HTTP {code}: {text[:80]}" if code >= 500 or not text.strip() else None)
    served.close()
    return tally.summary()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="kill,writers,chat,bad")
    p.add_argument("--kill-trials", type=int, default=20, help="random-moment kills of `qa index` and of an upload")
    p.add_argument("--publish-trials", type=int, default=3, help="kills at each of the 4 publish steps")
    p.add_argument("--real-writers", action="store_true", help="kill trials with the real models (slow)")
    p.add_argument("--pairs", type=int, default=50)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--questions", type=int, default=5)
    p.add_argument("--upload-mb", type=float, default=9.5, help="under the app's 10 MB per-file limit (0: none)")
    p.add_argument("--one-by-one", action="store_true", help="chat: also the old one-question-at-a-time server")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args(argv)
    only = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="qa-reliability-"))
    figures = {}
    try:
        for name, fn in (("bad", lambda: bad_inputs(work)),
                         ("writers", lambda: writer_pairs(args.pairs, work)),
                         ("kill", lambda: kill_trials(args.kill_trials, args.real_writers, work,
                                                      args.publish_trials)),
                         ("chat", lambda: chat_trials(args.clients, args.questions, args.upload_mb, work,
                                                      args.one_by_one))):
            if name in only:
                t0 = time.time()
                figures[name] = fn()
                figures[name]["trial seconds"] = round(time.time() - t0, 1)
                print(json.dumps({name: figures[name]}, indent=1, ensure_ascii=False), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
