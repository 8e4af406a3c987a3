"""Deploy report for the FSDD Whisper run (benchmarks/fsdd.py): dynamic int8 on MatMul.

    python benchmarks/deploy_fsdd.py [--run runs/bench-fsdd/official-index-0-4-test--pretrained] [--threads 2]

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
    parser.add_argument("--run", default="runs/bench-fsdd/official-index-0-4-test--pretrained")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from transferlearn import Run

    deploy_report("fsdd", Run.load(args.run), "dynamic", args.threads, goal={"max_drop_pt": 1.0})


if __name__ == "__main__":
    main()
