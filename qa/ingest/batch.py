"""Loading many files where one bad file never stops the rest."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, NamedTuple

from qa.errors import DocumentError, DocumentNotFoundError, QAError
from qa.errors import CorruptDocumentError, DuplicateDocumentError
from qa.ingest.loading import load_file, unsupported_message, walk_folder
from qa.ingest.metadata import sha256_text
from qa.types import Document


class FileReport(NamedTuple):
    """One file that was not loaded, and why (``str`` of the error, ready to show)."""

    path: Path
    reason: str


@dataclass
class BatchResult:
    """What ``load_batch`` did: the documents it loaded (in input order), the
    files it could not load (``problems``: corrupt, encrypted, empty, too large,
    unsupported when named explicitly, ...) and the ones it left out on purpose
    (``skipped``: duplicate content, unsupported types met in a folder, symlinks
    leading out of the folder, whatever ``skip`` said). ``errors`` holds the
    exception of every problem and duplicate, keyed by ``str(path)``;
    ``duplicates`` the id each duplicate repeats, keyed the same way (so a caller
    can tell a file still indexed as itself from one whose old text must go)."""

    documents: list[Document] = field(default_factory=list)
    problems: list[FileReport] = field(default_factory=list)
    skipped: list[FileReport] = field(default_factory=list)
    errors: dict[str, QAError] = field(default_factory=dict)
    duplicates: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """``3 loaded, 1 failed, 2 skipped`` then one line per file not loaded."""
        lines = [f"{len(self.documents)} loaded, {len(self.problems)} failed, {len(self.skipped)} skipped"]
        lines += [f"  failed: {r.reason}" for r in self.problems]
        lines += [f"  skipped: {r.reason}" for r in self.skipped]
        return "\n".join(lines)


def load_batch(
    paths: Iterable[str | Path],
    max_bytes: int | None = None,
    *,
    skip: Callable[[Path, str], str | None] | None = None,
    existing: Mapping[str, str] | None = None,
    progress: Callable[[int, int, Path], None] | None = None,
    exclude: Iterable[str | Path] = (),
) -> BatchResult:
    """Load every file under ``paths`` that can be loaded; report the others.

    Folders are walked with their sub-folders (ids are paths relative to the
    folder given, as in ``iter_paths``); hidden files and folders are left out
    silently; symlinks leading out of the folder, symlinked folders and
    unsupported types are reported in ``skipped``. Files named explicitly are
    loaded whatever their place. Never raises ``DocumentError``.

    ``skip(path, doc_id)`` may return a reason to leave a file out before it
    is read (e.g. "unchanged" from a file-hash or mtime check). ``existing``
    maps ids already indexed to their ``sha256_text``: a file whose text is
    already indexed under another id is reported as a duplicate, as is a
    second file with the same text in this batch. ``progress(done, total,
    path)`` is called after each file. Folders in ``exclude`` are not entered
    (the index folder, when it lies inside a folder being indexed).
    """
    out = BatchResult()
    exclude = list(exclude)
    candidates: list[tuple[Path, str]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for f, rel, kind in walk_folder(p, exclude):
                if kind == "file":
                    candidates.append((f, rel.as_posix()))
                elif kind == "unsupported":
                    out.skipped.append(FileReport(f, unsupported_message(f)))
                elif kind == "outside":
                    out.skipped.append(FileReport(f, f"{f}: a symlink that leads outside {p} (or nowhere); not followed"))
                elif kind == "dirlink":
                    out.skipped.append(FileReport(f, f"{f}: a symlinked folder; not followed"))
                else:
                    out.skipped.append(FileReport(f, f"{f}: not a regular file"))
        elif not p.exists() and not p.is_symlink():
            err = DocumentNotFoundError(f"{p}: no such file")
            out.problems.append(FileReport(p, str(err)))
            out.errors[str(p)] = err
        else:
            candidates.append((p, p.name))

    by_id: dict[str, Path] = {}
    by_file: dict[Path, str] = {}
    by_hash: dict[str, str] = {}
    replaced = set()
    todo: list[tuple[int, Path, str]] = []
    # Real files claim their content before links to them do; input order is kept after.
    for order, (path, doc_id) in sorted(enumerate(candidates), key=lambda t: t[1][0].is_symlink()):
        try:
            key = path.resolve()
        except (OSError, RuntimeError):
            key = path.absolute()
        if key in by_file:
            if by_file[key] != doc_id:
                out.skipped.append(FileReport(path, f"{path}: the same file as {by_file[key]!r} (a link); loaded once"))
            continue
        if doc_id in by_id:
            err = DocumentError(f"{path} and {by_id[doc_id]} would both be indexed as {doc_id!r}; "
                                "rename one or index their common parent folder")
            out.problems.append(FileReport(path, str(err)))
            out.errors[str(path)] = err
            continue
        by_id[doc_id] = path
        by_file[key] = doc_id
        todo.append((order, path, doc_id))
        replaced.add(doc_id)
    todo.sort()
    if existing:
        by_hash.update({h: i for i, h in existing.items() if i not in replaced})

    for n, (_, path, doc_id) in enumerate(todo, 1):
        try:
            reason = skip(path, doc_id) if skip is not None else None
            if reason:
                out.skipped.append(FileReport(path, f"{path}: {reason}"))
                continue
            try:
                doc = load_file(path, doc_id, max_bytes)
            except DocumentError:
                raise
            except Exception as e:  # noqa: BLE001 - one broken file must not stop the batch
                raise CorruptDocumentError(f"{path}: could not be read ({type(e).__name__}: {e})") from e
            h = sha256_text(doc.text)
            if h in by_hash:
                out.duplicates[str(path)] = by_hash[h]
                raise DuplicateDocumentError(
                    f"{path}: the same text as {by_hash[h]!r}, already loaded; not indexed twice")
            by_hash[h] = doc_id
            out.documents.append(doc)
        except DuplicateDocumentError as e:
            out.skipped.append(FileReport(path, str(e)))
            out.errors[str(path)] = e
        except DocumentError as e:
            out.problems.append(FileReport(path, str(e)))
            out.errors[str(path)] = e
        finally:
            if progress is not None:
                progress(n, len(todo), path)
    return out
