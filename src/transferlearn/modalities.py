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
    encode: Callable[..., Any]  # (bundle, dataset, config, train=False) -> datasets.Dataset of model inputs + label
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


def _text_encode(bundle: ModelBundle, dataset, config: TrainConfig, train: bool = False):
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

# ---------------------------------------------------------------------------------------- image


def _image_data(config: TrainConfig, label_names: list[str] | None = None, data: str | None = None) -> LabelledData:
    from .data.images import load_image_data

    return load_image_data(
        data or config.data, image_column=config.image_column, label_column=config.label_column,
        val_split=config.val_split, seed=config.seed,
        max_train_samples=config.max_train_samples if data is None else None,
        max_eval_samples=config.max_eval_samples, on_bad_rows=config.on_bad_rows, data_config=config.data_config,
        label_names=label_names, carve_validation=data is None,
    )


def _image_model(config: TrainConfig, label_names: list[str]) -> ModelBundle:
    from .models.image import load_image_classifier

    return load_image_classifier(
        config.model, label_names, from_scratch=config.from_scratch, head=config.head,
        head_dropout=config.head_dropout, backbone_dropout=config.backbone_dropout, image_size=config.image_size,
        trust_remote_code=config.trust_remote_code,
    )


def augment_preset(config: TrainConfig) -> str:
    """``auto``: light augmentation, except for linear-probe, whose cached features need fixed inputs."""
    if config.augment != "auto":
        return config.augment
    return "none" if config.strategy.split(":")[0] in ("linear-probe", "auto") else "light"


def _image_encode(bundle: ModelBundle, dataset, config: TrainConfig, train: bool = False):
    from .data.augment import eval_transform, open_image, train_transform

    transform = train_transform(bundle.processor.spec, augment_preset(config)) if train else eval_transform(
        bundle.processor.spec)

    def decode(batch):
        return {"pixel_values": [transform(open_image(image)) for image in batch["image"]],
                "label": batch["label"], "_train": [train] * len(batch["label"])}

    return dataset.with_transform(decode)


def _image_collator(bundle: ModelBundle, config: TrainConfig):
    from .data.augment import MixCollator

    return MixCollator(len(bundle.model.config.id2label), mixup=config.mixup, cutmix=config.cutmix)


def _image_inputs(processor, images: list, max_length: int = 0):
    from .models.image import image_batch

    return image_batch(processor.spec, list(images))


def _image_preprocessing(bundle: ModelBundle, config: TrainConfig) -> dict:
    from dataclasses import asdict

    return {"modality": "image", **asdict(bundle.processor.spec)}


def _image_augments(config: TrainConfig) -> bool:
    return augment_preset(config) != "none" or config.mixup > 0 or config.cutmix > 0


IMAGE = Modality("image", _image_data, _image_model, _image_encode, _image_collator, _image_inputs,
                 _image_preprocessing, _image_augments)

MODALITIES = {m.name: m for m in (TEXT, IMAGE)}


def _is_image_table(path: Path) -> bool:
    from .data.images import is_image_file
    from .data.tables import read_table

    try:
        table = read_table(path)
    except Exception:  # noqa: BLE001 — not a readable table: the text loader reports why
        return False
    sample = table.rows[:20]
    return bool(sample) and any(all(is_image_file(Path(str(row.get(c) or ""))) for row in sample)
                                for c in table.columns)


def detect_modality(config: TrainConfig) -> Modality:
    """``task: auto`` picks the modality from the data: class folders of images, IDX files, or tables
    listing image files are images; other tables, folders of tables and Hub ids are text."""
    from .data.images import find_idx_files, is_class_folder_tree
    from .data.tables import TABLE_SUFFIXES

    if config.task != "auto":
        return MODALITIES[config.task]
    path = Path(config.data)
    if path.is_dir() and (find_idx_files(path) or is_class_folder_tree(path)):
        return IMAGE
    tables = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix.lower() in TABLE_SUFFIXES) \
        if path.is_dir() else []
    if tables and _is_image_table(tables[0]):
        return IMAGE
    if path.is_dir() and not tables and any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir()):
        raise ConfigError(
            f"{path} holds sub-folders but no train/valid/test tables and no class folders of images; "
            "audio folders are not supported yet — give a CSV/TSV/JSONL file, a folder with train.* files, "
            "or class folders of images"
        )
    return TEXT


def modality_of(name: str) -> Modality:
    return MODALITIES[name]
