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


# ---------------------------------------------------------------------------------------- audio


def _audio_data(config: TrainConfig, label_names: list[str] | None = None, data: str | None = None) -> LabelledData:
    from .data.audio import load_audio_data

    return load_audio_data(
        data or config.data, audio_column=config.audio_column, label_column=config.label_column,
        label_from_filename=config.label_from_filename, group_from_filename=config.group_from_filename,
        val_split=config.val_split, seed=config.seed, max_train_samples=config.max_train_samples if data is None else None,
        max_eval_samples=config.max_eval_samples, on_bad_rows=config.on_bad_rows, data_config=config.data_config,
        label_names=label_names, carve_validation=data is None,
    )


def _audio_model(config: TrainConfig, label_names: list[str]) -> ModelBundle:
    from .models.audio import load_audio_classifier

    if config.head != "linear":
        raise ConfigError(f"head '{config.head}' is not available for audio models (they keep their own head)")
    return load_audio_classifier(
        config.model, label_names, from_scratch=config.from_scratch, head_dropout=config.head_dropout,
        backbone_dropout=config.backbone_dropout, max_seconds=config.max_duration,
        freeze_feature_encoder=config.freeze_feature_encoder, trust_remote_code=config.trust_remote_code,
    )


def _audio_encode(bundle: ModelBundle, dataset, config: TrainConfig, train: bool = False):
    from .data.audio import read_audio
    from .data.audio_augment import audio_augmentation

    processing = bundle.processor
    augment = audio_augmentation(augment_preset(config), config.background_noise_dir) if train else None

    def decode(batch):
        arrays = [read_audio(a, processing.sampling_rate, config.max_duration) for a in batch["audio"]]
        if augment is not None:
            arrays = [augment(samples=a, sample_rate=processing.sampling_rate) for a in arrays]
        features = processing(arrays)
        return {**{k: list(v) for k, v in features.items()}, "label": batch["label"]}

    return dataset.with_transform(decode)


def _audio_collator(bundle: ModelBundle, config: TrainConfig):
    import torch

    def collate(rows: list[dict]) -> dict:
        batch = {k: torch.stack([torch.as_tensor(r[k]) for r in rows]) for k in rows[0] if k not in ("label", "labels")}
        batch["labels"] = torch.tensor([int(r["label"]) for r in rows], dtype=torch.long)
        return batch

    return collate


def _audio_inputs(processor, clips: list, max_length: int = 0):
    from .models.audio import audio_batch

    return audio_batch(processor, list(clips))


def _audio_preprocessing(bundle: ModelBundle, config: TrainConfig) -> dict:
    fe = bundle.processor.feature_extractor
    return {"modality": "audio", "feature_extractor": fe.to_dict(), "max_seconds": bundle.processor.max_seconds}


def _audio_augments(config: TrainConfig) -> bool:
    return augment_preset(config) != "none"


AUDIO = Modality("audio", _audio_data, _audio_model, _audio_encode, _audio_collator, _audio_inputs,
                 _audio_preprocessing, _audio_augments)

MODALITIES = {m.name: m for m in (TEXT, IMAGE, AUDIO)}


def _holds_audio(folder: Path) -> bool:
    """Audio files directly, in class folders, or under ``audio/`` (Speech Commands layout)."""
    from itertools import islice

    from .data.audio import is_audio_file

    return any(is_audio_file(p) for p in islice(folder.rglob("*"), 2000))


def _is_image_table(path: Path, audio: bool = False) -> bool:
    from .data.audio import is_audio_file
    from .data.images import is_image_file
    from .data.tables import read_table

    is_media = is_audio_file if audio else is_image_file
    try:
        table = read_table(path)
    except Exception:  # noqa: BLE001 — not a readable table: the text loader reports why
        return False
    sample = table.rows[:20]
    return bool(sample) and any(all(is_media(Path(str(row.get(c) or ""))) for row in sample)
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
    if path.is_dir() and _holds_audio(path):
        return AUDIO
    tables = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix.lower() in TABLE_SUFFIXES) \
        if path.is_dir() else []
    if tables and _is_image_table(tables[0]):
        return IMAGE
    if tables and _is_image_table(tables[0], audio=True):
        return AUDIO
    if path.is_dir() and not tables and any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir()):
        raise ConfigError(
            f"{path} holds sub-folders but no train/valid/test tables, no images and no audio files; give a "
            "CSV/TSV/JSONL file, a folder with train.* files, or class folders of images or audio"
        )
    return TEXT


def modality_of(name: str) -> Modality:
    return MODALITIES[name]
