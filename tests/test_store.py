"""The on-disk index: round trip, manifest, staleness, corruption, atomic
writes and incremental updates (fake embedder: plumbing only)."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from qa import errors
from qa.chunking import Chunker
from qa.config import INDEX_FORMAT_VERSION, ChunkingConfig
from qa.ingest import sha256_text
from qa.config import BM25Config
from qa.retrieval import bm25_search, dense_search
from qa.store import POINTER, IndexStore
from qa.types import Document

from conftest import TINY_DOCS, FakeEmbedder, build_store, make_doc


def snapshot(index_dir: Path) -> Path:
    return index_dir / (index_dir / POINTER).read_text().strip()


def load(index_dir: Path) -> IndexStore:
    return IndexStore.load(index_dir)


def contents(store: IndexStore):
    return (
        {d.id: (d.text, d.title, d.meta) for d in store.documents.values()},
        [(c.doc_id, c.start, c.end, c.text) for c in store.chunks],
        store.chunk_vectors(),
    )


def assert_same(a, b):
    assert a[0] == b[0]
    assert a[1] == b[1]
    np.testing.assert_array_equal(a[2], b[2])


@pytest.fixture
def saved(tmp_path, tiny_store):
    index_dir = tmp_path / "index"
    tiny_store.save(index_dir)
    return index_dir


# --- round trip and manifest -----------------------------------------------------

def test_round_trip(saved, tiny_store):
    back = load(saved)
    assert_same(contents(back), contents(tiny_store))
    assert asdict(back.manifest) == asdict(tiny_store.manifest)
    assert len(back.vectors) == len(back) == len(tiny_store) > 3
    for c in back.chunks:
        assert back.documents[c.doc_id].text[c.start:c.end] == c.text
    # BM25 and FAISS answer the same after the round trip.
    q = ["Who is the harbour master?"]
    assert bm25_search(back, q, 5) == bm25_search(tiny_store, q, 5)
    qv = FakeEmbedder().run(q)
    assert [h.row for h in dense_search(back, qv, 5)[0]] == [h.row for h in dense_search(tiny_store, qv, 5)[0]]


def test_layout_and_manifest(saved, tiny_docs, small_chunker, fake_embedder):
    snap = snapshot(saved)
    assert snap.name.startswith("snap-")
    assert sorted(p.name for p in snap.iterdir()) == ["chunks.npy", "documents.jsonl", "lexical", "manifest.json",
                                                      "vectors"]
    m = json.loads((snap / "manifest.json").read_text())
    assert m["format_version"] == INDEX_FORMAT_VERSION
    assert m["embedder"] == fake_embedder.model_id == {"name": "fake/hashing-embedder", "sha256": "fake-weights-0"}
    assert m["chunking"] == {"max_words": 16, "overlap_sentences": 1}
    assert m["bm25"] == asdict(BM25Config())
    assert m["documents"] == {d.id: hashlib.sha256(d.text.encode()).hexdigest() for d in tiny_docs}
    assert m["n_chunks"] == len(small_chunker.run_many(tiny_docs))
    table = np.load(snap / "chunks.npy", allow_pickle=False)
    assert table.dtype == np.int64 and table.shape == (m["n_chunks"], 4)


def test_real_embedder_id_is_the_weights_sha256():
    from qa.embedding import EMBEDDER_NAME, Embedder

    e = Embedder()
    weights = e.model_dir / "model.safetensors"
    h = hashlib.sha256()
    with open(weights, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    assert e.model_id == {"name": EMBEDDER_NAME, "sha256": h.hexdigest()}
    assert e._model is None, "reading the id must not load the model"


def test_missing_index(tmp_path):
    with pytest.raises(errors.IndexMissingError, match=r"qa index PATH\.\.\. --index"):
        load(tmp_path / "nowhere")


def test_empty_store_round_trip(tmp_path, small_chunker, fake_embedder):
    empty = build_store([], small_chunker, fake_embedder)
    empty.save(tmp_path / "i")
    back = load(tmp_path / "i")
    assert len(back) == 0 and back.documents == {} and len(back.lexical) == 0


# --- staleness ------------------------------------------------------------------

def expected(store, **change):
    e = {"format_version": INDEX_FORMAT_VERSION, "embedder": dict(store.manifest.embedder),
         "chunking": dict(store.manifest.chunking), "bm25": dict(store.manifest.bm25)}
    e.update(change)
    return e


def test_compatible_passes(saved):
    store = load(saved)
    store.check_compatible(expected(store), saved)  # no error
    assert store.manifest.expectations() == expected(store)


@pytest.mark.parametrize("change, what", [
    ({"chunking": {"max_words": 100, "overlap_sentences": 1}}, "different chunking settings"),
    ({"embedder": {"name": "fake/hashing-embedder", "sha256": "other-weights"}}, "a different embedding model"),
    ({"format_version": INDEX_FORMAT_VERSION + 1}, "another index format"),
    ({"bm25": {**asdict(BM25Config()), "k1": 9.0}}, "different BM25 settings"),
])
def test_stale_index(saved, change, what):
    store = load(saved)
    with pytest.raises(errors.IndexStaleError) as e:
        store.check_compatible(expected(store, **change), saved)
    msg = str(e.value)
    assert what in msg
    assert f"qa index --rebuild --index {saved}" in msg


@pytest.mark.parametrize("version", [INDEX_FORMAT_VERSION + 1, 0])
def test_other_format_version_on_disk_is_stale(saved, version):
    f = snapshot(saved) / "manifest.json"
    m = json.loads(f.read_text())
    m["format_version"] = version
    m["a_field_from_the_future"] = True  # other formats may have other manifest fields
    f.write_text(json.dumps(m))
    with pytest.raises(errors.IndexStaleError, match=rf"format {version}.*--rebuild"):
        load(saved)


# --- corruption -----------------------------------------------------------------

def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _set_table(snap: Path, fn) -> None:
    t = np.load(snap / "chunks.npy")
    np.save(snap / "chunks.npy", fn(t), allow_pickle=False)


def _edit_manifest(snap: Path, **kv) -> None:
    m = json.loads((snap / "manifest.json").read_text())
    m.update(kv)
    (snap / "manifest.json").write_text(json.dumps(m))


def _beyond_doc(t):
    t = t.copy()
    t[0, 3] = 10**6
    return t


def _unknown_row(t):
    t = t.copy()
    t[-1, 1] = 99
    return t


def _reversed(t):
    t = t.copy()
    t[0, 2], t[0, 3] = t[0, 3], t[0, 2]
    return t


CORRUPTIONS = {
    "truncated vectors.faiss": lambda s: _truncate(s / "vectors" / "vectors.faiss"),
    "empty vectors.faiss": lambda s: (s / "vectors" / "vectors.faiss").write_bytes(b""),
    "garbage manifest.json": lambda s: (s / "manifest.json").write_text("{not json"),
    "manifest.json is a list": lambda s: (s / "manifest.json").write_text("[1, 2]"),
    "manifest.json lacks fields": lambda s: (s / "manifest.json").write_text(
        json.dumps({"format_version": INDEX_FORMAT_VERSION})),
    "missing manifest.json": lambda s: (s / "manifest.json").unlink(),
    # (one damaged record costs only its document: tests/test_recovery.py)
    "empty documents.jsonl": lambda s: (s / "documents.jsonl").write_bytes(b""),
    "documents.jsonl is garbage": lambda s: (s / "documents.jsonl").write_bytes(b"\xff\xfe garbage\n{}\n"),
    "garbage chunks.npy": lambda s: (s / "chunks.npy").write_bytes(b"\x93NUMPY garbage"),
    "chunk outside its document": lambda s: _set_table(s, _beyond_doc),
    "chunk of an unknown document": lambda s: _set_table(s, _unknown_row),
    "chunk with end before start": lambda s: _set_table(s, _reversed),
    "chunk table of the wrong shape": lambda s: _set_table(s, lambda t: t[:, :2].copy()),
    "chunk table of floats": lambda s: _set_table(s, lambda t: t.astype(np.float64)),
    "chunk count differs from manifest": lambda s: _edit_manifest(s, n_chunks=3),
    "fewer vectors than chunks": lambda s: _set_table(s, lambda t: np.concatenate([t, t[:1]])),
    "documents differ from manifest": lambda s: _edit_manifest(s, documents={"other.txt": "0" * 64}),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corrupt_index(saved, name):
    CORRUPTIONS[name](snapshot(saved))
    with pytest.raises(errors.IndexCorruptError) as e:
        load(saved)
    msg = str(e.value)
    assert str(saved) in msg and "--rebuild" in msg
    assert "\n" not in msg, "one line, fit for `error: ...`"


@pytest.mark.parametrize("field, value", [
    ("vector_index", "faiss-flat"), ("vector_index", None), ("vector_index", {"name": ["faiss-flat"]}),
    ("files", None), ("files", {"chunks.npy": "1 abc"}), ("embedder", None), ("bm25", None),
    ("n_chunks", "7"), ("next_chunk_id", "x"), ("next_chunk_id", -1), ("next_chunk_id", 0), ("engines", None), ("created", "today"),
])
def test_a_manifest_field_of_the_wrong_type_is_corrupt_not_an_internal_error(saved, field, value):
    # A manifest edited by hand ("vector_index": "faiss-flat", "files": null) failed in the
    # loader with an AttributeError, which the CLI calls an internal error ("please report
    # it"); next_chunk_id "x" was even served, and the next update died on it.
    _edit_manifest(snapshot(saved), **{field: value})
    with pytest.raises(errors.IndexCorruptError, match=rf"corrupt.*{field}.*--rebuild"):
        load(saved)


def test_a_bug_while_loading_is_not_reported_as_a_corrupt_index(saved, monkeypatch):
    # Only unreadable or malformed files mean "corrupt; rebuild": a bug (or a backend
    # server that is down) must surface as itself, not send the user to rebuild.
    from qa.store.backends import VECTOR_BACKENDS

    def broken_load(folder):
        raise ZeroDivisionError("a bug in a backend")

    monkeypatch.setattr(VECTOR_BACKENDS["faiss-flat"], "load", broken_load)
    with pytest.raises(ZeroDivisionError):
        load(saved)


@pytest.mark.parametrize("pointer", ["snap-does-not-exist\n", "", "../elsewhere\n"])
def test_bad_pointer(saved, pointer):
    (saved / POINTER).write_text(pointer)
    with pytest.raises(errors.IndexCorruptError):
        load(saved)


# --- atomic writes --------------------------------------------------------------

def _leftovers(index_dir: Path) -> list[str]:
    return sorted(p.name for p in index_dir.iterdir() if p.name.startswith((".tmp", ".CURRENT")))


@pytest.mark.parametrize("how", ["chunks.npy", "snapshot", "faiss.write_index", "bm25.save"])
def test_failed_save_keeps_previous_index(saved, tiny_store, small_chunker, fake_embedder, monkeypatch, how):
    before = contents(load(saved))
    old_snap = snapshot(saved)
    newer = build_store([make_doc("delta.txt", "Delta Farm keeps goats. The goats give milk.")], small_chunker,
                        fake_embedder, previous=tiny_store)
    fail_after = None
    if how in ("chunks.npy", "snapshot"):
        fail_after = how
    elif how == "faiss.write_index":
        import faiss

        def boom(*a, **k):
            raise RuntimeError("disk full")

        monkeypatch.setattr(faiss, "write_index", boom)
    else:
        def boom(*a, **k):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(type(newer.lexical), "save", boom)
    with pytest.raises((OSError, RuntimeError)):
        newer.save(saved, _fail_after=fail_after)
    assert snapshot(saved) == old_snap
    assert sorted(p.name for p in saved.glob("snap-*")) == [old_snap.name]
    assert _leftovers(saved) == []
    assert_same(contents(load(saved)), before)
    # And the next save works and publishes the new documents.
    monkeypatch.undo()
    newer.save(saved)
    assert "delta.txt" in load(saved).documents
    assert len(list(saved.glob("snap-*"))) == 1


FAISS_FULL = ("Error in void faiss::write_index(const Index*, IOWriter*, int) at /project/faiss/impl/"
              "index_write.cpp:499: Error: 'ret == (size * 4)' failed: write error in {}: 409518 != 3072000 "
              "(No space left on device)")


@pytest.mark.parametrize("where", ["chunks.npy", "faiss.write_index"])
def test_a_full_disk_is_one_clear_error_and_the_previous_index_stays(saved, tiny_store, small_chunker,
                                                                     fake_embedder, monkeypatch, where):
    # A disk that filled up mid-save raised a bare OSError ("error: No space left on device",
    # nowhere named) or FAISS's RuntimeError ("internal error ... please report it"), and the
    # web app logged it as a bug with its traceback.
    import errno

    before = contents(load(saved))
    old_snap = snapshot(saved)
    newer = build_store([make_doc("delta.txt", "Delta Farm keeps goats.")], small_chunker, fake_embedder,
                        previous=tiny_store)
    if where == "chunks.npy":
        import qa.store.snapshot as snapshot_module

        def full(path, *a, **k):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

        monkeypatch.setattr(snapshot_module.np, "save", full)
    else:
        import faiss

        def full(index, path, *a, **k):
            raise RuntimeError(FAISS_FULL.format(path))

        monkeypatch.setattr(faiss, "write_index", full)
    with pytest.raises(errors.IndexWriteError) as e:
        newer.save(saved)
    msg = str(e.value)
    assert f"the index in {saved} cannot be written" in msg and "No space left on device" in msg, msg
    assert "nothing was changed" in msg and "free some space" in msg and "\n" not in msg
    assert isinstance(e.value, errors.QAError) and isinstance(e.value, OSError)  # old `except OSError` still holds
    assert snapshot(saved) == old_snap and _leftovers(saved) == []
    assert sorted(p.name for p in saved.glob("snap-*")) == [old_snap.name]
    assert_same(contents(load(saved)), before)


def test_save_replaces_old_snapshot(saved, tiny_store):
    first = snapshot(saved)
    tiny_store.save(saved)
    second = snapshot(saved)
    assert second != first and not first.exists() and second.exists()
    assert _leftovers(saved) == []


def test_concurrent_saves_never_break_the_index(tmp_path, tiny_store, small_chunker, fake_embedder):
    index_dir = tmp_path / "index"
    tiny_store.save(index_dir)
    other = build_store([make_doc("delta.txt", "Delta Farm keeps goats.")], small_chunker, fake_embedder,
                        previous=tiny_store)
    failures: list[BaseException] = []

    def writer(store):
        try:
            for _ in range(6):
                store.save(index_dir)
                load(index_dir)
        except BaseException as e:  # noqa: BLE001 - reported below
            failures.append(e)

    threads = [threading.Thread(target=writer, args=(s,)) for s in (tiny_store, other, tiny_store)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(list(index_dir.glob("snap-*"))) == 1
    assert _leftovers(index_dir) == []
    assert len(load(index_dir).documents) in (3, 4)


# --- incremental updates --------------------------------------------------------

def test_unchanged_documents_reuse_their_vectors(tiny_docs, small_chunker):
    emb = FakeEmbedder()
    first = build_store(tiny_docs, small_chunker, emb)
    assert emb.texts_embedded == len(first)
    emb.calls.clear()

    changed = make_doc("beta.md", TINY_DOCS["beta.md"] + "\n\nA new pier opened in 2020.")
    new = make_doc("delta.txt", "Delta Farm keeps goats. The goats give milk every morning.")
    second = build_store([changed, new], small_chunker, emb, previous=first)
    want = [c.text for c in small_chunker.run(changed)] + [c.text for c in small_chunker.run(new)]
    assert sorted(t for call in emb.calls for t in call) == sorted(want)
    # Unchanged documents keep exactly their old vectors.
    old = {(c.doc_id, c.start, c.end): first.chunk_vectors()[i] for i, c in enumerate(first.chunks)}
    for i, c in enumerate(second.chunks):
        if c.doc_id in ("alpha.txt", "gamma.txt"):
            np.testing.assert_array_equal(second.chunk_vectors()[i], old[(c.doc_id, c.start, c.end)])
    # Every vector is the embedding of its own chunk's text.
    np.testing.assert_allclose(second.chunk_vectors(), FakeEmbedder().run([c.text for c in second.chunks]), atol=1e-6)

    emb.calls.clear()
    third = build_store([changed], small_chunker, emb, previous=second)
    assert emb.texts_embedded == 0, "re-adding an unchanged document embeds nothing"
    np.testing.assert_array_equal(third.chunk_vectors(), second.chunk_vectors())


def test_incompatible_previous_is_reembedded(tiny_docs, small_chunker):
    first = build_store(tiny_docs, small_chunker, FakeEmbedder(sha256="old"))
    emb = FakeEmbedder(sha256="new")
    second = build_store([], small_chunker, emb, previous=first)
    assert emb.texts_embedded == len(second) == len(first)
    assert second.manifest.embedder["sha256"] == "new"
    emb2 = FakeEmbedder(sha256="old")
    bigger = Chunker(ChunkingConfig(max_words=40, overlap_sentences=0))
    third = build_store([], bigger, emb2, previous=first)
    assert emb2.texts_embedded == len(third)
    assert third.manifest.chunking == {"max_words": 40, "overlap_sentences": 0}


def test_removed_then_readded_document_is_reembedded(tiny_docs, small_chunker):
    first = build_store(tiny_docs, small_chunker, FakeEmbedder())
    # Same id, same length, other words: chunk offsets coincide with the old ones.
    text = TINY_DOCS["gamma.txt"]
    swapped = make_doc("gamma.txt", text.replace("grain", "wheat").replace("flood", "storm"))
    assert len(swapped.text) == len(text)
    emb = FakeEmbedder()
    second = build_store([swapped], small_chunker, emb, previous=first, remove=("gamma.txt",))
    assert emb.texts_embedded == len(small_chunker.run(swapped))
    np.testing.assert_allclose(second.chunk_vectors(), FakeEmbedder().run([c.text for c in second.chunks]), atol=1e-6)


def test_removing_a_document_removes_it_everywhere(tmp_path, tiny_store, small_chunker, fake_embedder):
    gone = "beta.md"
    smaller = build_store([], small_chunker, fake_embedder, previous=tiny_store, remove=(gone,))
    smaller.save(tmp_path / "i")
    for store in (smaller, load(tmp_path / "i")):
        assert gone not in store.documents and gone not in store.manifest.documents
        assert all(c.doc_id != gone for c in store.chunks)
        assert len(store.vectors) == len(store.chunks) == len(store.chunk_vectors()) == store.manifest.n_chunks
        assert len(store.lexical) == len(store.chunks)
        # Words only in the removed document find nothing; dense hits never point at it.
        assert bm25_search(store, ["Ingrid Solberg lighthouse Gullholm"], 10) == [[]]
        qv = FakeEmbedder().run(["Ingrid Solberg lighthouse"])
        hits = dense_search(store, qv, 50)[0]
        assert len(hits) == len(store.chunks)
        assert all(store.chunks[h.row].doc_id != gone for h in hits)
    assert len(smaller) == len(tiny_store) - len(small_chunker.run(tiny_store.documents[gone]))
    # Vectors of the rest are untouched by the removal.
    old = {(c.doc_id, c.start, c.end): tiny_store.chunk_vectors()[i] for i, c in enumerate(tiny_store.chunks)}
    for i, c in enumerate(smaller.chunks):
        np.testing.assert_array_equal(smaller.chunk_vectors()[i], old[(c.doc_id, c.start, c.end)])


def test_manifest_hashes_follow_updates(tiny_store, small_chunker, fake_embedder):
    d = Document("alpha.txt", "Completely new text. Nothing like before.", "alpha")
    updated = build_store([d], small_chunker, fake_embedder, previous=tiny_store)
    assert updated.manifest.documents["alpha.txt"] == sha256_text(d.text)
    assert updated.documents["alpha.txt"].text == d.text
    assert all(c.text in d.text for c in updated.chunks if c.doc_id == "alpha.txt")


@pytest.mark.parametrize("texts", [["x"], ["It is.", "x y"]])
def test_documents_without_a_single_term_are_indexed(tmp_path, small_chunker, fake_embedder, fake_models, texts):
    """A corpus whose chunks hold no BM25 term (a document "x", or only stop words) failed to
    index with a bare 'ValueError: max() arg is an empty sequence' from bm25s; now it indexes,
    BM25 finds nothing in it, dense retrieval still does, and it round-trips."""
    docs = [make_doc(f"d{i}.txt", t) for i, t in enumerate(texts)]
    store = build_store(docs, small_chunker, fake_embedder)
    store.save(tmp_path / "i")
    for s in (store, load(tmp_path / "i")):
        assert len(s.lexical) == len(s.chunks) == len(texts)
        assert bm25_search(s, [texts[0], "it is x"], 5) == [[], []]
        assert len(dense_search(s, FakeEmbedder().run([texts[0]]), 5)[0]) == len(texts)
    q = fake_models(index_dir=tmp_path / "api", corpus_dir=None)
    q.add_documents(docs)
    assert q.ask("What is x?").citations[0].doc_id in {d.id for d in docs}


def test_every_file_of_a_snapshot_is_on_disk_before_current_names_it(tmp_path, tiny_store, monkeypatch):
    # Only the snapshot's folder entries were flushed (fsync_dir), never its files: after a power
    # cut CURRENT could name a snapshot whose files were empty or half written (ext4 and XFS flush a
    # new file's data lazily), an index refused as corrupt that the previous one would have served.
    import os

    import qa.store.snapshot as snapshot_module

    synced: set[str] = set()
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        synced.add(os.path.realpath(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    def replace(src, dst, *a, **k):
        if Path(dst).name == POINTER:
            events.append("pointer")
            events.extend(sorted(synced))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(snapshot_module.os, "fsync", fsync)
    monkeypatch.setattr(snapshot_module.os, "replace", replace)
    import qa._files as files_module
    monkeypatch.setattr(files_module.os, "fsync", fsync)
    tiny_store.save(tmp_path / "index")
    snap = snapshot(tmp_path / "index")
    synced_before = set(events[events.index("pointer") + 1:])
    inside = set()  # synced paths relative to the snapshot folder (written as .tmp-snap-*, then renamed)
    for p in map(Path, synced_before):
        parts = p.parts
        at = [i for i, part in enumerate(parts) if part.lstrip(".").startswith(("tmp-snap-", "snap-"))]
        if at:
            inside.add("/".join(parts[at[-1] + 1:]))
    want = {p.relative_to(snap).as_posix() for p in snap.rglob("*")} | {""}  # "": the folder itself
    missing = sorted(want - inside)
    assert not missing, f"not flushed before CURRENT named the snapshot: {missing}"
