"""Bad inputs found before anything is trained or written: one clear error, the right settings clamped."""

from __future__ import annotations

import json

import pytest

from transferlearn import ConfigError, DataError, finetune, load_config
from transferlearn.data.text import load_text_data


def test_header_only_csv_is_a_clear_error(tmp_path):
    (tmp_path / "h.csv").write_text("text,label\n")
    with pytest.raises(DataError, match=r"h\.csv: no data rows"):
        load_text_data(str(tmp_path / "h.csv"))


def test_a_too_long_max_length_is_clamped_to_the_model(sentiment_folder, tiny_text_model, tmp_path):
    run = finetune(load_config(data=str(sentiment_folder), model=str(tiny_text_model("roberta")), strategy="full",
                               epochs=1, max_length=1000, output=str(tmp_path / "run"), progress=False))
    plan = json.loads((run.path / "plan.json").read_text())
    assert plan["updates"]["max_length"] == 64  # 66 positions, two taken by RoBERTa's padding offset
    assert any("--max-length 1000 is longer than the model accepts (64 tokens)" in d for d in plan["decisions"])
    assert run.config.max_length == 64 and "test" in run.metrics


def test_warmup_ratio_one_warms_up_over_every_step(tmp_path):
    from transferlearn.train.trainer import training_arguments

    for ratio, expected in ((1.0, 0.999999), (0.5, 0.5), (0.0, 0)):
        args = training_arguments(load_config(data="d", model="m", warmup_ratio=ratio, device="cpu"), tmp_path)
        assert args.warmup_steps == expected
        assert args.get_warmup_steps(1000) == {1.0: 1000, 0.5: 500, 0.0: 0}[ratio]


@pytest.mark.parametrize("kw, message", [
    ({"device": "cuda"}, "no CUDA GPU is visible"),
    ({"strategy": "lora:0"}, "the rank must be at least 1"),
    ({"strategy": "freeze"}, "needs a number"),
])
def test_config_errors_come_before_reading_data(kw, message, tmp_path):
    import torch

    if kw.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=message):
        finetune(load_config(data=str(tmp_path / "does-not-exist.csv"), model="m", output=str(out), **kw))
    assert not out.exists()  # nothing written: a fixed re-run is not blocked
