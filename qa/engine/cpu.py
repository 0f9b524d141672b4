"""The CPU: its model and flags, and the bf16 probe both models and training use.

bf16 is fast only where the CPU multiplies in bf16 natively (AMX, AVX512-BF16);
elsewhere it is emulated and several times slower than fp32, so one probe here
decides for the embedder, the reader and training alike.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
from typing import Any

#: The flags that matter for these kernels (recorded with every measured choice).
_WANTED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8",
                 "amx_tile")


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
    return {"model": name, "flags": sorted(f for f in _WANTED_FLAGS if f in flags), "cores": os.cpu_count()}


def cpu_has_bf16() -> bool:
    """True on CPUs with native bf16 matmuls (AMX or AVX512-BF16); emulated bf16
    elsewhere is several times slower than fp32, so autocast stays off there."""
    flags = set(cpu_info()["flags"])
    if os.environ.get("QA_BF16") == "0":
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def bf16_autocast(enabled: bool = True) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CPUs that have it (about 3x faster with AMX), else a no-op."""
    import torch

    if enabled and cpu_has_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
