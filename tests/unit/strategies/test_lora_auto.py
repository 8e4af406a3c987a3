"""lora, frozen modules in eval mode, backbone dropout (auto: test_auto.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from transferlearn import ConfigError, ModelError, finetune, load_config
from transferlearn.models.contract import param_groups
from transferlearn.models.text import load_text_classifier
from transferlearn.strategies import parse_strategy
from transferlearn.strategies.base import frozen_modules, keep_frozen_modules_in_eval

LABELS = ["a", "b", "c"]


def _batch():
    return {"input_ids": torch.randint(5, 20, (4, 7)), "attention_mask": torch.ones(4, 7, dtype=torch.long),
            "labels": torch.tensor([0, 1, 2, 0])}


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_lora_trains_adapters_and_head_only(arch, tiny_text_model):
    bundle = load_text_classifier(str(tiny_text_model(arch)), LABELS)
    strategy = parse_strategy("lora:4")
    model = strategy.prepare(bundle.model, bundle.groups)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    lora = {n for n in trainable if ".lora_" in n}
    # every linear layer of both blocks (q, k, v, attention output, intermediate, output) gets A and B
    assert len(lora) == 2 * 6 * 2
    assert all(p.shape[0] == 4 or p.shape[1] == 4 for n, p in model.named_parameters() if n in lora)
    assert trainable - lora and all("modules_to_save" in n for n in trainable - lora)  # the head
    optimizer = torch.optim.AdamW(strategy.optimizer_groups(model, bundle.groups, 1e-2, 0.0))
    assert {id(p) for g in optimizer.param_groups for p in g["params"]} == {
        id(p) for n, p in model.named_parameters() if n in trainable}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    model(**_batch()).loss.backward()
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert changed <= trainable and any("lora_B" in n for n in changed)


def test_lora_run_saves_merged_model_and_adapter(sentiment_folder, tiny_text_model, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    run = finetune(load_config(data=str(sentiment_folder), model=str(tiny_text_model("bert")), strategy="lora:8",
                               lr=5e-3, epochs=12, batch_size=16, warmup_ratio=0.0, output=str(tmp_path / "run"),
                               progress=False, early_stopping_patience=0, logging_steps=50))
    assert run.metrics["test"]["accuracy"] >= 0.75
    merged = AutoModelForSequenceClassification.from_pretrained(run.model_dir).eval()  # plain transformers
    assert not any("lora" in n for n, _ in merged.named_parameters())
    base = AutoModelForSequenceClassification.from_pretrained(
        tiny_text_model("bert"), num_labels=2, id2label=merged.config.id2label, label2id=merged.config.label2id)
    adapted = PeftModel.from_pretrained(base, run.path / "adapter").eval()
    tokenizer = AutoTokenizer.from_pretrained(run.model_dir)
    batch = tokenizer(["good food great", "bad awful room"], padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(adapted(**batch).logits, merged(**batch).logits, atol=1e-5, rtol=1e-4)


def test_lora_rank_must_be_positive(tiny_text_model):
    bundle = load_text_classifier(str(tiny_text_model("bert")), LABELS)
    with pytest.raises(ConfigError, match="at least 1"):
        parse_strategy("lora:0").prepare(bundle.model, bundle.groups)


def test_frozen_batchnorm_and_dropout_stay_in_eval_mode():
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 2), nn.Dropout(0.5))
    for p in list(model[0].parameters()) + list(model[1].parameters()):
        p.requires_grad_(False)
    keep_frozen_modules_in_eval(model)
    assert frozen_modules(model) == [model[0], model[1]]
    running_mean = model[1].running_mean.clone()
    model.train()
    model(torch.randn(16, 4))
    assert torch.equal(model[1].running_mean, running_mean)  # pretrained statistics kept
    assert not model[1].training and model[2].training and model[4].training  # parameter-free dropout still trains
    model[1].weight.requires_grad_(True)  # unfreezing (gradual) makes the BatchNorm train again
    model.train()
    model(torch.randn(16, 4))
    assert model[1].training and not torch.equal(model[1].running_mean, running_mean)


@pytest.mark.parametrize("from_scratch,setting,kept", [(False, None, True), (True, None, False), (False, False, False),
                                                       (True, True, True)])
def test_batchnorm_statistics_policy_when_fine_tuning(from_scratch, setting, kept):
    from transferlearn.config import TrainConfig
    from transferlearn.strategies.base import freeze_batchnorm_statistics

    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))  # every parameter trains
    config = TrainConfig(data="x", model="m", from_scratch=from_scratch, frozen_batchnorm=setting)
    assert freeze_batchnorm_statistics(model, config) is kept
    running_mean = model[1].running_mean.clone()
    model.train()
    model(torch.randn(16, 4) + 3).sum().backward()
    assert torch.equal(model[1].running_mean, running_mean) is kept
    assert model[1].weight.grad is not None  # the affine weights train either way
    assert model[0].training and model[1].training is not kept


def test_freeze_backbone_runs_the_backbone_in_eval_mode(tiny_text_model):
    bundle = load_text_classifier(str(tiny_text_model("bert")), LABELS)
    model = parse_strategy("freeze-backbone").prepare(bundle.model, bundle.groups)
    model.train()
    model(**_batch())
    assert not model.bert.embeddings.training and not model.bert.encoder.training
    assert model.dropout.training  # the head's own dropout


def test_backbone_dropout(tiny_text_model):
    bundle = load_text_classifier(str(tiny_text_model("bert")), LABELS, backbone_dropout=0.3)
    assert bundle.model.config.hidden_dropout_prob == 0.3 and bundle.model.config.attention_probs_dropout_prob == 0.3
    assert bundle.model.bert.encoder.layer[0].output.dropout.p == 0.3


def test_backbone_dropout_unknown_architecture(tiny_text_model, monkeypatch):
    from transferlearn.models import bundle

    monkeypatch.setattr(bundle, "BACKBONE_DROPOUT_ATTRS", ("no_such_dropout",))
    with pytest.raises(ModelError, match="no dropout setting"):
        load_text_classifier(str(tiny_text_model("bert")), LABELS, backbone_dropout=0.3)


def test_groups_unchanged_by_contract_on_plain_modules():
    groups = param_groups(nn.Sequential(nn.Linear(2, 2)))
    assert groups.embeddings == ["0.weight", "0.bias"] and groups.head == []


def _bundle(modality, tiny_text_model, tiny_image_model, tiny_audio_model):
    if modality == "text":
        return load_text_classifier(str(tiny_text_model("bert")), LABELS), {"input_ids": torch.randint(5, 20, (2, 7))}
    if modality == "image":
        from transferlearn.models.image import load_image_classifier

        return (load_image_classifier(str(tiny_image_model("timm-vit")), LABELS, image_size=32),
                {"pixel_values": torch.randn(2, 3, 32, 32)})
    from transferlearn.models.audio import load_audio_classifier

    return (load_audio_classifier(str(tiny_audio_model("wav2vec2")), LABELS, max_seconds=0.5),
            {"input_values": torch.randn(2, 8000)})


@pytest.mark.parametrize("modality", ["text", "image", "audio"])
def test_lora_and_layerwise_rates_on_every_modality(modality, tiny_text_model, tiny_image_model, tiny_audio_model):
    bundle, inputs = _bundle(modality, tiny_text_model, tiny_image_model, tiny_audio_model)
    groups = bundle.groups
    # discriminative: the head at lr, each group below x F, down to the embeddings at lr * F**(N+1)
    model = parse_strategy("discriminative:0.5").prepare(bundle.model, groups)
    rates = {}
    for group in parse_strategy("discriminative:0.5").optimizer_groups(model, groups, 1e-2, 0.0):
        rates[group["name"]] = group["lr"]
    assert rates["head"] == pytest.approx(1e-2)
    assert rates[f"block.{groups.num_blocks - 1}"] == pytest.approx(5e-3)
    assert rates["embeddings"] == pytest.approx(1e-2 * 0.5 ** (groups.num_blocks + 1))
    # lora: adapters on the blocks' linear layers + the head; everything else frozen, and a step moves them
    bundle, inputs = _bundle(modality, tiny_text_model, tiny_image_model, tiny_audio_model)
    strategy = parse_strategy("lora:4")
    model = strategy.prepare(bundle.model, bundle.groups)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(".lora_A." in n for n in trainable) and any("modules_to_save" in n for n in trainable)
    assert all(".lora_" in n or "modules_to_save" in n for n in trainable)
    optimizer = torch.optim.AdamW(strategy.optimizer_groups(model, bundle.groups, 1e-2, 0.0))
    model.train()
    model(**inputs, labels=torch.tensor([0, 1])).loss.backward()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert changed and changed <= trainable
