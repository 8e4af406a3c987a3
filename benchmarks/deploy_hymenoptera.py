"""Deploy report for the hymenoptera EfficientNet-Lite0 run (benchmarks/hymenoptera.py): static int8 (calibrated; CNNs need it).

    python benchmarks/deploy_hymenoptera.py [--run runs/bench-hymenoptera/linear-probe] [--threads 2]

PyTorch fp32 eager vs onnxruntime int8 at batch 1 (and every other variant at 1/8/32), 2 threads.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _deploy import deploy_report  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", default="runs/bench-hymenoptera/linear-probe")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from transferlearn import Run

    deploy_report("hymenoptera", Run.load(args.run), "static", args.threads, goal={"max_drop_pt": 1.0})


if __name__ == "__main__":
    main()
