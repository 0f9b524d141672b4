"""Reading what a damaged snapshot still holds, record by record.

``documents.jsonl`` is checked one record at a time against the manifest's
sha256 of each document's text, so one damaged record (a flipped byte, a
truncated line, an edit) costs only its own document: the load reports it and
serves the rest. The stored texts are also enough to rebuild the whole index
(``qa index --rebuild`` with no paths) when the original files are gone, as
they are for every uploaded document.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import IndexCorruptError, IndexMissingError, QAError
from qa.store.base import VectorIndex
from qa.types import Document, Locator

log = logging.getLogger("qa")

#: The file of stored texts, one JSON record per line, in chunk-table row order.
DOCUMENTS_FILE = "documents.jsonl"


@dataclass
class StoredDocuments:
    """The records of ``documents.jsonl``: ``rows[i]`` is the id of line i (None
    when that line is damaged), ``documents`` the good ones by id, ``damaged`` one
    line per record that could not be used, saying why."""

    documents: dict[str, Document] = field(default_factory=dict)
    rows: list[str | None] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_document(r: Any) -> Document:
    """A stored record back into a ``Document`` (validated like any other)."""
    if not isinstance(r, dict):
        raise ValueError(f"a {type(r).__name__}, not an object")
    locs = r.get("locators", ())
    if not isinstance(locs, list) or not all(isinstance(lc, list) and len(lc) == 4 for lc in locs):
        raise ValueError("malformed locators")
    return Document(id=r["id"], text=r["text"], title=r.get("title", ""), meta=r.get("meta", {}),
                    locators=tuple(Locator(*lc) for lc in locs))


_ID = re.compile(rb'^\{"id": ("(?:[^"\\]|\\.)*")')


def _leading_id(line: bytes) -> str | None:
    """The id of a record too damaged to parse, when its start (``{"id": "..."``) survived."""
    m = _ID.match(line)
    try:
        return json.loads(m.group(1).decode("utf-8")) if m else None
    except ValueError:
        return None


def read_documents(path: Path, expected: dict[str, str] | None) -> StoredDocuments:
    """Every usable record of ``path``; ``expected`` (the manifest's id -> sha256)
    decides which are good. Without it (a manifest that is itself damaged) every
    well-formed record is taken."""
    out = StoredDocuments()
    named: set[str] = set()  # ids of damaged records that could still be read
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for n, line in enumerate(lines, start=1):
        doc_id = _leading_id(line)
        try:
            r = json.loads(line.decode("utf-8"))
            doc_id = r.get("id") if isinstance(r, dict) else doc_id
            d = record_document(r)
            if expected is not None:
                if d.id not in expected:
                    raise ValueError("its id is not in the manifest")
                if _sha(d.text) != expected[d.id]:
                    raise ValueError("its text does not match its checksum (edited or damaged)")
            if d.id in out.documents:
                raise ValueError("a second record with the same id")
        except (ValueError, KeyError, TypeError, QAError) as e:
            if isinstance(doc_id, str):
                named.add(doc_id)
            what = f"{doc_id!r}" if isinstance(doc_id, str) else "unknown id"
            out.damaged.append(f"record {n} ({what[:80]}): {' '.join(str(e).split())[:160]}")
            out.rows.append(None)
            continue
        out.documents[d.id] = d
        out.rows.append(d.id)
    if expected is not None:
        for did in expected:
            if did not in out.documents and did not in named:
                out.damaged.append(f"{did!r}: listed in the manifest but not stored")
    return out


def latest_snapshot(index_dir: Path) -> Path:
    """The snapshot ``CURRENT`` names, or (when the pointer itself is damaged) the
    newest complete ``snap-*`` folder; ``IndexMissingError`` when there is none."""
    from qa.store.files import POINTER, _read_pointer

    try:
        snap = index_dir / _read_pointer(index_dir / POINTER, index_dir)
        if (snap / DOCUMENTS_FILE).is_file():
            return snap
    except IndexCorruptError:
        pass
    snaps = sorted(p for p in index_dir.glob("snap-*") if (p / DOCUMENTS_FILE).is_file())
    if not snaps:
        raise IndexMissingError(f"no stored documents in {index_dir} to rebuild from: index the original files "
                                f"with `qa index PATH... --index {index_dir} --rebuild`")
    return snaps[-1]


def stored_documents(index_dir: str | Path) -> StoredDocuments:
    """The documents the index in ``index_dir`` stores, for a rebuild without the
    original files: checked against the manifest when it can be read."""
    index_dir = Path(index_dir)
    snap = latest_snapshot(index_dir)
    try:
        expected = json.loads((snap / "manifest.json").read_text())["documents"]
        if not isinstance(expected, dict):
            raise ValueError
    except (OSError, ValueError, KeyError, TypeError):
        expected = None
        log.warning("the manifest of %s cannot be read: taking every well-formed stored document", snap)
    try:
        return read_documents(snap / DOCUMENTS_FILE, expected)
    except OSError as e:
        raise IndexCorruptError(f"the stored documents in {snap} cannot be read ({e.strerror or e})") from e


class MaskedVectors(VectorIndex):
    """A loaded vector index less the chunks of damaged documents, without
    touching the stored index (which may be shared, as a Milvus collection is).
    A copy (what an update builds on) really drops them."""

    def __init__(self, inner: VectorIndex, dropped: np.ndarray) -> None:
        self.inner = inner
        self.dropped = np.unique(np.asarray(dropped, dtype=np.int64))
        self.name = inner.name  # type: ignore[misc]

    @property
    def dim(self) -> int:
        return self.inner.dim

    def __len__(self) -> int:
        return len(self.inner) - int(np.isin(self.dropped, self.inner.ids()).sum())

    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        raise TypeError("a loaded snapshot is read-only: update a copy()")

    def _delete(self, ids: np.ndarray) -> int:
        raise TypeError("a loaded snapshot is read-only: update a copy()")

    def _search(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = self.inner.search(queries, n + len(self.dropped))
        out_s = np.full((len(ids), n), -np.inf, dtype=np.float32)
        out_i = np.full((len(ids), n), -1, dtype=np.int64)
        for q in range(len(ids)):
            keep = ~np.isin(ids[q], self.dropped) & (ids[q] >= 0)
            s, i = scores[q][keep][:n], ids[q][keep][:n]
            out_s[q, : len(s)], out_i[q, : len(i)] = s, i
        return out_s, out_i

    def ids(self) -> np.ndarray:
        ids = self.inner.ids()
        return ids[~np.isin(ids, self.dropped)]

    def get(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        if np.isin(ids, self.dropped).any():
            raise KeyError("a chunk of a damaged document")
        return self.inner.get(ids)

    def copy(self) -> VectorIndex:
        c = self.inner.copy()
        c.delete(self.dropped)
        return c

    def save(self, folder: Path) -> None:
        self.copy().save(folder)

    @classmethod
    def load(cls, folder: Path) -> "VectorIndex":
        raise TypeError("MaskedVectors is made by IndexStore.load, never loaded itself")

    def config(self) -> dict:
        return self.inner.config()
