"""``tl audit`` on every shared dataset: wall time (goal: under 3 minutes on the 2-core CPU) and what it found
(label issues, cross-split duplicates, near duplicates). One ``benchmarks/results/audit_<dataset>.json`` each.

    python benchmarks/audit_datasets.py [--only smsa,hymenoptera]
"""

from __future__ import annotations

import argparse
import shutil
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
    parser.add_argument("--warm", action="store_true", help="use the shared feature cache (default: a cold cache of "
                        "the audit's own, so the time includes the backbone's pass over every split)")
    args = parser.parse_args()
    import_training_stack()
    from transferlearn import load_config
    from transferlearn.audit.runner import run_audit

    lines = []
    for name in args.only.split(","):
        folder, model, keys = DATASETS[name]
        out = Path(args.output) / name
        cache = {} if args.warm else {"feature_cache": str(out / "features")}
        shutil.rmtree(out / "features", ignore_errors=True)
        began = time.time()
        result = run_audit(load_config(data=str(SHARED_DATA / folder), model=model, **keys, **cache), out,
                           report=lambda line: print(line, flush=True))
        wall = round(time.time() - began, 1)
        counts = result["counts"]
        write_result(f"audit_{name}", {"dataset": name, "model": model, "rows": result["rows"], "wall_time_s": wall,
                                       "feature_cache": "warm (shared)" if args.warm else "cold (the audit's own)",
                                       "notes": result["notes"],
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
