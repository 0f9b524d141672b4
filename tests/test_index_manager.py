"""The index manager's writes on a stale index (fake models: plumbing only).

A stale index (built with other chunking or another embedder) is refused for
reading, with advice to re-index; a write is meant to re-embed it. A write
that found nothing new used to publish nothing, so `qa index docs` printed
"1 unchanged" and left the index as stale as before: the next question failed
with the same error."""

from __future__ import annotations

from dataclasses import replace

import pytest

from qa import errors
from qa.config import ChunkingConfig, Settings
from qa.store import IndexStore

from conftest import TINY_DOCS, make_doc


def _qa(fake_models, index_dir, max_words: int):
    return fake_models(index_dir=index_dir, corpus_dir=None,
                       settings=replace(Settings(), chunking=ChunkingConfig(max_words=max_words)))


@pytest.fixture
def stale(fake_models, write_docs, tmp_path):
    """An index built with 16-word chunks, and a QA that now expects 24."""
    folder = write_docs(TINY_DOCS)
    _qa(fake_models, tmp_path / "index", 16).sync_paths([folder])
    q = _qa(fake_models, tmp_path / "index", 24)
    with pytest.raises(errors.IndexStaleError, match="different chunking settings"):
        q.ask("Who is Ingrid Solberg?")
    return q, folder


def _fresh(q) -> IndexStore:
    back = IndexStore.load(q.index.index_dir)
    back.check_compatible(q.index.indexer.expectations(), q.index.index_dir)  # no error
    return back


def test_syncing_unchanged_files_into_a_stale_index_re_embeds_it(stale):
    q, folder = stale
    report = q.sync_paths([folder])
    assert sorted(report.unchanged) == sorted(TINY_DOCS) and not report.added and not report.updated
    assert report.reindexed
    assert "re-indexed" in report.summary()
    back = _fresh(q)
    assert back.manifest.chunking["max_words"] == 24 and set(back.documents) == set(TINY_DOCS)
    assert q.ask("Who is Ingrid Solberg?").citations[0].doc_id == "beta.md"


def test_an_upload_of_already_indexed_text_into_a_stale_index_re_embeds_it(stale):
    q, _ = stale
    result = q.add_new_documents([make_doc("alpha.txt", TINY_DOCS["alpha.txt"])])
    assert result.unchanged == ["alpha.txt"] and not result.added
    assert _fresh(q).manifest.chunking["max_words"] == 24


def test_a_fresh_index_with_nothing_new_publishes_nothing(fake_models, write_docs, tmp_path):
    folder = write_docs(TINY_DOCS)
    q = _qa(fake_models, tmp_path / "index", 16)
    q.sync_paths([folder])
    before = IndexStore.load(tmp_path / "index").name
    report = q.sync_paths([folder])
    assert not report.reindexed and "re-indexed" not in report.summary()
    assert IndexStore.load(tmp_path / "index").name == before


def test_removing_from_an_index_that_does_not_exist_says_so_and_makes_no_folder(fake_models, tmp_path):
    # `qa remove x --index typo` said "not in the index: x" (as if the index were there) and
    # left an empty folder `typo/` holding a lock file behind.
    q = fake_models(index_dir=tmp_path / "typo", corpus_dir=None)
    with pytest.raises(errors.IndexMissingError, match=r"no index in .*typo: build one with `qa index PATH"):
        q.remove_documents(["x.txt"])
    assert not (tmp_path / "typo").exists()
    (tmp_path / "typo").mkdir()  # a folder without an index: the same words, and nothing added to it
    with pytest.raises(errors.IndexMissingError, match="no index in"):
        q.remove_documents(["x.txt"])


def test_a_writer_waiting_for_another_says_so_once(fake_models, write_docs, tmp_path, caplog):
    """`qa remove` (or a second `qa index`, `qa calibrate`) while another process
    writes waited in silence, for minutes on a large index."""
    import logging
    import threading

    from qa.store import writer_lock

    q = _qa(fake_models, tmp_path / "index", 16)
    q.sync_paths([write_docs(TINY_DOCS)])
    caplog.set_level(logging.INFO, logger="qa")
    q.remove_documents(["alpha.txt"])  # nobody else writing: nothing said
    assert "waiting" not in caplog.text
    other = writer_lock(tmp_path / "index")
    other.acquire()  # another writer at work
    t = threading.Thread(target=q.remove_documents, args=(["beta.md"],))
    try:
        t.start()
        t.join(0.5)
        assert t.is_alive()  # it still waits for the other writer ...
    finally:
        other.release()
    t.join(10)
    assert "beta.md" not in q.store.documents
    waits = [r for r in caplog.records if "waiting for another writer" in r.getMessage()]
    assert len(waits) == 1 and waits[0].levelno == logging.WARNING  # ... and said so, once, where the CLI shows it
    assert str(tmp_path / "index") in waits[0].getMessage()


def test_a_file_deleted_from_a_moved_folder_is_removed(fake_models, write_docs, tmp_path):
    """A folder indexed, then moved or renamed, then indexed again: every file read
    "unchanged" (same ids, same texts), but the stored documents kept their old
    ``source``, so a file deleted from the new folder later was never seen as gone
    (removal only looks for sources under the folders given) and stayed indexed for good."""
    folder = write_docs(TINY_DOCS, "before")
    q = _qa(fake_models, tmp_path / "index", 16)
    q.sync_paths([folder])
    moved = folder.rename(tmp_path / "after")
    embedded = q.embedder.texts_embedded
    report = q.sync_paths([moved])
    assert sorted(report.unchanged) == sorted(TINY_DOCS) and not (report.added or report.updated or report.removed)
    assert q.embedder.texts_embedded == embedded  # the same texts: nothing re-embedded
    assert {d.meta["source"] for d in q.store.documents.values()} == {
        str((moved / name).resolve()) for name in TINY_DOCS}
    (moved / "gamma.txt").unlink()
    report = q.sync_paths([moved])
    assert report.removed == ["gamma.txt"]
    assert set(IndexStore.load(tmp_path / "index").documents) == {"alpha.txt", "beta.md"}


def test_a_file_deleted_from_a_moved_corpus_folder_is_removed(fake_models, write_docs, tmp_path):
    """The same with ``corpus_dir`` (the default index follows seeds/): a checkout or
    corpus folder moved, then a file deleted from it, left that file's text answering."""
    folder = write_docs(TINY_DOCS, "before")
    fake_models(index_dir=tmp_path / "index", corpus_dir=folder).store
    moved = folder.rename(tmp_path / "after")
    q = fake_models(index_dir=tmp_path / "index", corpus_dir=moved)
    assert set(q.store.documents) == set(TINY_DOCS) and q.embedder.texts_embedded == 0
    (moved / "gamma.txt").unlink()
    q = fake_models(index_dir=tmp_path / "index", corpus_dir=moved)
    assert set(q.store.documents) == {"alpha.txt", "beta.md"}


class _ReadOnlyLock:
    """filelock.FileLock on a read-only mount: the lock file cannot be opened for writing."""

    def __init__(self, path, **kw):
        self.path = path

    def acquire(self, timeout=-1, **kw):
        import errno

        raise OSError(errno.EROFS, "Read-only file system", self.path)

    def release(self, **kw):
        pass


def test_a_read_only_index_answers_and_refuses_writes_in_one_clear_error(fake_models, write_docs, tmp_path,
                                                                         monkeypatch):
    # An index served from a read-only mount: `qa index`, `qa remove` and the app's
    # remove button raised a bare OSError ("[Errno 30] Read-only file system: '.../.lock'";
    # the app logged it as a bug, with its traceback).
    import filelock

    q = _qa(fake_models, tmp_path / "index", 16)
    q.sync_paths([write_docs(TINY_DOCS)])
    live = IndexStore.load(tmp_path / "index").name
    monkeypatch.setattr(filelock, "FileLock", _ReadOnlyLock)
    reader = _qa(fake_models, tmp_path / "index", 16)
    assert reader.ask("Who is Ingrid Solberg?").citations[0].doc_id == "beta.md"
    for write in (lambda: reader.add_documents([make_doc("delta.txt", "Delta Farm keeps goats.")]),
                  lambda: reader.remove_documents(["beta.md"]),
                  lambda: reader.rebuild()):
        with pytest.raises(errors.IndexWriteError) as e:
            write()
        msg = str(e.value)
        assert f"the index in {tmp_path / 'index'} cannot be written (read-only file system)" in msg, msg
        assert "questions are still answered" in msg and "\n" not in msg
    assert IndexStore.load(tmp_path / "index").name == live
    assert reader.ask("Who is Ingrid Solberg?").citations[0].doc_id == "beta.md"


def test_a_read_only_index_that_follows_a_folder_answers_though_the_folder_changed(fake_models, write_docs,
                                                                                     tmp_path, monkeypatch,
                                                                                     caplog):
    # The default index follows a folder (seeds/, QA_CORPUS_DIR): served from a read-only
    # mount, one new or changed file in that folder made every question fail (the sync
    # could not take the writer lock), though the published index was whole.
    import logging

    import filelock

    folder = write_docs(TINY_DOCS)
    first = fake_models(index_dir=tmp_path / "index", corpus_dir=folder)
    assert first.ask("Who is Ingrid Solberg?").citations[0].doc_id == "beta.md"
    live = IndexStore.load(tmp_path / "index").name
    (folder / "delta.txt").write_text("Delta Farm keeps goats. The goats give milk.")
    monkeypatch.setattr(filelock, "FileLock", _ReadOnlyLock)
    caplog.set_level(logging.WARNING, logger="qa")
    app = fake_models(index_dir=tmp_path / "index", corpus_dir=folder)
    assert app.ask("Who is Ingrid Solberg?").citations[0].doc_id == "beta.md"
    assert "delta.txt" not in app.store.documents and IndexStore.load(tmp_path / "index").name == live
    said = [r.getMessage() for r in caplog.records if "cannot be written" in r.getMessage()]
    assert len(said) == 1 and str(folder) in said[0] and "read-only" in said[0], said
    app.ask("Who keeps goats?")  # said once, not at every question
    assert len([r for r in caplog.records if "cannot be written" in r.getMessage()]) == 1
