"""Index lifecycle: open, keep in step with a corpus folder, add, remove, rebuild.

Every change is one read-modify-publish step under the index folder's writer
lock (across threads and processes): the latest published snapshot is read
inside the lock, the new one built from it and published before the lock is
released, so two writers (the app's upload and a ``qa index``, or two CLIs)
never start from the same snapshot and never lose each other's documents.
Readers take no lock: they answer from the snapshot in memory, which is
swapped for a newer one as soon as another process publishes it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

from qa.errors import (
    ArgumentError,
    DocumentNotIndexedError,
    EmptyCorpusError,
    IndexMissingError,
    IndexStaleError,
    IndexWriteError,
)
from qa.indexing import Indexer
from qa.ingest import BatchResult, FileReport, load_batch, load_paths, sha256_text
from qa.ingest.loading import empty_corpus_message
from qa.store import IndexStore, clean_index_dir, current_name, writer_lock
from qa.store.recovery import stored_documents
from qa.types import Document

log = logging.getLogger("qa")


def as_list(value, what: str) -> list:
    """A list from a list-like argument; one path or id given as a bare string
    is taken as a list of one (never iterated character by character)."""
    if isinstance(value, (str, Path)):
        return [value]
    if isinstance(value, bytes) or value is None:
        raise ArgumentError(f"{what} must be a list, not {type(value).__name__}")
    try:
        return list(value)
    except TypeError:
        raise ArgumentError(f"{what} must be a list, not {type(value).__name__}") from None


def free_id(doc_id: str, taken) -> str:
    """``doc_id`` itself when free, else ``name (2).txt``, ``name (3).txt``, ..."""
    if doc_id not in taken:
        return doc_id
    p = PurePosixPath(doc_id)
    stem, suffix = (p.stem, p.suffix) if p.suffix else (p.name, "")
    parent = "" if str(p.parent) == "." else str(p.parent) + "/"
    n = 2
    while f"{parent}{stem} ({n}){suffix}" in taken:
        n += 1
    return f"{parent}{stem} ({n}){suffix}"


@dataclass
class AddResult:
    """What ``add_new_documents`` did: ``added`` (ids as indexed), ``renamed``
    (id asked for -> id given, because the asked-for one holds another text) and
    ``unchanged`` (ids whose very text was already indexed under that id)."""

    store: IndexStore
    added: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)


@dataclass
class SyncReport:
    """What ``sync_paths`` did, file by file."""

    store: IndexStore
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[FileReport] = field(default_factory=list)  # could not be read: the rest went ahead
    skipped: list[FileReport] = field(default_factory=list)  # left out on purpose (duplicates, links, types)
    reindexed: bool = False  # the index was stale (other settings or models): every document re-indexed

    def summary(self) -> str:
        lines = [f"{len(self.added)} added, {len(self.updated)} updated, {len(self.removed)} removed, "
                 f"{len(self.unchanged)} unchanged, {len(self.skipped)} skipped, {len(self.problems)} failed"]
        if self.reindexed:
            lines.append(f"  the index was built with other settings or models: all {len(self.store.documents)} "
                         "documents re-indexed with the current ones")
        lines += [f"  skipped: {r.reason}" for r in self.skipped]
        return "\n".join(lines)


def as_paths(value) -> list:
    """``as_list`` for paths, refusing what no file system takes (a NUL byte, a non-path)."""
    out = as_list(value, "paths")
    for p in out:
        if not isinstance(p, (str, Path)):
            raise ArgumentError(f"paths must be strings or Paths, not {type(p).__name__} ({p!r:.60})")
        if "\x00" in str(p):
            raise ArgumentError(f"the path {str(p)!r:.80} holds a NUL character; no file has such a name")
        if isinstance(p, str) and not p.strip():
            # Path("") is ".": an empty box in a form must not index the working directory
            raise ArgumentError("an empty path names no file; give a file or folder (\".\" for this folder)")
    return out


def _list_of(value, what: str, kind: type, rule: str) -> list:
    out = as_list(value, what)
    bad = [x for x in out if not isinstance(x, kind)]
    if bad:
        raise ArgumentError(f"{what} must be {rule}, not {type(bad[0]).__name__}")
    return out


def as_docs(value) -> list[Document]:
    return _list_of(value, "documents", Document, "qa.types.Document objects (use add_paths for files)")


def as_ids(value) -> list[str]:
    return _list_of(value, "document ids", str, "strings (as `qa docs` lists them)")


class IndexManager:
    """Owns the published snapshot of one index folder."""

    def __init__(self, indexer: Indexer, index_dir: str | Path, corpus_dir: str | Path | None = None,
                 max_file_bytes: int | None = None) -> None:
        self.indexer = indexer
        self.index_dir = Path(index_dir)
        self.corpus_dir = Path(corpus_dir) if corpus_dir is not None else None
        self.max_file_bytes = max_file_bytes
        self._store: IndexStore | None = None
        self._load_lock = threading.Lock()
        self._warned: set[str] = set()  # corpus files already reported as unreadable

    # --- reading ----------------------------------------------------------------

    def current(self) -> IndexStore:
        """The latest published snapshot (reloaded when another process published
        a newer one; built or synced from the corpus folder on first use)."""
        store = self._store
        if store is not None and current_name(self.index_dir) in (store.name, None):
            return store
        with self._load_lock:
            store = self._store
            if store is None:
                # Snapshots orphaned by a process killed between the pointer swap
                # and its clean-up (never blocks: skipped while a writer works).
                clean_index_dir(self.index_dir)
                self._store = self._open()
            elif current_name(self.index_dir) not in (store.name, None):
                log.info("a newer snapshot of %s was published: reloading", self.index_dir)
                self._store = self._open()
            return self._store

    def _open(self) -> IndexStore:
        if self.corpus_dir is None:
            store = IndexStore.load(self.index_dir)
            store.check_compatible(self.indexer.expectations(), self.index_dir)
            return store
        store = None
        try:  # the common case needs no lock: a compatible index in step with the folder
            store = IndexStore.load(self.index_dir)
            store.check_compatible(self.indexer.expectations(), self.index_dir)
            changed, gone = self._corpus_changes(store)
            if not changed and not gone:
                return store
        except (IndexMissingError, IndexStaleError):
            store = None
        try:
            return self._update(lambda base: None)
        except IndexWriteError as e:
            if store is None:  # nothing usable to answer from
                raise
            # An index served from a read-only mount (or a full disk): the folder it
            # follows changed, but the published index is whole and still answers.
            log.warning("%s changed but is not synced: %s", self.corpus_dir, e)
            return store

    def _latest_locked(self, for_write: bool) -> IndexStore | None:
        """The snapshot to build on, read inside the writer lock. With a corpus
        folder: built when missing, re-embedded when stale, synced with the
        files. Without: None when missing; a stale one is fine for a write (its
        documents are re-embedded) and an error for reading."""
        try:
            store = IndexStore.load(self.index_dir)
        except IndexMissingError:
            if self.corpus_dir is None:
                return None
            log.info("no index in %s: building it from %s", self.index_dir, self.corpus_dir)
            batch = self._load_corpus()
            if not batch.documents:  # nothing readable: say why
                if batch.problems:
                    raise batch.errors[str(batch.problems[0].path)]
                raise EmptyCorpusError(empty_corpus_message([self.corpus_dir]))
            return self._publish(self._build(batch.documents))
        try:
            store.check_compatible(self.indexer.expectations(), self.index_dir)
        except IndexStaleError:
            if self.corpus_dir is None:
                if not for_write:
                    raise
                return store
            log.info("index in %s is stale: re-embedding its documents", self.index_dir)
            store = self._publish(self._build(list(store.documents.values())))
        if self.corpus_dir is not None:
            changed, gone = self._corpus_changes(store)
            if changed or gone:
                log.info("syncing %s: %d new or changed, %d removed", self.corpus_dir, len(changed), len(gone))
                store = self._publish(self._build(changed, previous=store, remove=gone))
        return store

    def _load_corpus(self) -> BatchResult:
        """Every readable file of the corpus folder. A file that cannot be read is
        a warning, not an error: it used to make every question fail while the
        index itself was fine (the index follows the folder on every open)."""
        batch = load_batch([Path(self.corpus_dir).resolve()], self.max_file_bytes, exclude=[self.index_dir])
        for problem in batch.problems:
            if problem.reason not in self._warned:  # once per process, not at every reload
                self._warned.add(problem.reason)
                log.warning("not indexed: %s", problem.reason)
        return batch

    def _corpus_changes(self, store: IndexStore) -> tuple[list[Document], tuple[str, ...]]:
        """New or changed documents of the corpus folder, and the ids of those whose
        file no longer loads (deleted, or now the same text as another file). A file
        that is there but unreadable keeps its indexed version, and a folder that is
        missing as a whole (unmounted, renamed) removes nothing."""
        corpus = Path(self.corpus_dir).resolve()
        batch = self._load_corpus()
        changed = [d for d in batch.documents if store.manifest.documents.get(d.id) != sha256_text(d.text)]
        changed += _moved(batch.documents, store, store.manifest.documents)  # the folder moved: new sources
        present = {d.id for d in batch.documents}
        unreadable = {str(Path(r.path).resolve()) for r in batch.problems}
        gone = tuple(did for did, d in store.documents.items()
                     if did not in present and str(d.meta.get("source", "")).startswith(str(corpus) + "/")
                     and d.meta["source"] not in unreadable) if corpus.is_dir() else ()
        return changed, gone

    # --- writing ----------------------------------------------------------------

    def _publish(self, store: IndexStore) -> IndexStore:
        store.save_locked(self.index_dir)
        return store

    def _update(self, make: Callable[[IndexStore | None], IndexStore | None]) -> IndexStore:
        """One read-modify-publish step under the writer lock. ``make`` gets the
        latest snapshot and returns the new one, or None for "no change"."""
        with writer_lock(self.index_dir):
            base = self._latest_locked(for_write=True)
            new = make(base)
            if new is None and self._is_stale(base):
                # Nothing new to add, but a write is where a stale index is brought
                # up to date: publishing nothing left it refused for every question.
                log.info("index in %s is stale: re-indexing its documents", self.index_dir)
                new = self._build([], previous=base)
            if new is not None:
                base = self._publish(new)
            if base is None:
                raise self._missing()
            self._store = base
            return base

    def _build(self, docs: Iterable[Document], previous: IndexStore | None = None, remove: Iterable[str] = (),
               progress: bool = False) -> IndexStore:
        """``Indexer.run``, told which snapshot is being replaced: vectors built afresh
        (a rebuild, a stale index re-embedded) keep its backend."""
        name = current_name(self.index_dir)
        return self.indexer.run(docs, previous=previous, remove=remove, progress=progress,
                                like=self.index_dir / name if name else None)

    def _missing(self) -> IndexMissingError:
        return IndexMissingError(f"no index in {self.index_dir}: build one with "
                                 f"`qa index PATH... --index {self.index_dir}`")

    def add_documents(self, docs: Iterable[Document], progress: bool = False) -> IndexStore:
        """Index new or changed documents (same id replaces); searchable on return.

        The new snapshot is saved before it is published: if anything fails the
        previous index stays both on disk and in memory.
        """
        docs = as_docs(docs)

        def make(base: IndexStore | None) -> IndexStore | None:
            if base is not None and self._up_to_date(base, docs):
                return None
            return self._build(docs, previous=base, progress=progress)

        return self._update(make)

    def add_new_documents(self, docs: Iterable[Document], progress: bool = False) -> AddResult:
        """Add documents without ever replacing one (for uploads): a document
        whose id is taken by another text gets a new id (``name (2).txt``); one
        whose text is already indexed under its id is left as it is. Decided
        inside the writer lock, against the latest snapshot."""
        docs = as_docs(docs)
        result: dict = {}

        def make(base: IndexStore | None) -> IndexStore | None:
            have = dict(base.manifest.documents) if base is not None else {}
            taken = set(have)
            out, renamed, unchanged = [], {}, []
            for d in docs:
                if have.get(d.id) == sha256_text(d.text):
                    unchanged.append(d.id)
                    continue
                new_id = free_id(d.id, taken)
                if new_id != d.id:
                    renamed[d.id] = new_id
                    d = replace(d, id=new_id)
                taken.add(new_id)
                out.append(d)
            result.update(added=[d.id for d in out], renamed=renamed, unchanged=unchanged)
            if not out:
                return None
            return self._build(out, previous=base, progress=progress)

        store = self._update(make)
        return AddResult(store, **result)

    def _is_stale(self, store: IndexStore | None) -> bool:
        return store is not None and store.manifest.expectations() != self.indexer.expectations()

    def _up_to_date(self, store: IndexStore, docs: list[Document]) -> bool:
        if self._is_stale(store):
            return False
        return all(store.manifest.documents.get(d.id) == sha256_text(d.text) for d in docs)

    def sync_paths(self, paths: Iterable[str | Path], progress: bool = False) -> SyncReport:
        """Bring the index in step with files and folders, one bad file never
        stopping the rest: new files are added, changed ones re-indexed,
        unchanged ones left alone, and files gone from a folder given here are
        removed, all published as one snapshot. Files that cannot be read are
        reported in ``problems`` (their previous version, if any, stays)."""
        paths = as_paths(paths)
        folders = [str(Path(p).resolve()) + "/" for p in paths if Path(p).is_dir()]
        report: dict = {}

        def make(base: IndexStore | None) -> IndexStore | None:
            have = dict(base.manifest.documents) if base is not None else {}
            bar = _progress_bar(progress)
            batch = load_batch(paths, self.max_file_bytes, existing=have, exclude=[self.index_dir],
                               progress=(lambda done, total, path: bar(done, total)) if bar else None)
            if base is None and not batch.documents:
                if batch.problems:  # nothing indexed yet and nothing readable: say why
                    raise batch.errors[str(batch.problems[0].path)]
                raise EmptyCorpusError(empty_corpus_message(paths))
            docs = _keep_ids(batch.documents, base)
            changed = [d for d in docs if have.get(d.id) != sha256_text(d.text)]
            moved = _moved(docs, base, have)
            gone = [did for did, d in (base.documents.items() if base is not None else ())
                    if str(d.meta.get("source", "")).startswith(tuple(folders))
                    and not Path(d.meta["source"]).exists()] if folders else []
            gone += [did for did in _repeating(batch, base) if did not in gone]
            report.update(added=[d.id for d in changed if d.id not in have],
                          updated=[d.id for d in changed if d.id in have],
                          unchanged=[d.id for d in docs if have.get(d.id) == sha256_text(d.text)],
                          removed=gone, problems=batch.problems, skipped=batch.skipped,
                          reindexed=self._is_stale(base))
            if not changed and not gone and not moved:
                return None
            return self._build(changed + moved, previous=base, remove=gone, progress=progress)

        if not paths:
            raise ArgumentError("give at least one file or folder to index")
        store = self._update(make)
        return SyncReport(store, **report)

    def add_paths(self, paths: Iterable[str | Path], progress: bool = False) -> IndexStore:
        """Load files/folders (all validated before anything is indexed) and add them."""
        return self.add_documents(load_paths(as_paths(paths), self.max_file_bytes, exclude=[self.index_dir]),
                                  progress=progress)

    def remove_documents(self, doc_ids: Iterable[str]) -> IndexStore:
        """Remove documents by id. With no index there (a mistyped ``--index``) that is
        what is said, not "not in the index", and no folder is made for it."""
        ids = tuple(as_ids(doc_ids))
        if self.corpus_dir is None and not self.index_dir.exists():
            raise self._missing()  # before the writer lock, which would make the folder

        def make(base: IndexStore | None) -> IndexStore:
            if base is None:
                raise self._missing()
            unknown = [i for i in ids if i not in base.documents]
            if unknown:
                raise DocumentNotIndexedError(f"not in the index: {', '.join(unknown)}")
            return self._build([], previous=base, remove=ids)

        return self._update(make)

    def rebuild(self, paths: Iterable[str | Path] | None = None, progress: bool = False) -> IndexStore:
        """A fresh index (the old one is replaced only on success): of exactly these
        files, or, with no paths, of the texts the index itself stores, so an index
        whose vectors, BM25 or chunk table are damaged, or that another model
        built, is rebuilt without the original files (uploads have none).
        Damaged document records are left out and logged."""
        if paths is not None:
            paths = as_paths(paths)
            if not paths:  # an empty list is a mistake; "from the stored texts" is said with None
                raise ArgumentError("give at least one file or folder to rebuild from (or no paths at all "
                                    "to rebuild from the texts the index stores)")
        with writer_lock(self.index_dir):
            if paths:
                docs = load_paths(paths, self.max_file_bytes, exclude=[self.index_dir])
            else:
                stored = stored_documents(self.index_dir)
                if stored.damaged:
                    log.warning("left out of the rebuild, damaged: %s", "; ".join(stored.damaged))
                if not stored.documents:
                    raise EmptyCorpusError(f"no readable stored documents in {self.index_dir} to rebuild from: "
                                           f"index the original files with `qa index PATH... --index "
                                           f"{self.index_dir} --rebuild`")
                docs = list(stored.documents.values())
            self._store = self._publish(self._build(docs, progress=progress))
            return self._store

    def index_exactly(self, docs: Iterable[Document], progress: bool = False) -> bool:
        """Make the index hold exactly ``docs``; True when it had to be (re)built.

        For corpora made in code (an evaluation set): an index that already holds
        these very texts under the current settings is reused as is, anything
        else is replaced by a fresh build.
        """
        docs = as_docs(docs)
        built = []

        def make(base: IndexStore | None) -> IndexStore | None:
            if base is not None and self._up_to_date(base, docs) and set(base.documents) == {d.id for d in docs}:
                return None
            built.append(True)
            return self._build(docs, progress=progress)

        self._update(make)
        return bool(built)


def _ids_by_source(store: IndexStore) -> dict[str, str]:
    """The indexed id of each source file (the first, were there several)."""
    out: dict[str, str] = {}
    for did, d in store.documents.items():
        if d.meta.get("source"):
            out.setdefault(str(d.meta["source"]), did)
    return out


def _keep_ids(docs: list[Document], base: IndexStore | None) -> list[Document]:
    """A file indexed before under another id keeps that id, so its new text
    replaces the old one instead of joining it: ids depend on how the file was
    named (``qa index docs/`` gives ``sub/z.txt``, ``qa index docs/sub/z.txt``
    gives ``z.txt``), and both used to stay indexed, the old text still answering."""
    if base is None:
        return docs
    by_source = _ids_by_source(base)
    ids = {d.id for d in docs}
    out = []
    for d in docs:
        source = str(d.meta.get("source", ""))
        mine = base.documents.get(d.id)
        old = by_source.get(source)
        if (old is not None and old != d.id and old not in ids
                and not (mine is not None and str(mine.meta.get("source", "")) == source)):
            d = replace(d, id=old)
        out.append(d)
    return out


def _moved(docs: list[Document], base: IndexStore | None, have: dict[str, str]) -> list[Document]:
    """Unchanged documents whose file is now elsewhere (its folder moved or renamed),
    as stored but with the new ``source``. Removal looks for deleted files by the
    stored source under the folders given, so a stale one hid every later deletion
    from the new folder. Same text: the indexer keeps their chunks and vectors."""
    if base is None:
        return []
    out = []
    for d in docs:
        old = base.documents.get(d.id)
        source = d.meta.get("source")
        if (old is not None and have.get(d.id) == sha256_text(d.text) and source
                and old.meta.get("source") != source):
            out.append(replace(old, meta={**old.meta, "source": source}))
    return out


def _repeating(batch: BatchResult, base: IndexStore | None) -> list[str]:
    """Indexed ids whose file now holds the same text as another document: the
    file is skipped as a duplicate, and its old text, in no file any more, goes."""
    if base is None or not batch.duplicates:
        return []
    by_source = _ids_by_source(base)
    out = []
    for path, repeats in batch.duplicates.items():
        old = by_source.get(str(Path(path).resolve()))
        if old is not None and old != repeats:
            out.append(old)
    return out


def _progress_bar(enabled: bool):
    """A tqdm bar over files as ``update(done, total)``, or None."""
    if not enabled:
        return None
    from tqdm import tqdm

    bar = tqdm(unit="file", desc="reading", leave=False, disable=None)  # off when not a terminal

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update
