"""`tl sweep` on a tiny model: 6 trials, killed mid-trial and resumed, the best config written and reproduced."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import yaml

from transferlearn.study.config import parse_space


def _sweep(data, model, out, failpoint=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("TL_FAILPOINT", None)
    if failpoint:
        env["TL_FAILPOINT"] = failpoint
    return subprocess.run([sys.executable, "-m", "transferlearn.cli", "sweep", "--data", str(data), "--model", str(model),
                           "--strategy", "full", "--space", "lr=1e-4:1e-2:log,batch_size=8|16", "--trials", "6",
                           "--output", str(out), "--set", "epochs=2", "--set", "baseline=false",
                           "--set", "early_stopping_patience=0"], capture_output=True, text=True, env=env, timeout=900)


def test_a_killed_sweep_resumes_and_its_best_config_reproduces(tmp_path, sentiment_folder, tiny_text_model):
    model, out = tiny_text_model("bert"), tmp_path / "sweep"
    killed = _sweep(sentiment_folder, model, out, failpoint="model@3")  # inside trial 2's model write
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (out / "sweep.db").exists() and not (out / "trials" / "trial-002" / "report.html").exists()

    resumed = _sweep(sentiment_folder, model, out)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    record = json.loads((out / "sweep.json").read_text())
    states = [t["state"] for t in record["trials"]]
    assert states.count("COMPLETE") + states.count("PRUNED") == 6 and states.count("FAIL") == 1
    failed = next(t for t in record["trials"] if t["state"] == "FAIL")
    retried = [t for t in record["trials"] if t["number"] > failed["number"] and t["params"] == failed["params"]]
    assert retried, "the interrupted trial's parameters run again"
    for t in record["trials"]:
        if t["state"] != "FAIL":
            assert 1e-4 <= t["params"]["lr"] <= 1e-2 and t["params"]["batch_size"] in (8, 16)
            assert (out / t["run"] / "metrics.json").exists()
    best = record["best"]
    assert best["value"] == max(t["value"] for t in record["trials"] if t["state"] == "COMPLETE")
    config = yaml.safe_load((out / "best" / "config.yaml").read_text())
    assert config["lr"] == best["params"]["lr"] and config["batch_size"] == best["params"]["batch_size"]
    html = (out / "sweep.html").read_text()
    assert html.count("data:image/png;base64,") >= 3 and "Optimisation history" in html

    again = subprocess.run([sys.executable, "-m", "transferlearn.cli", "train", "-c", str(out / "best" / "config.yaml"),
                            "--output", str(tmp_path / "again")], capture_output=True, text=True, timeout=600,
                           env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert again.returncode == 0, again.stderr[-2000:]
    metrics = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert metrics["validation"]["macro_f1"] == pytest.approx(best["value"], abs=1e-6)


@pytest.mark.parametrize("space,message", [
    ("lr=1e-3:1e-5", "LOW < HIGH"), ("nope=1:2", "not a tl train key"), ("lr=0:1:log", "needs LOW > 0"),
    ("lr", "expected KEY="), ("output=a|b", "not a tl train key a sweep can vary")])
def test_a_bad_space_is_refused_with_its_item(space, message):
    with pytest.raises(ValueError, match=message):
        parse_space(space)
