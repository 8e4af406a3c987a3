"""Full fine-tune of offline multilingual-e5-small on IndoNLU SmSA; records test macro-F1 and wall time.

    python benchmarks/smsa_e5_full.py [--epochs 3] [--device cpu|cuda] [--output runs/bench-smsa-e5-full]

Same as: tl train --data ../shared/data/smsa --model offline:e5-small-multilingual --strategy full
Goal (issue 2): test macro-F1 >= 0.87 (IndoNLU: mBERT 84.1, IndoBERT-base 87.7, XLM-R-base 91.4).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, write_result  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=float, default=4)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--class-weights", default="balanced", choices=["none", "balanced"])
    parser.add_argument("--pooling", default="default", choices=["default", "cls", "mean"])
    parser.add_argument("--tag", default="", help="suffix for the results file name")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--output", default="runs/bench-smsa-e5-full")
    parser.add_argument("--data", default=str(SHARED_DATA / "smsa"))
    args = parser.parse_args()

    from transferlearn import finetune, load_config

    config = load_config(data=args.data, model="offline:e5-small-multilingual", strategy="full",
                         epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, max_length=args.max_length,
                         output=args.output, overwrite=True, device=args.device, progress=False,
                         class_weights=args.class_weights, pooling=args.pooling, seed=args.seed,
                         label_smoothing=args.label_smoothing)
    start = time.time()
    run = finetune(config)
    wall = time.time() - start
    test = run.metrics["test"]
    import torch

    on_gpu = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    name = "smsa_e5_full" + ("_gpu" if on_gpu else "") + (f"_{args.tag}" if args.tag else "")
    path = write_result(name, {
        "dataset": "smsa", "model": config.model, "strategy": "full", "epochs": args.epochs, "lr": args.lr,
        "batch_size": args.batch_size, "max_length": args.max_length, "device": args.device,
        "class_weights": args.class_weights, "pooling": args.pooling, "seed": args.seed,
        "label_smoothing": args.label_smoothing,
        "wall_time_s": round(wall, 1), "train_time_s": run.metrics["train"]["runtime_s"],
        "test_macro_f1": test["macro_f1"], "test_accuracy": test["accuracy"],
        "validation_macro_f1": run.metrics["validation"]["macro_f1"], "run_folder": str(run.path),
        "goal_test_macro_f1": 0.87,
    })
    print(f"results: {path}")
    print(f"wall time: {wall:.0f} s")
    print(f"SmSA test macro-F1 (offline e5-small, full): {test['macro_f1']:.4f}")


if __name__ == "__main__":
    main()
