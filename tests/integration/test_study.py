"""`tl study` end to end on a tiny model: killed with SIGKILL mid-study and re-run, every run is done once; probe
features are extracted once for every fraction and seed; every seed is scored on the same validation rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from conftest import make_sentences


@pytest.fixture(scope="module")
def carved_data(tmp_path_factory):
    """train.csv and test.csv only: the validation split is carved, so the seeds could disagree on it."""
    folder = tmp_path_factory.mktemp("study-data")
    for split, n, seed in (("train", 120, 0), ("test", 40, 2)):
        lines = ["text,label"] + [f"{t},{lab}" for t, lab in make_sentences(n, seed)]
        (folder / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return folder


def _study(data, model, out, cache, failpoint=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TL_CACHE_DIR": str(cache)}
    env.pop("TL_FAILPOINT", None)
    if failpoint:
        env["TL_FAILPOINT"] = failpoint
    return subprocess.run([sys.executable, "-m", "transferlearn.cli", "study", "--data", str(data), "--model", str(model),
                           "--arms", "linear-probe,full", "--fractions", "0.5,1", "--seeds", "2", "--output", str(out),
                           "--set", "epochs=1", "--set", "baseline=false", "--set", "lr=0.001"],
                          capture_output=True, text=True, env=env, timeout=900)


def test_a_killed_study_resumes_and_every_run_is_done_once(tmp_path, carved_data, tiny_text_model):
    model, out, cache = tiny_text_model("bert"), tmp_path / "study", tmp_path / "cache"
    killed = _study(carved_data, model, out, cache, failpoint="model@3")  # inside the third run's model write
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    first = json.loads((out / "study.json").read_text())
    finished = {r["name"] for r in first["runs"]}
    assert finished == {"linear-probe-f0.5-s42", "full-f0.5-s42"}
    stamps = {name: (out / "runs" / name / "metrics.json").stat().st_mtime_ns for name in finished}
    assert not (out / "runs" / "linear-probe-f0.5-s43" / "report.html").exists()  # the run that was killed

    resumed = _study(carved_data, model, out, cache)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    study = json.loads((out / "study.json").read_text())
    names = [r["name"] for r in study["runs"]]
    assert sorted(names) == sorted(f"{arm}-f{f}-s{s}" for arm in ("linear-probe", "full") for f in ("0.5", "1")
                                   for s in (42, 43))
    assert len(names) == len(set(names)) == 8
    assert all((out / "runs" / n / "metrics.json").stat().st_mtime_ns == t for n, t in stamps.items())  # not redone
    assert (out / "study.html").exists() and "backbone passes over the training set" in resumed.stdout
    # one extraction of the training features serves both fractions and both seeds of the probe arm
    assert study["backbone_passes_over_train"] == 1
    # nested, stratified subsets of the carved training split (108 rows): half, then all
    assert {r["rows"] for r in study["runs"] if r["fraction"] == 0.5} == {54}
    assert {r["rows"] for r in study["runs"] if r["fraction"] == 1} == {108}
    # every run, whatever its seed, is scored on the same validation rows (split_seed): same labels, same order
    from transferlearn import Run

    validation = [Run.load(out / "runs" / n).predictions("validation")[1] for n in names]
    assert all(np.array_equal(v, validation[0]) for v in validation)
    summary = study["analysis"]
    assert {row["arm"] for row in summary["table"]} == {"linear-probe", "full"}
    assert len(summary["recommendation"]) >= 2 and all(r["seeds"] == [42, 43] for r in summary["table"])


def test_a_different_study_in_the_same_folder_is_refused(tmp_path, carved_data, tiny_text_model):
    out = tmp_path / "study"
    out.mkdir()
    (out / "study.json").write_text(json.dumps({"spec": {"data": "other", "model": "m", "seed": 42,
                                                         "metric": "macro_f1", "settings": {}}, "runs": []}))
    result = subprocess.run([sys.executable, "-m", "transferlearn.cli", "study", "--data", str(carved_data), "--model",
                             str(tiny_text_model("bert")), "--output", str(out)], capture_output=True, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert result.returncode == 2 and "holds another study (different data" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_study_options_are_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "transferlearn.cli", "study", "--data", "d", "--model", "m",
                             "--arms", "linear-probe,nope", "--fractions", "0.1,2"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--arms" in result.stderr and "--fractions" in result.stderr
