"""The linear probe on cached features, run by the same HF Trainer over a features dataset.

Used by ``linear-probe`` (the probe is the result), ``probe-then-finetune`` (LP-FT: the probed head
starts a full fine-tune) and ``auto`` (a quick probe measures how well the frozen features separate
the classes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from ..config import TrainConfig
from ..layout import RunLayout
from ..models.features import FeatureSplit, verified_split
from ..strategies import decay_split
from .feature_cache import FeaturesDataset, cached_features, default_cache_root, weights_fingerprint
from .setup import Setup
from .trainer import make_trainer, training_arguments, use_cpu

log = logging.getLogger(__name__)


class CachedFeaturesHead(nn.Module):
    """The model's own head modules, fed cached features instead of the backbone's output."""

    def __init__(self, head: nn.Module, config):
        super().__init__()
        self.head = head
        self.config = config  # the Trainer reads model.config

    def forward(self, features, labels=None):
        logits = self.head(features)
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


@dataclass
class ProbeData:
    split: FeatureSplit
    datasets: dict[str, FeaturesDataset]
    cache: dict[str, dict]  # split name -> cache entry metadata (hit, path, seconds)


def cache_root(config: TrainConfig, layout: RunLayout) -> Path:
    if config.feature_cache == "run":
        return layout.features
    return Path(config.feature_cache).expanduser() if config.feature_cache else default_cache_root()


def feature_device(config: TrainConfig) -> torch.device:
    return torch.device("cpu" if use_cpu(config) else "cuda")


def probe_data(config: TrainConfig, setup: Setup, layout: RunLayout) -> ProbeData:
    """Cached features of every split (computed on a miss), after checking the split on a real batch."""
    bundle, encoded, modality = setup.bundle, setup.encoded, setup.modality
    if modality.augments(config):  # features come from fixed (evaluation-time) inputs
        encoded = {**encoded, "train": modality.encode(bundle, setup.data.splits["train"], config, train=False)}
    collator = modality.collator(bundle, config)
    sample = collator([encoded["train"][i] for i in range(min(4, len(encoded["train"])))])
    sample.pop("labels", None)
    split = verified_split(bundle.model, sample)
    device = feature_device(config)
    weights_hash = weights_fingerprint(bundle.model, split.head)
    bundle.model.to(device)
    preprocessing = modality.preprocessing(bundle, config)
    datasets, cache = {}, {}
    for name, dataset in encoded.items():
        features, meta = cached_features(
            bundle.model, split, dataset, collator, root=cache_root(config, layout), preprocessing=preprocessing,
            weights_hash=weights_hash, device=device, batch_size=config.eval_batch_size or config.batch_size * 2,
            name=name, progress=config.progress,
        )
        # without the format transform: reading labels through it would decode every image/clip once more
        datasets[name] = FeaturesDataset(features, dataset.with_format(None)["label"])
        cache[name] = {k: meta[k] for k in ("hit", "path", "rows", "dim", "seconds")}
    return ProbeData(split, datasets, cache)


def train_probe(config: TrainConfig, bundle, probe: ProbeData, out_dir: Path, *, epochs: float, lr: float,
                main: bool):
    """Train the head on cached features; returns (trainer, train output). ``main`` runs report to
    the user's trackers and write the run's history; a preliminary probe keeps to its own folder."""
    head_model = CachedFeaturesHead(probe.split.head, bundle.model.config)
    for param in head_model.parameters():
        param.requires_grad_(True)
    update = {"epochs": epochs, "lr": lr, "group_by_length": False}
    if not main:
        update["report_to"] = ["none"]
    probe_config = config.model_copy(update=update)
    args = training_arguments(probe_config, out_dir / "checkpoints")
    groups = decay_split(list(head_model.named_parameters()), lr, config.weight_decay)
    trainer = make_trainer(probe_config, head_model, args, probe.datasets["train"], probe.datasets["validation"],
                           collator=None, processor=None, param_groups=groups,
                           num_labels=len(bundle.model.config.id2label), history=out_dir / "history.jsonl")
    output = trainer.train()
    return trainer, output
