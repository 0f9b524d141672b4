"""The index's stored operating point: the threshold ``qa calibrate`` chose for
this index, kept beside its snapshots in ``threshold.json``.

Written under the index's writer lock (one writer per folder, the same lock
updates take) and atomically, so a reader sees the old record or the new one.
Its own file name: the model's calibration is ``calibration.json`` in the
reader's folder; indexes written before this file existed kept the user's
threshold under that same name in the index folder, so ``load_threshold``
still reads ``calibration.json`` there when ``threshold.json`` is absent.

``qa.answering.Answerer.effective_threshold`` is the only reader of this
record; everything else (CLI, app, evaluation) asks the ``Answerer``.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any, Mapping

from qa._files import atomic_write_json
from qa.errors import ArgumentError
from qa.store.files import writer_lock

log = logging.getLogger("qa")

THRESHOLD_FILE = "threshold.json"
#: Where indexes made before ``THRESHOLD_FILE`` kept the record (still read).
LEGACY_FILE = "calibration.json"


def _check(t: Any) -> float:
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 <= float(t) <= 1.0:
        raise ArgumentError(f"threshold must be a probability in [0, 1], not {t!r}")
    return float(t)


def save_threshold(index_dir: str | Path, record: Mapping[str, Any]) -> Path:
    """Store ``record`` (must hold ``threshold``) as the index's operating point,
    under the writer lock, atomically; returns the file written."""
    _check(record.get("threshold"))
    index_dir = Path(index_dir)
    with writer_lock(index_dir):  # creates the folder
        target = atomic_write_json(index_dir / THRESHOLD_FILE, dict(record))
        (index_dir / LEGACY_FILE).unlink(missing_ok=True)  # one record per index, never two that disagree
    return target


def load_threshold(index_dir: str | Path | None) -> dict[str, Any] | None:
    """The stored record (None when there is none or it cannot be used: a broken
    file is logged, never fatal). Re-read only when the file changed."""
    if index_dir is None:
        return None
    for name in (THRESHOLD_FILE, LEGACY_FILE):
        f = Path(index_dir) / name
        try:
            st = f.stat()
        except OSError:
            continue
        return _read(str(f), st.st_mtime_ns, st.st_size)
    return None


@functools.lru_cache(maxsize=64)  # bounded: a process that opens many indexes keeps the latest 64
def _read(path: str, mtime_ns: int, size: int) -> dict[str, Any] | None:
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
        _check(record["threshold"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("%s: ignored (%s); run `qa calibrate` again", path, e)
        return None
    return record
