"""Custom heads (mean/CLS pooling, MLP) on any encoder: train, save, reload, and the contract."""

from __future__ import annotations

import pytest
import torch

from transferlearn import Run, finetune, load_config
from transferlearn.models.heads import PooledClassifier, load_pooled_classifier
from transferlearn.models.text import load_text_classifier
from transferlearn.strategies import parse_strategy


def test_mean_pooling_ignores_padding(tiny_text_model):
    bundle = load_text_classifier(str(tiny_text_model("bert")), ["a", "b"], pooling="mean")
    model = bundle.model.eval()
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert model.pool(hidden, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 3.0]]
    model.pooling = "cls"
    assert model.pool(hidden, torch.tensor([[1, 1, 0]])).tolist() == [[1.0, 2.0]]


def test_mlp_head_shape_and_groups(tiny_text_model):
    bundle = load_text_classifier(str(tiny_text_model("bert")), ["a", "b", "c"], head="mlp", head_hidden=[16, 8],
                                  pooling="mean", head_dropout=0.2)
    model = bundle.model
    assert isinstance(model, PooledClassifier)
    linears = [m for m in model.head if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(32, 16), (16, 8), (8, 3)]
    assert set(bundle.groups.head) == {n for n, _ in model.named_parameters() if n.startswith("head.")}
    assert bundle.groups.num_blocks == 2 and all(n.startswith("backbone.embeddings") for n in bundle.groups.embeddings)
    parse_strategy("freeze-backbone").prepare(model, bundle.groups)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == set(bundle.groups.head)


def test_pooled_model_trains_saves_and_reloads(tmp_path, sentiment_folder, tiny_text_model):
    run = finetune(load_config(data=str(sentiment_folder), model=str(tiny_text_model("bert")), pooling="mean",
                               head="mlp", head_hidden=[16], epochs=6, lr=1e-2, warmup_ratio=0.0,
                               output=str(tmp_path / "pooled"), progress=False, early_stopping_patience=0))
    folder = run.model_dir
    assert (folder / "transferlearn.json").exists() and (folder / "encoder" / "config.json").exists()
    assert not (folder / "config.json").exists()  # a plain pipeline must not load a random native head
    reloaded = load_pooled_classifier(folder)
    texts = ["the food was great and lovely", "the staff was awful and terrible"]
    fresh = Run.load(run.path).predict(texts)
    assert run.metrics["test"]["accuracy"] >= 0.75  # learned, not guessing
    from transformers import AutoTokenizer

    batch = AutoTokenizer.from_pretrained(folder)(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        probs = torch.softmax(reloaded(**batch).logits, -1)
    assert probs[0, 1].item() == pytest.approx(fresh[0]["probabilities"]["positive"], abs=1e-5)
