"""What a new user gets: ``tl train --data D --model M`` with no other flag, on every shared dataset.

Per dataset it prints the default run's score (test, else validation) and wall time, the built-in baseline on the
same split, and the best score recorded for that dataset in ``benchmarks/results/`` by a hand-picked recipe (as
recorded there: its split and hardware are named beside it). Each run is the real command in a fresh process.

    python benchmarks/defaults.py [--only smsa,fsdd] [--output runs/defaults]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, SHARED_DATA, run_tl, write_result  # noqa: E402


def _recorded(name: str, path: list[str]) -> float | None:
    file = RESULTS / f"{name}.json"
    if not file.exists():
        return None
    value = json.loads(file.read_text())
    for key in path:
        value = value[key]
    return float(value)


# dataset -> (data folder, model, extra flags a user must give, the hand-picked best as recorded)
DATASETS = {
    "smsa": ("smsa", "offline:e5-small-multilingual", [],
             [("best CPU result at any cost (full fine-tune, all data, 3 epochs, 48 min)", "test macro-F1",
               ("smsa_e5_full", ["test_macro_f1"])),
              ("GPU best (H100, full, 5 epochs at 3e-5)", "test macro-F1", (None, 0.884))]),
    "fsdd": ("fsdd/recordings", "offline:whisper-tiny-en", ["--label-from-filename", r"^(\d)_"],
             [("cached linear probe, official split (test)", "test accuracy", ("fsdd", ["official_test_accuracy"])),
              ("speaker held out, mean", "test accuracy", ("fsdd", ["speaker_held_out_mean_accuracy"]))]),
    "speech_commands_mini": ("speech_commands_mini", "offline:whisper-base", [],
                             [("whisper-base probe-then-finetune", "test accuracy",
                               ("speech_commands_mini", ["best_test_accuracy"]))]),
    "hymenoptera": ("hymenoptera", "offline:efficientnet-lite0", [],
                    [("cached linear probe", "validation accuracy", ("hymenoptera", ["best_validation_accuracy"]))]),
    "fashion_mnist_subset": ("fashion_mnist_subset", "offline:efficientnet-lite0", [],
                             [("LP-FT at 100 % (image size 64)", "test accuracy",
                               ("fashion_mnist", ["arms", "EfficientNet-Lite0 LP-FT", "1", "test_accuracy"]))]),
}


def run_one(name: str, output: Path) -> dict:
    folder, model, flags, best = DATASETS[name]
    out = output / name
    command = ["tl", "train", "--data", str(SHARED_DATA / folder), "--model", model, *flags, "--output", str(out),
               "--overwrite"]
    start = time.time()
    proc, wall = run_tl(command)
    if proc.returncode != 0:
        return {"command": " ".join(command), "error": proc.stderr[-2000:], "wall_time_s": round(wall, 1)}
    metrics = json.loads((out / "metrics.json").read_text())
    split = "test" if "test" in metrics else "validation"
    plan = json.loads((out / "plan.json").read_text())
    auto = metrics["train"].get("auto", {})
    recorded = []
    for label, metric, (file, path) in best:
        value = path if file is None else _recorded(file, path)
        recorded.append({"recipe": label, "metric": metric, "value": value})
    return {
        "command": " ".join(command), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
        "split": split, "wall_time_s": round(wall, 1), "precision": plan.get("updates", {}).get("precision"),
        "budget_s": plan.get("budget_s"), "estimate_s": plan.get("estimate_s"),
        "accuracy": metrics[split]["accuracy"], "macro_f1": metrics[split]["macro_f1"],
        "baseline": {"name": metrics.get("baseline", {}).get("name"),
                     "accuracy": metrics.get("baseline", {}).get(split, {}).get("accuracy"),
                     "macro_f1": metrics.get("baseline", {}).get(split, {}).get("macro_f1")},
        "auto": {"winner": auto.get("winner"), "why": auto.get("why"),
                 "candidates": [{k: c.get(k) for k in ("name", "strategy", "epochs", "validation", "seconds", "skipped")}
                                for c in auto.get("candidates", [])]},
        "train_rows": metrics["train"]["num_samples"], "recorded_best": recorded, "run_folder": str(out),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated dataset names", default=",".join(DATASETS))
    parser.add_argument("--output", type=Path, default=Path("runs/defaults"))
    parser.add_argument("--tag", default="", help="suffix of the results file")
    args = parser.parse_args()
    name = "defaults" + (f"_{args.tag}" if args.tag else "")
    previous = RESULTS / f"{name}.json"
    rows = json.loads(previous.read_text())["datasets"] if previous.exists() else {}  # a re-run replaces its rows
    for dataset in args.only.split(","):
        rows[dataset] = run_one(dataset, args.output)
        write_result(name, {"datasets": rows, "goal": "every default run above its baseline, inside the default "
                            "15-minute CPU budget, and within 1 point of the best hand-picked CPU result that fits it"})
        print(json.dumps({dataset: rows[dataset]}, indent=1)[:1500], flush=True)
    print("\n| dataset | split | default acc | default macro-F1 | wall s | baseline acc | recorded best | winner |")
    print("|---|---|---|---|---|---|---|---|")
    for dataset, r in rows.items():
        if "error" in r:
            print(f"| {dataset} | error: {r['error'][-200:]} |")
            continue
        best = "; ".join(f"{b['recipe']}: {b['metric']} {b['value']:.3f}" for b in r["recorded_best"] if b["value"])
        print(f"| {dataset} | {r['split']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['wall_time_s']:.0f} | "
              f"{r['baseline']['accuracy']:.4f} | {best} | {r['auto']['winner']} |")
    above = [d for d, r in rows.items() if "error" not in r and r["accuracy"] > r["baseline"]["accuracy"]]
    print(f"default runs above their baseline: {len(above)} of {len(rows)}")


if __name__ == "__main__":
    main()
