"""qa: cited, extractive question answering over your own documents.

    from qa import ask
    a = ask("Who commanded the 58th Combined Arms Army?")
    a.answer, a.citations[0].start, a.score

``ask`` uses one default ``QA`` instance (index in ``index/``, built from
``seeds/`` when missing or stale), created on first use and shared afterwards;
``QA(index_dir=..., corpus_dir=..., settings=...)`` serves other corpora.
Heavy libraries load on first use, not on import.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from qa.config import Settings
from qa.errors import QAError
from qa.types import Answer, Chunk, Citation, Document

if TYPE_CHECKING:
    from qa.api import QA
    from qa.pipeline import History

__all__ = ["ask", "default_qa", "QA", "Settings", "Answer", "Citation", "Chunk", "Document", "QAError"]

_default = None
_default_lock = threading.Lock()


def default_qa() -> "QA":
    """The process-wide default instance (models and index loaded once)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                from qa.api import QA

                _default = QA()
    return _default


def ask(
    question: str,
    history: "History | None" = None,
    top_k: int | None = None,
    min_score: float | None = None,
) -> Answer:
    """Answer ``question`` from the default index; ``""`` when the documents do not say.

    ``history`` is the conversation so far as (question, answer) pairs, used to
    resolve follow-ups such as "Whom did he accuse?".
    """
    return default_qa().ask(question, history=history, top_k=top_k, min_score=min_score)


def __getattr__(name: str):
    if name == "QA":
        from qa.api import QA

        return QA
    raise AttributeError(f"module 'qa' has no attribute {name!r}")
