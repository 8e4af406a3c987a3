"""Memory and time as the data grows: SmSA's training split replicated 1x, 2x and 4x (validation and test as they
are), each trained by ``tl train --strategy linear-probe`` in its own process with a cold feature cache. Reports the
process's peak RSS (``wait4``'s ru_maxrss) and the wall time of the backbone's pass over the training rows (from
the run's metrics.json), as ratios to 1x. The goal: peak RSS within 1.2x from 1x to 4x (features are written to a
memory-mapped file as they are computed and the probe reads them from it), time linear in the rows.

    python benchmarks/scaling.py [--scales 1,2,4] [--model offline:e5-small-multilingual]

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
    began = time.time()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.stderr.write(child.stderr.read()[-4000:])
    return time.time() - began, usage.ru_maxrss / 1024, child.returncode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scales", default="1,2,4")
    parser.add_argument("--model", default="offline:e5-small-multilingual")
    parser.add_argument("--output", default="runs/scaling")
    args = parser.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    out = Path(args.output)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tl-scaling-") as tmp:
        for scale in scales:
            data = replicate(scale, Path(tmp))
            run = out / f"linear-probe-x{scale}"
            env = {**os.environ, "TL_CACHE_DIR": str(Path(tmp) / f"cache-x{scale}"), "HF_HUB_OFFLINE": "1"}
            command = [sys.executable, "-m", "transferlearn.cli", "train", "--data", str(data), "--model", args.model,
                       "--strategy", "linear-probe", "--output", str(run), "--overwrite", "--set", "baseline=false",
                       "--set", "progress=false"]
            wall, rss, code = run_measured(command, env)
            if code != 0:
                raise SystemExit(f"x{scale}: tl train failed ({code})")
            metrics = json.loads((run / "metrics.json").read_text())
            cache = metrics["train"]["feature_cache"]
            row = {"scale": scale, "train_rows": metrics["train"]["num_samples"], "wall_s": round(wall, 1),
                   "peak_rss_mib": round(rss, 1), "train_features_s": cache["train"]["seconds"],
                   "probe_s": metrics["train"].get("probe", {}).get("seconds"),
                   "test_macro_f1": metrics["test"]["macro_f1"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
            shutil.rmtree(data)
    base = rows[0]
    ratios = [{"scale": r["scale"], "rows": round(r["train_rows"] / base["train_rows"], 2),
               "peak_rss": round(r["peak_rss_mib"] / base["peak_rss_mib"], 3),
               "train_features_time": round(r["train_features_s"] / base["train_features_s"], 2),
               "wall": round(r["wall_s"] / base["wall_s"], 2)} for r in rows]
    top = ratios[-1]
    write_result("scaling_smsa", {
        "dataset": "smsa (train_preprocess.tsv replicated)", "model": args.model, "strategy": "linear-probe",
        "runs": rows, "ratios_to_1x": ratios,
        "goal": "peak RSS <= 1.2x from 1x to 4x; time linear in rows",
        "memory_flat": top["peak_rss"] <= 1.2,
        "notes": ["each scale in its own process with a cold feature cache; the probe (L-BFGS) reads the memory-mapped "
                  "features; validation and test are the same at every scale"]})
    print(f"scaling x{top['scale']}: peak RSS {top['peak_rss']}x, training-feature time {top['train_features_time']}x "
          f"for {top['rows']}x the rows")


if __name__ == "__main__":
    main()
