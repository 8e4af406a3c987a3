"""``tl train`` under ``torchrun --standalone --nproc_per_node=2`` (gloo on the CPU): the Trainer's DDP with the
engine's rank rules. The same tiny run as one process with the same global batch (8 = 1 x 8 = 2 x 4) is the
reference.

Tolerance: the two runs see the same rows in the same steps (accelerate hands rank r every other 4-row slice of the
one shuffled order, so a 2 x 4 step holds the 8 rows of the 1 x 8 step) and the model has no dropout (its random
masks would differ between one 8-row and two 4-row batches), so they differ
only in float rounding: the gradient is an all-reduced mean of two 4-row means instead of one 8-row mean. Over a
few dozen steps that moves the validation logits by far less than 1e-3 (measured here: 3e-7), while any real
difference (another batch order, a rank training on its own, a skipped step) moves them by more than 1e-2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("ddp_train.py")


@pytest.fixture(scope="module")
def no_dropout_model(tmp_path_factory) -> Path:
    from tests.conftest import build_tiny_text_model

    folder = build_tiny_text_model("bert", tmp_path_factory.mktemp("tiny-bert-nodrop"))
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _train(tmp: Path, name: str, data: Path, model: Path, processes: int, batch: int,
           *extra: str) -> tuple[Path, list[dict]]:
    out, probes = tmp / name, tmp / f"{name}-probes"
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
                if processes > 1 else [sys.executable])
    args = ["train", "--data", str(data), "--model", str(model), "--output", str(out),
            "--set", f"batch_size={batch}", "--set", "epochs=6", "--set", "lr=0.003", "--set", "warmup_ratio=0",
            "--set", "head_lr_multiplier=1", "--set", "group_by_length=false", "--set", "early_stopping_patience=0",
            "--set", "progress=false", "--set", "seed=3", "--set", "threads=1", "--set", "head_dropout=0",
            "--set", "precision=fp32", *extra]  # auto's timing could pick differently in two runs on a loaded CPU
    if "--strategy" not in extra:
        args += ["--strategy", "full"]
    env = {**os.environ, "TL_TEST_PROBE_DIR": str(probes), "OMP_NUM_THREADS": "1", "TL_CACHE_DIR": str(tmp / f"{name}-cache"),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([*launcher, str(WORKER), *args], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    records = [json.loads((probes / f"rank{r}.json").read_text()) for r in range(processes)]
    return out, records


def test_torchrun_two_processes_train_one_model_and_write_one_run(tmp_path, sentiment_folder, no_dropout_model):
    single, (alone,) = _train(tmp_path, "one-process", sentiment_folder, no_dropout_model, 1, 8)
    ddp, ranks = _train(tmp_path, "two-processes", sentiment_folder, no_dropout_model, 2, 4)

    # both ranks end with the same parameters, after the same number of steps as the one-process run
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["parameters_sha256"] == ranks[1]["parameters_sha256"]
    assert ranks[0]["global_step"] == ranks[1]["global_step"] == alone["global_step"] == 72  # 96 rows / 8 x 6 epochs

    # rank 1 wrote nothing in the run folder but its own random-number state inside the Trainer's checkpoints
    # (what a resumed DDP run restores each rank's random stream from)
    foreign = [w for w in ranks[1]["writes_by_this_rank"]
               if not (w.startswith("open-for-write ") and w.endswith("rng_state_1.pth"))
               and not (w.startswith("os.mkdir ") and "/checkpoints" in w)]
    assert foreign == [], foreign

    # one run folder, written once: one history record per logged step, the model, metrics and report
    history = [json.loads(line) for line in (ddp / "history.jsonl").read_text().splitlines()]
    steps = [h["step"] for h in history if "loss" in h]
    assert steps == sorted(set(steps)), "every training log line appears once"
    assert (ddp / "model" / "model.safetensors").exists() and (ddp / "report.html").exists()
    assert not (ddp / "checkpoints").exists()

    # the same final validation metrics as the one-process run with the same global batch
    one, two = (json.loads((folder / "metrics.json").read_text()) for folder in (single, ddp))
    assert two["validation"]["num_samples"] == one["validation"]["num_samples"] == 32  # gathered once, no padding
    for key in ("accuracy", "macro_f1"):
        assert two["validation"][key] == pytest.approx(one["validation"][key], abs=1e-9)
    logits_one = np.load(single / "predictions" / "validation.npz")["logits"]
    logits_two = np.load(ddp / "predictions" / "validation.npz")["logits"]
    assert logits_two.shape == logits_one.shape == (32, 2)
    print("largest validation logit difference:", float(np.abs(logits_two - logits_one).max()))
    np.testing.assert_allclose(logits_two, logits_one, atol=1e-3)
    assert one["validation"]["accuracy"] > 0.7  # it learned: the comparison is not between two untrained models


def test_auto_under_torchrun_shares_one_feature_pass_and_one_decision(tmp_path, sentiment_folder, no_dropout_model):
    """auto: the probe's features computed in two shards and joined once, rank 0's plan and candidate choices on
    both ranks (a rank deciding alone would wait forever in the other's all-reduce), one auto.json."""
    single, _ = _train(tmp_path, "auto-one", sentiment_folder, no_dropout_model, 1, 8, "--strategy", "auto")
    ddp, ranks = _train(tmp_path, "auto-two", sentiment_folder, no_dropout_model, 2, 4, "--strategy", "auto")
    assert ranks[0]["parameters_sha256"] == ranks[1]["parameters_sha256"]
    assert ranks[0]["global_step"] == ranks[1]["global_step"]
    auto = json.loads((ddp / "auto.json").read_text())
    assert auto["candidates"][0]["name"] == "linear-probe" and len(auto["candidates"]) >= 2
    # the probe's features (train and validation entries) were computed in shards, joined and the shards removed;
    # they are the one-process run's entries (same keys: weights, preprocessing, rows), row for row
    two = {p.parent.name: p.parent for p in (tmp_path / "auto-two-cache").rglob("meta.json")}
    one = {p.parent.name: p.parent for p in (tmp_path / "auto-one-cache").rglob("meta.json")}
    assert len(two) >= 2 and set(two) == set(one)
    assert not list((tmp_path / "auto-two-cache").rglob("part-*"))
    for key, folder in two.items():
        assert json.loads((folder / "meta.json").read_text())["rows"] in (96, 32)
        np.testing.assert_allclose(np.load(folder / "features.npy"), np.load(one[key] / "features.npy"), atol=1e-5)
    foreign = [w for w in ranks[1]["writes_by_this_rank"] if not w.endswith("rng_state_1.pth")
               and not (w.startswith("os.mkdir ") and "/checkpoints" in w)]
    assert foreign == [], foreign
