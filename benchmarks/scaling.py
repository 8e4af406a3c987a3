"""Memory and time as the data grows: SmSA's training split replicated 1x, 2x and 4x (validation and test as they
are), each trained by ``tl train --strategy linear-probe`` in its own process with a cold feature cache. Reports the
process's peak RSS (``wait4``'s ru_maxrss) and the wall time of the backbone's pass over the training rows (from
the run's metrics.json), as ratios to 1x. The goal: peak RSS within 1.2x from 1x to 4x (features are written to a
memory-mapped file as they are computed and the probe reads them from it), time linear in the rows.

The same for a streamed fine-tune (``--set streaming=true --strategy full``) over a fixed number of steps: the
training rows are never held, so memory stays that of the model and one shuffle buffer; the time is the steps'
plus one counting pass over the rows (linear in them, and small).

    python benchmarks/scaling.py [--scales 1,2,4] [--model offline:e5-small-multilingual] [--part probe|stream|both]

The replicated copies live in a temporary folder and are deleted afterwards (the data is never copied into the
repository).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, read_tsv, write_result, write_tsv  # noqa: E402

SMSA = SHARED_DATA / "smsa"


def replicate(scale: int, into: Path) -> Path:
    folder = into / f"smsa-x{scale}"
    folder.mkdir(parents=True)
    write_tsv(folder / "train_preprocess.tsv", read_tsv(SMSA / "train_preprocess.tsv") * scale)
    for name in ("valid_preprocess.tsv", "test_preprocess.tsv"):
        shutil.copyfile(SMSA / name, folder / name)
    return folder


def run_measured(command: list[str], env: dict) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MiB, exit status) of one child process."""
    # stderr to a file, not a pipe: wait4 reads nothing until the child ends, and a full pipe would stall it
    with tempfile.TemporaryFile(mode="w+") as log:
        began = time.time()
        child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            log.seek(0)
            sys.stderr.write(log.read()[-4000:])
    return time.time() - began, usage.ru_maxrss / 1024, code


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scales", default="1,2,4")
    parser.add_argument("--model", default="offline:e5-small-multilingual")
    parser.add_argument("--output", default="runs/scaling")
    parser.add_argument("--part", choices=("probe", "stream", "both"), default="both")
    parser.add_argument("--stream-steps", type=int, default=30)
    args = parser.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    lines = []
    if args.part in ("probe", "both"):
        lines.append(probe_part(scales, args.model, Path(args.output)))
    if args.part in ("stream", "both"):
        lines.append(stream_part(scales, args.model, Path(args.output), args.stream_steps))
    print("; ".join(lines))


def _measure(scales: list[int], name: str, train_args: list[str], model: str, out: Path, describe) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="tl-scaling-") as tmp:
        for scale in scales:
            data = replicate(scale, Path(tmp))
            run = out / f"{name}-x{scale}"
            env = {**os.environ, "TL_CACHE_DIR": str(Path(tmp) / f"cache-x{scale}"), "HF_HUB_OFFLINE": "1"}
            command = [sys.executable, "-m", "transferlearn.cli", "train", "--data", str(data), "--model", model,
                       "--output", str(run), "--overwrite", "--set", "baseline=false", "--set", "progress=false",
                       *train_args]
            wall, rss, code = run_measured(command, env)
            if code != 0:
                raise SystemExit(f"{name} x{scale}: tl train failed ({code})")
            metrics = json.loads((run / "metrics.json").read_text())
            row = {"scale": scale, "train_rows": metrics["train"]["num_samples"], "wall_s": round(wall, 1),
                   "peak_rss_mib": round(rss, 1), **describe(metrics), "test_macro_f1": metrics["test"]["macro_f1"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
            shutil.rmtree(data)
    return rows


def _ratios(rows: list[dict], timed: str) -> list[dict]:
    base = rows[0]
    return [{"scale": r["scale"], "rows": round(r["train_rows"] / base["train_rows"], 2),
             "peak_rss": round(r["peak_rss_mib"] / base["peak_rss_mib"], 3),
             timed: round(r[timed + "_s"] / base[timed + "_s"], 2), "wall": round(r["wall_s"] / base["wall_s"], 2)}
            for r in rows]


def _write(name: str, model: str, strategy: str, rows: list[dict], timed: str, goal: str, note: str) -> dict:
    """The results file; returns the largest scale's ratios to 1x."""
    ratios = _ratios(rows, timed)
    write_result(name, {"dataset": "smsa (train_preprocess.tsv replicated)", "model": model, "strategy": strategy,
                        "runs": rows, "ratios_to_1x": ratios, "goal": goal,
                        "memory_flat": ratios[-1]["peak_rss"] <= 1.2, "notes": [note]})
    return ratios[-1]


def stream_part(scales: list[int], model: str, out: Path, steps: int) -> str:
    rows = _measure(scales, "stream-full", ["--strategy", "full", "--set", "streaming=true", "--set", f"max_steps={steps}",
                                            "--set", "batch_size=16", "--set", "max_length=128"], model, out,
                    lambda m: {"steps": m["train"]["steps"], "train_s": m["train"]["runtime_s"]})
    top = _write("scaling_smsa_streaming", model, f"full, streaming, max_steps={steps}, batch 16", rows, "train",
                 "peak RSS <= 1.2x from 1x to 4x; fixed steps: the training time stays flat",
                 "each scale in its own process; the wall time includes the one counting pass over the training rows, "
                 "validation (1,260 rows) and test (500 rows) scoring")
    return (f"streaming x{top['scale']}: peak RSS {top['peak_rss']}x, training time {top['train']}x, wall {top['wall']}x "
            f"for {top['rows']}x the rows")


def probe_part(scales: list[int], model: str, out: Path) -> str:
    rows = _measure(scales, "linear-probe", ["--strategy", "linear-probe"], model, out,
                    lambda m: {"train_features_s": m["train"]["feature_cache"]["train"]["seconds"],
                               "probe_s": m["train"].get("probe", {}).get("seconds")})
    top = _write("scaling_smsa", model, "linear-probe", rows, "train_features",
                 "peak RSS <= 1.2x from 1x to 4x; time linear in rows",
                 "each scale in its own process with a cold feature cache; the probe (L-BFGS) reads the memory-mapped "
                 "features; validation and test are the same at every scale")
    return (f"linear probe x{top['scale']}: peak RSS {top['peak_rss']}x, training-feature time "
            f"{top['train_features']}x for {top['rows']}x the rows")


if __name__ == "__main__":
    main()
