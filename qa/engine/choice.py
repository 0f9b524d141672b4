"""Which engine runs a model: ``load_runner``, and ``auto``'s measured choice.

Which engine is cheapest depends on the CPU, so ``auto`` does not guess: it
times every candidate on the same batch shaped like one real call, in *process
CPU time* (stable under other processes' load), and leaves PyTorch only for a
candidate at least ``EngineConfig.min_speedup`` times cheaper. The choice is
cached in ``choices.json`` per CPU model/flags, versions, threads, weights and
probe shape. Any failure of an ONNX engine falls back to PyTorch fp32 with one
warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from qa._files import atomic_write_json
from qa.config import ENGINE_KINDS, EngineConfig
from qa.engine.cpu import cpu_has_bf16, cpu_info
from qa.engine.export import ensure_onnx, library_versions
from qa.engine.models import EngineError, ModelSpec
from qa.engine.runners import OrtRunner, Runner, TorchRunner

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: ``measure``'s signature: (spec, config, engine names, build runner by name) -> CPU seconds per engine.
Measure = Callable[[ModelSpec, EngineConfig, Sequence[str], Callable[[str], Runner]], dict[str, float]]


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
    rows as one real model call takes (``qa.config.READER_BATCH`` / ``EMBED_BATCH``). When the reader
    read 32 windows a call, an 8-row probe had it 1.53x cheaper on ONNX against 1.02x on real SQuAD
    windows (docs/engine.md): a probe of another shape than the real calls misjudges engines whose
    gain is per-call overhead."""
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
    data = {"cpu": cpu_info(), "versions": library_versions(), "weights": spec.weights_sha256, "role": spec.role,
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


def load_runner(spec: ModelSpec, config: EngineConfig | None = None, bf16: bool = True,
                module: torch.nn.Module | None = None, measure: Measure = measure) -> Runner:
    """The runner for ``spec`` under ``config`` (kind from ``QA_ENGINE`` if set).

    ``bf16``: bf16 autocast allowed (used only on CPUs that have it).
    ``module``: an already loaded torch module to use for the PyTorch engines.
    ``measure``: how ``auto`` times the candidates (tests pass a fake).
    """
    config = config or EngineConfig()
    kind = os.environ.get("QA_ENGINE") or config.kind
    if kind not in ENGINE_KINDS:
        raise EngineError(f"unknown engine {kind!r} (QA_ENGINE or EngineConfig.kind): "
                          f"one of {', '.join(ENGINE_KINDS)}")
    cache = Path(config.cache_dir).expanduser()
    torch_module: list[torch.nn.Module | None] = [module]

    def build(name: str) -> Runner:
        if name in ("torch", "torch-bf16"):
            if torch_module[0] is None:
                torch_module[0] = spec.torch_module()
            return TorchRunner(torch_module[0], bf16=name == "torch-bf16", threads=config.threads)
        return OrtRunner(ensure_onnx(spec, name, cache), name, threads=config.threads)

    if kind == "auto":
        kind = choose(spec, config, build, bf16, measure=measure)
    if kind == "torch-bf16" and not (bf16 and cpu_has_bf16()):
        kind = "torch"  # bf16 without hardware support is emulated and slow
    try:
        return build(kind)
    except (EngineError, ImportError) as e:
        if kind in ("torch", "torch-bf16"):
            raise
        _warn_once(f"{spec.role}:{kind}", f"the {kind} engine failed for the {spec.role} ({e}); using PyTorch fp32")
        return build("torch")


def choose(spec: ModelSpec, config: EngineConfig, build: Callable[[str], Runner], bf16: bool = True,
           measure: Measure = measure) -> str:
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
                                "weights": spec.weights_sha256, "candidates": list(names),
                                "cpu": cpu_info()["model"], "measured": time.strftime("%Y-%m-%d %H:%M:%S")}
                atomic_write_json(cache, choices)
        except OSError as e:  # a read-only home: measure every time rather than fail
            log.warning("engine choice not cached (%s)", e)
            engine = pick(measure(spec, config, names, build), config.min_speedup)
        log.info("%s engine: %s", spec.role, engine)
        return engine


def measured_choices(config: EngineConfig, weights_sha256: str,
                     names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """``auto``'s recorded measurements for these weights on this CPU, newest first
    (what ``qa info`` shows next to the engine that runs); with ``names``, only those
    that timed exactly these candidates (``candidates(...)``): a run with ``QA_BF16=0``
    or int8 allowed records another choice for the same weights."""
    cpu = cpu_info()["model"]
    records = _read_choices(Path(config.cache_dir).expanduser() / "choices.json").values()
    mine = [r for r in records if isinstance(r, dict) and r.get("weights") == weights_sha256 and r.get("cpu") == cpu
            and (names is None or r.get("candidates") == list(names))]
    return sorted(mine, key=lambda r: str(r.get("measured", "")), reverse=True)


def _read_choices(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}
