"""Transfer vs scratch on the Fashion-MNIST subset (3,615 train / 4,443 test, a genuine prefix of the dataset).

    python benchmarks/fashion_mnist.py [--image-size 64] [--fractions 0.01,0.1,1.0] [--device cpu|cuda]

Arms, all at the same input size, batch size, seed, validation rows and epochs per fraction:

* offline EfficientNet-Lite0 (ImageNet weights), ``linear-probe`` on cached features;
* offline EfficientNet-Lite0, ``probe-then-finetune`` (LP-FT, light augmentation, LR 3e-4: a pretrained
  network is fine-tuned more gently than a random one is trained);
* the same EfficientNet-Lite0 architecture from scratch (``full``, light augmentation, LR 1e-3);
* a small CNN from scratch (``full``, light augmentation, LR 1e-3).

"Transfer" in the verdict is the transfer arm with the better *validation* accuracy (chosen without
looking at the test set). 10 % of the training file is held out once as validation (best-epoch selection);
the fractions are of the remaining 3,254 training images. Test accuracy on all 4,443 test images;
table + plot. Goal (issue 4): transfer wins at 1 % and 10 %.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, SHARED_DATA, write_result  # noqa: E402

LITE0 = "offline:efficientnet-lite0"
ARMS = {
    "EfficientNet-Lite0 linear probe": {"model": LITE0, "strategy": "linear-probe", "augment": "none", "lr": 1e-3},
    "EfficientNet-Lite0 LP-FT": {"model": LITE0, "strategy": "probe-then-finetune", "lr": 3e-4},
    "EfficientNet-Lite0 scratch": {"model": LITE0, "from_scratch": True, "lr": 1e-3},
    "small CNN scratch": {"model": "small_cnn", "from_scratch": True, "lr": 1e-3},
}
TRANSFER = [arm for arm, s in ARMS.items() if not s.get("from_scratch")]
SCRATCH = [arm for arm in ARMS if arm not in TRANSFER]
EPOCHS = {0.01: 30, 0.1: 10, 1.0: 3}  # fewer images, more passes: roughly comparable step counts at the low end


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--fractions", default="0.01,0.1,1.0")
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
            settings = {"strategy": "full", "augment": "light", **settings}
            slug = arm.lower().replace(" ", "-")
            config = load_config(
                data=str(SHARED_DATA / "fashion_mnist_subset"), image_size=args.image_size,
                epochs=EPOCHS.get(fraction, 10), batch_size=32, seed=42, feature_cache="run",
                max_train_samples=n if fraction < 1 else None, early_stopping_patience=0, device=args.device,
                overwrite=True, progress=False, output=f"{args.output}/{slug}-{fraction:g}", **settings)
            start = time.time()
            run = finetune(config)
            wall = time.time() - start
            rows[arm][f"{fraction:g}"] = {"train_images": run.metrics["train"]["num_samples"],
                                          "validation_accuracy": run.metrics["validation"]["accuracy"],
                                          "test_accuracy": run.metrics["test"]["accuracy"],
                                          "test_macro_f1": run.metrics["test"]["macro_f1"],
                                          "wall_time_s": round(wall, 1), "epochs": config.epochs,
                                          "strategy": config.strategy, "lr": config.lr}
            print(f"{fraction:>5g}  {arm:32s} val {run.metrics['validation']['accuracy']:.4f}  "
                  f"test {run.metrics['test']['accuracy']:.4f}  wall {wall:6.1f} s", flush=True)
            path, verdict = _write(args, pool, rows)  # after every run: a long study keeps what it measured

    _plot(rows, RESULTS / "fashion_mnist.png")
    print("\n| train fraction | " + " | ".join(ARMS) + " |\n" + "|---" * (len(ARMS) + 1) + "|")
    for f in rows[SCRATCH[-1]]:
        n = rows[SCRATCH[-1]][f]["train_images"]
        print(f"| {float(f):.0%} ({n}) | " + " | ".join(f"{rows[a][f]['test_accuracy']:.4f}" for a in ARMS) + " |")
    print(f"results: {path}; plot: {RESULTS / 'fashion_mnist.png'}")
    for f, v in verdict.items():
        print(f"{float(f):.0%}: transfer ({v['transfer_arm']}, chosen on validation) {v['transfer_test_accuracy']:.4f} "
              f"vs best scratch {v['best_scratch_test_accuracy']:.4f}: {'wins' if v['transfer_wins'] else 'loses'}")
    print("transfer wins at: " + (", ".join(f"{float(f):.0%}" for f, v in verdict.items() if v["transfer_wins"])
                                  or "none"))


def _write(args, pool: int, rows: dict) -> tuple[Path, dict]:
    verdict = {}
    for f in rows[SCRATCH[-1]]:
        done = [a for a in TRANSFER if f in rows[a]]
        if not done:
            continue
        transfer = max(done, key=lambda a: rows[a][f]["validation_accuracy"])
        best_scratch = max(rows[a][f]["test_accuracy"] for a in SCRATCH if f in rows[a])
        verdict[f] = {"transfer_arm": transfer, "transfer_test_accuracy": rows[transfer][f]["test_accuracy"],
                      "best_scratch_test_accuracy": best_scratch,
                      "transfer_wins": rows[transfer][f]["test_accuracy"] > best_scratch}
    path = write_result("fashion_mnist", {
        "dataset": "fashion_mnist_subset", "image_size": args.image_size, "device": args.device,
        "validation_rows": 3615 - pool, "test_rows": 4443, "arms": rows, "verdict": verdict,
        "plot": "fashion_mnist.png", "goal": "transfer wins at 1% and 10%",
    })
    return path, verdict


def _plot(rows: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for arm, by_fraction in rows.items():
        xs = [v["train_images"] for v in by_fraction.values()]
        ax.plot(xs, [v["test_accuracy"] for v in by_fraction.values()], marker="o",
                linestyle="--" if arm in SCRATCH else "-", label=arm)
    ax.set_xscale("log"), ax.set_xlabel("training images (log)"), ax.set_ylabel("test accuracy (4,443 images)")
    ax.set_title("Fashion-MNIST subset: transfer vs scratch"), ax.grid(alpha=0.3), ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    main()
