"""A grid of augmented training samples: ``tl preview-augment`` and the image run report."""

from __future__ import annotations

from pathlib import Path

from ..config import TrainConfig
from ..data.augment import augmented_grid
from ..io import atomic_write_bytes


def preview_augmentations(config: TrainConfig, output: str | Path, n: int = 16) -> Path:
    from ..modalities import modality_of

    image = modality_of("image")
    data = image.load_data(config)
    bundle = image.load_model(config, data.label_names)
    train = image.encode(bundle, data.splits["train"], config, train=True)
    png = augmented_grid(train, bundle.processor.spec, image.collator(bundle, config), n=n, seed=config.seed)
    output = Path(output)
    atomic_write_bytes(output, png)
    return output
