"""The span reader: a transformer with a start/end head that lifts answers out of passages.

Span decoding is plain NumPy over logits and offset mappings (no model inside),
so it can be tested with hand-made arrays. The model is run once per batch of
windows from all passages of all questions, sorted by length so padding is
small, under bf16 autocast on CPUs that support it.

Confidence: for each candidate span the reader computes the margin
``span_score - null_score`` of its window (the SQuAD 2.0 "is there an answer
here" log-odds) and maps it through a logistic calibration fitted on validation
articles (``calibration.json`` beside the weights). The result is a probability
that the answer is right, comparable across questions and documents, so one
threshold (``ReaderConfig.min_score``) decides when to say "not in the documents".
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from qa.config import ReaderConfig
from qa.embedding import bf16_autocast
from qa.errors import ModelError

CALIBRATION_FILE = "calibration.json"
_BLANK_LINE = re.compile(r"\n[ \t\r]*\n")


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


@dataclass(frozen=True)
class Calibration:
    """p(correct) = sigmoid(a * margin + b); ``threshold`` chosen on validation."""

    a: float = 1.0
    b: float = 0.0
    threshold: float = 0.5

    def probability(self, margin: float) -> float:
        z = self.a * margin + self.b
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    @classmethod
    def load(cls, model_dir: Path) -> "Calibration":
        f = model_dir / CALIBRATION_FILE
        if not f.exists():
            return cls()
        d = json.loads(f.read_text())
        return cls(a=float(d["a"]), b=float(d["b"]), threshold=float(d["threshold"]))


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


def choose(result: ReadResult, calibration: Calibration, threshold: float) -> tuple[Span | None, float]:
    """The answer span (None: "not in the documents") and its probability.

    The one place that decides between answering and abstaining, shared by
    ``QA.ask`` and the evaluation so both measure the same behaviour.
    """
    if not result.spans:
        return None, 0.0
    best = result.spans[0]
    prob = calibration.probability(best.margin)
    return (best if prob >= threshold else None), prob


class SpanReader:
    """Extractive reader over (question, passages) pairs; loads weights lazily."""

    def __init__(self, config: ReaderConfig | None = None) -> None:
        self.config = config or ReaderConfig()
        self.path = Path(self.config.path)
        self._model = None
        self._tokenizer = None
        self._tokenizer_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self.calibration = Calibration()

    def warm_up(self) -> None:
        if self._model is not None:
            return
        with self._load_lock:
            if self._model is None:
                self._load()

    def _load(self) -> None:
        if not (self.path / "config.json").exists():
            raise ModelError(
                f"no reader model at {self.path}: the shipped weights live in models/reader "
                "(train them with `python -m qa.train_reader`)"
            )
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            model = AutoModelForQuestionAnswering.from_pretrained(str(self.path), dtype=torch.float32)
            self._tokenizer = AutoTokenizer.from_pretrained(str(self.path))
        except Exception as e:
            raise ModelError(f"the reader at {self.path} could not be loaded: {e}") from e
        if not getattr(self._tokenizer, "is_fast", False):
            raise ModelError(f"the reader at {self.path} needs a fast tokenizer (tokenizer.json)")
        model.eval()
        self._model = model
        self.calibration = Calibration.load(self.path)

    @property
    def threshold(self) -> float:
        self.warm_up()
        t = self.config.min_score
        return self.calibration.threshold if t is None else t

    def run(self, questions: Sequence[str], passages: Sequence[Sequence[str]]) -> list[ReadResult]:
        """Read every question against its passages, all windows batched together."""
        self.warm_up()
        cfg = self.config
        pairs = [(qi, pi) for qi, ps in enumerate(passages) for pi in range(len(ps))]
        if not pairs:
            return [ReadResult([], math.inf) for _ in questions]
        with self._tokenizer_lock:  # fast tokenizers are not re-entrant across threads
            enc = self._tokenize(questions, passages, pairs)
        n_windows = len(enc["input_ids"])
        starts, ends = self._logits(enc["input_ids"], enc["token_type_ids"])
        spans: list[list[Span]] = [[] for _ in questions]
        nulls = [math.inf for _ in questions]
        for w in range(n_windows):
            qi, pi = pairs[enc["overflow_to_sample_mapping"][w]]
            seq = enc.sequence_ids(w)
            mask = np.asarray([s == 1 for s in seq])
            offsets = np.asarray(enc["offset_mapping"][w])
            null, found = decode_window(starts[w], ends[w], offsets, mask, cfg.max_answer_tokens, cfg.n_best)
            nulls[qi] = min(nulls[qi], null)
            text = passages[qi][pi]
            # An answer never runs across a paragraph break (the model never saw one).
            spans[qi].extend(Span(s, e, sc, null, pi) for s, e, sc in found if not _BLANK_LINE.search(text, s, e))
        return [ReadResult(dedupe_spans(sp)[: cfg.n_best], nl) for sp, nl in zip(spans, nulls)]

    def _tokenize(self, questions: Sequence[str], passages: Sequence[Sequence[str]], pairs: list[tuple[int, int]]):
        cfg = self.config
        return self._tokenizer(
            [questions[qi] for qi, _ in pairs],
            [passages[qi][pi] for qi, pi in pairs],
            truncation="only_second",
            max_length=cfg.max_length,
            stride=cfg.stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=False,
        )

    def _logits(self, input_ids: list[list[int]], token_types: list[list[int]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Start/end logits per window, batched by similar length."""
        import torch

        order = sorted(range(len(input_ids)), key=lambda i: len(input_ids[i]))
        starts: list[np.ndarray] = [np.empty(0)] * len(input_ids)
        ends: list[np.ndarray] = [np.empty(0)] * len(input_ids)
        bs = self.config.batch_size
        with torch.inference_mode(), bf16_autocast(self.config.bf16):
            for b in range(0, len(order), bs):
                idx = order[b : b + bs]
                n = max(len(input_ids[i]) for i in idx)
                ids = torch.zeros((len(idx), n), dtype=torch.long)
                tt = torch.zeros_like(ids)
                am = torch.zeros_like(ids)
                for r, i in enumerate(idx):
                    L = len(input_ids[i])
                    ids[r, :L] = torch.tensor(input_ids[i])
                    tt[r, :L] = torch.tensor(token_types[i])
                    am[r, :L] = 1
                out = self._model(input_ids=ids, token_type_ids=tt, attention_mask=am)
                s = out.start_logits.float().numpy()
                e = out.end_logits.float().numpy()
                for r, i in enumerate(idx):
                    L = len(input_ids[i])
                    starts[i] = s[r, :L]
                    ends[i] = e[r, :L]
        return starts, ends
