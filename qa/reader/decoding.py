"""Span decoding: plain NumPy over logits and offset mappings, no model inside,
so it can be tested with hand-made arrays."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Span:
    """A candidate answer inside one passage (character offsets into the passage)."""

    start: int
    end: int
    score: float  # start logit + end logit
    null_score: float  # the window's [CLS] start + end logit
    passage: int  # index of the passage among those given for the question

    @property
    def margin(self) -> float:
        return self.score - self.null_score


@dataclass(frozen=True)
class ReadResult:
    """Everything the reader found for one question, best first."""

    spans: list[Span]
    null_score: float  # lowest window null score (the passage set's best case for an answer)


def best_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    context_mask: np.ndarray,
    max_answer_tokens: int,
    n_best: int,
) -> list[tuple[int, int, float]]:
    """Top (start_token, end_token, score) pairs of one window.

    Only pairs with start <= end < start + max_answer_tokens, both inside the
    context, are allowed: never an end before its start, never the question.
    """
    s = np.where(context_mask, start_logits, -np.inf)
    e = np.where(context_mask, end_logits, -np.inf)
    k = min(n_best, int(context_mask.sum()))
    if k == 0:
        return []
    top_s = np.argpartition(-s, k - 1)[:k]
    top_e = np.argpartition(-e, k - 1)[:k]
    si = top_s[:, None]
    ei = top_e[None, :]
    scores = s[si] + e[ei]
    valid = (ei >= si) & (ei - si < max_answer_tokens) & np.isfinite(scores)
    scores = np.where(valid, scores, -np.inf)
    flat = np.argsort(-scores, axis=None)[:n_best]
    out = []
    for f in flat:
        i, j = np.unravel_index(f, scores.shape)
        if not np.isfinite(scores[i, j]):
            break
        out.append((int(top_s[i]), int(top_e[j]), float(scores[i, j])))
    return out


def decode_window(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    offsets: np.ndarray,
    context_mask: np.ndarray,
    max_answer_tokens: int,
    n_best: int,
) -> tuple[float, list[tuple[int, int, float]]]:
    """(null score, [(start_char, end_char, score)]) of one window; chars are
    offsets into the text that was tokenised as the context."""
    null = float(start_logits[0] + end_logits[0])
    spans = [
        (int(offsets[i][0]), int(offsets[j][1]), sc)
        for i, j, sc in best_spans(start_logits, end_logits, context_mask, max_answer_tokens, n_best)
    ]
    return null, spans


def dedupe_spans(spans: list[Span]) -> list[Span]:
    """Keep the best of overlapping candidates in the same passage (stride windows
    see the same words twice; one answer must not be offered twice)."""
    kept: list[Span] = []
    for sp in sorted(spans, key=lambda x: -x.margin):
        if not any(k.passage == sp.passage and k.start < sp.end and sp.start < k.end for k in kept):
            kept.append(sp)
    return kept


#: Markdown at a span's start: a heading's #s, a quote's >, a bullet, a table's |,
#: each followed by a space (so "C#", "#1" and "3 - 2" stay), or emphasis/code marks.
_LEADING_MARKUP = re.compile(r"(?:(?:#{1,6}|>|[-*+]|\|)[ \t]+|\*+|`+|~~)+")
_TRAILING_MARKUP = re.compile(r"(?:[ \t]+\||\*+|`+|~~|[ \t]+)+$")


def trim_markup(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) of ``text`` without Markdown markup at either edge.

    A .md keeps its markup in the stored text (its offsets are the file's), and the
    reader's tokenizer makes "#", "*" and "|" tokens of their own, so a span could
    read "# The Quince Garden" or "Tomas Lund**". The span shrinks to its words;
    one that is nothing but markup is left as it is (the caller's filters judge it).
    """
    lead = _LEADING_MARKUP.match(text, start, end)
    s = lead.end() if lead else start
    trail = _TRAILING_MARKUP.search(text, s, end)
    e = trail.start() if trail else end
    return (s, e) if s < e else (start, end)
