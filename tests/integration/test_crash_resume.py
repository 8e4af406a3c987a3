"""A real training process killed with SIGKILL and resumed ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

TL = [sys.executable, "-m", "transferlearn.cli", "train"]


def _args(data, model, out, *extra):
    return [*TL, "--data", str(data), "--model", str(model), "--strategy", "full", "--epochs", "8",
            "--batch-size", "16", "--lr", "1e-3", "--seed", "3", "--early-stopping-patience", "0", "--no-baseline",
            "--logging-steps", "1", "--no-progress", "--keep-checkpoints", "--save-total-limit", "3",
            "--head-lr-multiplier", "1", "--output", str(out), *extra]


def _env():
    return {**os.environ, "HF_HUB_OFFLINE": "1"}


def _history_steps(run_dir):
    records = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines() if line.strip()]
    return [r["step"] for r in records if "loss" in r]


def _complete(checkpoint) -> bool:
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
        return True
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="module")
def straight(sentiment_folder, tiny_text_model, tmp_path_factory):
    """The same run, never interrupted."""
    out = tmp_path_factory.mktemp("straight") / "run"
    proc = subprocess.run(_args(sentiment_folder, tiny_text_model("bert"), out), capture_output=True, text=True,
                          env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


@pytest.mark.parametrize("kill_after_step", [18, 30])  # in epoch 4 and in epoch 6 (6 steps an epoch)
def test_sigkill_then_resume_is_bit_identical(kill_after_step, straight, sentiment_folder, tiny_text_model, tmp_path):
    model = tiny_text_model("bert")

    out = tmp_path / "killed"
    proc = subprocess.Popen(_args(sentiment_folder, model, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=_env())
    target = out / "checkpoints" / f"checkpoint-{kill_after_step}"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not _complete(target):
        time.sleep(0.01)
    assert proc.poll() is None, "training finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "metrics.json").exists()  # it really died mid-run
    changed = subprocess.run([*_args(sentiment_folder, model, out, "--resume"), "--lr", "5e-3", "--seed", "9"],
                             capture_output=True, text=True, env=_env(), timeout=600)
    assert changed.returncode == 2 and "Traceback" not in changed.stderr  # a changed setting is refused, named
    assert "lr: 0.001 -> 0.005" in changed.stderr and "seed: 3 -> 9" in changed.stderr
    assert "--resume-with-changes" in changed.stderr
    resumed = subprocess.run(_args(sentiment_folder, model, out, "--resume"), capture_output=True, text=True,
                             env=_env(), timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    a, b = load_file(straight / "model" / "model.safetensors"), load_file(out / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit for bit
    straight_metrics = json.loads((straight / "metrics.json").read_text())
    resumed_metrics = json.loads((out / "metrics.json").read_text())
    for split in ("validation", "test"):
        assert resumed_metrics[split] == straight_metrics[split]
    assert resumed_metrics["train"]["steps"] == straight_metrics["train"]["steps"] == 48
    assert resumed_metrics["train"]["train_loss"] == pytest.approx(straight_metrics["train"]["train_loss"], rel=1e-3)
    assert resumed_metrics["train"]["runtime_s"] > 0.5 * straight_metrics["train"]["runtime_s"]  # both processes
    steps = _history_steps(out)
    assert steps == sorted(set(steps)) == _history_steps(straight)  # each step once, none missing
