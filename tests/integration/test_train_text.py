"""Training tiny random text models end to end through the real ``from_pretrained`` path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from transferlearn import ConfigError, Run, finetune, load_config


def test_run_folder_contract(trained_tiny_run):
    run = trained_tiny_run
    for name in ("config.yaml", "history.jsonl", "metrics.json", "data.json", "report.html", "model/config.json"):
        assert (run.path / name).exists(), name
    metrics = run.metrics
    assert metrics["label_names"] == ["negative", "positive"]
    for split in ("validation", "test"):
        m = metrics[split]
        assert set(m) >= {"accuracy", "macro_f1", "weighted_f1", "per_class", "confusion_matrix"}
        assert np.asarray(m["confusion_matrix"]).sum() == m["num_samples"] == 32
        assert set(m["per_class"]) == {"negative", "positive"}
    assert metrics["train"]["runtime_s"] > 0 and metrics["train"]["samples_per_second"] > 0
    # the cue words make this task learnable: a working loop gets well above chance
    assert metrics["test"]["accuracy"] >= 0.8
    history = run.history
    assert any("loss" in h and "learning_rate" in h for h in history)
    assert sum("eval_macro_f1" in h for h in history) == 6  # one evaluation per epoch
    report = (run.path / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 6  # with the reliability diagram
    assert "<figcaption>Confusion matrix (test)</figcaption>" in report and "<figcaption>Loss</figcaption>" in report


def test_model_folder_works_in_plain_pipeline(trained_tiny_run):
    from transformers import pipeline

    config = json.loads((trained_tiny_run.model_dir / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    classify = pipeline("text-classification", model=str(trained_tiny_run.model_dir), device="cpu")
    out = classify(["the food was great and lovely", "the staff was awful and terrible"])
    assert [o["label"] for o in out] == ["positive", "negative"]


def test_reloaded_run_predicts_like_pipeline(trained_tiny_run):
    from transformers import pipeline

    texts = ["really good place", "bad and horrible service"]
    ours = Run.load(trained_tiny_run.path).predict(texts)
    theirs = pipeline("text-classification", model=str(trained_tiny_run.model_dir), device="cpu", top_k=None)(texts)
    assert len(ours) == len(texts)  # strict zip below: a short answer fails, it does not pass vacuously
    for mine, ref in zip(ours, theirs, strict=True):
        ref_probs = {r["label"]: r["score"] for r in ref}
        assert mine["probabilities"] == pytest.approx(ref_probs, abs=1e-5)
        assert abs(sum(mine["probabilities"].values()) - 1) < 1e-5


def test_best_checkpoint_is_the_saved_model(trained_tiny_run):
    metrics = trained_tiny_run.metrics
    best = metrics["train"]["best_metric"]
    assert best == pytest.approx(metrics["validation"]["macro_f1"], abs=1e-6)


@pytest.mark.parametrize("arch", ["roberta", "xlm-roberta"])
def test_other_architectures_train_save_reload(arch, tmp_path, sentiment_folder, tiny_text_model):
    from transformers import AutoModelForSequenceClassification

    run = finetune(load_config(data=str(sentiment_folder), model=str(tiny_text_model(arch)), epochs=1,
                               batch_size=32, lr=1e-3, output=str(tmp_path / arch), progress=False))
    reloaded = AutoModelForSequenceClassification.from_pretrained(run.model_dir)
    assert reloaded.config.model_type == arch
    assert reloaded.config.id2label == {0: "negative", 1: "positive"}
    assert len(run.predict(["good food"])) == 1


def test_from_scratch_starts_from_random_weights(tmp_path, sentiment_folder, tiny_text_model, monkeypatch):
    from transformers import AutoModel

    from transferlearn.models.text import load_text_classifier

    source = tiny_text_model("bert")
    pretrained = AutoModel.from_pretrained(source).embeddings.word_embeddings.weight
    scratch = load_text_classifier(str(source), ["a", "b"], from_scratch=True).model
    loaded = load_text_classifier(str(source), ["a", "b"]).model
    assert torch.equal(loaded.bert.embeddings.word_embeddings.weight, pretrained)
    assert not torch.equal(scratch.bert.embeddings.word_embeddings.weight, pretrained)
    run = finetune(load_config(data=str(sentiment_folder), model=str(source), from_scratch=True, epochs=1,
                               output=str(tmp_path / "scratch"), progress=False))
    assert run.config.from_scratch and (run.model_dir / "model.safetensors").exists()


def test_existing_run_folder_is_never_clobbered(trained_tiny_run, sentiment_folder, tiny_text_model):
    before = (trained_tiny_run.path / "metrics.json").read_bytes()
    config = load_config(data=str(sentiment_folder), model=str(tiny_text_model("bert")),
                         output=str(trained_tiny_run.path), progress=False)
    with pytest.raises(ConfigError, match="already holds a run.*--resume.*--overwrite"):
        finetune(config)
    assert (trained_tiny_run.path / "metrics.json").read_bytes() == before


def test_resume_continues_from_last_checkpoint(tmp_path, sentiment_folder, tiny_text_model):
    out = tmp_path / "resume"
    base = dict(data=str(sentiment_folder), model=str(tiny_text_model("bert")), strategy="full", batch_size=32, lr=1e-3,
                output=str(out), progress=False, early_stopping_patience=0, logging_steps=1, keep_checkpoints=True)
    first = finetune(load_config(**base, epochs=1))
    assert first.metrics["train"]["steps"] == 3
    with pytest.raises(ConfigError, match="no checkpoint"):
        finetune(load_config(**{**base, "output": str(tmp_path / "empty")}, epochs=2, resume=True))
    second = finetune(load_config(**base, epochs=2, resume=True))
    assert second.metrics["train"]["steps"] == 6
    steps = [h["step"] for h in second.history if "loss" in h]
    assert steps == [1, 2, 3, 4, 5, 6]  # the history goes on after the resume, it does not restart


def test_strategy_default_lr_is_recorded(tmp_path, sentiment_folder, tiny_text_model):
    run = finetune(load_config(data=str(sentiment_folder), model=str(tiny_text_model("bert")),
                               strategy="freeze-backbone", epochs=1, output=str(tmp_path / "fb"), progress=False))
    assert run.config.lr == 1e-3
    assert run.metrics["train"]["trainable_parameters"] < run.metrics["train"]["total_parameters"] / 4


def test_balanced_class_weights_train(tmp_path, sentiment_folder, tiny_text_model):
    from transferlearn.shapes import SingleLabel
    from transferlearn.train.losses import weighted_cross_entropy

    weights = torch.tensor(SingleLabel.with_classes(["label"], ["a", "b"]).balanced_weights([0, 0, 0, 1]),
                           dtype=torch.float32)
    assert weights.tolist() == pytest.approx([2 / 3, 2.0])
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    loss = weighted_cross_entropy(weights)({"logits": logits}, torch.tensor([1, 1]))
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([1, 1]), reduction="none") * 2.0
    assert loss.item() == pytest.approx(expected.mean().item())
    run = finetune(load_config(data=str(sentiment_folder), model=str(tiny_text_model("bert")), epochs=1,
                               class_weights="balanced", output=str(tmp_path / "cw"), progress=False))
    assert np.isfinite(run.metrics["train"]["train_loss"])


def test_early_stopping_stops_and_zero_disables(tmp_path, sentiment_folder, tiny_text_model):
    base = dict(data=str(sentiment_folder), model=str(tiny_text_model("bert")), strategy="full", epochs=6, batch_size=32,
                lr=1e-9, progress=False)  # lr so small the validation metric never improves
    stopped = finetune(load_config(**base, early_stopping_patience=1, output=str(tmp_path / "es")))
    assert stopped.metrics["train"]["epochs"] == 2.0  # first evaluation, then one without improvement
    full = finetune(load_config(**base, early_stopping_patience=0, output=str(tmp_path / "no-es")))
    assert full.metrics["train"]["epochs"] == 6.0
