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

ONNX files are made locally at first use (the hub is unreachable), cached under
``~/.cache/qa/engines/`` named by the weights' sha256 and the library versions,
built under a file lock and published by an atomic rename, so concurrent
processes never read half a file. ``auto`` times every candidate on the same
synthetic batch in *process CPU time* (stable under other processes' load) and
leaves PyTorch only for a candidate at least ``EngineConfig.min_speedup`` times
cheaper; the choice is cached per CPU model/flags, versions, threads and weights.
Any failure of an ONNX engine falls back to PyTorch fp32 with one warning.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import platform
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from qa._files import atomic_write_json, sha256_file
from qa.config import ENGINE_KINDS, EngineConfig
from qa.errors import ModelError

log = logging.getLogger(__name__)

#: Input names of both exported graphs (BERT: ids, mask, segment ids).
INPUTS: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")
_EXPORT_FORMAT = 1  # bumped when the export recipe changes (new cache file names)


class EngineError(ModelError):
    """An inference engine could not be built or run (callers fall back to PyTorch)."""


# --- the CPU ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def cpu_info() -> dict[str, Any]:
    """The CPU's model name and the flags that matter for these kernels."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name":
                    name = value.strip()
                elif key == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")
    return {"model": name, "flags": sorted(f for f in wanted if f in flags), "cores": os.cpu_count()}


def cpu_has_bf16() -> bool:
    """True on CPUs with native bf16 matmuls (AMX or AVX512-BF16); emulated bf16
    elsewhere is several times slower than fp32, so autocast stays off there."""
    flags = set(cpu_info()["flags"])
    if os.environ.get("QA_BF16") == "0":
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def bf16_autocast(enabled: bool = True):
    """bf16 autocast on CPUs that have it (about 3x faster with AMX), else a no-op."""
    import torch

    if enabled and cpu_has_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# --- files ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _file_sha256(path: str, size: int, mtime: float) -> str:
    return sha256_file(path)


def file_sha256(path: Path) -> str:
    """sha256 of a file (cached per path/size/mtime: weights and graphs are large)."""
    st = Path(path).stat()
    return _file_sha256(str(path), st.st_size, st.st_mtime)


# --- the two models ---------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """One model to run: its folder, its weights' hash and what kind it is.

    ``role`` "embedder": the graph outputs mean-pooled, unit-length embeddings
    (what sentence-transformers' Transformer+Pooling(mean)+Normalize compute);
    ``role`` "reader": start and end logits of a BertForQuestionAnswering.
    """

    role: str
    model_dir: Path
    weights_sha256: str

    def torch_module(self, export: bool = False):
        """The model as a torch module taking ``INPUTS`` and returning a tuple of
        tensors (eager attention for export: the ONNX fusions expect it)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoModelForQuestionAnswering

        kw: dict[str, Any] = {"local_files_only": True, "dtype": torch.float32}
        if export:
            kw["attn_implementation"] = "eager"
        try:
            if self.role == "embedder":
                return _MeanPooled(AutoModel.from_pretrained(str(self.model_dir), **kw)).eval()
            return _QaLogits(AutoModelForQuestionAnswering.from_pretrained(str(self.model_dir), **kw)).eval()
        except Exception as e:  # noqa: BLE001 - any loading failure is the model's problem
            raise ModelError(f"the {self.role} at {self.model_dir} could not be loaded: {e}") from e


def _torch_classes():
    import torch

    class MeanPooled(torch.nn.Module):
        """BERT + masked mean pooling + L2 normalisation (all-MiniLM-L6-v2's modules)."""

        def __init__(self, bert) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            v = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return (torch.nn.functional.normalize(v.float(), p=2.0, dim=-1),)

    class QaLogits(torch.nn.Module):
        """BertForQuestionAnswering with plain tuple outputs (start, end)."""

        def __init__(self, qa_model) -> None:
            super().__init__()
            self.qa_model = qa_model

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.qa_model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.start_logits, out.end_logits

    return MeanPooled, QaLogits


def _MeanPooled(bert):
    return _torch_classes()[0](bert)


def _QaLogits(qa_model):
    return _torch_classes()[1](qa_model)


def wrap_reader_model(qa_model):
    """A loaded ``BertForQuestionAnswering`` (training's validation) as a reader module."""
    return _QaLogits(qa_model)


# --- runners ---------------------------------------------------------------------------


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

    def __init__(self, module, bf16: bool = False, threads: int = 0) -> None:
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


# --- export (cached) ----------------------------------------------------------------------


def _versions() -> dict[str, str]:
    import onnxruntime
    import torch
    import transformers

    return {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "transformers": transformers.__version__, "export": str(_EXPORT_FORMAT)}


def onnx_path(spec: ModelSpec, kind: str, cache_dir: Path) -> Path:
    """Where the graph of ``kind`` ("onnx" or "onnx-int8") for these weights is cached."""
    v = _versions()
    tag = hashlib.sha256(json.dumps(v, sort_keys=True).encode()).hexdigest()[:8]
    return Path(cache_dir) / f"{spec.role}-{spec.weights_sha256[:16]}-{kind}-{tag}.onnx"


def ensure_onnx(spec: ModelSpec, kind: str, cache_dir: Path) -> Path:
    """The cached ONNX graph of ``kind``, exported (and quantised) now if missing.

    One process builds it under a file lock while others wait; each file is
    written under a temporary name and renamed into place, so a crash leaves no
    half file that a later run could load.
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
            _export_fp32(spec, fp32)
        if kind == "onnx-int8":
            _quantize(fp32, target)
    return target


def _tmp_beside(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem + ".", suffix=".tmp.onnx")
    os.close(fd)
    os.chmod(tmp, 0o644)  # readable like any other cache file once renamed into place
    return Path(tmp)


def _export_fp32(spec: ModelSpec, target: Path) -> None:
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


# --- choosing ---------------------------------------------------------------------------


def candidates(config: EngineConfig, role: str, bf16: bool = True) -> list[str]:
    """Engines ``auto`` times for ``role`` on this machine, PyTorch fp32 first."""
    out = ["torch"]
    if bf16 and cpu_has_bf16():
        out.append("torch-bf16")
    out.append("onnx")
    if role in config.int8:
        out.append("onnx-int8")
    return out


def _probe_feeds(role: str, config: EngineConfig) -> dict[str, np.ndarray]:
    """A fixed batch shaped like real work (``EngineConfig.probe_embedder`` / ``probe_reader``): as many
    rows as one real model call takes. With 8 rows the probe had the reader 1.53x cheaper on ONNX,
    while on real SQuAD windows read 32 at a time it was 1.02x (docs/engine.md): a small batch
    overstates an engine whose gain is per-call overhead."""
    batch, length = config.probe_embedder if role == "embedder" else config.probe_reader
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 29000, size=(batch, length), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102
    types = np.zeros_like(ids)
    if role == "reader":
        types[:, 24:] = 1
    return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": types}


def cpu_seconds(run: Callable[[], Any], repeats: int = 3) -> float:
    """Least process CPU time of ``repeats`` calls after one warm-up call: CPU
    time, unlike wall time, barely moves when other processes load the machine."""
    run()
    best = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        run()
        best = min(best, time.process_time() - t)
    return best


def _choice_key(spec: ModelSpec, config: EngineConfig, names: Sequence[str]) -> str:
    import torch

    torch_threads = config.threads or torch.get_num_threads()
    data = {"cpu": cpu_info(), "versions": _versions(), "weights": spec.weights_sha256, "role": spec.role,
            "threads": torch_threads, "candidates": list(names),
            "probe": list(config.probe_embedder if spec.role == "embedder" else config.probe_reader)}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:24]


def measure(spec: ModelSpec, config: EngineConfig, names: Sequence[str],
            build: Callable[[str], Runner]) -> dict[str, float]:
    """CPU seconds of one probe batch per engine (engines that fail are left out)."""
    feeds = _probe_feeds(spec.role, config)
    out: dict[str, float] = {}
    for name in names:
        try:
            runner = build(name)
            out[name] = cpu_seconds(lambda: runner(feeds))
        except (EngineError, ImportError) as e:
            log.warning("engine %s unavailable for the %s: %s", name, spec.role, e)
    return out


def pick(times: dict[str, float], min_speedup: float) -> str:
    """The cheapest engine, but PyTorch fp32 unless another is ``min_speedup`` times cheaper."""
    if not times:
        return "torch"
    best = min(times, key=times.get)
    base = times.get("torch")
    if base is None or best == "torch" or base / times[best] >= min_speedup:
        return best
    return "torch"


_choice_lock = threading.Lock()
_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def load_runner(spec: ModelSpec, config: EngineConfig | None = None, bf16: bool = True, module=None) -> Runner:
    """The runner for ``spec`` under ``config`` (kind from ``QA_ENGINE`` if set).

    ``bf16``: bf16 autocast allowed (used only on CPUs that have it).
    ``module``: an already loaded torch module to use for the PyTorch engines.
    """
    config = config or EngineConfig()
    kind = os.environ.get("QA_ENGINE") or config.kind
    if kind not in ENGINE_KINDS:
        raise EngineError(f"unknown engine {kind!r} (QA_ENGINE or EngineConfig.kind): "
                          f"one of {', '.join(ENGINE_KINDS)}")
    cache = Path(config.cache_dir).expanduser()
    torch_module: list[Any] = [module]

    def build(name: str) -> Runner:
        if name in ("torch", "torch-bf16"):
            if torch_module[0] is None:
                torch_module[0] = spec.torch_module()
            return TorchRunner(torch_module[0], bf16=name == "torch-bf16", threads=config.threads)
        return OrtRunner(ensure_onnx(spec, name, cache), name, threads=config.threads)

    if kind == "auto":
        kind = choose(spec, config, build, bf16)
    if kind == "torch-bf16" and not (bf16 and cpu_has_bf16()):
        kind = "torch"  # bf16 without hardware support is emulated and slow
    try:
        return build(kind)
    except (EngineError, ImportError) as e:
        if kind in ("torch", "torch-bf16"):
            raise
        _warn_once(f"{spec.role}:{kind}", f"the {kind} engine failed for the {spec.role} ({e}); using PyTorch fp32")
        return build("torch")


def choose(spec: ModelSpec, config: EngineConfig, build: Callable[[str], Runner], bf16: bool = True) -> str:
    """``auto``: the measured choice for this machine, cached in the engines folder."""
    names = candidates(config, spec.role, bf16)
    if len(names) == 1:
        return names[0]
    cache = Path(config.cache_dir).expanduser() / "choices.json"
    key = _choice_key(spec, config, names)
    with _choice_lock:
        choices = _read_choices(cache)
        if key in choices:
            return choices[key]["engine"]
        try:
            from filelock import FileLock

            cache.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(cache) + ".lock", timeout=1800):
                choices = _read_choices(cache)
                if key in choices:
                    return choices[key]["engine"]
                times = measure(spec, config, names, build)
                engine = pick(times, config.min_speedup)
                choices[key] = {"engine": engine, "cpu_seconds": times, "role": spec.role,
                                "cpu": cpu_info()["model"], "measured": time.strftime("%Y-%m-%d %H:%M:%S")}
                atomic_write_json(cache, choices)
        except OSError as e:  # a read-only home: measure every time rather than fail
            log.warning("engine choice not cached (%s)", e)
            engine = pick(measure(spec, config, names, build), config.min_speedup)
        log.info("%s engine: %s", spec.role, engine)
        return engine


def _read_choices(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}
