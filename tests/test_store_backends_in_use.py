"""The vector backends behind a whole ``QA`` (fake models: plumbing): "auto"
moves to HNSW past its threshold without re-embedding, candidate fusion takes
over past ``exact_fusion_max``, and Milvus Lite serves and cleans up after itself."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from qa.config import ChunkingConfig, RetrievalConfig, Settings, StoreConfig
from qa.store import IndexStore

from conftest import TINY_DOCS


def _qa(fake_models, tmp_path, **settings):
    return fake_models(index_dir=tmp_path / "index", corpus_dir=None, settings=replace(Settings(), **settings))


def test_auto_moves_to_hnsw_past_the_threshold_without_reembedding(fake_models, write_docs, tmp_path):
    q = _qa(fake_models, tmp_path, store=StoreConfig(ann_threshold=5), chunking=ChunkingConfig(max_words=16))
    q.sync_paths([write_docs({"alpha.txt": TINY_DOCS["alpha.txt"]})])
    first = len(q.store)
    assert first <= 5 and q.store.manifest.vector_index["name"] == "faiss-flat"  # small: exact
    embedded = q.embedder.texts_embedded
    q.sync_paths([write_docs(TINY_DOCS)])
    assert len(q.store) > 5
    assert q.store.manifest.vector_index["name"] == "faiss-hnsw"
    assert q.embedder.texts_embedded - embedded == len(q.store) - first, "only the new chunks were embedded"
    back = IndexStore.load(tmp_path / "index")
    assert type(back.vectors).__name__ == "FaissHnswIndex" and len(back.vectors) == len(q.store)
    a = q.ask("Who is Ingrid Solberg?")
    assert a.citations[0].doc_id == "beta.md"


def test_candidate_fusion_past_exact_fusion_max(fake_models, write_docs, tmp_path):
    exact = _qa(fake_models, tmp_path)
    exact.sync_paths([write_docs(TINY_DOCS)])
    cand = fake_models(index_dir=tmp_path / "index", corpus_dir=None,
                       settings=replace(Settings(), retrieval=RetrievalConfig(exact_fusion_max=1)))
    for question in ("Who is Ingrid Solberg?", "When did the mill wheel break?"):
        got = cand.retrieve([question], top_k=3)[0]
        want = exact.retrieve([question], top_k=3)[0]
        assert got[0] == want[0]


@pytest.mark.milvus
def test_milvus_lite_serves_and_drops_what_it_replaced(fake_models, write_docs, tmp_path):
    pytest.importorskip("milvus_lite", reason="milvus-lite is a declared dependency; missing here")
    from qa.store.backends.milvus import client

    uri = str(tmp_path / "milvus.db")
    q = _qa(fake_models, tmp_path, store=StoreConfig(vector_backend="milvus", milvus_uri=uri))
    q.sync_paths([write_docs(TINY_DOCS)])
    assert q.store.manifest.vector_index["name"] == "milvus"
    first = q.store.vectors.collection
    assert q.ask("Who is Ingrid Solberg?").citations[0].doc_id == "beta.md"
    q.remove_documents(["beta.md"])
    assert all(c.doc_id != "beta.md" for c in q.retrieve(["Ingrid Solberg harbour"], top_k=10)[0])
    # The live snapshot's collection and the one it replaced (a question may still be
    # reading it) are left on the server; the next write drops the older one.
    live = IndexStore.load(tmp_path / "index")
    assert sorted(client(uri).list_collections()) == sorted([live.vectors.collection, first])
    q.remove_documents(["gamma.txt"])
    newest = IndexStore.load(tmp_path / "index")
    assert sorted(client(uri).list_collections()) == sorted([newest.vectors.collection, live.vectors.collection])


@pytest.mark.milvus
def test_a_milvus_question_in_flight_while_an_update_publishes_is_answered(fake_models, write_docs, tmp_path):
    """The app answers a question in one thread while an upload publishes in another:
    the question's store read a collection the publish had just dropped (MilvusException
    'collection ... does not exist', an internal error in the chat). FAISS readers hold
    their vectors in memory; a Milvus collection is kept one write longer."""
    pytest.importorskip("milvus_lite", reason="milvus-lite is a declared dependency; missing here")
    import numpy as np

    uri = str(tmp_path / "milvus.db")
    q = _qa(fake_models, tmp_path, store=StoreConfig(vector_backend="milvus", milvus_uri=uri))
    q.sync_paths([write_docs(TINY_DOCS)])
    reading = q.store  # what a question in flight holds
    q.remove_documents(["beta.md"])  # an update publishes meanwhile
    query = q.embedder.run(["Who is Ingrid Solberg?"])
    scores, ids = reading.vectors.search(np.asarray(query, dtype=np.float32), 3)
    assert (ids[0] >= 0).any()


@pytest.mark.milvus
def test_milvus_lite_index_written_by_one_process_is_served_by_the_next(tmp_path):
    # `qa index --backend milvus` then `qa ask`: the second process found the collection
    # 'released' (Milvus Lite loads a collection only in the process that created it) and
    # every question failed with an internal error.
    pytest.importorskip("milvus_lite", reason="milvus-lite is a declared dependency; missing here")
    import numpy as np

    from qa.store.backends.milvus import MilvusIndex

    folder = _milvus_index_written_by_another_process(tmp_path)
    back = MilvusIndex.load(folder)
    assert len(back) == 4
    scores, ids = back.search(np.eye(4, dtype="float32")[2:3], 1)
    assert ids.tolist() == [[2]]


@pytest.mark.milvus
def test_milvus_lite_updated_from_a_new_process_says_nothing_on_stderr(tmp_path):
    # `qa index --backend milvus`, then `qa index MORE` in a new process: the update
    # worked but printed a pymilvus warning and a gRPC traceback ("Method not
    # implemented!": Milvus Lite has no AllocTimestamp, and pymilvus's query
    # iterator falls back to a client-side timestamp) once per read of the rows.
    pytest.importorskip("milvus_lite", reason="milvus-lite is a declared dependency; missing here")
    import subprocess
    import sys

    folder = _milvus_index_written_by_another_process(tmp_path)
    update = ("import sys, numpy as np\nfrom pathlib import Path\nfrom qa.store.backends.milvus import MilvusIndex\n"
              "ix = MilvusIndex.load(Path(sys.argv[1])).copy()\n"
              "ix.add(np.arange(4, 6), np.eye(4, dtype='float32')[:2])\n"
              "assert len(ix) == 6 and sorted(ix.ids().tolist()) == list(range(6))\n")
    done = subprocess.run([sys.executable, "-c", update, str(folder)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "mvccTs" not in done.stderr, done.stderr


def test_a_rebuild_keeps_the_backend_the_index_was_built_with(fake_models, write_docs, tmp_path):
    """`qa index --backend faiss-ivf` (or milvus), then `qa index --rebuild` (no --backend:
    "auto"): the rebuilt index was silently faiss-flat, as was a stale index re-embedded
    on its next write. "An existing index keeps its backend" (StoreConfig) unless told."""
    folder = write_docs(TINY_DOCS)
    _qa(fake_models, tmp_path, store=StoreConfig(vector_backend="faiss-ivf")).sync_paths([folder])
    q = _qa(fake_models, tmp_path)  # the settings of a plain `qa index --rebuild`
    assert q.rebuild().manifest.vector_index["name"] == "faiss-ivf"
    assert q.rebuild([folder]).manifest.vector_index["name"] == "faiss-ivf"
    stale = _qa(fake_models, tmp_path, chunking=ChunkingConfig(max_words=16))  # other chunking: all re-embedded
    assert stale.sync_paths([folder]).reindexed
    assert IndexStore.load(tmp_path / "index").manifest.vector_index["name"] == "faiss-ivf"
    told = _qa(fake_models, tmp_path, store=StoreConfig(vector_backend="faiss-flat"))
    assert told.rebuild().manifest.vector_index["name"] == "faiss-flat"  # --backend with --rebuild still chooses


@pytest.mark.milvus
def test_a_rebuild_of_a_milvus_index_stays_on_its_milvus(fake_models, write_docs, tmp_path, monkeypatch):
    pytest.importorskip("milvus_lite", reason="milvus-lite is a declared dependency; missing here")
    uri = str(tmp_path / "vectors" / "milvus.db")
    _qa(fake_models, tmp_path, store=StoreConfig(vector_backend="milvus", milvus_uri=uri)).sync_paths(
        [write_docs(TINY_DOCS)])
    monkeypatch.chdir(tmp_path)  # the default milvus_uri ("milvus.db") would land here
    back = _qa(fake_models, tmp_path).rebuild()
    assert back.manifest.vector_index["name"] == "milvus" and back.vectors.uri == uri
    assert not (tmp_path / "milvus.db").exists()
    assert _qa(fake_models, tmp_path).ask("Who is Ingrid Solberg?").citations[0].doc_id == "beta.md"


@pytest.mark.milvus
def test_a_milvus_lite_file_open_in_another_process_is_said_so(tmp_path, caplog):
    # Milvus Lite serves one process at a time: with the app running on a milvus index,
    # `qa ask` and `qa index` printed milvus_lite's traceback (DataDirLockedError) and then
    # "internal error (ConnectionConfigException: Open local milvus failed) ... please report it".
    pytest.importorskip("milvus_lite", reason="milvus-lite is a declared dependency; missing here")
    import logging
    import subprocess
    import sys
    from pathlib import Path

    from qa import errors

    tests = Path(__file__).resolve().parent
    uri, idx = tmp_path / "milvus.db", tmp_path / "index"
    build = ("import sys; sys.path[:0] = [sys.argv[3], sys.argv[4]]\nfrom dataclasses import replace\n"
             "from fakes import make_fake_qa\nfrom qa.config import Settings, StoreConfig\nfrom qa.types import Document\n"
             "s = replace(Settings(), store=StoreConfig(vector_backend='milvus', milvus_uri=sys.argv[1]))\n"
             "make_fake_qa(index_dir=sys.argv[2], corpus_dir=None, settings=s).add_documents("
             "[Document('beta.md', 'The harbour master is Ingrid Solberg.')])\n")
    subprocess.run([sys.executable, "-c", build, str(uri), str(idx), str(tests), str(tests.parent)], check=True,
                   timeout=300)
    hold = ("import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDWR)\nfcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\ntime.sleep(120)\n")  # what a running app's Milvus Lite holds
    holder = subprocess.Popen([sys.executable, "-c", hold, str(uri / "LOCK")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        caplog.set_level(logging.WARNING)
        with pytest.raises(errors.IndexBusyError) as e:
            IndexStore.load(idx)
        msg = str(e.value)
        assert str(uri) in msg and "another process" in msg and "\n" not in msg, msg
        assert not [r for r in caplog.records if r.exc_info], "milvus_lite's traceback was printed"
    finally:
        holder.kill()
        holder.wait()
    assert len(IndexStore.load(idx).documents) == 1  # once the other process has gone


def _milvus_index_written_by_another_process(tmp_path: Path) -> Path:
    """A 4-vector Milvus Lite index (ids 0-3, unit vectors) saved to ``tmp_path/vectors``
    by a separate Python process, as `qa index --backend milvus` would leave it."""
    import subprocess
    import sys

    folder = tmp_path / "vectors"
    folder.mkdir()
    write = ("import sys, numpy as np\nfrom pathlib import Path\nfrom qa.store.backends.milvus import MilvusIndex\n"
             "ix = MilvusIndex(4, uri=sys.argv[1], index_type='FLAT')\n"
             "ix.add(np.arange(4), np.eye(4, dtype='float32'))\nix.save(Path(sys.argv[2]))\n")
    subprocess.run([sys.executable, "-c", write, str(tmp_path / "milvus.db"), str(folder)], check=True, timeout=300)
    return folder
