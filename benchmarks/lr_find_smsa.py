"""`tl lr-find` on SmSA, timed as a user runs it (a fresh process, model load and tokenisation included).

    python benchmarks/lr_find_smsa.py [--model offline:e5-small-multilingual]

Goal (issue 3): the plot and a suggested LR in under 3 minutes on this CPU. The wall time is printed last.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, write_result  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="offline:e5-small-multilingual")
    parser.add_argument("--output", default="runs/bench-lr-find-smsa")
    args = parser.parse_args()

    tl = Path(sys.executable).with_name("tl")
    command = [str(tl), "lr-find", "--data", str(SHARED_DATA / "smsa"), "--model", args.model, "--output", args.output]
    start = time.time()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.time() - start
    print(done.stdout[-2000:])
    if done.returncode != 0:
        raise SystemExit(f"tl lr-find failed ({done.returncode}):\n{done.stderr[-3000:]}")
    plot = Path(args.output) / "lr_find.png"
    found = json.loads((Path(args.output) / "lr_find.json").read_text())
    suggested = re.search(r"suggested learning rate \(valley\): ([0-9.e+-]+)", done.stdout)
    path = write_result("lr_find_smsa", {
        "dataset": "smsa", "model": args.model, "cli": " ".join(command[1:]), "wall_time_s": round(wall, 1),
        "plot_bytes": plot.stat().st_size, "steps": found["steps"], "suggestions": found["suggestions"],
        "printed_suggestion": suggested.group(1) if suggested else None, "goal_wall_time_s": 180,
    })
    print(f"results: {path}")
    print(f"tl lr-find on SmSA ({args.model}): {wall:.0f} s wall (goal < 180 s)")


if __name__ == "__main__":
    main()
