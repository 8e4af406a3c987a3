"""The backbone contract and what each strategy freezes, checked on tiny random models."""

from __future__ import annotations

import pytest
import torch

from transferlearn import ConfigError
from transferlearn.models.text import load_text_classifier
from transferlearn.strategies import parse_strategy


@pytest.fixture(scope="module")
def bundle(tiny_text_model):
    return load_text_classifier(str(tiny_text_model("bert")), ["a", "b", "c"])


def test_param_groups_cover_every_parameter_once(bundle):
    groups = bundle.groups
    names = [n for _, group in groups.ordered() for n in group]
    assert sorted(names) == sorted(n for n, _ in bundle.model.named_parameters())
    assert len(set(names)) == len(names)
    assert groups.num_blocks == 2
    assert all(n.startswith("bert.embeddings.") for n in groups.embeddings)
    assert all(n.startswith("bert.encoder.layer.1.") for n in groups.blocks[1])
    # the classifier and the (freshly initialised) pooler belong to the head
    assert {"classifier.weight", "classifier.bias", "bert.pooler.dense.weight"} <= set(groups.head)


@pytest.mark.parametrize("arch", ["roberta", "xlm-roberta"])
def test_groups_for_roberta_family(arch, tiny_text_model):
    groups = load_text_classifier(str(tiny_text_model(arch)), ["a", "b"]).groups
    assert groups.num_blocks == 2 and groups.embeddings
    assert all(n.startswith("classifier.") for n in groups.head)


def _train_one_step(model, strategy, groups):
    model = strategy.prepare(model, groups)
    optimizer = torch.optim.AdamW(strategy.optimizer_groups(model, groups, 1e-2, 0.01))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    batch = {"input_ids": torch.randint(5, 20, (4, 7)), "attention_mask": torch.ones(4, 7, dtype=torch.long),
             "labels": torch.tensor([0, 1, 2, 0])}
    model.train()
    model(**batch).loss.backward()
    optimizer.step()
    return {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}


@pytest.mark.parametrize("spec, trains", [
    ("full", lambda g: set(g.backbone()) | set(g.head)),
    ("freeze-backbone", lambda g: set(g.head)),
    ("freeze:1", lambda g: set(g.blocks[1]) | set(g.head)),
    ("freeze:0", lambda g: {n for b in g.blocks for n in b} | set(g.head)),
])
def test_strategy_freezes_and_updates(spec, trains, tiny_text_model):
    bundle = load_text_classifier(str(tiny_text_model("bert")), ["a", "b", "c"])
    groups = bundle.groups
    expected = trains(groups)
    changed = _train_one_step(bundle.model, parse_strategy(spec), groups)
    requires_grad = {n for n, p in bundle.model.named_parameters() if p.requires_grad}
    assert requires_grad == expected
    # frozen parameters never move; trainable ones do (token-type/position rows unused by the batch aside)
    assert changed <= expected
    assert {n for n in expected if "embeddings" not in n} <= changed


def test_freeze_more_blocks_than_exist(tiny_text_model):
    bundle = load_text_classifier(str(tiny_text_model("bert")), ["a", "b"])
    with pytest.raises(ConfigError, match="only 2 blocks"):
        parse_strategy("freeze:5").prepare(bundle.model, bundle.groups)


def test_no_weight_decay_on_bias_and_norms(bundle):
    strategy = parse_strategy("full")
    model = strategy.prepare(bundle.model, bundle.groups)
    groups = strategy.optimizer_groups(model, bundle.groups, 1e-3, 0.05)
    by_decay = {g["weight_decay"]: {id(p) for p in g["params"]} for g in groups}
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.endswith("bias") or "LayerNorm" in p for p in (names[i] for i in by_decay[0.0]))
    assert all(names[i].endswith("weight") and "LayerNorm" not in names[i] for i in by_decay[0.05])
