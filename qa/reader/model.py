"""The span reader: a transformer with a start/end head that lifts answers out of passages.

The model is run once per batch of windows from all passages of all questions,
sorted by length so padding is small, on the inference engine ``qa.engine``
picks for this machine (PyTorch fp32/bf16 or ONNX Runtime). Decoding (``qa.reader.decoding``) and calibration (``qa.reader.calibration``)
are separate so each can be tested without a model.
"""

from __future__ import annotations

import bisect
import math
import os
import re
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from qa.chunking import split_sentences
from qa.config import ReaderConfig
from qa.engine import ModelSpec, file_sha256, load_runner, wrap_reader_model
from qa.errors import ModelError
from qa.reader.calibration import CALIBRATION_FILE, Calibration
from qa.reader.decoding import ReadResult, Span, decode_window, dedupe_spans, trim_markup

_BLANK_LINE = re.compile(r"\n[ \t\r]*\n")


def sentence_starts(text: str) -> list[int]:
    """Where each sentence of ``text`` after the first starts (the chunker's
    sentence ends: abbreviations, initials and decimals are not ends)."""
    return [s for s, _ in split_sentences(text)[1:]]


def crosses_sentence(starts: list[int], start: int, end: int) -> bool:
    """True when [start, end) runs from one sentence into the next."""
    i = bisect.bisect_right(starts, start)
    return i < len(starts) and starts[i] < end


class SpanReader:
    """Extractive reader over (question, passages) pairs; loads weights lazily."""

    def __init__(self, config: ReaderConfig | None = None, uncalibrated_ok: bool = False) -> None:
        """``uncalibrated_ok``: load a model without ``calibration.json`` (only
        for calibrating it; anywhere else its scores would mean nothing)."""
        self.config = config or ReaderConfig()
        self.uncalibrated_ok = uncalibrated_ok
        self.path = Path(self.config.path)
        self._model = None
        self._tokenizer = None
        self._tokenizer_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self.calibration = Calibration()

    @classmethod
    def from_model(cls, model, tokenizer, config: ReaderConfig | None = None,
                   calibration: Calibration | None = None) -> "SpanReader":
        """A reader over an already loaded model (training's validation reads
        through exactly the decoding the product uses)."""
        from qa.engine import TorchRunner

        reader = cls(config)
        reader._model = TorchRunner(wrap_reader_model(model), bf16=reader.config.bf16)
        reader._tokenizer = tokenizer
        reader.calibration = calibration or Calibration()
        return reader

    def best_spans(self, questions: Sequence[str], contexts: Sequence[str],
                   batch_size: int = 64) -> list[Span | None]:
        """The best span of each question in its own single passage (reading
        comprehension: evaluation, calibration, training validation, benchmarks)."""
        out: list[Span | None] = []
        for i in range(0, len(questions), batch_size):
            results = self.run(questions[i : i + batch_size], [[c] for c in contexts[i : i + batch_size]])
            out.extend(r.spans[0] if r.spans else None for r in results)
        return out

    def warm_up(self) -> None:
        if self._model is not None:
            return
        with self._load_lock:
            if self._model is None:
                self._load()

    def _load(self) -> None:
        if not (self.path / "config.json").exists():
            raise ModelError(
                f"no reader model at {self.path}: the shipped weights live in qa/models/reader "
                "(train them with `python -m qa.training.train_reader`)"
            )
        # The hub is unreachable here: local files only (and HF_HUB_OFFLINE, which
        # the environment requires of every code path that loads a model).
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoTokenizer

        weights = self.path / "model.safetensors"
        if not weights.exists():
            raise ModelError(f"the reader at {self.path} has no model.safetensors")
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        except Exception as e:
            raise ModelError(f"the reader at {self.path} could not be loaded: {e}") from e
        if not getattr(self._tokenizer, "is_fast", False):
            raise ModelError(f"the reader at {self.path} needs a fast tokenizer (tokenizer.json)")
        spec = ModelSpec("reader", self.path, file_sha256(weights))
        self._model = load_runner(spec, self.config.engine, bf16=self.config.bf16)
        if not (self.path / CALIBRATION_FILE).exists() and not self.uncalibrated_ok:
            raise ModelError(
                f"the reader at {self.path} has no {CALIBRATION_FILE}, so its scores could not be thresholded; "
                f"calibrate it with `python -m qa.training.calibrate_reader --model {self.path}`")
        self.calibration = Calibration.load(self.path)

    @property
    def engine_id(self) -> dict[str, str]:
        """The engine the reader runs on (``qa.engine``)."""
        self.warm_up()
        return self._model.engine_id

    @property
    def loaded(self) -> bool:
        """True once the weights are in memory (the threshold is known from then on)."""
        return self._model is not None

    @property
    def threshold(self) -> float:
        """The model's own calibrated threshold (loads the model). Which threshold
        an answer is held against is decided by ``Answerer.effective_threshold``."""
        self.warm_up()
        return self.calibration.threshold

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
        starts_of: dict[tuple[int, int], list[int]] = {}
        for w in range(n_windows):
            qi, pi = pairs[enc["overflow_to_sample_mapping"][w]]
            seq = enc.sequence_ids(w)
            mask = np.asarray([s == 1 for s in seq])
            offsets = np.asarray(enc["offset_mapping"][w])
            null, found = decode_window(starts[w], ends[w], offsets, mask, cfg.max_answer_tokens, cfg.n_best)
            nulls[qi] = min(nulls[qi], null)
            text = passages[qi][pi]
            if (qi, pi) not in starts_of:
                starts_of[qi, pi] = sentence_starts(text)
            # An answer never runs across a paragraph break (the model never saw one),
            # nor from one sentence into the next: where the text repeats itself
            # ("The door is blue. The door is blue."), the best start and the best
            # end fall in different copies, and the answer was the run between them
            # ("blue. The door is blue"), which swallowed every copy of the answer.
            # Markdown markup at a span's edges ("# Title", "**name**") is not part of
            # the answer: trimmed before the filters, so it is never shown.
            found = [(*trim_markup(text, s, e), sc) for s, e, sc in found]
            spans[qi].extend(Span(s, e, sc, null, pi) for s, e, sc in found
                             if not _BLANK_LINE.search(text, s, e)
                             and not crosses_sentence(starts_of[qi, pi], s, e))
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
        order = sorted(range(len(input_ids)), key=lambda i: len(input_ids[i]))
        starts: list[np.ndarray] = [np.empty(0)] * len(input_ids)
        ends: list[np.ndarray] = [np.empty(0)] * len(input_ids)
        bs = self.config.batch_size
        for b in range(0, len(order), bs):
            idx = order[b : b + bs]
            batch = self._tokenizer.pad(
                {"input_ids": [input_ids[i] for i in idx], "token_type_ids": [token_types[i] for i in idx]},
                return_tensors="np")
            s, e = self._model({k: np.asarray(batch[k], dtype=np.int64) for k in
                                ("input_ids", "attention_mask", "token_type_ids")})[:2]
            for r, i in enumerate(idx):
                L = len(input_ids[i])
                starts[i] = s[r, :L]
                ends[i] = e[r, :L]
        return starts, ends
