"""`tl study --backend ray`: the same runs as the sequential backend, scheduled as Ray tasks on a local instance with
2 workers (bounded to this machine, loopback only), give the same study.json rows."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from conftest import make_sentences

if importlib.util.find_spec("ray") is None:  # not imported here: Ray stays in the study's own process
    pytest.skip("ray is not installed", allow_module_level=True)

TIMING = {"wall_s", "cpu_s", "timing"}  # what two executions of the same run legitimately disagree on


@pytest.fixture(scope="module")
def study_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ray-study-data")
    for split, n, seed in (("train", 96, 0), ("valid", 32, 1), ("test", 32, 2)):
        lines = ["text,label"] + [f"{t},{lab}" for t, lab in make_sentences(n, seed)]
        (folder / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return folder


def _study(data, model, out, cache, *backend):
    """`tl study` in its own process, as a user runs it: Ray's threads never enter the test process (a later fork
    there, such as a multiprocessing pool, could deadlock on them)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TL_CACHE_DIR": str(cache), "RAY_USAGE_STATS_ENABLED": "0"}
    # one thread per run in both backends: the same float sums, so the same scores to the last digit
    done = subprocess.run([sys.executable, "-m", "transferlearn.cli", "study", "--data", str(data), "--model", str(model),
                           "--arms", "linear-probe,full", "--fractions", "0.5,1", "--seeds", "2", "--output", str(out),
                           "--set", "epochs=6", "--set", "batch_size=8", "--set", "baseline=false", "--set", "lr=0.003",
                           "--set", "threads=1", *backend], capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads((out / "study.json").read_text()), done.stdout + done.stderr


def test_ray_backend_gives_the_sequential_rows(tmp_path, study_data, tiny_text_model):
    model = tiny_text_model("bert")
    sequential, _ = _study(study_data, model, tmp_path / "sequential", tmp_path / "cache")
    # its own cold cache: the extraction is counted again
    parallel, stdout = _study(study_data, model, tmp_path / "ray", tmp_path / "cache-ray", "--backend", "ray",
                              "--workers", "2")
    by_name = {r["name"]: r for r in sequential["runs"]}
    assert len(by_name) == 8 and {r["name"] for r in parallel["runs"]} == set(by_name)
    for row in parallel["runs"]:
        expected = {k: v for k, v in by_name[row["name"]].items() if k not in TIMING}
        assert {k: v for k, v in row.items() if k not in TIMING} == expected, row["name"]
        assert row["wall_s"] > 0 and row["cpu_s"] > 0  # the worker process trained: it spent CPU time
    # the probe arm's first run extracts the features alone; every later probe run finds them (both backends)
    assert parallel["backbone_passes_over_train"] == sequential["backbone_passes_over_train"] == 1
    untimed = ({k: v for k, v in row.items() if k not in ("wall_s", "cpu_minutes")} for row in parallel["analysis"]["table"])
    assert list(untimed) == [{k: v for k, v in row.items() if k not in ("wall_s", "cpu_minutes")}
                             for row in sequential["analysis"]["table"]]
    assert max(r["test"]["macro_f1"] for r in parallel["runs"]) > 0.8  # runs that learned, not 8 constant scores
    saved = json.loads((tmp_path / "ray" / "study.json").read_text())
    assert saved["spec"]["backend"] == "ray" and (tmp_path / "ray" / "study.html").exists()
    assert stdout.count("/8] ") == 8  # every run reported as it started
