"""Runners: one model on one engine, behind one call signature.

The embedder and the reader call a runner the same way whichever engine is
behind it (``runner(feeds)`` -> float32 arrays), so the engine can be chosen per
machine without either model knowing which.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.engine.cpu import bf16_autocast
from qa.engine.models import INPUTS, EngineError, file_sha256

if TYPE_CHECKING:
    import torch


class Runner:
    """Runs one model: ``runner(feeds)`` -> list of float32 arrays.

    ``feeds`` maps each of ``INPUTS`` to an int64 [batch, length] array.
    ``engine_id`` names the engine and the file it runs (recorded in manifests).
    """

    name: str = ""

    def __call__(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    @property
    def engine_id(self) -> dict[str, str]:
        return {"engine": self.name}


class TorchRunner(Runner):
    """PyTorch, fp32 or under bf16 autocast."""

    def __init__(self, module: torch.nn.Module, bf16: bool = False, threads: int = 0) -> None:
        self.module = module
        self.bf16 = bool(bf16)
        self.name = "torch-bf16" if self.bf16 else "torch"
        if threads:
            import torch

            torch.set_num_threads(threads)

    def __call__(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        import torch

        dev = next(self.module.parameters()).device
        with torch.inference_mode(), bf16_autocast(self.bf16):
            out = self.module(**{k: torch.from_numpy(np.ascontiguousarray(feeds[k])).to(dev) for k in INPUTS})
        return [o.float().cpu().numpy() for o in out]


class OrtRunner(Runner):
    """ONNX Runtime on the CPU over one exported, optimised graph."""

    def __init__(self, path: Path, name: str, threads: int = 0) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - a damaged cache file or an unsupported op
            raise EngineError(f"ONNX Runtime could not load {path}: {e}") from e
        self.path = Path(path)
        self.name = name
        self._inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        out = self.session.run(None, {k: np.ascontiguousarray(feeds[k], dtype=np.int64) for k in self._inputs})
        return [np.asarray(o, dtype=np.float32) for o in out]

    @property
    def engine_id(self) -> dict[str, str]:
        return {"engine": self.name, "sha256": file_sha256(self.path)}
