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


# What each library reads: torch its own setter; onnxruntime the session options (onnx_session asks
# current_threads()); Hugging Face tokenizers the TOKENIZERS_PARALLELISM / RAYON_NUM_THREADS variables (read when
# its thread pool starts, so set before the first batch is tokenized); OpenMP-built kernels OMP_NUM_THREADS.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "RAYON_NUM_THREADS")


def set_threads(threads: int | None) -> dict:
    """Set every library's thread count to ``threads`` (None: leave them as they are). Returns what it changed,
    for :func:`restore_threads`."""
    import torch

    before = {"torch": torch.get_num_threads(), "env": {name: os.environ.get(name) for name in THREAD_VARIABLES}}
    if threads:
        torch.set_num_threads(threads)
        for name in THREAD_VARIABLES:
            os.environ[name] = str(threads)
    return before


def restore_threads(before: dict) -> None:
    import torch

    torch.set_num_threads(before["torch"])
    for name, value in before["env"].items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def current_threads() -> int:
    """The thread count in force: what torch uses (its default is the usable physical cores)."""
    import torch

    return torch.get_num_threads()


@contextlib.contextmanager
def thread_settings(threads: int | None):
    """torch, onnxruntime, tokenizer and OpenMP threads set to ``threads`` inside the block, restored after it."""
    before = set_threads(threads)
    try:
        yield
    finally:
        restore_threads(before)
