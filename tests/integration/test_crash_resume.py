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

from conftest import tree_digest

TL = [sys.executable, "-m", "transferlearn.cli", "train"]


def _args(data, model, out, *extra):
    return [*TL, "--data", str(data), "--model", str(model), "--strategy", "full", "--epochs", "8",
            "--batch-size", "16", "--lr", "1e-3", "--seed", "3", "--early-stopping-patience", "0", "--no-baseline",
            "--logging-steps", "1", "--no-progress", "--keep-checkpoints", "--save-total-limit", "3",
            "--precision", "fp32",  # auto's timing could pick differently in the straight and the killed run
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


def _clock_seconds(run_dir) -> float:
    """Training seconds recorded in the newest complete checkpoint (the TrainingClock's state)."""
    from transferlearn.train.callbacks import complete_checkpoints

    complete, _ = complete_checkpoints(run_dir / "checkpoints")
    state = json.loads((complete[-1] / "trainer_state.json").read_text())
    return state["stateful_callbacks"]["TrainingClock"]["args"]["seconds_before"]


def _kill_when_complete(proc, target):
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not _complete(target):
        time.sleep(0.01)
    assert proc.poll() is None, "training finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


# Where the process dies: mid-training just after a checkpoint (killed from outside), and at the worst moments inside
# a write, from a failpoint (transferlearn/failpoints.py): a checkpoint with its weights but no trainer state, a new
# model/ written beside the old but not yet renamed, report.html half-written (metrics.json already final).
KILLS = [("step", 18), ("step", 30), ("failpoint", "checkpoint-24"), ("failpoint", "model"),
         ("failpoint", "write:report.html")]


@pytest.mark.parametrize("how, where", KILLS, ids=[f"{h}-{w}" for h, w in KILLS])
def test_sigkill_then_resume_is_bit_identical(how, where, straight, sentiment_folder, tiny_text_model, tmp_path):
    model = tiny_text_model("bert")
    data_before = tree_digest(sentiment_folder)

    out = tmp_path / "killed"
    env = {**_env(), "TL_FAILPOINT": where} if how == "failpoint" else _env()
    proc = subprocess.Popen(_args(sentiment_folder, model, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env)
    if how == "step":
        _kill_when_complete(proc, out / "checkpoints" / f"checkpoint-{where}")
    else:
        proc.wait(timeout=600)
    assert proc.returncode == -signal.SIGKILL  # it really died, and mid-run:
    assert not (out / "report.html").exists()
    if where == "checkpoint-24":
        assert (out / "checkpoints" / "checkpoint-24").is_dir() and not _complete(out / "checkpoints" / "checkpoint-24")
    if where == "model":
        assert (out / ".model.tmp").is_dir() and not (out / "model").exists()
    if where == "write:report.html":
        assert (out / "metrics.json").exists() and list(out.glob(".report.html.*.tmp"))
    if how == "step":
        changed = subprocess.run([*_args(sentiment_folder, model, out, "--resume"), "--lr", "5e-3", "--seed", "9"],
                                 capture_output=True, text=True, env=_env(), timeout=600)
        assert changed.returncode == 2 and "Traceback" not in changed.stderr  # a changed setting is refused, named
        assert "lr: 0.001 -> 0.005" in changed.stderr and "seed: 3 -> 9" in changed.stderr
        assert "--resume-with-changes" in changed.stderr
    trained_before = _clock_seconds(out)  # what the killed process had trained, as its newest checkpoint says
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
    assert resumed_metrics["train"]["runtime_s"] >= trained_before > 0  # both processes' training time, summed
    steps = _history_steps(out)
    assert steps == sorted(set(steps)) == _history_steps(straight)  # each step once, none missing
    summaries = [line for line in (out / "history.jsonl").read_text().splitlines() if "train_runtime" in line]
    assert len(summaries) == 1  # one closing summary, however many processes it took
    if where == "checkpoint-24":
        said = " ".join(resumed.stderr.split())
        assert "checkpoint-24 is incomplete" in said and "resuming from checkpoint-18" in said
    assert (out / "report.html").exists() and not list(out.glob(".*.tmp")) and not (out / ".model.tmp").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["killed"]  # nothing written beside the run folder
    assert tree_digest(sentiment_folder) == data_before  # nor into the data


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_saves_a_checkpoint_and_resume_finishes_the_same_run(sig, straight, sentiment_folder, tiny_text_model,
                                                                      tmp_path):
    model = tiny_text_model("bert")
    out = tmp_path / "stopped"
    proc = subprocess.Popen(_args(sentiment_folder, model, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=_env())
    target = out / "checkpoints" / "checkpoint-12"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not _complete(target):
        time.sleep(0.01)
    proc.send_signal(sig)
    stderr = " ".join(proc.communicate(timeout=300)[1].split())
    assert proc.returncode == 128 + sig, stderr[-2000:]  # 143 / 130, as a shell reports it
    assert "Traceback" not in stderr and f"stopped by {signal.Signals(sig).name} at step" in stderr
    step = int(stderr.split("at step ")[1].split(":")[0])
    assert 12 <= step < 48 and f"checkpoint-{step} is saved" in stderr and "--resume" in stderr
    assert _complete(out / "checkpoints" / f"checkpoint-{step}")  # saved at the step it stopped, mid-epoch or not
    assert not (out / "model").exists() and not (out / "metrics.json").exists()

    resumed = subprocess.run(_args(sentiment_folder, model, out, "--resume"), capture_output=True, text=True,
                             env=_env(), timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = load_file(straight / "model" / "model.safetensors"), load_file(out / "model" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _history_steps(out) == _history_steps(straight)
