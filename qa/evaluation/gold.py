"""Gold questions: the JSONL format, and SQuAD files turned into gold questions plus documents.

Gold JSONL holds one question a line: ``{"id", "question", "answers": [...]}``
plus an optional ``"doc_id"`` (the document that holds the answer, for retrieval
scoring). Empty ``answers`` means the documents do not say, and the right
response is ``""``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.errors import GoldFormatError
from qa.evaluation.squad import load_squad


@dataclass(frozen=True)
class GoldQuestion:
    """One gold question; ``answers`` empty means the documents do not say."""

    id: str
    question: str
    answers: tuple[str, ...]
    doc_id: str | None = None
    title: str = ""  # SQuAD article (for held-out breakdowns)
    context: str | None = None  # the gold paragraph (SQuAD reader mode)

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


# --- gold files ---------------------------------------------------------------


def parse_gold_line(line: str, where: str = "line") -> GoldQuestion:
    """One JSONL record -> GoldQuestion; ``GoldFormatError`` naming ``where`` and why."""
    try:
        r = json.loads(line)
    except json.JSONDecodeError as e:
        raise GoldFormatError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from e
    if not isinstance(r, dict):
        raise GoldFormatError(f"{where}: expected a JSON object, got {type(r).__name__}")
    for key in ("id", "question", "answers"):
        if key not in r:
            raise GoldFormatError(f"{where}: missing required field {key!r}")
    if not isinstance(r["id"], (str, int)) or isinstance(r["id"], bool):
        raise GoldFormatError(f"{where}: 'id' must be a string")
    if not isinstance(r["question"], str) or not r["question"].strip():
        raise GoldFormatError(f"{where}: 'question' must be a non-empty string")
    answers = r["answers"]
    if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
        raise GoldFormatError(f"{where}: 'answers' must be a list of non-empty strings ([] = not answerable)")
    doc_id = r.get("doc_id")
    if doc_id is not None and not isinstance(doc_id, str):
        raise GoldFormatError(f"{where}: 'doc_id' must be a string")
    return GoldQuestion(str(r["id"]), r["question"].strip(), tuple(answers), doc_id)


def load_gold(path: str | Path) -> list[GoldQuestion]:
    """Read a gold JSONL file (blank lines allowed); errors say file and line.

    A byte-order mark is skipped: editors on Windows save UTF-8 with one, and it
    made a well-formed first line "not valid JSON"."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError as e:
        raise GoldFormatError(f"{p}: no such file") from e
    except IsADirectoryError as e:
        raise GoldFormatError(f"{p}: is a folder; give the gold JSONL file") from e
    except UnicodeDecodeError as e:
        raise GoldFormatError(f"{p}: not valid UTF-8") from e
    except OSError as e:  # permissions, I/O: one line naming the file, never a traceback
        raise GoldFormatError(f"{p}: cannot be read ({e.strerror or e})") from e
    out: list[GoldQuestion] = []
    seen: set[str] = set()
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        q = parse_gold_line(line, f"{p}:{n}")
        if q.id in seen:
            raise GoldFormatError(f"{p}:{n}: duplicate id {q.id!r}")
        seen.add(q.id)
        out.append(q)
    if not out:
        raise GoldFormatError(f"{p}: no questions")
    return out


def paragraph_doc_id(title: str, n: int) -> str:
    """Document id of the n-th paragraph of a SQuAD article (open mode)."""
    return f"{title}/{n:03d}"


def squad_gold(path: str | Path) -> tuple[list[GoldQuestion], list[Any]]:
    """All questions of a SQuAD file and one document per paragraph."""
    from qa.ingest import document_from_text

    examples = load_squad(path)
    ids: dict[tuple[str, str], str] = {}
    per_title: dict[str, int] = {}
    docs = []
    gold = []
    for e in examples:
        key = (e.title, e.context)
        if key not in ids:
            n = per_title.get(e.title, 0)
            per_title[e.title] = n + 1
            ids[key] = paragraph_doc_id(e.title, n)
            docs.append(document_from_text(ids[key], e.context, title=e.title.replace("_", " ")))
        gold.append(GoldQuestion(e.id, e.question, e.answers, ids[key], e.title, e.context))
    return gold, docs
