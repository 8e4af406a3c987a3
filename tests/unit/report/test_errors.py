"""Top losses are the highest-loss rows; temperature scaling lowers ECE and every backend applies it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from transferlearn import finetune, load_config
from transferlearn.metrics import fit_temperature
from transferlearn.report.errors import expected_calibration_error, most_confused, row_losses, softmax, top_losses


def test_top_losses_are_the_highest_loss_rows(trained_tiny_run):
    found = top_losses(trained_tiny_run, "test", n=6)
    logits, labels = trained_tiny_run.predictions("test")
    losses = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels),
                                               reduction="none").numpy()
    assert [e["row"] for e in found["examples"]] == np.argsort(-losses, kind="stable")[:6].tolist()
    assert [e["loss"] for e in found["examples"]] == pytest.approx(np.sort(losses)[::-1][:6].tolist(), rel=1e-5)
    texts = trained_tiny_run.modality.load_data(trained_tiny_run.config).splits["test"]["text"]
    assert all(e["input"] == texts[e["row"]] for e in found["examples"])
    assert all(e["true"] in trained_tiny_run.label_names for e in found["examples"])


def test_most_confused_counts_the_off_diagonal_cells():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    guess = np.array([1, 1, 0, 0, 1, 1, 0, 0, 0])
    pairs = most_confused(labels, guess, ["a", "b", "c"])
    assert [(p["true"], p["predicted"], p["count"]) for p in pairs] == [("c", "a", 3), ("a", "b", 2), ("b", "a", 1),
                                                                         ("c", "b", 1)]
    assert pairs[0]["rows"] == [6, 7, 8]


def test_row_losses_match_torch():
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(0, 3, (50, 4)).astype(np.float32), rng.integers(0, 4, 50)
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels), reduction="none")
    assert row_losses(logits, labels) == pytest.approx(expected.numpy(), rel=1e-5)


def test_temperature_scaling_lowers_ece_on_an_overconfident_model():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 4000)
    calibrated = rng.normal(0, 1, (4000, 3))
    calibrated[np.arange(4000), labels] += 1.5  # a model whose softmax is not far from honest
    overconfident = calibrated * 4.0  # the same ranking, four times too sure
    before = expected_calibration_error(softmax(overconfident), labels)["ece"]
    temperature = fit_temperature(overconfident[:2000], labels[:2000])
    after = expected_calibration_error(softmax(overconfident[2000:] / temperature), labels[2000:])["ece"]
    assert 1.5 < temperature < 6.0 and after < before / 3 and after < 0.03


@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory, sentiment_folder, tiny_text_model):
    return finetune(load_config(data=str(sentiment_folder), model=str(tiny_text_model("bert")), strategy="full",
                                epochs=6, lr=1e-2, head_lr_multiplier=1.0, batch_size=16, calibrate=True,
                                baseline=False, progress=False, early_stopping_patience=0,
                                output=str(tmp_path_factory.mktemp("calibrated") / "run")))


def test_the_temperature_is_saved_reported_and_applied_by_every_backend(calibrated_run, serve_run):
    from transferlearn.deploy.export import export_onnx
    from transferlearn.deploy.predictor import Predictor

    saved = json.loads((calibrated_run.model_dir / "calibration.json").read_text())
    temperature = saved["temperature"]
    assert temperature > 0 and calibrated_run.metrics["calibration"]["temperature"] == temperature
    assert {"ece", "ece_calibrated"} <= set(calibrated_run.metrics["test"])
    texts = ["good food and lovely staff", "awful terrible place", "the room was"]
    torch_predictor = Predictor(calibrated_run)
    scaled = torch_predictor.logits(texts)
    torch_predictor.temperature = None
    assert scaled == pytest.approx(torch_predictor.logits(texts) / temperature, rel=1e-5, abs=1e-6)
    expected = softmax(scaled)
    export_onnx(calibrated_run)
    onnx = Predictor(calibrated_run, backend="onnx").predict(texts)
    for row, probs in zip(onnx, expected, strict=True):
        assert [row["probabilities"][n] for n in calibrated_run.label_names] == pytest.approx(probs.tolist(), abs=1e-3)
    import httpx

    server = serve_run(calibrated_run.path, "--backend", "torch")
    served = httpx.post(server.url + "/predict", json={"inputs": texts}, timeout=60).json()["predictions"]
    for row, probs in zip(served, expected, strict=True):
        assert [row["probabilities"][n] for n in calibrated_run.label_names] == pytest.approx(probs.tolist(), abs=1e-5)


def test_tl_errors_prints_json(trained_tiny_run):
    result = subprocess.run([sys.executable, "-m", "transferlearn.cli", "errors", str(trained_tiny_run.path), "-n", "3",
                             "--json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["split"] == "test" and len(shown["examples"]) == 3
    assert shown["examples"][0]["loss"] >= shown["examples"][-1]["loss"]
