"""Inference engines for both models, chosen per machine by measurement.

The embedder and the reader are small BERT encoders. How fast they run on a CPU
depends on the CPU: with AMX or AVX512-BF16, PyTorch under bf16 autocast is fast;
on an fp32-only CPU it is not, and ONNX Runtime (fused attention/LayerNorm/GELU
kernels, optionally int8 weights) may be. So each model runs behind a *runner*:

* ``torch``       PyTorch fp32 (always available; training uses PyTorch too);
* ``torch-bf16``  PyTorch under bf16 autocast (only on CPUs with native bf16);
* ``onnx``        ONNX Runtime fp32, graph exported from the packaged weights and
                  fused by onnxruntime's transformer optimizer;
* ``onnx-int8``   the same with dynamically quantised int8 weights (per channel,
                  reduced range: exact on CPUs without VNNI too). ``auto``
                  considers it only for the models named in ``EngineConfig.int8``
                  (none by default: neither model's quality gate holds, docs/engine.md).

The parts: ``cpu`` (CPU flags, the bf16 probe), ``models`` (what runs: ModelSpec,
the torch modules), ``runners`` (one per engine), ``export`` (ONNX graphs, cached
on disk under a file lock) and ``choice`` (``load_runner`` and ``auto``'s measured,
cached choice).
"""

from __future__ import annotations

from qa.engine.choice import candidates, choose, cpu_seconds, load_runner, measure, measured_choices, pick
from qa.engine.cpu import bf16_autocast, cpu_has_bf16, cpu_info
from qa.engine.export import ensure_onnx, onnx_path
from qa.engine.models import INPUTS, EngineError, ModelSpec, file_sha256, wrap_reader_model
from qa.engine.runners import OrtRunner, Runner, TorchRunner

__all__ = [
    "INPUTS", "EngineError", "ModelSpec", "OrtRunner", "Runner", "TorchRunner", "bf16_autocast", "candidates",
    "choose", "cpu_has_bf16", "cpu_info", "cpu_seconds", "ensure_onnx", "file_sha256", "load_runner", "measure",
    "measured_choices",
    "onnx_path", "pick", "wrap_reader_model",
]
