"""What differs between text, image and audio: how data loads, how a model loads, how rows become
model inputs, and how raw inputs are read for prediction. Everything else is shared."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .config import TrainConfig
from .data.splits import LabelledData
from .errors import ConfigError
from .models.text import ModelBundle


@dataclass(frozen=True)
class Modality:
    name: str
    load_data: Callable[..., LabelledData]  # (config, label_names=None) -> LabelledData
    load_model: Callable[..., ModelBundle]  # (config, label_names) -> ModelBundle
    encode: Callable[..., Any]  # (bundle, dataset, config) -> datasets.Dataset of model inputs + label
    collator: Callable[..., Any]  # (bundle, config) -> data collator
    read_inputs: Callable[..., Any]  # (processor, raw inputs, settings) -> batch dict of tensors
    # (bundle, config) -> the preprocessing settings that shape the model inputs (part of the feature-cache key)
    preprocessing: Callable[..., dict] = lambda bundle, config: {}
    augments: Callable[..., bool] = lambda config: False  # (config) -> are training inputs random each epoch?


# ---------------------------------------------------------------------------------------- text


def _text_data(config: TrainConfig, label_names: list[str] | None = None, data: str | None = None) -> LabelledData:
    from .data.text import load_text_data

    return load_text_data(
        data or config.data, config.text_column, config.label_column, val_split=config.val_split,
        seed=config.seed, max_train_samples=config.max_train_samples if data is None else None,
        max_eval_samples=config.max_eval_samples, on_bad_rows=config.on_bad_rows,
        data_config=config.data_config, label_names=label_names, carve_validation=data is None,
    )


def _text_model(config: TrainConfig, label_names: list[str]) -> ModelBundle:
    from .models.text import load_text_classifier

    return load_text_classifier(
        config.model, label_names, from_scratch=config.from_scratch, head_dropout=config.head_dropout,
        backbone_dropout=config.backbone_dropout,
        trust_remote_code=config.trust_remote_code, pooling=config.pooling, head=config.head,
        head_hidden=config.head_hidden,
    )


def _text_encode(bundle: ModelBundle, dataset, config: TrainConfig):
    tokenizer = bundle.processor

    def tokenize(batch):
        return tokenizer(batch["text"], truncation=True, max_length=config.max_length)

    return dataset.map(tokenize, batched=True, remove_columns=["text"], desc="tokenizing")


def _text_collator(bundle: ModelBundle, config: TrainConfig):
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(bundle.processor)


def _text_inputs(tokenizer, texts: list[str], max_length: int = 512):
    return tokenizer(list(texts), truncation=True, max_length=max_length, padding=True, return_tensors="pt")


def _text_preprocessing(bundle: ModelBundle, config: TrainConfig) -> dict:
    # The token ids themselves are in the data fingerprint; this names the settings that produced them.
    return {"modality": "text", "tokenizer": type(bundle.processor).__name__, "max_length": config.max_length}


TEXT = Modality("text", _text_data, _text_model, _text_encode, _text_collator, _text_inputs, _text_preprocessing)

MODALITIES = {m.name: m for m in (TEXT,)}


def detect_modality(config: TrainConfig) -> Modality:
    """``task: auto`` picks the modality from the data (text files and Hub datasets are text for now)."""
    if config.task != "auto":
        return MODALITIES[config.task]
    path = Path(config.data)
    if path.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir()):
        has_tables = any(p.is_file() and p.suffix.lower() in {".csv", ".tsv", ".jsonl", ".json"} for p in path.iterdir())
        if not has_tables:
            raise ConfigError(
                f"{path} holds sub-folders but no train/valid/test tables; image and audio folders are "
                "not supported yet — give a CSV/TSV/JSONL file or a folder with train.* files"
            )
    return TEXT


def modality_of(name: str) -> Modality:
    return MODALITIES[name]
