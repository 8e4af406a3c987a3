"""``tl study`` on SmSA with the offline multilingual backbone (multilingual-e5-small): which strategy with how many
labels, and the labels needed to reach 95 % of the full-data score.

Arms ``linear-probe``, ``probe-then-finetune``, ``full``; fractions 1 %, 10 %, 30 % of the 11,000 training
sentences (all of it does not fit a CPU session: ~48 min per full fine-tune), seeds as ``--seeds`` and the time budget
allow (runs that do not fit are listed as skipped). Validation (1,260) and test (500) are the data's own. The
learning-curve fit needs 3 label counts per arm.

    python benchmarks/study_smsa.py [--arms ...] [--fractions 0.01,0.1,0.3] [--seeds 2] [--time-budget 40m]

Re-running with other arms or fractions into the same --output adds to the same study (finished runs are kept).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA  # noqa: E402
from _study import run_and_record  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arms", default="linear-probe,probe-then-finetune,full")
    parser.add_argument("--fractions", default="0.01,0.1,0.3")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--time-budget", default="40m")
    parser.add_argument("--output", default="runs/study-smsa")
    args = parser.parse_args()

    from transferlearn.study.config import StudyConfig

    config = StudyConfig(data=str(SHARED_DATA / "smsa"), model="offline:e5-small-multilingual",
                         arms=args.arms, fractions=args.fractions, seeds=args.seeds,
                         time_budget=args.time_budget, output=args.output)
    # a cache folder of the study's own, so the count of feature extractions starts from a cold cache (the shared
    # one may already hold SmSA's training features from an earlier run, which would make the count 0)
    result = run_and_record("study_smsa", config, {"baseline": False, "feature_cache": f"{args.output}/features"})
    curves = result["learning_curves"]
    print("labels needed for 95 % of the full-data score: " + ("; ".join(
        f"{arm} ~{c['labels']:,.0f} [{c['low']:,.0f}, {c['high']:,.0f}]" if c.get("labels") and c.get("high")
        else f"{arm}: not estimable" for arm, c in curves.items()) or "no arm has 3 label counts"))


if __name__ == "__main__":
    main()
