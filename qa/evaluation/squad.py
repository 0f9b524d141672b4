"""SQuAD data: loading, the fixed held-out split, and the official scoring.

Training, threshold tuning and evaluation all read SQuAD through this module so
that the held-out articles are excluded (or selected) in exactly one place.
"""

from __future__ import annotations

import collections
import json
import os
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from qa.errors import GoldFormatError


def data_dir() -> Path:
    """The benchmark and training data: ``$QA_DATA``, else ``../shared/data``
    beside the checkout. Read when asked, never at import, so a caller (or a
    test) that sets ``QA_DATA`` after importing still gets its folder."""
    return Path(os.environ.get("QA_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data")


def squad_dir() -> Path:
    """The SQuAD files under ``data_dir()``."""
    return data_dir() / "squad"


def __getattr__(name: str) -> Path:
    # ``DATA_DIR`` / ``SQUAD_DIR`` as module attributes, resolved at each access (PEP 562).
    if name == "DATA_DIR":
        return data_dir()
    if name == "SQUAD_DIR":
        return squad_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

#: Fixed by ../shared/data/README.md: never train, tune or pick a model on these.
HELD_OUT_ARTICLES: frozenset[str] = frozenset(
    {
        "Amazon_rainforest",
        "Computational_complexity_theory",
        "Doctor_Who",
        "Force",
        "Harvard_University",
        "Immune_system",
        "Islamism",
        "Martin_Luther",
        "Packet_switching",
        "Sky_(United_Kingdom)",
        "Steam_engine",
        "Yuan_dynasty",
    }
)

#: Training articles carved out for validation (threshold and model choice).
#: Huguenot brings ~200 unanswerable questions from the 2.0 half.
VALIDATION_ARTICLES: frozenset[str] = frozenset({"Huguenot", "Oxygen", "Teacher"})


@dataclass(frozen=True)
class SquadExample:
    """One question over one paragraph; ``answers`` empty means unanswerable."""

    id: str
    title: str
    context: str
    question: str
    answers: tuple[str, ...]
    answer_starts: tuple[int, ...] = field(default=())

    @property
    def is_impossible(self) -> bool:
        return not self.answers


def load_squad(path: str | Path) -> list[SquadExample]:
    """Read a SQuAD v1.1 or v2.0 JSON file into flat examples.

    A file that is missing, not JSON or not in SQuAD's shape is a
    ``GoldFormatError`` naming the file and the record (``qa eval --squad``
    prints it as one line; a bare ``KeyError: 'answers'`` said neither)."""
    p = Path(path)
    try:
        with open(p, encoding="utf-8-sig") as fh:  # a byte-order mark (Windows editors) is skipped
            raw = json.load(fh)
    except FileNotFoundError:
        raise GoldFormatError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise GoldFormatError(f"{p}: is a folder; give the SQuAD JSON file") from None
    except UnicodeDecodeError:
        raise GoldFormatError(f"{p}: not valid UTF-8") from None
    except json.JSONDecodeError as e:
        raise GoldFormatError(f"{p}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); a SQuAD file "
                              "is one JSON object with a 'data' list (a gold JSONL file is given without --squad)"
                              ) from None
    except OSError as e:
        raise GoldFormatError(f"{p}: cannot be read ({e.strerror or e})") from None
    out: list[SquadExample] = []
    where = "the top level"
    try:
        for i, article in enumerate(raw["data"]):
            where = f"data[{i}]"
            title = article["title"]
            for j, para in enumerate(article["paragraphs"]):
                where = f"data[{i}].paragraphs[{j}]"
                ctx = para["context"]
                for k, qa in enumerate(para["qas"]):
                    where = f"data[{i}].paragraphs[{j}].qas[{k}]"
                    answers = [] if qa.get("is_impossible") else qa["answers"]
                    out.append(
                        SquadExample(
                            id=qa["id"],
                            title=title,
                            context=ctx,
                            question=qa["question"].strip(),
                            answers=tuple(a["text"] for a in answers),
                            answer_starts=tuple(int(a["answer_start"]) for a in answers),
                        )
                    )
    except KeyError as e:
        raise GoldFormatError(f"{p}: {where}: missing field {e.args[0]!r} (SQuAD v1.1/v2.0 format expected)") from None
    except (TypeError, ValueError, AttributeError) as e:
        raise GoldFormatError(f"{p}: {where}: not in SQuAD v1.1/v2.0 format ({e})") from None
    return out


def select(
    examples: Iterable[SquadExample],
    include: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
) -> list[SquadExample]:
    """Filter examples by article title."""
    inc = frozenset(include) if include is not None else None
    exc = frozenset(exclude or ())
    return [e for e in examples if (inc is None or e.title in inc) and e.title not in exc]


def dedupe(examples: Iterable[SquadExample]) -> list[SquadExample]:
    """Drop repeats of the same question on the same paragraph (the files overlap)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for e in examples:
        key = (e.context, e.question)
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


# --- official SQuAD scoring (v1.1 evaluate script semantics, v2.0 no-answer rule) ---

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = frozenset(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lower-case, drop punctuation and articles, collapse white space."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str) -> float:
    pred_toks = normalize_answer(prediction).split()
    gold_toks = normalize_answer(gold).split()
    if not pred_toks or not gold_toks:
        # SQuAD 2.0 rule: both empty is a match, one empty is a miss.
        return float(pred_toks == gold_toks)
    common = collections.Counter(pred_toks) & collections.Counter(gold_toks)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_toks)
    recall = same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def best_scores(prediction: str, golds: Iterable[str]) -> tuple[float, float]:
    """(EM, F1) of a prediction against its gold answers; no gold means "" is right.

    A gold answer that normalises to nothing ("A", a grade, in SQuAD-Shifts) is
    dropped while another remains, as the SQuAD 2.0 script does: otherwise "A"
    or "the" matched it with EM and F1 1 (v1.1 gives F1 0)."""
    golds = list(golds)
    if not golds:
        hit = float(prediction.strip() == "")
        return hit, hit
    golds = [g for g in golds if normalize_answer(g)] or golds
    return (
        max(exact_match(prediction, g) for g in golds),
        max(f1_score(prediction, g) for g in golds),
    )
