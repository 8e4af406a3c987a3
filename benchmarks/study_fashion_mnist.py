"""``tl study`` on the Fashion-MNIST subset: transfer vs scratch vs number of labels, with intervals over seeds.

Arms: ``scratch:small_cnn`` (a small CNN from random weights), ``scratch`` (EfficientNet-Lite0 from random weights),
``linear-probe`` and ``probe-then-finetune`` (the offline ImageNet EfficientNet-Lite0); fractions 1 %, 10 %, 100 % of
the training rows left after the validation carve-out; 3 seeds; 64 px inputs for every arm (the pictures are 28 px).
It is the real ``Study`` (what ``tl study`` runs), into ``--output``; the study's record, page and the numbers the
issue asks for land in ``benchmarks/results/``:

- the table (mean ± std and a 95 % t-interval per arm and fraction) and the recommendation;
- transfer vs scratch at 1 % and 10 %: the best transfer arm's interval against the best scratch arm's;
- the number of backbone passes over the training set for probe features (1: every probe run after the first
  reads the cached features of the whole training split).

    python benchmarks/study_fashion_mnist.py [--time-budget 70m] [--seeds 3] [--output runs/study-fashion-mnist]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA  # noqa: E402
from _study import run_and_record, shown, transfer_vs_scratch  # noqa: E402

ARMS = "scratch:small_cnn,scratch,linear-probe,probe-then-finetune"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fractions", default="0.01,0.1,1")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--time-budget", default="70m")
    parser.add_argument("--output", default="runs/study-fashion-mnist")
    args = parser.parse_args()

    from transferlearn.study.config import StudyConfig

    config = StudyConfig(data=str(SHARED_DATA / "fashion_mnist_subset"), model="offline:efficientnet-lite0", arms=ARMS,
                         fractions=args.fractions, seeds=args.seeds, metric="accuracy", time_budget=args.time_budget,
                         output=args.output)
    result = run_and_record("study_fashion_mnist", config, {"image_size": 64, "baseline": False},
                            extra=lambda analysis: {"transfer_vs_scratch": transfer_vs_scratch(analysis["table"],
                                                                                               (0.01, 0.1))})
    verdict = result["transfer_vs_scratch"]
    print("backbone passes over the training set for probe features: "
          f"{result['backbone_passes_over_train']}; transfer beats scratch at "
          + (", ".join(f"{float(f):.0%} ({shown(v['transfer'])} vs {shown(v['scratch'])})"
                       for f, v in verdict.items() if v["transfer_wins"]) or "none"))


if __name__ == "__main__":
    main()
