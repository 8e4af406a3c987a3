"""Every transfer strategy on IndoNLU SmSA with the offline multilingual backbone: test macro-F1 and wall time.

    python benchmarks/strategies_smsa.py [--max-train-samples N] [--epochs 3] [--device cpu|cuda]
                                         [--only "full;lora:16 lr=3e-4 epochs=5"] [--tag NAME] [--data DIR]

`--only` takes row labels from RECIPES or ad-hoc rows: a strategy followed by `key=value` config overrides.

Goal (issue 3): the best strategy reaches test macro-F1 >= 0.90, and some strategy reaches the `full`
strategy's F1 in <= 0.5x its wall time. Each strategy runs with its own recipe (below); all share the
data, backbone, class weighting, batch size, max length and seed.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, import_training_stack, write_result  # noqa: E402

# row label -> (strategy, config overrides); lr None = the strategy's default
RECIPES: dict[str, tuple[str, dict]] = {  # in run order: full (the reference) and the fast contender first
    "full": ("full", {"lr": 5e-5}),
    # LP-FT's head starts trained, so one fine-tuning epoch may be enough (Kumar et al. 2022): the fast contender
    "probe-then-finetune, 1 epoch": ("probe-then-finetune", {"lr": 5e-5, "epochs": 1}),
    "linear-probe": ("linear-probe", {"epochs": 10, "lr": 1e-3}),
    "freeze:6": ("freeze:6", {"lr": 1e-4}),
    "lora:16": ("lora:16", {"lr": 5e-4}),
    # + discriminative LRs; all 14 groups unfrozen by epoch 2.8
    "gradual:0.2 + discriminative": ("gradual:0.2", {"lr": 2e-4, "layer_lr_decay": 1 / 2.6}),
    "probe-then-finetune": ("probe-then-finetune", {"lr": 5e-5}),
}


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def _number_or_yaml(value: str):
    for cast in (int, float):  # YAML 1.1 reads 3e-5 (no dot) as a string
        try:
            return cast(value)
        except ValueError:
            pass
    import yaml

    return yaml.safe_load(value)


def recipe_of(entry: str) -> tuple[str, dict]:
    """A RECIPES label, or 'STRATEGY key=value ...' (numbers, else YAML: 3e-5, 5, none)."""
    if entry in RECIPES:
        return RECIPES[entry]
    strategy, *pairs = entry.split()
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--only: expected key=value after the strategy in {entry!r}, got {pair!r}")
        overrides[key.replace("-", "_")] = _number_or_yaml(value)
    return strategy, overrides


def summary_of(rows: dict) -> dict:
    best = max(rows, key=lambda s: rows[s]["test_macro_f1"])
    summary = {"best_strategy": best, "best_test_macro_f1": rows[best]["test_macro_f1"]}
    if "full" in rows:
        full = rows["full"]
        for r in rows.values():
            r["wall_time_vs_full"] = round(r["wall_time_s"] / full["wall_time_s"], 3)
        summary["match_full_in_half_time"] = [
            s for s, r in rows.items() if s != "full" and r["test_macro_f1"] >= full["test_macro_f1"]
            and r["wall_time_s"] <= 0.5 * full["wall_time_s"]]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="offline:e5-small-multilingual")
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--max-train-samples", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--only", default=None, help="semicolon-separated subset of: " + "; ".join(RECIPES))
    parser.add_argument("--tag", default="")
    parser.add_argument("--output", default="runs/bench-strategies-smsa")
    parser.add_argument("--data", default=str(SHARED_DATA / "smsa"), help="the SmSA folder (default ../shared)")
    args = parser.parse_args()

    import torch

    from transferlearn import finetune, load_config

    import_training_stack()  # outside every row's clock (the first row would pay them alone)
    on_gpu = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    name = "strategies_smsa" + ("_gpu" if on_gpu else "") + (f"_{args.tag}" if args.tag else "")
    chosen = [e.strip() for e in args.only.split(";") if e.strip()] if args.only else list(RECIPES)
    rows = {}
    for label in chosen:
        strategy, overrides = recipe_of(label)
        recipe = {"epochs": args.epochs, **overrides}
        shared = dict(data=args.data, model=args.model, batch_size=args.batch_size, max_length=args.max_length,
                      max_train_samples=args.max_train_samples, device=args.device, class_weights="balanced",
                      seed=42, overwrite=True, progress=False, feature_cache="run", output=f"{args.output}/{slug(label)}")
        config = load_config(strategy=strategy, **{**shared, **recipe})  # a row's recipe may override the seed
        start = time.time()
        run = finetune(config)
        wall = time.time() - start
        m = run.metrics
        rows[label] = {"strategy": strategy, "test_macro_f1": m["test"]["macro_f1"],
                       "test_accuracy": m["test"]["accuracy"], "validation_macro_f1": m["validation"]["macro_f1"],
                       "wall_time_s": round(wall, 1), "train_time_s": m["train"]["runtime_s"],
                       "epochs_run": m["train"]["epochs"], "trainable_parameters": m["train"]["trainable_parameters"],
                       "lr": run.config.lr, "recipe": recipe, "run_folder": str(run.path)}
        print(f"{label:30s} test macro-F1 {rows[label]['test_macro_f1']:.4f}  wall {wall:7.1f} s", flush=True)
        path = write_result(name, {  # after every row, so a long run that is cut short keeps what it measured
            "dataset": "smsa", "model": args.model, "epochs": args.epochs, "max_train_samples": args.max_train_samples,
            "batch_size": args.batch_size, "max_length": args.max_length, "class_weights": "balanced",
            "device": args.device, "strategies": rows, **summary_of(rows),
            "goal": {"best_test_macro_f1": 0.90, "match_full_wall_ratio": 0.5},
        })

    summary = summary_of(rows)
    best = summary["best_strategy"]
    print("\n| strategy | test macro-F1 | test acc | wall s | x full's time | trainable params |\n|---|---|---|---|---|---|")
    for s, r in rows.items():
        print(f"| {s} | {r['test_macro_f1']:.4f} | {r['test_accuracy']:.4f} | {r['wall_time_s']:.0f} | "
              f"{r.get('wall_time_vs_full', float('nan')):.2f} | {r['trainable_parameters']:,} |")
    print(f"results: {path}")
    if "match_full_in_half_time" in summary:
        print(f"reach full's F1 in <= 0.5x its time: {', '.join(summary['match_full_in_half_time']) or 'none'}")
    print(f"best strategy on SmSA: {best} test macro-F1 {rows[best]['test_macro_f1']:.4f}")


if __name__ == "__main__":
    main()
