"""A grid of augmented training samples: ``tl preview-augment`` and the image run report."""

from __future__ import annotations

from pathlib import Path

from ..config import TrainConfig
from ..errors import ConfigError
from ..io import atomic_write_bytes
from ..modalities import detect_modality


def preview_augmentations(config: TrainConfig, output: str | Path, n: int = 16) -> Path:
    """``n`` augmented training inputs of ``config``'s data as one PNG, drawn by the data's modality."""
    modality = detect_modality(config)
    data = modality.load_data(config)
    bundle = modality.load_model(config, data.shape)
    train = modality.encode(bundle, data.splits["train"], config, train=True)
    png = modality.augmentation_preview(train, bundle, config, n=n)
    if png is None:
        raise ConfigError(f"augment {config.augment}: the {modality.name} modality draws no augmentation preview "
                          "for these settings (pictures with a preset other than none have one)")
    output = Path(output)
    atomic_write_bytes(output, png)
    return output
