"""Shared by the benchmark scripts: machine facts and the results file."""

from __future__ import annotations

import csv
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def machine() -> dict:

    import torch

    from transferlearn.machine import cpu_info  # one reader of /proc/cpuinfo for tl bench and benchmarks

    info = {**cpu_info(), "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def write_result(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": name, "command": " ".join(shlex.quote(a) for a in [sys.executable.split("/")[-1]] + sys.argv),
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(), **payload}
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)
    return path


def run_tl(command: list[str]) -> tuple[subprocess.CompletedProcess, float]:
    """``tl ARGS`` (``command[0]`` is "tl") as the real CLI in a fresh process, offline: (the process, wall seconds)."""
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", "transferlearn.cli", *command[1:]], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return proc, time.time() - start


def import_training_stack() -> None:
    """Import what a run uses before any clock starts: otherwise the first run timed in a process alone pays
    ~10-15 s of one-off imports (transformers' Trainer, timm, matplotlib) that later runs get for free."""
    import importlib

    for module in ("transferlearn.train.engine", "transferlearn.train.probe", "transferlearn.models.image",
                   "transferlearn.models.text", "transferlearn.report.html", "timm"):
        importlib.import_module(module)


def read_tsv(path: Path) -> list[list[str]]:
    """Rows of a headerless TSV as written by IndoNLU (SmSA): no quoting."""
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def write_tsv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\", lineterminator="\n").writerows(rows)
