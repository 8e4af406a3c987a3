"""`tl train --set streaming=true`: a headerless TSV with no validation file, read as a stream. The plan takes
max_steps from the counted rows, data.json counts the streamed split, the run learns; what a stream cannot do is
refused in one line."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from conftest import make_sentences


@pytest.fixture(scope="module")
def tsv_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stream-data")
    for split, n, seed in (("train", 120, 0), ("test", 32, 2)):
        (folder / f"{split}.tsv").write_text("".join(f"{t}\t{lab}\n" for t, lab in make_sentences(n, seed)))
    return folder


def _train(data, model, out, *extra):
    return subprocess.run([sys.executable, "-m", "transferlearn.cli", "train", "--data", str(data), "--model",
                           str(model), "--output", str(out), "--set", "streaming=true", "--set", "progress=false",
                           "--set", "lr=0.003", "--set", "batch_size=8", "--set", "head_lr_multiplier=1", *extra],
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)


def test_a_streamed_run_trains_for_the_counted_steps(tmp_path, tsv_folder, tiny_text_model):
    out = tmp_path / "run"
    done = _train(tsv_folder, tiny_text_model("bert"), out, "--set", "epochs=6", "--set", "early_stopping_patience=0")
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads((out / "data.json").read_text())
    train = data["splits"]["train"]
    assert train["streamed"] is True and train["rows"] + data["splits"]["validation"]["rows"] == 120
    plan = json.loads((out / "plan.json").read_text())
    steps = 6 * math.ceil(train["rows"] / 8)
    assert plan["strategy"] == "full" and plan["updates"]["max_steps"] == steps and plan["updates"]["baseline"] is False
    assert any("full instead of auto" in d for d in plan["decisions"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"]["steps"] == steps and metrics["train"]["num_samples"] == train["rows"]
    assert metrics["test"]["accuracy"] > 0.8


def test_what_a_stream_cannot_do_is_one_line(tmp_path, tsv_folder, tiny_text_model, image_folder):
    probe = _train(tsv_folder, tiny_text_model("bert"), tmp_path / "probe", "--strategy", "linear-probe")
    assert probe.returncode != 0 and "Traceback" not in probe.stderr + probe.stdout
    assert "linear-probe with streaming" in probe.stdout + probe.stderr
    images = _train(image_folder, tiny_text_model("bert"), tmp_path / "images")
    assert images.returncode != 0 and "streaming is for text" in images.stdout + images.stderr
    assert not (tmp_path / "probe").exists() and not (tmp_path / "images").exists()  # nothing left behind
