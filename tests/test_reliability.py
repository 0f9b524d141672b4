"""Reliability (issue 12): no lost writes, no silent overwrite, questions never
wait behind an upload, corrupt input refused cleanly, no garbage left on disk.

All with the fake models (fast, run by ``make test``); the trials with the real
models and many repetitions are in ``bench/reliability.py``.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import SEED_FILE, make_fake_qa
from fakes import ask_all_at_once
from qa import errors
from qa.batching import MicroBatcher
from qa.cli import main as cli_main
from qa.index_manager import as_list, free_id
from qa.ingest import load_paths
from qa.store import POINTER, IndexStore
from qa.uploads import UploadRefused, delete_uploads, index_uploads

HERE = Path(__file__).resolve().parent
FAKE = HERE / "_fake_qa.py"


def fake_qa(index_dir, **kw):
    return make_fake_qa(index_dir=index_dir, corpus_dir=None, **kw)


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_text(text, encoding="utf-8")
    return p


def topic_doc(folder: Path, i: int) -> Path:
    return write(folder, f"doc{i:03d}.txt", f"Document {i} is about the river Vandel{i} and its ferry number {i}.\n")


@pytest.fixture
def seeded(tmp_path):
    """An index holding the seed article (fake models)."""
    idx = tmp_path / "index"
    fake_qa(idx).add_paths([SEED_FILE])
    return idx


def snap_dir(idx: Path) -> Path:
    return idx / (idx / POINTER).read_text().strip()


# --- 1. lost updates: writers serialise on read-modify-publish, across processes ---

def test_concurrent_writer_processes_lose_nothing(tmp_path):
    """Four `add` processes started together (each reports its document only
    after the add returned): every reported document is in the index."""
    idx = tmp_path / "index"
    files = [topic_doc(tmp_path / "docs", i) for i in range(4)]
    procs = [subprocess.Popen([sys.executable, str(FAKE), "add", str(idx), str(f)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for f in files]
    reported = set()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        reported |= set(out.split()[1:])
    assert len(reported) == 4
    assert {d.id for d, _ in fake_qa(idx).documents()} == reported


def test_concurrent_writer_threads_and_a_stale_app_lose_nothing(tmp_path):
    """An app's long-lived QA (loaded before the others wrote), a CLI process and
    threads writing together: nothing lost, and the app sees the others' writes."""
    idx = tmp_path / "index"
    app_qa = fake_qa(idx)
    app_qa.add_paths([topic_doc(tmp_path / "docs", 0)])
    assert len(app_qa.documents()) == 1  # in memory now
    cli = subprocess.Popen([sys.executable, str(FAKE), "add", str(idx), str(topic_doc(tmp_path / "docs", 1))],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    others = [fake_qa(idx) for _ in range(4)]
    errs = []

    def add(q, i):
        try:
            q.add_paths(topic_doc(tmp_path / "docs", i))  # a bare string/path is one path
        except Exception as e:  # pragma: no cover - reported below
            errs.append(e)

    threads = [threading.Thread(target=add, args=(q, 2 + n)) for n, q in enumerate(others)]
    threads.append(threading.Thread(target=add, args=(app_qa, 6)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out, err = cli.communicate(timeout=120)
    assert cli.returncode == 0 and not errs, (err, errs)
    want = {f"doc{i:03d}.txt" for i in range(7)}
    assert {d.id for d, _ in app_qa.documents()} == want  # the app reloaded the newer snapshot
    assert {d.id for d, _ in fake_qa(idx).documents()} == want


@pytest.mark.kill
@pytest.mark.parametrize("trial", range(3))
def test_kill_9_during_index_leaves_old_or_new_never_a_mix(tmp_path, trial):
    idx = tmp_path / "index"
    docs = tmp_path / "docs"
    fake_qa(idx).add_paths([topic_doc(docs, 999)])
    before = {d.id for d, _ in fake_qa(idx).documents()}
    batch = [topic_doc(docs / "batch", i) for i in range(150)]
    p = subprocess.Popen([sys.executable, str(FAKE), "add", str(idx), *map(str, batch)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert p.stdout.readline().strip() == "indexing"
    time.sleep(random.Random(trial).uniform(0.0, 0.4))  # an update takes ~0.5 s here
    p.send_signal(signal.SIGKILL)
    p.wait()
    p.stdout.close()
    after = {d.id for d, _ in fake_qa(idx).documents()}  # loads whole, or raises
    assert after in (before, before | {f.name for f in batch})
    fake_qa(idx).add_paths([topic_doc(docs, 998)])  # the lock died with the process
    assert not list(idx.glob(".tmp-*")) and len(list(idx.glob("snap-*"))) == 1


# --- 2. silent overwrite ------------------------------------------------------------

def test_upload_named_like_an_indexed_document_gets_a_new_id(seeded, tmp_path):
    qa = fake_qa(seeded)
    seed = load_paths([SEED_FILE])[0]
    upload = write(tmp_path / "up", SEED_FILE.name, "A different text about the Zorblat festival in Quillby.\n")
    report = index_uploads(qa, [upload])
    new_id = SEED_FILE.stem + " (2).txt"
    assert report.renamed == {SEED_FILE.name: new_id} and report.added == [new_id]
    docs = qa.store.documents
    assert docs[SEED_FILE.name].text == seed.text  # not replaced
    assert "Zorblat" in docs[new_id].text
    msg = report.markdown()
    assert new_id in msg and "nothing was replaced" in msg
    # the very same text again: left as it is, and the user is told
    again = write(tmp_path / "up2", SEED_FILE.name, seed.text)
    report = index_uploads(qa, [again])
    assert report.unchanged == [SEED_FILE.name] and not report.added
    assert "Already indexed, unchanged" in report.markdown()


def test_free_id():
    assert free_id("a.txt", {"b.txt"}) == "a.txt"
    assert free_id("a.txt", {"a.txt", "a (2).txt"}) == "a (3).txt"
    assert free_id("sub/notes", {"sub/notes"}) == "sub/notes (2)"


def test_an_upload_is_one_snapshot_and_bounded(tmp_path):
    qa = fake_qa(tmp_path / "index")
    files = [topic_doc(tmp_path / "up", i) for i in range(30)]
    publishes = []
    orig = IndexStore.save_locked
    try:
        IndexStore.save_locked = lambda self, *a, **k: publishes.append(1) or orig(self, *a, **k)
        report = index_uploads(qa, files)
    finally:
        IndexStore.save_locked = orig
    assert len(report.added) == 30 and len(publishes) == 1
    with pytest.raises(UploadRefused, match="31 files in one upload; the limit is 30"):
        index_uploads(qa, files + [topic_doc(tmp_path / "up", 99)], max_files=30)
    with pytest.raises(UploadRefused, match="bytes in one upload; the limit is 100"):
        index_uploads(qa, files[:3], max_total_bytes=100)


def test_uploaded_copies_are_deleted_and_nothing_outside(tmp_path):
    root = tmp_path / "gradio"
    up = write(root / "abc123", "a.txt", "Some text about ferries.\n")
    outside = write(tmp_path / "mine", "b.txt", "Keep me.\n")
    report = index_uploads(fake_qa(tmp_path / "index"), [up, outside], delete_under=root)
    assert sorted(report.added) == ["a.txt", "b.txt"]
    assert not up.exists() and not (root / "abc123").exists() and root.exists()
    assert outside.exists()
    assert delete_uploads([outside], root) == 0


def test_files_sharing_a_name_in_one_upload_are_each_accounted_for(tmp_path):
    """Each uploaded file lies in a folder of its own, so two may share a name. The second used to
    be refused naming the first one's server path ("... and /tmp/gradio/abc/notes.txt would both be
    indexed as 'notes.txt'; ... index their common parent folder"), and a file over the size limit
    silently dropped a good file of the same name."""
    from qa.config import Settings

    root = tmp_path / "gradio"
    qa = fake_qa(tmp_path / "index", settings=Settings(max_file_bytes=200))
    first = write(root / "a1", "notes.txt", "The harbour master is Ingrid Solberg.\n")
    second = write(root / "a2", "notes.txt", "The mill wheel broke in 1911.\n")
    report = index_uploads(qa, [first, second], delete_under=root)
    assert report.added == ["notes.txt"] and "Solberg" in qa.store.documents["notes.txt"].text
    assert [n for n, _ in report.problems] == ["notes.txt"]
    msg = report.markdown()
    assert "same name" in msg and "upload it on its own" in msg
    assert str(root) not in msg and "/tmp" not in msg and "parent folder" not in msg
    # uploaded on its own, it is added under a new name
    again = write(root / "a3", "notes.txt", "The mill wheel broke in 1911.\n")
    assert index_uploads(qa, [again], delete_under=root).renamed == {"notes.txt": "notes (2).txt"}

    big = write(root / "b1", "report.txt", "word " * 100)  # over the 200-byte limit
    small = write(root / "b2", "report.txt", "Ferries leave for Gullholm twice a day.\n")
    report = index_uploads(qa, [big, small], delete_under=root)
    assert report.added == ["report.txt"] and "Gullholm" in qa.store.documents["report.txt"].text
    assert len(report.problems) == 1 and "200-byte limit" in report.problems[0][1]


def test_an_upload_repeating_an_indexed_text_under_another_name_is_not_indexed_twice(seeded, tmp_path):
    """``qa index`` reports a file whose text is already indexed under another id as a duplicate;
    an upload indexed it a second time (two documents, every passage found twice)."""
    qa = fake_qa(seeded)
    copy = write(tmp_path / "up", "popov-copy.txt", SEED_FILE.read_text(encoding="utf-8"))
    report = index_uploads(qa, [copy])
    assert not report.added and set(qa.store.documents) == {SEED_FILE.name}
    assert report.problems == [("popov-copy.txt", f"the same text as {SEED_FILE.name!r} is already indexed; "
                                                  "not indexed twice")]
    assert str(tmp_path) not in report.markdown()


# --- 3. questions never wait behind an upload --------------------------------------

class _SlowModel:
    """Stands in for SentenceTransformer: each encode call takes 30 ms per batch."""

    def __init__(self):
        self.batches = []

    def get_embedding_dimension(self):
        return 8

    def encode(self, texts, **kw):
        self.batches.append(len(texts))
        time.sleep(0.03)
        v = np.ones((len(texts), 8), dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_query_embedding_interleaves_with_a_bulk_encode(tmp_path):
    from qa.embedding import Embedder

    emb = Embedder(model_dir=tmp_path, batch_size=16, bf16=False)
    emb._model = _SlowModel()
    emb.run(["warm up (imports torch)"])
    emb._model.batches.clear()
    big = [f"chunk {i} " * (i % 7 + 1) for i in range(16 * 40)]  # 40 batches: ~1.2 s
    result = {}
    bulk = threading.Thread(target=lambda: result.setdefault("bulk", emb.run(big)))
    bulk.start()
    time.sleep(0.1)
    waits = []
    for _ in range(5):
        t0 = time.perf_counter()
        q = emb.run(["who runs the ferry?"])
        waits.append(time.perf_counter() - t0)
    assert bulk.is_alive(), "the bulk encode should still be running"
    bulk.join()
    assert q.shape == (1, 8) and result["bulk"].shape == (len(big), 8)
    assert max(waits) < 0.2, waits  # one batch (+ its own), not the whole 1.2 s
    assert max(emb._model.batches) <= 16


# --- 4. bad input: a QAError that says what to do, never a traceback --------------

@pytest.mark.parametrize("kw, match", [
    (dict(min_score=-0.5), "min_score"), (dict(min_score=1.5), "min_score"), (dict(min_score=math.nan), "min_score"),
    (dict(min_score=math.inf), "min_score"), (dict(min_score="0.5"), "min_score"), (dict(top_k=2.5), "top_k"),
    (dict(top_k="3"), "top_k"), (dict(top_k=0), "top_k"), (dict(top_k=True), "top_k"),
    (dict(history="abc"), "history"), (dict(history=[("q",)]), "history"), (dict(history=[(1, 2)]), "history"),
])
def test_bad_arguments_are_qa_errors(seeded, kw, match):
    with pytest.raises(errors.QAError, match=match):
        fake_qa(seeded).ask("Which army did Popov command?", **kw)


@pytest.mark.parametrize("question", ["\ud800", "Who \udcff commanded?", None, 42, b"bytes", "", "   ", "x" * 1001])
def test_bad_questions_are_question_errors(seeded, question):
    with pytest.raises(errors.QuestionError):
        fake_qa(seeded).ask(question)


def test_a_bare_string_is_one_path_or_id(seeded, tmp_path):
    qa = fake_qa(seeded)
    f = write(tmp_path / "docs", "a.txt", "Alpha Station sits on the ridge.\n")
    qa.add_paths(str(f))
    assert "a.txt" in qa.store.documents
    qa.remove_documents("a.txt")
    assert "a.txt" not in qa.store.documents and SEED_FILE.name in qa.store.documents
    assert as_list(("x", "y"), "ids") == ["x", "y"]
    for bad in (None, b"a.txt", 3):
        with pytest.raises(errors.ArgumentError):
            as_list(bad, "paths")


def run_cli(argv, capsys):
    rc = cli_main(argv, qa_factory=make_fake_qa)
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_undecodable_question_is_one_error_line(seeded, capsys):
    question = b"caf\xe9 \xff?".decode("utf-8", "surrogateescape")  # what Python makes of such argv bytes
    rc, out, err = run_cli(["ask", question, "--index", str(seeded)], capsys)
    assert rc == 1 and out == ""
    assert err.startswith("error: the question holds a character that is not valid text") and err.count("\n") == 1


@pytest.mark.parametrize("pointer", [os.urandom(64), b"\xff\xfe\x00garbage", b"snap-\x00x\n", b"../../etc\n", b""])
@pytest.mark.parametrize("command", [["docs"], ["ask", "Who commanded the army?"], ["index", "NEW"]])
def test_cli_garbage_pointer_is_refused_in_one_line(seeded, tmp_path, capsys, pointer, command):
    (seeded / POINTER).write_bytes(pointer)
    argv = [str(topic_doc(tmp_path / "d", 1)) if a == "NEW" else a for a in command]
    rc, out, err = run_cli(argv + ["--index", str(seeded)], capsys)
    assert rc == 1 and err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "--rebuild" in err


def _flip_byte(path: Path, at: float = 0.6) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0xFF
    path.write_bytes(bytes(data))


def _fix_sums(snap: Path) -> None:
    """Rewrite the manifest's file checksums, as a careless tool would."""
    from qa.store.files import _file_sums

    m = json.loads((snap / "manifest.json").read_text())
    m["files"] = _file_sums(snap)
    (snap / "manifest.json").write_text(json.dumps(m))


def _swap_rows(snap: Path) -> None:
    t = np.load(snap / "chunks.npy")
    t[[0, 1], 1:] = t[[1, 0], 1:]
    np.save(snap / "chunks.npy", t, allow_pickle=False)


def _edit_text(snap: Path, fix_sums: bool) -> None:
    f = snap / "documents.jsonl"
    f.write_text(f.read_text().replace("Popov", "Pópov"), encoding="utf-8")
    if fix_sums:
        _fix_sums(snap)


DAMAGE = {
    "flipped vector bytes": lambda s: _flip_byte(s / "vectors" / "vectors.faiss"),
    "deleted lexical folder": lambda s: shutil.rmtree(s / "lexical"),
    "deleted bm25 files": lambda s: shutil.rmtree(s / "lexical" / "bm25s"),
    "swapped chunk rows": _swap_rows,
    "edited stored text": lambda s: _edit_text(s, False),
    "edited stored text, checksums redone": lambda s: _edit_text(s, True),
    "truncated lexical file": lambda s: [p.write_bytes(p.read_bytes()[:-3]) for p in (s / "lexical").rglob("*")
                                         if p.is_file()][:1],
}


@pytest.mark.parametrize("name", list(DAMAGE))
def test_damaged_index_is_refused_not_answered_from(seeded, name):
    DAMAGE[name](snap_dir(seeded))
    with pytest.raises(errors.IndexCorruptError, match="is corrupt.*--rebuild"):
        fake_qa(seeded).ask("Which army did Popov command?")


def test_permission_problems_are_called_so(seeded, monkeypatch):
    import qa.store.snapshot as snapshot

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", "chunks.npy")

    monkeypatch.setattr(snapshot.np, "load", denied)
    with pytest.raises(errors.IndexPermissionError, match="permission denied.*not corrupt"):
        IndexStore.load(seeded)
    monkeypatch.undo()
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: denied())
    with pytest.raises(errors.IndexPermissionError, match="permission denied"):
        IndexStore.load(seeded)


def test_folder_indexing_does_not_follow_symlinks_out(tmp_path):
    secret = write(tmp_path / "outside", "secret.txt", "The vault code is 4711.\n")
    folder = tmp_path / "corpus"
    write(folder, "inside.txt", "Alpha Station sits on the ridge.\n")
    (folder / "link.txt").symlink_to(secret)
    (folder / "dirlink").symlink_to(tmp_path / "outside", target_is_directory=True)
    qa = fake_qa(tmp_path / "index")
    qa.add_paths([folder])
    assert set(qa.store.documents) == {"inside.txt"}
    assert all("4711" not in d.text for d in qa.store.documents.values())


# --- 5. disk -------------------------------------------------------------------------

def test_orphaned_snapshots_are_cleaned_on_start_and_after_publish(seeded):
    live = snap_dir(seeded)
    shutil.copytree(live, seeded / "snap-20000101-000000-deadbeef")  # a kill after the pointer swap
    (seeded / ".tmp-snap-20000101-000001-cafecafe").mkdir()  # a kill mid-write
    (seeded / f".{POINTER}.12345678").write_text("x")
    qa = fake_qa(seeded)
    assert len(qa.documents()) == 1  # the first load cleans up
    assert sorted(p.name for p in seeded.iterdir() if p.name != ".lock") == [POINTER, live.name]
    shutil.copytree(live, seeded / "snap-20000101-000000-deadbeef")
    qa.add_documents([__import__("qa.types", fromlist=["Document"]).Document("n.txt", "New text here.")])
    assert [p.name for p in seeded.glob("snap-*")] == [snap_dir(seeded).name]


# --- 6. cosmetic -----------------------------------------------------------------------

def test_docs_into_a_closed_pipe_says_nothing(seeded, monkeypatch, capsys):
    r, w = os.pipe()
    os.close(r)
    broken = open(w, "w", buffering=1)
    monkeypatch.setattr(sys, "stdout", broken)
    rc = cli_main(["docs", "--index", str(seeded)], qa_factory=make_fake_qa)
    monkeypatch.undo()
    assert rc == 1
    assert capsys.readouterr().err == ""


def test_newline_in_a_file_name_stays_on_one_line(tmp_path, capsys):
    # Such names cannot be document ids (issue 18: control characters are refused);
    # the report about them still stays one line per file, and the rest is indexed.
    folder = tmp_path / "d"
    write(folder, "two\nlines.txt", "Text of an oddly named file.\n")
    write(folder, "tab\there.txt", "Text of another oddly named file.\n")
    write(folder, "plain.txt", "Text of a plainly named file.\n")
    idx = tmp_path / "index"
    rc, out, err = run_cli(["index", str(folder), "--index", str(idx)], capsys)
    problems = [line for line in (out + err).splitlines() if "rename the file" in line]
    assert len(problems) == 2, out + err
    assert any("two\\nlines.txt" in line for line in problems)
    rc, out, err = run_cli(["docs", "--index", str(idx)], capsys)
    lines = out.splitlines()
    assert rc == 0 and len(lines) == 1 and lines[0].startswith("plain.txt\t"), out


# --- 7. batched answering ----------------------------------------------------------------

def test_questions_that_arrive_together_are_answered_in_one_batch(seeded):
    qa = fake_qa(seeded)
    batcher = MicroBatcher(qa, window_s=0.05)
    qs = ["Which army did Popov command?", "Who was accused of treason?", "What struck the command post?"] * 4
    out = ask_all_at_once(batcher, qs)
    alone = [qa.ask(q) for q in qs]
    assert [a.question for a in out] == qs
    assert [a.answer for a in out] == [a.answer for a in alone]
    assert len(batcher.batches) < len(qs) and max(batcher.batches) > 1
    batcher.close()


def test_a_bad_question_in_a_batch_fails_alone(seeded):
    batcher = MicroBatcher(fake_qa(seeded), window_s=0.05)
    results = {}

    def ask(q):
        try:
            results[q] = batcher.ask(q)
        except errors.QAError as e:
            results[q] = e

    threads = [threading.Thread(target=ask, args=(q,)) for q in ("Which army did Popov command?", "   ", "\ud800")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["Which army did Popov command?"].citations
    assert isinstance(results["   "], errors.QuestionError) and isinstance(results["\ud800"], errors.QuestionError)
    batcher.close()


# --- the web app: uploads and API errors over a real server ------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory):
    pytest.importorskip("gradio_client")
    from gradio_client import Client

    from _app_server import serve

    idx = tmp_path_factory.mktemp("app-index")
    fake_qa(idx).add_paths([SEED_FILE])
    s = serve(fake_qa(idx))
    yield s, Client(s.url, verbose=False)
    s.close()


def test_web_upload_named_like_the_seed_is_not_an_overwrite(served, tmp_path):
    from gradio_client import handle_file

    from qa.uploads import upload_folder

    s, client = served
    seed_text = s.qa.store.documents[SEED_FILE.name].text
    before = set(upload_folder().rglob("*")) if upload_folder().exists() else set()
    up = write(tmp_path, SEED_FILE.name, "The Zorblat festival is held every spring in Quillby.\n")
    table, status = client.predict([handle_file(str(up))], api_name="/add_documents")[:2]
    new_id = SEED_FILE.stem + " (2).txt"
    assert new_id in status and "nothing was replaced" in status
    assert {row[2] for row in table["data"]} >= {SEED_FILE.name, new_id}
    assert s.qa.store.documents[SEED_FILE.name].text == seed_text
    after = set(upload_folder().rglob("*")) if upload_folder().exists() else set()
    assert not [p for p in after - before if p.is_file() and p.name == SEED_FILE.name]  # the copy is gone


@pytest.mark.parametrize("args, match", [
    (("Who?", "abc"), "history"), (("Who?", None, 2.5), "top_k"), (("Who?", None, None, 1.5), "min_score"),
    (("",), "empty"), (("Who?", [["a"]]), "history"), ((None,), "must be a string"),
])
def test_web_api_errors_carry_their_message(served, args, match):
    s, client = served
    with pytest.raises(Exception) as e:
        client.predict(*args, api_name="/answer")
    assert match in str(e.value) and str(e.value).strip() not in ("", "None")


def raw_api(url: str, name: str, data: list) -> str:
    """POST to gradio's REST API (JSON escapes let a lone surrogate through) and
    return the event stream of the result."""
    import urllib.request

    body = json.dumps({"data": data + [None] * (4 - len(data))}).encode()
    req = urllib.request.Request(f"{url}gradio_api/call/{name}", body, {"Content-Type": "application/json"})
    event_id = json.loads(urllib.request.urlopen(req, timeout=30).read())["event_id"]
    return urllib.request.urlopen(f"{url}gradio_api/call/{name}/{event_id}", timeout=60).read().decode()


@pytest.mark.parametrize("data, match", [
    (["\ud800"], "not valid text"), (["Who \udcff?", [["q", "\ud800"]]], "not valid text"),
    (["Who?", {"a": 1}], "history"), (["Who?", None, "3"], "top_k"), ([["a list"]], "must be a string"),
])
def test_raw_web_api_errors_carry_their_message(served, data, match):
    s, _ = served
    stream = raw_api(s.url, "answer", data)
    assert "event: error" in stream and match in stream, stream
    assert "data: null" not in stream
