"""linear-probe and probe-then-finetune: the feature split, the cache (hits, misses, atomicity), training."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from transferlearn import ConfigError, finetune, load_config
from transferlearn.models.features import check_split, feature_split
from transferlearn.models.text import load_text_classifier

LABELS = ["negative", "positive"]


def _batch(tokenizer, texts=("good food great", "bad awful the room was")):
    return dict(tokenizer(list(texts), padding=True, return_tensors="pt"))


@pytest.mark.parametrize("arch, pooling", [("bert", "default"), ("roberta", "default"), ("xlm-roberta", "default"),
                                           ("bert", "mean"), ("roberta", "cls")])
def test_feature_split_reproduces_the_models_logits(arch, pooling, tiny_text_model):
    bundle = load_text_classifier(str(tiny_text_model(arch)), LABELS, pooling=pooling)
    split = feature_split(bundle.model)
    batch = _batch(bundle.processor)
    check_split(bundle.model, split, batch)  # raises on a mismatch
    head_params = {id(p) for p in split.head.parameters()}
    # the split's head is exactly the contract's head: the probe trains what freeze-backbone would
    assert head_params == {id(p) for n, p in bundle.model.named_parameters() if n in set(bundle.groups.head)}


def test_a_wrong_split_is_refused(tiny_text_model):
    bundle = load_text_classifier(str(tiny_text_model("bert")), LABELS)
    split = feature_split(bundle.model)
    wrong = dataclasses.replace(split, features=lambda batch: split.features(batch) * 2)
    with pytest.raises(ConfigError, match="does not reproduce"):
        check_split(bundle.model, wrong, _batch(bundle.processor))


def test_unknown_family_names_the_fallback():
    with pytest.raises(ConfigError, match="freeze-backbone"):
        feature_split(torch.nn.Linear(3, 2))


def _config(data, model, out, **kw):
    base = dict(data=str(data), model=str(model), strategy="linear-probe", pooling="mean", lr=0.3, epochs=30,
                batch_size=16, warmup_ratio=0.0, output=str(out), progress=False, early_stopping_patience=0,
                logging_steps=50)
    return load_config(**{**base, **kw})


def test_linear_probe_trains_only_the_head_and_reuses_its_cache(sentiment_folder, tiny_text_model, tmp_path):
    model_dir = tiny_text_model("bert")
    cache = tmp_path / "cache"
    run = finetune(_config(sentiment_folder, model_dir, tmp_path / "a", feature_cache=str(cache)))
    train = run.metrics["train"]
    assert {split: entry["hit"] for split, entry in train["feature_cache"].items()} == {
        "train": False, "validation": False, "test": False}
    assert run.metrics["test"]["accuracy"] >= 0.75  # two classes: chance is 0.5
    # the backbone in the saved model is bit-identical to the pretrained one; the head moved
    saved = load_file(run.model_dir / "model.safetensors")
    original = load_file(model_dir / "model.safetensors")
    for name, tensor in original.items():
        if name.startswith("pooler."):
            continue  # mean pooling drops BERT's pooler
        assert torch.equal(saved[f"backbone.{name}"], tensor), name
    assert train["trainable_parameters"] == sum(t.numel() for n, t in saved.items() if n.startswith("head."))
    # the cache entry: a memory-mappable .npy of (rows, hidden) and its key parts
    entry = cache / train["feature_cache"]["train"]["path"].split("/")[-1]
    features = np.load(entry / "features.npy", mmap_mode="r")
    assert isinstance(features, np.memmap) and features.shape == (96, 32)
    meta = json.loads((entry / "meta.json").read_text())
    assert set(meta["parts"]) == {"weights", "split", "preprocessing", "data"}
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temporary folder left behind

    again = finetune(_config(sentiment_folder, model_dir, tmp_path / "b", feature_cache=str(cache)))
    assert all(entry["hit"] for entry in again.metrics["train"]["feature_cache"].values())
    assert again.metrics["test"] == run.metrics["test"]  # same features, same seed: same result

    shorter = finetune(_config(sentiment_folder, model_dir, tmp_path / "c", feature_cache=str(cache), max_length=4,
                               epochs=1))
    assert not any(entry["hit"] for entry in shorter.metrics["train"]["feature_cache"].values())
    other_weights = finetune(_config(sentiment_folder, tiny_text_model("roberta"), tmp_path / "d",
                                     feature_cache=str(cache), epochs=1))
    assert not any(entry["hit"] for entry in other_weights.metrics["train"]["feature_cache"].values())
    assert len([p for p in cache.iterdir()]) == 9  # three runs' worth of distinct entries


def test_cache_key_changes_with_the_weights(tiny_text_model):
    from transferlearn.train.feature_cache import weights_fingerprint

    bundle = load_text_classifier(str(tiny_text_model("bert")), LABELS)
    split = feature_split(bundle.model)
    before = weights_fingerprint(bundle.model, split.head)
    with torch.no_grad():
        split.head.layers[-1].weight.add_(1.0)  # the head does not shape the features
    assert weights_fingerprint(bundle.model, split.head) == before
    with torch.no_grad():
        bundle.model.bert.encoder.layer[0].output.dense.bias.add_(1e-3)
    assert weights_fingerprint(bundle.model, split.head) != before


def test_run_folder_cache_and_prediction(sentiment_folder, tiny_text_model, tmp_path):
    run = finetune(_config(sentiment_folder, tiny_text_model("bert"), tmp_path / "run", feature_cache="run"))
    assert (run.path / "features").is_dir() and len(list((run.path / "features").iterdir())) == 3
    predictions = run.predict(["good great lovely", "bad awful terrible"])
    assert [p["label"] for p in predictions] == ["positive", "negative"]


def test_linear_probe_matches_freeze_backbone(sentiment_folder, tiny_text_model, tmp_path):
    """Same head, same features (frozen backbone in eval mode), same optimisation: same accuracy."""
    common = dict(group_by_length=False, epochs=10, probe_solver="trainer")  # the same AdamW epochs on both sides
    probe = finetune(_config(sentiment_folder, tiny_text_model("bert"), tmp_path / "p", feature_cache="run", **common))
    frozen = finetune(_config(sentiment_folder, tiny_text_model("bert"), tmp_path / "f", strategy="freeze-backbone",
                              **common))
    assert abs(probe.metrics["test"]["accuracy"] - frozen.metrics["test"]["accuracy"]) <= 1 / 32
    np.testing.assert_allclose(probe.metrics["train"]["train_loss"], frozen.metrics["train"]["train_loss"], rtol=1e-3)


def test_augmentation_falls_back_to_freeze_backbone(sentiment_folder, tiny_text_model, tmp_path, monkeypatch, caplog):
    from transferlearn import modalities
    from transferlearn.train import setup

    class Augmenting(type(modalities.TEXT)):
        def augments(self, config):
            return True

    monkeypatch.setattr(setup, "detect_modality", lambda config: Augmenting())
    run = finetune(_config(sentiment_folder, tiny_text_model("bert"), tmp_path / "run", epochs=1))
    assert run.config.strategy == "freeze-backbone"
    assert "feature_cache" not in run.metrics["train"]
    assert "cached features cannot be used" in caplog.text


def test_probe_then_finetune_starts_from_the_probed_head(sentiment_folder, tiny_text_model, tmp_path):
    run = finetune(_config(sentiment_folder, tiny_text_model("bert"), tmp_path / "run", strategy="probe-then-finetune:5",
                           lr=1e-2, epochs=2, feature_cache="run"))
    train = run.metrics["train"]
    assert train["probe"]["epochs"] == 5 and train["probe"]["lr"] == 1e-3
    assert (run.path / "probe" / "history.jsonl").exists()
    probe_epochs = {round(r["epoch"]) for r in map(json.loads, (run.path / "probe" / "history.jsonl").open())
                    if "eval_loss" in r}
    assert probe_epochs == {1, 2, 3, 4, 5}
    assert train["trainable_parameters"] == train["total_parameters"]  # then everything fine-tunes
    assert run.metrics["test"]["accuracy"] >= 0.75
