"""SmSA classifier: PyTorch fp32 eager vs onnxruntime int8 at batch 1, typical sentence, 2 threads.

    python benchmarks/deploy_smsa.py [--run RUN] [--model offline:e5-small-multilingual] [--threads 2]

Without --run, trains one first: the offline multilingual backbone, full fine-tune, 1 epoch on all 11,000
SmSA training sentences (~16 min on 2 CPU cores; an English-only MiniLM reached only 0.51 macro-F1 on
this Indonesian data, too poor a classifier to measure a quantization drop on). Then the same steps a
user runs: tl export, tl quantize --method dynamic (fused transformer graph + per-channel int8), tl bench.
Goal (issue 6): >= 3x faster at <= 1 pt macro-F1 drop on the full test split; the ratio is printed last.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA  # noqa: E402
from _deploy import deploy_report  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", default=None, help="an existing SmSA run folder")
    parser.add_argument("--model", default="offline:e5-small-multilingual")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default="runs/bench-deploy-smsa")
    args = parser.parse_args()

    from transferlearn import Run, finetune, load_config

    if args.run:
        run = Run.load(args.run)
    else:
        run = finetune(load_config(data=str(SHARED_DATA / "smsa"), model=args.model, strategy="full", epochs=1,
                                   class_weights="balanced", output=args.output,
                                   overwrite=True, progress=False))
    deploy_report("smsa", run, "dynamic", args.threads, goal={"speedup": 3.0, "max_drop_pt": 1.0})


if __name__ == "__main__":
    main()
