"""Indexing files uploaded through the web app (or any other front end).

One upload is one read-modify-publish step: every good file goes into one new
snapshot (not one snapshot per file), a file whose name is already an indexed
document's id never replaces it silently (it is added as ``name (2).txt`` and
the user is told), bounds on files and bytes per upload are checked before
anything is read, and the uploaded copies are deleted once read.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from qa.config import LimitsConfig
from qa.errors import QAError, UploadRefused

#: Files in one upload request by default (an instance's ``limits`` decide; each file is read and validated before indexing).
MAX_FILES_PER_UPLOAD = LimitsConfig().max_files_per_upload
#: Bytes of all files of one upload together by default (an instance's ``limits`` decide; each file also has
#: ``Settings.max_file_bytes``).
MAX_UPLOAD_BYTES = LimitsConfig().max_upload_bytes


@dataclass
class UploadReport:
    """What became of each uploaded file (names as the user chose them)."""

    added: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)  # name -> id it was indexed as
    unchanged: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (name, why not indexed)

    def markdown(self) -> str:
        """The status message for the app (names escaped for Markdown, no server paths)."""
        from qa.formatting import md_escape as e

        lines = []
        plain = [a for a in self.added if a not in self.renamed.values()]
        if plain:
            lines.append("Indexed " + ", ".join(f"**{e(a)}**" for a in plain) + ": ask away.")
        for name, new in self.renamed.items():
            lines.append(f"**{e(name)}**: a different document with that name is already indexed, so this one was "
                         f"added as **{e(new)}** (nothing was replaced; remove the old one first to replace it).")
        if self.unchanged:
            lines.append("Already indexed, unchanged: " + ", ".join(f"**{e(u)}**" for u in self.unchanged) + ".")
        if self.problems:
            lines.append("⚠ Not indexed (the index is unchanged for these):\n\n"
                         + "\n".join(f"- **{e(n)}**: {e(why)}" for n, why in self.problems))
        return "\n\n".join(lines)


#: Why the second of two files with one name in one upload is not indexed (the first is).
SAME_NAME = ("another file in this upload has the same name, so this one was not indexed (nothing was "
             "replaced): upload it on its own and it is added under a new name")


def _name_only(message: str, path: Path, name: str) -> str:
    """An error message about a temporary copy, told about the user's file name."""
    for form in (f"{path}: ", str(path), f"{path.resolve()}: ", str(path.resolve())):
        message = message.replace(form, "" if form.endswith(": ") else name)
    return message


def check_limits(paths: list[Path], max_files: int, max_total_bytes: int) -> None:
    if len(paths) > max_files:
        raise UploadRefused(f"{len(paths)} files in one upload; the limit is {max_files}: "
                            "upload them in smaller groups (nothing was indexed)")
    total = 0
    for p in paths:
        try:
            total += os.path.getsize(p)
        except OSError:
            pass  # reported per file when it is read
    if total > max_total_bytes:
        raise UploadRefused(f"{total:,} bytes in one upload; the limit is {max_total_bytes:,}: "
                            "upload the files in smaller groups (nothing was indexed)")


def index_uploads(qa: Any, paths: Iterable[str | Path], *, max_files: int | None = None,
                  max_total_bytes: int | None = None, progress: bool = False,
                  delete_under: str | Path | None = None) -> UploadReport:
    """Index uploaded files into ``qa`` (a ``qa.QA``) as one update.

    Raises ``UploadRefused`` when the upload is over a limit (nothing indexed):
    ``max_files`` and ``max_total_bytes``, by default the instance's own
    ``limits.max_files_per_upload`` and ``limits.max_upload_bytes`` (like every
    other limit, not the defaults: a limit set in its ``Settings`` was ignored).
    Any other problem is per file, in the report. ``delete_under``: the upload
    folder of the web framework; the files (and their emptied folders) under it
    are deleted afterwards, whatever happened.
    """
    from qa.ingest import load_batch

    paths = [Path(p) for p in paths]
    report = UploadReport()
    limits = getattr(getattr(qa, "settings", None), "limits", None) or LimitsConfig()
    max_files = limits.max_files_per_upload if max_files is None else max_files
    max_total_bytes = limits.max_upload_bytes if max_total_bytes is None else max_total_bytes
    try:
        check_limits(paths, max_files, max_total_bytes)
        max_bytes = qa.settings.max_file_bytes
        names = {str(p): p.name for p in paths}
        todo: list[Path] = []
        first_of: set[str] = set()
        for p in paths:  # cheap checks first, with the user's file name
            try:
                size = os.path.getsize(p)
            except OSError as e:
                report.problems.append((p.name, f"cannot be read ({e.strerror or e})"))
                continue
            if max_bytes is not None and size > max_bytes:
                report.problems.append((p.name, f"{size:,} bytes is over the {max_bytes:,}-byte limit"))
                continue
            if p.name in first_of:
                # Each upload lies in a folder of its own, so two files may share a name; the loader
                # would name the other's server path and suggest indexing a folder the user never saw.
                report.problems.append((p.name, SAME_NAME))
                continue
            first_of.add(p.name)
            todo.append(p)  # decided per file, not per name: one bad file never drops its namesake
        indexed = _indexed_texts(qa)
        batch = load_batch(todo, max_bytes, existing=indexed) if todo else None
        docs = []
        if batch is not None:
            for r in list(batch.problems) + list(batch.skipped):
                name = names.get(str(r.path), Path(r.path).name)
                repeats = batch.duplicates.get(str(r.path))
                if indexed and repeats in indexed and repeats not in first_of:  # not a file of this upload
                    why = f"the same text as {repeats!r} is already indexed; not indexed twice"
                else:
                    why = _name_only(r.reason, Path(r.path), name)
                report.problems.append((name, why))
            docs = batch.documents
        if docs:
            try:
                result = qa.add_new_documents(docs, progress=progress)
            except QAError as e:
                report.problems.extend((d.id, str(e)) for d in docs)
            except OSError as e:
                report.problems.extend((d.id, f"the index cannot be written ({e.strerror or e})") for d in docs)
            else:
                _keep_pdfs(qa, docs)
                report.added = list(result.added)
                report.renamed = dict(result.renamed)
                report.unchanged = list(result.unchanged)
        return report
    finally:
        if delete_under is not None:
            delete_uploads(paths, delete_under)


def _indexed_texts(qa: Any) -> dict[str, str] | None:
    """Indexed ids and their text hashes, so that a file whose text is already
    indexed under another name is reported as a duplicate (as ``qa index`` does)
    instead of being indexed twice. None without a readable index: nothing to repeat."""
    try:
        return dict(qa.store.manifest.documents)
    except (QAError, OSError, AttributeError):  # an unreadable index is reported when it is written
        return None


def _keep_pdfs(qa: Any, docs: list) -> None:
    """Keep a copy of each uploaded PDF with the index (its upload is deleted
    next), so the chat can show the cited page (``qa.pages``)."""
    from qa.pages import keep_original

    for d in docs:
        if str(d.meta.get("format", "")) != "pdf" or not d.meta.get("source"):
            continue
        try:
            keep_original(qa.settings.index_dir, Path(d.meta["source"]).read_bytes())
        except OSError as e:  # the answers stand without page images
            import logging

            logging.getLogger(__name__).warning("could not keep a copy of %s: %s", d.id, e)


def delete_uploads(paths: Iterable[str | Path], root: str | Path) -> int:
    """Delete uploaded copies that lie under ``root`` (and their folders once
    empty); anything outside ``root`` is left alone. Returns files deleted."""
    root = Path(root).resolve()
    n = 0
    for p in paths:
        p = Path(p)
        try:
            rp = p.resolve()
        except OSError:
            continue
        if root not in rp.parents or p.is_symlink():
            continue
        try:
            rp.unlink()
            n += 1
        except OSError:
            continue
        parent = rp.parent
        while parent != root and root in parent.parents:
            try:
                parent.rmdir()  # only when empty
            except OSError:
                break
            parent = parent.parent
    return n


def upload_folder() -> Path:
    """Where gradio keeps uploaded files (``GRADIO_TEMP_DIR`` or ``<tmp>/gradio``)."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")


__all__ = ["MAX_FILES_PER_UPLOAD", "MAX_UPLOAD_BYTES", "UploadRefused", "UploadReport", "delete_uploads",
           "index_uploads", "upload_folder"]
