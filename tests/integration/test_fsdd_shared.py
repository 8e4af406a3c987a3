"""Real pretrained speech encoder on real recordings: offline Whisper tiny.en on a slice of FSDD (spoken digits)."""

from __future__ import annotations

import json

import pytest

from conftest import shared_data


@pytest.mark.shared_data
@pytest.mark.slow
def test_cached_linear_probe_on_an_fsdd_slice(tmp_path):
    from test_cli import _tl

    recordings = shared_data("fsdd") / "recordings"
    out = tmp_path / "fsdd"
    proc = _tl("train", "--data", recordings, "--model", "offline:whisper-tiny-en", "--strategy", "linear-probe",
               "--max-train-samples", 300, "--max-eval-samples", 200, "--epochs", 30, "--lr", 3e-3,
               "--output", out, "--feature-cache", "run",
               "--set", "label_from_filename=^(\\d+)_", "--set", "max_duration=1.0", "--set", "progress=false")
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["modality"] == "audio" and metrics["label_names"] == [str(d) for d in range(10)]
    assert metrics["train"]["num_samples"] == 300 and set(metrics["train"]["feature_cache"]) == {"train", "validation"}
    # ten digits: chance is 0.1; frozen pretrained speech features separate them
    assert metrics["validation"]["accuracy"] >= 0.7, metrics["validation"]["accuracy"]
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["max_source_positions"] == 50  # 1 s clips: Whisper's 30 s window truncated
