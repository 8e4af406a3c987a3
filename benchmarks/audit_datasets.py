"""``tl audit`` on every shared dataset: wall time (goal: under 3 minutes on the 2-core CPU) and what it found
(label issues, cross-split duplicates, near duplicates). One ``benchmarks/results/audit_<dataset>.json`` each.

    python benchmarks/audit_datasets.py [--only smsa,hymenoptera]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, import_training_stack, write_result  # noqa: E402

DATASETS = {  # dataset -> (data folder, backbone, tl train keys a user must give)
    "smsa": ("smsa", "offline:e5-small-multilingual", {}),
    "hymenoptera": ("hymenoptera", "offline:efficientnet-lite0", {}),
    "fsdd": ("fsdd/recordings", "offline:whisper-tiny-en", {"label_from_filename": r"^(\d)_"}),
    "speech_commands_mini": ("speech_commands_mini", "offline:whisper-base", {}),
    "fashion_mnist_subset": ("fashion_mnist_subset", "offline:efficientnet-lite0", {}),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default=",".join(DATASETS))
    parser.add_argument("--output", default="runs/audit")
    args = parser.parse_args()
    import_training_stack()
    from transferlearn import load_config
    from transferlearn.audit.runner import run_audit

    lines = []
    for name in args.only.split(","):
        folder, model, keys = DATASETS[name]
        began = time.time()
        result = run_audit(load_config(data=str(SHARED_DATA / folder), model=model, **keys), Path(args.output) / name,
                           report=lambda line: print(line, flush=True))
        wall = round(time.time() - began, 1)
        counts = result["counts"]
        write_result(f"audit_{name}", {"dataset": name, "model": model, "rows": result["rows"], "wall_time_s": wall,
                                       "goal": "under 180 s", "counts": counts,
                                       "class_balance": result["class_balance"],
                                       "top_label_issues": result["label_issues"][:10],
                                       "cross_split_duplicates": [g for g in result["exact_duplicates"] if g["across"]][:10]})
        lines.append(f"{name}: {wall:.0f} s, {result['rows']:,} rows, {counts['label_issues']} label issues, "
                     f"{counts['cross_split_exact_duplicates']} cross-split duplicate groups, "
                     f"{counts['near_duplicate_pairs']} near-duplicate pairs")
        print(lines[-1], flush=True)
    print("; ".join(lines))


if __name__ == "__main__":
    main()
