"""ONNX graphs of both models: exported, fused, quantised, cached on disk.

ONNX files are made locally at first use (the hub is unreachable), cached under
``EngineConfig.cache_dir`` (``~/.cache/qa/engines/``) named by the weights'
sha256 and the library versions, built under a file lock and published by an
atomic rename, so concurrent processes never read half a file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable

from qa.engine.models import INPUTS, EngineError, ModelSpec

_EXPORT_FORMAT = 1  # bumped when the export recipe changes (new cache file names)


def library_versions() -> dict[str, str]:
    """What an exported graph (and a measured choice) depends on besides the weights."""
    import onnxruntime
    import torch
    import transformers

    return {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "transformers": transformers.__version__, "export": str(_EXPORT_FORMAT)}


def onnx_path(spec: ModelSpec, kind: str, cache_dir: Path) -> Path:
    """Where the graph of ``kind`` ("onnx" or "onnx-int8") for these weights is cached."""
    v = library_versions()
    tag = hashlib.sha256(json.dumps(v, sort_keys=True).encode()).hexdigest()[:8]
    return Path(cache_dir) / f"{spec.role}-{spec.weights_sha256[:16]}-{kind}-{tag}.onnx"


def _tmp_beside(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem + ".", suffix=".tmp.onnx")
    os.close(fd)
    os.chmod(tmp, 0o644)  # readable like any other cache file once renamed into place
    return Path(tmp)


def export_fp32(spec: ModelSpec, target: Path) -> None:
    """torch.onnx export (TorchScript exporter: its graph is what onnxruntime's
    BERT optimizer fuses into Attention/SkipLayerNorm/BiasGelu), then fusion."""
    import torch

    from onnxruntime.transformers.optimizer import optimize_model

    module = spec.torch_module(export=True)
    ids = torch.tensor([[101, 7, 8, 9, 10, 102, 11, 12, 102]] * 2, dtype=torch.long)  # any vocabulary
    args = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    outputs = ["embeddings"] if spec.role == "embedder" else ["start_logits", "end_logits"]
    axes = {k: {0: "batch", 1: "length"} for k in INPUTS}
    axes.update({o: ({0: "batch"} if spec.role == "embedder" else {0: "batch", 1: "length"}) for o in outputs})
    raw = _tmp_beside(target)
    fused = _tmp_beside(target)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, str(raw), dynamo=False, input_names=list(INPUTS), output_names=outputs,
                              dynamic_axes=axes, opset_version=17, do_constant_folding=True)
        cfg = module.bert.config if spec.role == "embedder" else module.qa_model.config
        opt = optimize_model(str(raw), model_type="bert", num_heads=cfg.num_attention_heads,
                             hidden_size=cfg.hidden_size, opt_level=1)
        opt.save_model_to_file(str(fused))
        os.replace(fused, target)
    except EngineError:
        raise
    except Exception as e:  # noqa: BLE001
        raise EngineError(f"exporting the {spec.role} to ONNX failed: {e}") from e
    finally:
        for p in (raw, fused):
            p.unlink(missing_ok=True)


def _quantize(fp32: Path, target: Path) -> None:
    """Dynamic int8 weights, per output channel, reduced range (7 bits): without
    VNNI, x86 u8*s8 products can saturate at full range (ONNX Runtime's note);
    per-tensor scales lose MiniLM's outlier channels (cosine 0.68 measured)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = _tmp_beside(target)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs advice to the root logger
    try:
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        os.replace(tmp, target)
    except Exception as e:  # noqa: BLE001
        raise EngineError(f"quantising {fp32.name} to int8 failed: {e}") from e
    finally:
        root.setLevel(level)
        tmp.unlink(missing_ok=True)


def ensure_onnx(spec: ModelSpec, kind: str, cache_dir: Path,
                exporter: Callable[[ModelSpec, Path], None] = export_fp32) -> Path:
    """The cached ONNX graph of ``kind``, exported (and quantised) now if missing.

    One process builds it under a file lock while others wait; each file is
    written under a temporary name and renamed into place, so a crash leaves no
    half file that a later run could load. ``exporter`` writes the fp32 graph
    (``export_fp32``; tests pass one that counts its calls).
    """
    from filelock import FileLock

    if kind not in ("onnx", "onnx-int8"):
        raise ValueError(f"not an ONNX engine: {kind}")
    target = onnx_path(spec, kind, cache_dir)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock", timeout=1800):
        if target.exists():
            return target
        fp32 = onnx_path(spec, "onnx", cache_dir)
        if not fp32.exists():
            exporter(spec, fp32)
        if kind == "onnx-int8":
            _quantize(fp32, target)
    return target
