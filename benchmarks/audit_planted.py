"""Planted noise: flip 5 % of SmSA's training labels and copy 10 test rows into train (in a copy outside the
repository), run ``tl audit``, and measure what it finds: the flipped labels within its top 2 x (number flipped)
of the label-quality ranking of training rows (goal: >= 70 %), and the planted duplicates (goal: all).

    python benchmarks/audit_planted.py [--dataset smsa] [--work runs/audit-planted]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, read_tsv, write_result, write_tsv  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, default=Path("runs/audit-planted"))
    parser.add_argument("--flip", type=float, default=0.05)
    parser.add_argument("--planted", type=int, default=10)
    args = parser.parse_args()
    from transferlearn import load_config
    from transferlearn.audit.runner import run_audit

    source = SHARED_DATA / "smsa"
    train, valid, test = (read_tsv(source / f) for f in ("train_preprocess.tsv", "valid_preprocess.tsv",
                                                        "test_preprocess.tsv"))
    rng = random.Random(0)
    classes = sorted({r[1] for r in train})
    flipped = set(rng.sample(range(len(train)), round(args.flip * len(train))))
    noisy = [[text, rng.choice([c for c in classes if c != label]) if i in flipped else label]
             for i, (text, label) in enumerate(train)]
    planted = rng.sample(test, args.planted)
    data = args.work / "data"
    data.mkdir(parents=True, exist_ok=True)
    write_tsv(data / "train.tsv", noisy + planted)  # planted rows at the end: rows len(train).. of the train split
    write_tsv(data / "valid.tsv", valid)
    write_tsv(data / "test.tsv", test)
    began = time.time()
    result = run_audit(load_config(data=str(data), model="offline:e5-small-multilingual"), args.work / "audit",
                       ranking_rows=10**9, report=lambda line: print(line, flush=True))
    wall = time.time() - began
    budget = 2 * len(flipped)
    ranked_train = [r["split_row"] for r in result["label_quality_ranking"] if r["split"] == "train"][:budget]
    caught = flipped & set(ranked_train)
    issues_train = {e["split_row"] for e in result["label_issues"] if e["split"] == "train"}
    planted_texts = {t for t, _ in planted}
    found_dups = {r["input"] for g in result["exact_duplicates"] if g["across"] for r in g["rows"]} & planted_texts
    payload = {"dataset": "smsa", "model": "offline:e5-small-multilingual", "flipped": len(flipped),
               "planted_duplicates": args.planted, "wall_time_s": round(wall, 1),
               "ranking": {"budget": budget, "flipped_found": len(caught), "recall": round(len(caught) / len(flipped), 4),
                           "precision": round(len(caught) / budget, 4)},
               "label_issues_filter": {"flagged_train_rows": len(issues_train),
                                       "flipped_found": len(flipped & issues_train),
                                       "recall": round(len(flipped & issues_train) / len(flipped), 4),
                                       "precision": round(len(flipped & issues_train) / max(len(issues_train), 1), 4)},
               "duplicates": {"found": len(found_dups), "recall": round(len(found_dups) / args.planted, 4)},
               "goals": {"flipped_within_top_2x": ">= 0.70", "planted_duplicates": "all"}}
    path = write_result("audit_planted", payload)
    print(f"wrote {path}")
    print(f"flipped labels found in the top {budget} of the ranking: {len(caught)}/{len(flipped)} "
          f"(recall {payload['ranking']['recall']:.2f}, precision {payload['ranking']['precision']:.2f}); cleanlab's "
          f"filter: recall {payload['label_issues_filter']['recall']:.2f}, precision "
          f"{payload['label_issues_filter']['precision']:.2f}; planted duplicates found {len(found_dups)}/{args.planted}")


if __name__ == "__main__":
    main()
