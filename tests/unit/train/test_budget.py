"""--precision: bf16 mixed precision trains on a CPU; auto keeps bf16 only where a timed step is clearly faster in it
(and the CPU has native bf16); fp16 on a CPU is refused before anything is read."""

from __future__ import annotations

import pytest

from transferlearn import ConfigError, finetune, load_config
from transferlearn.strategies import parse_strategy
from transferlearn.train import budget
from transferlearn.train.trainer import training_arguments, training_precision


def test_auto_is_the_default_and_fp16_needs_a_gpu(tmp_path):
    auto = load_config(data="d", model="m", device="cpu")
    assert auto.precision == "auto"
    assert training_precision(auto) == "fp32"  # unresolved (no plan timed it): the safe arithmetic
    assert training_arguments(auto, tmp_path).bf16 is False
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


@pytest.mark.parametrize(("bf16_s", "fp32_s", "native", "expected"), [
    (0.5, 1.0, True, "bf16"),    # a clear win
    (0.95, 1.0, True, "fp32"),   # within the noise of two timings: not worth the rounding
    (1.2, 1.0, True, "fp32"),    # slower (EfficientNet-Lite0's depthwise convolutions measured 0.9x)
    (0.5, 1.0, False, "fp32"),   # no AVX512-BF16 / AMX: never timed
    (0.005, 0.05, True, "fp32"),  # a tiny model: nothing to gain, and a few-ms timing is noise
])
def test_auto_times_a_step_in_both_and_keeps_the_faster(monkeypatch, bf16_s, fp32_s, native, expected):
    timed = []

    def fake_steps(setup, config, spec, precisions):
        timed.append((tuple(precisions), spec))
        return {p: [9.0 if p == "fp32" else 3.0, bf16_s if p == "bf16" else fp32_s][: precisions.count(p) - 1]
                for p in precisions}  # a slow first timing must not decide

    monkeypatch.setattr(budget, "timed_steps", fake_steps)
    monkeypatch.setattr(budget, "has_cpu_bf16", lambda: native)
    config = load_config(data="d", model="m", device="cpu")
    chosen, why = budget.choose_precision(None, config, parse_strategy("auto"))
    assert chosen == expected and why.startswith(f"precision: {expected}")
    assert timed == ([(("fp32", "bf16") * 3, "full")] if native else [])  # interleaved, every layer
    if native:
        assert f"{bf16_s:.2f} s in bf16" in why and f"{fp32_s:.2f} s in fp32" in why


def test_auto_does_not_time_a_probe_on_cached_features(monkeypatch):
    monkeypatch.setattr(budget, "timed_steps", lambda *a, **k: pytest.fail("a probe trains no backbone step"))
    monkeypatch.setattr(budget, "has_cpu_bf16", lambda: True)
    chosen, why = budget.choose_precision(None, load_config(data="d", model="m", device="cpu"),
                                          parse_strategy("linear-probe"))
    assert chosen == "fp32" and "cached features" in why


def test_the_plan_records_the_timed_choice(sentiment_folder, tiny_text_model, tmp_path, monkeypatch):
    monkeypatch.setattr(budget, "has_cpu_bf16", lambda: True)
    real = budget.timed_steps

    def timed(setup, config, spec, precisions):  # the real steps (they must run), reported as a clear bf16 win
        return {p: [0.2 if p == "bf16" else 1.0 for _ in seconds]
                for p, seconds in real(setup, config, spec, precisions).items()}

    monkeypatch.setattr(budget, "timed_steps", timed)
    run = finetune(load_config(data=str(sentiment_folder), model=str(tiny_text_model("bert")), strategy="full",
                               epochs=1, lr=1e-3, baseline=False, progress=False, device="cpu",
                               output=str(tmp_path / "run")))
    plan = (tmp_path / "run" / "plan.json").read_text()
    assert run.config.precision == "bf16" and '"precision": "bf16"' in plan and "0.20 s in bf16" in plan


def test_a_model_trained_in_bf16_answers_in_fp32_afterwards(tiny_text_model, tmp_path):
    """Accelerate wraps the forward in autocast for mixed precision; the wrapper comes off when training ends. With
    it on, the probe's check that cached features reproduce the logits failed (auto scoring a probe winner on the
    test split after a bf16 candidate), and every later call ran in bf16."""
    import torch
    from transformers import AutoModelForSequenceClassification, default_data_collator

    from transferlearn.train.trainer import trainer_class

    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_text_model("bert")), num_labels=2)
    rows = [{"input_ids": [2, 5 + i % 7, 9, 3], "attention_mask": [1] * 4, "labels": i % 2} for i in range(16)]
    config = load_config(data="d", model="m", precision="bf16", device="cpu", epochs=1, batch_size=8, lr=1e-3,
                         progress=False)
    args = training_arguments(config, tmp_path, eval_strategy="no", save_strategy="no", load_best_model_at_end=False,
                              report_to=[])
    trainer = trainer_class()(model=model, args=args, train_dataset=rows, data_collator=default_data_collator)
    assert trainer.args.bf16
    trainer.train()
    assert "_original_forward" not in model.__dict__
    batch = default_data_collator(rows[:4])
    batch.pop("labels")
    model.eval()
    with torch.no_grad():
        logits = model(**batch).logits
        with torch.autocast("cpu", enabled=False):
            fp32 = model(**batch).logits
    assert logits.dtype == torch.float32 and torch.equal(logits, fp32)
