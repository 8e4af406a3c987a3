"""A grid of augmented training samples: ``tl preview-augment`` and the image run report."""

from __future__ import annotations

import io
from pathlib import Path

import torch

from ..config import TrainConfig
from ..io import atomic_write_bytes


def augmented_grid(dataset, spec, collator, n: int = 16, seed: int = 0) -> bytes:
    """PNG bytes: ``n`` training samples through the train transform (and MixUp/CutMix), de-normalised."""
    from PIL import Image
    from torchvision.utils import make_grid

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(dataset), (n,), generator=generator).tolist()
    batch = collator([dataset[i] for i in picks])
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    pixels = (batch["pixel_values"] * std + mean).clamp(0, 1)
    grid = make_grid(pixels, nrow=int(max(1, round(n**0.5))), padding=2, pad_value=1.0)
    buffer = io.BytesIO()
    Image.fromarray((grid.permute(1, 2, 0).numpy() * 255).astype("uint8")).save(buffer, format="PNG")
    return buffer.getvalue()


def preview_augmentations(config: TrainConfig, output: str | Path, n: int = 16) -> Path:
    from ..modalities import IMAGE

    data = IMAGE.load_data(config)
    bundle = IMAGE.load_model(config, data.label_names)
    train = IMAGE.encode(bundle, data.splits["train"], config, train=True)
    png = augmented_grid(train, bundle.processor.spec, IMAGE.collator(bundle, config), n=n, seed=config.seed)
    output = Path(output)
    atomic_write_bytes(output, png)
    return output
