"""Time to accuracy on SmSA: ``tl train`` with its defaults vs the ``run_classification.py`` recipe on the HF Trainer.

Same backbone (multilingual-e5-small, the offline weights), same data, same seed (42). Each side runs as a fresh
process (imports, loading and tokenisation are part of a user's wall time). The figure is the wall time until each
side first reaches the same validation macro-F1: the lower of the two finals.

- The HF side (``_hf_run_classification.py``): pad to 128, batch 8, 5e-5, 3 epochs. It evaluates every
  ``--eval-steps`` only so the benchmark can see when the target was reached; those evaluations' own runtimes are
  subtracted from its wall time (the example evaluates once, at the end), which favours the HF side.
- The tl side: ``tl train --data D --model M`` and nothing else (``auto``, the default 15 min CPU budget). Its
  validation scores come with wall clock times: the probe's in ``auto.json``, every epoch's in the candidates'
  ``history.jsonl``. Nothing is subtracted: its evaluations are part of how it chooses.

The full training split (11,000 rows, 3 epochs at pad 128 is ~1 h on 2 cores) does not fit the session; the default
is a stratified subset of ``--train-rows`` (2,000) training rows with the full validation set (1,260), written
outside the repository (``--work``), never into it.

    python benchmarks/time_to_accuracy_smsa.py [--train-rows 2000] [--work runs/tta]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import SHARED_DATA, read_tsv, write_result, write_tsv  # noqa: E402

MODEL = "offline:e5-small-multilingual"


def make_subset(work: Path, train_rows: int) -> Path:
    """A stratified sample of the training split (seed 0), the validation and test files as they are."""
    source = SHARED_DATA / "smsa"
    by_label = defaultdict(list)
    for row in read_tsv(source / "train_preprocess.tsv"):
        by_label[row[1]].append(row)
    everything = sum(len(v) for v in by_label.values())
    rng = random.Random(0)
    sample = []
    for label in sorted(by_label):
        sample += rng.sample(by_label[label], round(train_rows * len(by_label[label]) / everything))
    rng.shuffle(sample)
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    write_tsv(data / "train.tsv", sample)
    write_tsv(data / "valid.tsv", read_tsv(source / "valid_preprocess.tsv"))
    write_tsv(data / "test.tsv", read_tsv(source / "test_preprocess.tsv"))
    return data


def run_hf(model_dir: Path, data: Path, work: Path, eval_steps: int) -> tuple[list[dict], float, float]:
    out = work / "hf"
    launched = time.time()
    subprocess.run([sys.executable, str(Path(__file__).parent / "_hf_run_classification.py"), "--model", str(model_dir),
                    "--data", str(data), "--out", str(out), "--eval-steps", str(eval_steps)], check=True,
                   env={**os.environ, "HF_HUB_OFFLINE": "1"})
    timeline = json.loads((out / "timeline.json").read_text())
    points, evaluating = [], 0.0
    for p in timeline["points"]:
        evaluating += p["eval_runtime_s"]
        points.append({"seconds": round(p["wall_time"] - launched - evaluating, 1), "step": p["step"],
                       "macro_f1": round(p["macro_f1"], 4), "what": f"step {p['step']}"})
    return points, round(timeline["finished_at"] - launched, 1), round(evaluating, 1)


def run_tl(data: Path, work: Path) -> tuple[list[dict], float, dict]:
    out = work / "tl"
    launched = time.time()
    subprocess.run([sys.executable, "-m", "transferlearn.cli", "train", "--data", str(data), "--model", MODEL,
                    "--output", str(out), "--overwrite"], check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = round(time.time() - launched, 1)
    auto = json.loads((out / "auto.json").read_text())
    probe = auto["candidates"][0]
    points = [{"seconds": round(auto["started_at"] + probe["seconds"] - launched, 1), "macro_f1": probe["validation"],
               "what": "linear probe"}]
    for candidate in auto["candidates"][1:]:
        history = out / "auto" / candidate["name"] / "history.jsonl"
        if not history.exists():
            continue
        for line in history.read_text().splitlines():
            record = json.loads(line)
            if "eval_macro_f1" in record:
                points.append({"seconds": round(record["wall_time"] - launched, 1), "step": record["step"],
                               "macro_f1": round(record["eval_macro_f1"], 4),
                               "what": f"{candidate['name']} epoch {record['epoch']:g}"})
    points.sort(key=lambda p: p["seconds"])
    return points, wall, {"winner": auto["winner"], "why": auto["why"], "final": max(p["macro_f1"] for p in points)}


def first_reaching(points: list[dict], target: float) -> dict | None:
    return next((p for p in points if p["macro_f1"] >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-rows", type=int, default=2000)
    parser.add_argument("--eval-steps", type=int, default=125)
    parser.add_argument("--work", type=Path, default=Path("runs/tta"))
    args = parser.parse_args()

    from transferlearn.models.zoo import resolve_offline

    model_dir = resolve_offline(MODEL)
    data = make_subset(args.work, args.train_rows)
    hf_points, hf_wall, hf_eval = run_hf(model_dir, data, args.work, args.eval_steps)
    tl_points, tl_wall, tl_auto = run_tl(data, args.work)
    hf_final = hf_points[-1]["macro_f1"]
    target = min(hf_final, tl_auto["final"])
    hf_hit, tl_hit = first_reaching(hf_points, target), first_reaching(tl_points, target)
    ratio = round(tl_hit["seconds"] / hf_hit["seconds"], 3)
    path = write_result("time_to_accuracy_smsa", {
        "data": f"SmSA, a stratified {args.train_rows}-row subset of train (seed 0), the full validation (1,260)",
        "model": MODEL, "target_macro_f1": target,
        "hf_recipe": {"final_macro_f1": hf_final, "reached_at_s": hf_hit["seconds"], "wall_time_s": hf_wall,
                      "evaluation_s_subtracted": hf_eval, "timeline": hf_points},
        "tl_defaults": {"final_macro_f1": tl_auto["final"], "reached_at_s": tl_hit["seconds"], "reached_by": tl_hit["what"],
                        "wall_time_s": tl_wall, "winner": tl_auto["winner"], "why": tl_auto["why"], "timeline": tl_points},
        "ratio_tl_over_hf": ratio, "goal": "<= 0.5"})
    print(f"HF recipe: final validation macro-F1 {hf_final:.4f}, wall {hf_wall:.0f} s ({hf_eval:.0f} s of evaluation left out)")
    print(f"tl defaults: final {tl_auto['final']:.4f}, wall {tl_wall:.0f} s, kept {tl_auto['winner']}")
    print(f"target {target:.4f}: HF at {hf_hit['seconds']:.0f} s, tl at {tl_hit['seconds']:.0f} s ({tl_hit['what']})")
    print(f"wrote {path}")
    print(f"time to macro-F1 {target:.4f}, tl / HF recipe: {ratio:.2f}x (goal <= 0.5)")


if __name__ == "__main__":
    main()
