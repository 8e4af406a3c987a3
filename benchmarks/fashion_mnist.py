"""Transfer vs scratch on the Fashion-MNIST subset (3,615 train / 4,443 test, a genuine prefix of the dataset).

    python benchmarks/fashion_mnist.py [--image-size 64] [--fractions 0.01,0.1,1.0] [--device cpu|cuda]

Three arms, one recipe (full training, light augmentation, AdamW, same LR and epochs per fraction):
offline EfficientNet-Lite0 (ImageNet weights), the same architecture from scratch, and a small CNN from
scratch. 10 % of the training file is held out once as validation (best-epoch selection); the fractions
are of the remaining 3,254 training images. Test accuracy on all 4,443 test images; table + plot.
Goal (issue 4): transfer wins at 1 % and 10 %.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, SHARED_DATA, write_result  # noqa: E402

ARMS = {
    "EfficientNet-Lite0 transfer": {"model": "offline:efficientnet-lite0"},
    "EfficientNet-Lite0 scratch": {"model": "offline:efficientnet-lite0", "from_scratch": True},
    "small CNN scratch": {"model": "small_cnn", "from_scratch": True},
}
EPOCHS = {0.01: 30, 0.1: 10, 1.0: 3}  # fewer images, more passes: roughly comparable step counts at the low end


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--fractions", default="0.01,0.1,1.0")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--output", default="runs/bench-fashion-mnist")
    args = parser.parse_args()

    from transferlearn import finetune, load_config

    fractions = [float(f) for f in args.fractions.split(",")]
    pool = int(round(3615 * 0.9))  # training rows left once validation is held out
    rows: dict[str, dict[str, dict]] = {arm: {} for arm in ARMS}
    for fraction in fractions:
        n = max(10, int(round(pool * fraction)))
        for arm, settings in ARMS.items():
            config = load_config(
                data=str(SHARED_DATA / "fashion_mnist_subset"), strategy="full", image_size=args.image_size,
                augment="light", lr=args.lr, epochs=EPOCHS.get(fraction, 10), batch_size=32, seed=42,
                max_train_samples=n if fraction < 1 else None, early_stopping_patience=0, device=args.device,
                overwrite=True, progress=False,
                output=f"{args.output}/{arm.split()[0].lower()}-{'scratch' if settings.get('from_scratch') else 'transfer'}"
                       f"-{fraction:g}", **settings)
            start = time.time()
            run = finetune(config)
            wall = time.time() - start
            rows[arm][f"{fraction:g}"] = {"train_images": run.metrics["train"]["num_samples"],
                                          "test_accuracy": run.metrics["test"]["accuracy"],
                                          "test_macro_f1": run.metrics["test"]["macro_f1"], "wall_time_s": round(wall, 1),
                                          "epochs": config.epochs}
            print(f"{fraction:>5g}  {arm:28s} test acc {run.metrics['test']['accuracy']:.4f}  wall {wall:6.1f} s",
                  flush=True)

    plot = RESULTS / "fashion_mnist.png"
    _plot(rows, plot)
    transfer_wins = {f: all(rows["EfficientNet-Lite0 transfer"][f]["test_accuracy"] > rows[a][f]["test_accuracy"]
                            for a in ARMS if a != "EfficientNet-Lite0 transfer") for f in rows["small CNN scratch"]}
    path = write_result("fashion_mnist", {
        "dataset": "fashion_mnist_subset", "image_size": args.image_size, "lr": args.lr, "device": args.device,
        "validation_rows": 3615 - pool, "arms": rows, "transfer_wins": transfer_wins, "plot": str(plot.name),
        "goal": "transfer wins at 1% and 10%",
    })
    print("\n| train fraction | " + " | ".join(ARMS) + " |\n|---" * (len(ARMS) + 1) + "|")
    for f in rows["small CNN scratch"]:
        n = rows["small CNN scratch"][f]["train_images"]
        print(f"| {float(f):.0%} ({n}) | " + " | ".join(f"{rows[a][f]['test_accuracy']:.4f}" for a in ARMS) + " |")
    print(f"results: {path}; plot: {plot}")
    print("transfer wins at: " + ", ".join(f"{float(f):.0%}" for f, won in transfer_wins.items() if won))


def _plot(rows: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for arm, by_fraction in rows.items():
        xs = [v["train_images"] for v in by_fraction.values()]
        ax.plot(xs, [v["test_accuracy"] for v in by_fraction.values()], marker="o", label=arm)
    ax.set_xscale("log"), ax.set_xlabel("training images (log)"), ax.set_ylabel("test accuracy (4,443 images)")
    ax.set_title("Fashion-MNIST subset: transfer vs scratch"), ax.grid(alpha=0.3), ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    main()
