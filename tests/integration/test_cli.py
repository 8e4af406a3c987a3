"""The `tl` command line: train, predict, evaluate, models, and error output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from transferlearn.cli import app

runner = CliRunner()
TL = [sys.executable, "-m", "transferlearn.cli"]


def _tl(*args, cwd=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(TL + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env, timeout=1500)


def test_predict_json_and_file(trained_tiny_run, tmp_path):
    result = runner.invoke(app, ["predict", str(trained_tiny_run.path), "the food was really great and good", "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["input"] == "the food was really great and good" and record["label"] == "positive"
    assert set(record["probabilities"]) == {"positive", "negative"}
    inputs = tmp_path / "in.txt"
    inputs.write_text("the staff was awful and terrible\n\nthe room was lovely and superb\n")
    result = runner.invoke(app, ["predict", str(trained_tiny_run.path), "--file", str(inputs), "--json", "--top-k", "1"])
    lines = [json.loads(x) for x in result.stdout.strip().splitlines()]
    assert [x["label"] for x in lines] == ["negative", "positive"] and all(len(x["probabilities"]) == 1 for x in lines)


def test_evaluate_on_new_file(trained_tiny_run, sentiment_folder):
    result = runner.invoke(app, ["evaluate", str(trained_tiny_run.path), "--data",
                                 str(sentiment_folder / "test.csv"), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["num_samples"] == 32 and metrics["split"] == "train"  # a single file: every row
    assert metrics["accuracy"] == pytest.approx(trained_tiny_run.metrics["test"]["accuracy"])


def test_models_lists_the_zoo():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    assert "offline:e5-small-multilingual" in result.stdout and "offline:minilm-en" in result.stdout


def test_strategies_lists_the_registry():
    from transferlearn.strategies import REGISTRY

    result = runner.invoke(app, ["strategies"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert all(name in result.stdout for name in REGISTRY)
    assert len(REGISTRY) >= 9


def test_train_with_yaml_and_flags_then_reproduce(tmp_path, sentiment_folder, tiny_text_model):
    config = tmp_path / "run.yaml"
    config.write_text(f"data: {sentiment_folder}\nmodel: {tiny_text_model('bert')}\nepochs: 3\nbatch_size: 32\n"
                      f"lr: 0.005\nprogress: false\nstrategy: full\n")
    out = tmp_path / "runs" / "a"
    proc = _tl("train", "-c", config, "--epochs", 1, "--output", out, "--report-to", "tensorboard", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"run folder: {out}" in proc.stdout.replace("\n", "") or str(out) in proc.stdout
    assert (out / "metrics.json").exists() and any((out / "tensorboard").rglob("events.out.tfevents*"))
    saved = (out / "config.yaml").read_text()
    assert "epochs: 1.0" in saved and "lr: 0.005" in saved
    # the saved config reproduces the run in a fresh folder under ./runs, never over the original
    proc = _tl("train", "-c", out / "config.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    new_runs = [p for p in (tmp_path / "runs").iterdir() if p.name != "a"]
    assert len(new_runs) == 1
    first, second = (json.loads((p / "metrics.json").read_text()) for p in (out, new_runs[0]))
    assert first["test"]["accuracy"] == second["test"]["accuracy"]  # same seed, same result


def test_errors_are_one_clear_line(tmp_path, sentiment_folder):
    proc = _tl("train", "--data", tmp_path / "missing.csv", "--model", "x")
    assert proc.returncode == 2 and "error:" in proc.stderr and "missing.csv: file or folder not found" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = _tl("train", "--data", sentiment_folder, "--model", "offline:nope")
    assert proc.returncode == 2 and "unknown offline model 'offline:nope'" in proc.stderr
    proc = _tl("train", "--data", sentiment_folder, "--model", "m", "--set", "warmup_steps=3")
    assert proc.returncode == 2 and "unknown key 'warmup_steps'" in proc.stderr


def test_wandb_offline_tracking(tmp_path, sentiment_folder, tiny_text_model, monkeypatch):
    pytest.importorskip("wandb")
    from transferlearn import finetune, load_config

    for var in ("WANDB_MODE", "WANDB_DIR", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    run = finetune(load_config(data=str(sentiment_folder), model=str(tiny_text_model("bert")), strategy="full", epochs=1,
                               output=str(tmp_path / "wb"), report_to="wandb", progress=False))
    assert list(Path(run.path / "wandb").glob("offline-run-*")), "wandb did not log offline into the run folder"


def test_mlflow_tracking_to_sqlite_in_run_folder(tmp_path, sentiment_folder, tiny_text_model, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    from transferlearn import finetune, load_config

    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(var, raising=False)
    run = finetune(load_config(data=str(sentiment_folder), model=str(tiny_text_model("bert")), strategy="full", epochs=1,
                               output=str(tmp_path / "ml"), report_to="mlflow", progress=False))
    db = run.path / "mlflow.db"
    assert db.exists()
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("transferlearn")
    runs = client.search_runs([experiment.experiment_id])
    assert runs and "eval_macro_f1" in runs[0].data.metrics
    assert "MLFLOW_TRACKING_URI" not in __import__("os").environ  # restored after the run


def test_models_is_readable_at_80_columns():
    from transferlearn.models.zoo import ZOO

    env = {**os.environ, "COLUMNS": "80"}
    proc = subprocess.run(TL + ["models"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for name in ZOO:  # every name whole on one line, not squeezed to nothing
        assert any(f"offline:{name}" in line for line in lines), name
    pins = subprocess.run(TL + ["models", "--requirements"], capture_output=True, text=True, timeout=300).stdout
    assert sorted(pins.split()) == sorted({p for e in ZOO.values() for p in (e.package, *e.extra_packages)})
