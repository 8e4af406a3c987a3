"""A loss that becomes NaN stops the run before the bad step touches the weights, and keeps the good checkpoints."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from transferlearn import finetune, load_config
from transferlearn.errors import TrainingDiverged


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(sentiment_folder, tiny_text_model, tmp_path):
    out = tmp_path / "run"
    config = load_config(data=str(sentiment_folder), model=str(tiny_text_model("bert")), strategy="full", epochs=3,
                         lr=1e8, max_grad_norm=1e30, warmup_ratio=0.0, head_lr_multiplier=1.0, eval_steps=1,
                         baseline=False, progress=False, output=str(out))
    with pytest.raises(TrainingDiverged) as caught:
        finetune(config)
    message = str(caught.value)
    assert "the training loss became nan at step 2" in message
    assert "the last good checkpoint, checkpoint-1, is kept" in message and "Lower --lr (it is 1e+08)" in message
    weights = load_file(out / "checkpoints" / "checkpoint-1" / "model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())
    assert not (out / "checkpoints" / "checkpoint-2").exists()  # nothing saved from the diverged step
    assert not (out / "model").exists() and not (out / "metrics.json").exists()
