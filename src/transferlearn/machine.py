"""What this machine is, for every latency or throughput figure: CPU model, instruction-set flags, cores,
and a context that sets torch's thread count for a measurement and restores it afterwards."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile")


def cpu_info() -> dict:
    cpu, flags = platform.processor() or "unknown", []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                flags = [f for f in ISA_FLAGS if f in have]
                break
    except OSError:
        pass
    return {"cpu": cpu, "isa_flags": flags, "cores": os.cpu_count()}


def has_vnni() -> bool:
    return any("vnni" in flag or flag == "amx_tile" for flag in cpu_info()["isa_flags"])


def has_cpu_bf16() -> bool:
    """Native bfloat16 arithmetic (AVX512-BF16 or AMX): where bf16 autocast speeds a CPU up instead of slowing it."""
    return any(flag in ("avx512_bf16", "amx_tile") for flag in cpu_info()["isa_flags"])


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """torch's intra-op thread count set to ``threads`` inside the block, restored after it."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
