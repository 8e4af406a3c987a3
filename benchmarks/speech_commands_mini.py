"""Speech Commands mini (30 words, 205 training clips, official validation/testing lists): strategies compared.

    python benchmarks/speech_commands_mini.py [--only NAME,...] [--device cpu|cuda]

Goal (issue 5): test accuracy >= 0.80 with the best strategy. Clips are 1 s, so Whisper's encoder window
is truncated to 50 positions (see models/audio.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, write_result  # noqa: E402

ARMS: dict[str, dict] = {
    "whisper-tiny-en linear-probe": {"model": "offline:whisper-tiny-en", "strategy": "linear-probe", "epochs": 40,
                                     "lr": 3e-3},
    "whisper-base linear-probe": {"model": "offline:whisper-base", "strategy": "linear-probe", "epochs": 40, "lr": 3e-3},
    "whisper-base probe-then-finetune": {"model": "offline:whisper-base", "strategy": "probe-then-finetune:40",
                                         "epochs": 15, "lr": 5e-5, "augment": "light"},
    "whisper-base full": {"model": "offline:whisper-base", "strategy": "full", "epochs": 15, "lr": 5e-5,
                          "augment": "light"},
    "whisper-base from scratch (full recipe)": {"model": "offline:whisper-base", "strategy": "full", "epochs": 15,
                                                "lr": 5e-5, "augment": "light", "from_scratch": True},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--output", default="runs/bench-speech-commands-mini")
    args = parser.parse_args()

    from transferlearn import finetune, load_config

    rows = {}
    for arm in (args.only.split(",") if args.only else ARMS):
        slug = arm.replace(" ", "-").replace("(", "").replace(")", "")
        config = load_config(data=str(SHARED_DATA / "speech_commands_mini"), max_duration=1.0, batch_size=16, seed=42,
                             device=args.device, early_stopping_patience=0, feature_cache="run", overwrite=True,
                             progress=False, output=f"{args.output}/{slug}", **ARMS[arm])
        start = time.time()
        run = finetune(config)
        wall = time.time() - start
        rows[arm] = {"test_accuracy": run.metrics["test"]["accuracy"], "test_macro_f1": run.metrics["test"]["macro_f1"],
                     "validation_accuracy": run.metrics["validation"]["accuracy"], "wall_time_s": round(wall, 1),
                     "train_clips": run.metrics["train"]["num_samples"], "recipe": ARMS[arm]}
        print(f"{arm:42s} test acc {run.metrics['test']['accuracy']:.4f}  wall {wall:6.1f} s", flush=True)
    pretrained = {a: r for a, r in rows.items() if not r["recipe"].get("from_scratch")}
    best = max(pretrained, key=lambda a: pretrained[a]["test_accuracy"])
    path = write_result("speech_commands_mini", {"dataset": "speech_commands_mini", "device": args.device,
                                                 "arms": rows, "best_arm": best,
                                                 "best_test_accuracy": rows[best]["test_accuracy"],
                                                 "goal": {"test_accuracy": 0.80}})
    print("\n| arm | test acc | val acc | wall s |\n|---|---|---|---|")
    for a, r in rows.items():
        print(f"| {a} | {r['test_accuracy']:.4f} | {r['validation_accuracy']:.4f} | {r['wall_time_s']:.0f} |")
    print(f"results: {path}")
    print(f"Speech Commands mini best test accuracy ({best}): {rows[best]['test_accuracy']:.4f}")


if __name__ == "__main__":
    main()
