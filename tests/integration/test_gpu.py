"""CUDA path: runs where a GPU is visible (the lent device machine); CI has none and skips it."""

from __future__ import annotations

import pytest
import torch

from transferlearn import finetune, load_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible")


def test_trains_on_cuda_and_saves_cpu_loadable_model(tmp_path, sentiment_folder, tiny_text_model):
    from transformers import AutoModelForSequenceClassification

    run = finetune(load_config(data=str(sentiment_folder), model=str(tiny_text_model("bert")), epochs=6, lr=1e-2,
                               warmup_ratio=0.0, batch_size=16, device="cuda", output=str(tmp_path / "gpu"),
                               progress=False, early_stopping_patience=0))
    assert run.metrics["train"]["device"].startswith("cuda")
    assert run.metrics["test"]["accuracy"] >= 0.8
    model = AutoModelForSequenceClassification.from_pretrained(run.model_dir)
    assert next(model.parameters()).device.type == "cpu"
    assert run.predict(["the food was great and lovely"])[0]["label"] == "positive"


def test_pooled_head_on_cuda(tmp_path, sentiment_folder, tiny_text_model):
    run = finetune(load_config(data=str(sentiment_folder), model=str(tiny_text_model("roberta")), pooling="mean",
                               head="mlp", epochs=2, device="cuda", output=str(tmp_path / "gpu-pooled"),
                               class_weights="balanced", progress=False))
    assert run.metrics["train"]["device"].startswith("cuda")
    assert (run.model_dir / "transferlearn.json").exists()


@pytest.mark.parametrize("strategy", ["full", "freeze:1", "lora:4", "probe-then-finetune", "linear-probe"])
def test_every_strategy_trains_and_evaluates_on_cuda(tmp_path, sentiment_folder, tiny_text_model, strategy):
    # saving the model moves it to host memory; it must come back, since test/validation are evaluated after
    run = finetune(load_config(data=str(sentiment_folder), model=str(tiny_text_model("bert")), strategy=strategy,
                               epochs=2, batch_size=16, device="cuda", output=str(tmp_path / "gpu"), progress=False))
    assert run.metrics["train"]["device"].startswith("cuda")
    assert set(run.metrics["test"]) >= {"accuracy", "macro_f1"}
    assert (run.model_dir / "model.safetensors").exists()
