"""Split a classifier into *features* (what a frozen backbone computes) and a *head* (what trains on them).

The linear probe computes the features once, caches them, and trains only the head on the cache. The
head is built from the model's own modules (no copies), so training it trains the real model, which is
then saved like any other run. Each family says where its head starts; the split is checked
numerically against the model's own forward pass before it is trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..errors import ConfigError
from .heads import PooledClassifier


@dataclass
class FeatureSplit:
    features: Callable[[dict], torch.Tensor]  # model inputs -> [batch, dim], backbone frozen, eval mode
    head: nn.Module  # [batch, dim] -> logits, shares its parameters with the model
    kind: str  # names the split in the cache key: a different split never reuses features


class _TokenHead(nn.Module):
    """RoBERTa-style heads take the whole sequence and read token 0 themselves."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, features):
        return self.classifier(features[:, None, :])


class _Sequential(nn.Module):
    def __init__(self, *layers: nn.Module):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "pixel_values", "input_values", "input_features")


def _text_inputs(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k in MODEL_INPUTS}


def _cls_token(backbone: nn.Module) -> Callable[[dict], torch.Tensor]:
    return lambda batch: backbone(**_text_inputs(batch)).last_hidden_state[:, 0]


def _pooler_output(backbone: nn.Module) -> Callable[[dict], torch.Tensor]:
    return lambda batch: backbone(**_text_inputs(batch)).pooler_output.flatten(1)


def candidate_splits(model: nn.Module) -> list[FeatureSplit]:
    """Every split that may fit ``model``, most specific first; :func:`verified_split` picks the one
    that reproduces its logits."""
    try:
        candidates = [feature_split(model)]
    except ConfigError:
        candidates = []
    prefix = getattr(model, "base_model_prefix", "")
    backbone = getattr(model, prefix, None) if prefix else None
    classifier = getattr(model, "classifier", None)
    projector = getattr(model, "projector", None)
    if isinstance(projector, nn.Linear) and isinstance(classifier, nn.Linear):
        candidates.append(_audio_split(model, backbone if backbone is not None else getattr(model, "encoder", None)))
    if backbone is not None and isinstance(classifier, nn.Linear):  # ViT, DeiT (token 0); ConvNeXt, ResNet (pooled)
        candidates += [FeatureSplit(_cls_token(backbone), classifier, "cls-token"),
                       FeatureSplit(_pooler_output(backbone), classifier, "pooler-output")]
    return candidates


def _audio_split(model: nn.Module, encoder: nn.Module) -> FeatureSplit:
    """Wav2Vec2 / HuBERT / WavLM / Whisper heads: projector -> mean over time -> classifier. The projector is
    affine, so it commutes with the (masked) mean: the cached feature is the mean hidden state."""

    def pooled(batch):
        inputs = _text_inputs(batch)
        hidden = encoder(**inputs).last_hidden_state
        mask = inputs.get("attention_mask")
        if mask is None or not hasattr(model, "_get_feature_vector_attention_mask"):
            return hidden.mean(1)
        frames = model._get_feature_vector_attention_mask(hidden.shape[1], mask).unsqueeze(-1).to(hidden.dtype)
        return (hidden * frames).sum(1) / frames.sum(1).clamp(min=1.0)

    return FeatureSplit(pooled, _Sequential(model.projector, model.classifier), "audio-mean-pooled")


def verified_split(model: nn.Module, batch: dict) -> FeatureSplit:
    for split in candidate_splits(model):
        try:
            check_split(model, split, batch)
            return split
        except (ConfigError, AttributeError, TypeError, RuntimeError):
            continue
    raise ConfigError(
        f"the linear probe cannot cache features for {type(model).__name__}: transferlearn does not know "
        "where its head starts. Use --strategy freeze-backbone (same training, backbone run every step)."
    )


def feature_split(model: nn.Module) -> FeatureSplit:
    """The split for ``model``'s family; ``ConfigError`` when it has none (see :func:`candidate_splits`)."""

    if isinstance(model, PooledClassifier):
        def pooled(batch):
            hidden = model.backbone(**_text_inputs(batch)).last_hidden_state
            return model.pool(hidden, batch.get("attention_mask"))

        return FeatureSplit(pooled, model.head, f"pooled-{model.pooling}")
    if hasattr(model, "feature_split"):  # image / audio families provide their own
        return model.feature_split()
    prefix = getattr(model, "base_model_prefix", "")
    backbone = getattr(model, prefix, None) if prefix else None
    classifier = getattr(model, "classifier", None)
    if backbone is not None and classifier is not None:
        if hasattr(classifier, "out_proj") and hasattr(classifier, "dense"):  # RoBERTa, XLM-R, ELECTRA...
            return FeatureSplit(_cls_token(backbone), _TokenHead(classifier), "cls-token")
        pooler = getattr(backbone, "pooler", None)
        if isinstance(classifier, nn.Linear) and pooler is not None and hasattr(pooler, "dense"):  # BERT family
            head = _Sequential(pooler.dense, nn.Tanh(), getattr(model, "dropout", nn.Identity()), classifier)
            return FeatureSplit(_cls_token(backbone), head, "cls-token+pooler")
        pre = getattr(model, "pre_classifier", None)
        if isinstance(classifier, nn.Linear) and isinstance(pre, nn.Linear):  # DistilBERT
            head = _Sequential(pre, nn.ReLU(), getattr(model, "dropout", nn.Identity()), classifier)
            return FeatureSplit(_cls_token(backbone), head, "cls-token+pre-classifier")
    raise ConfigError(
        f"the linear probe cannot cache features for {type(model).__name__}: transferlearn does not know "
        "where its head starts. Use --strategy freeze-backbone (same training, backbone run every step)."
    )


@torch.no_grad()
def check_split(model: nn.Module, split: FeatureSplit, batch: dict, atol: float = 1e-4) -> None:
    """Trust a split only if head(features(x)) reproduces the model's logits on a real batch."""
    was_training, head_training = model.training, split.head.training
    model.eval()
    split.head.eval()  # the head may wrap modules (dropout) that are not the model's own
    try:
        expected = model(**batch).logits
        got = split.head(split.features(batch))
    finally:
        model.train(was_training)
        split.head.train(head_training)
    if got.shape != expected.shape or not torch.allclose(got, expected, atol=atol, rtol=1e-3):
        diff = (got - expected).abs().max().item() if got.shape == expected.shape else float("nan")
        raise ConfigError(
            f"the cached-feature split '{split.kind}' does not reproduce {type(model).__name__}'s logits "
            f"(max abs diff {diff:.2e}); use --strategy freeze-backbone"
        )
