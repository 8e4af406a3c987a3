"""--precision: bf16 mixed precision trains on a CPU; auto follows the CPU's bf16 flags; fp16 on a CPU is refused
before anything is read."""

from __future__ import annotations

import pytest

from transferlearn import ConfigError, finetune, load_config
from transferlearn.machine import has_cpu_bf16
from transferlearn.train.trainer import training_arguments, training_precision


def test_auto_follows_the_cpu_and_fp16_needs_a_gpu(tmp_path):
    auto = load_config(data="d", model="m", precision="auto", device="cpu")
    assert training_precision(auto) == ("bf16" if has_cpu_bf16() else "fp32")
    assert training_arguments(auto, tmp_path).bf16 == has_cpu_bf16()
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="fp16 mixed precision needs a CUDA GPU"):
        finetune(load_config(data=str(tmp_path / "missing.csv"), model="m", precision="fp16", device="cpu",
                             output=str(out)))
    assert not out.exists()


def test_bf16_trains_and_predicts(sentiment_folder, tiny_text_model, tmp_path):
    run = finetune(load_config(data=str(sentiment_folder), model=str(tiny_text_model("bert")), strategy="full",
                               epochs=2, lr=1e-3, precision="bf16", baseline=False, progress=False,
                               output=str(tmp_path / "run")))
    assert run.config.precision == "bf16" and run.metrics["train"]["steps"] > 0
    assert run.predict(["good food"])[0]["label"] in ("negative", "positive")


def test_compile_reaches_the_trainer_and_is_off_by_default(tmp_path):
    assert training_arguments(load_config(data="d", model="m"), tmp_path).torch_compile is False
    assert training_arguments(load_config(data="d", model="m", compile=True), tmp_path).torch_compile is True
