"""Image preprocessing and augmentation with torchvision transforms v2 (nothing hand-written).

Evaluation: resize to size / crop_pct, center crop, normalise with the backbone's own mean/std (timm
``pretrained_cfg`` or the HF image processor). Training presets:

* ``none``   — the evaluation transform;
* ``light``  — random resized crop (scale 0.5-1) + horizontal flip;
* ``strong`` — random resized crop (0.25-1), flip, TrivialAugmentWide, random erasing (p 0.25).

Mixup / CutMix (``--set mixup=0.2`` / ``cutmix=1.0``: the Beta(alpha, alpha) parameter) mix whole batches,
so they run in the collator on training batches only.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.transforms import InterpolationMode, v2
from torchvision.utils import make_grid

from .images import WIDE_MODES
from .splits import label_tensor

PRESETS = ("none", "light", "strong")
SPEC_FILE = "preprocessing.json"


@dataclass
class ImageSpec:
    """What turns a picture into the backbone's input (saved as ``preprocessing.json`` in the model folder)."""

    size: int = 224
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    crop_pct: float = 0.875
    interpolation: str = "bicubic"

    def save_pretrained(self, folder: str | Path) -> None:

        (Path(folder) / SPEC_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, folder: str | Path) -> "ImageSpec":

        return cls(**json.loads((Path(folder) / SPEC_FILE).read_text()))


def _interpolation(name: str):

    return {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR,
            "nearest": InterpolationMode.NEAREST}.get(name, InterpolationMode.BILINEAR)


def eval_transform(spec: ImageSpec):

    return v2.Compose([
        v2.ToImage(),
        v2.Resize(int(round(spec.size / spec.crop_pct)), interpolation=_interpolation(spec.interpolation), antialias=True),
        v2.CenterCrop(spec.size),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(spec.mean, spec.std),
    ])


def train_transform(spec: ImageSpec, preset: str):

    if preset == "none":
        return eval_transform(spec)
    if preset not in PRESETS:
        raise ValueError(f"unknown augmentation preset '{preset}' (known: {', '.join(PRESETS)})")
    interpolation = _interpolation(spec.interpolation)
    scale = (0.5, 1.0) if preset == "light" else (0.25, 1.0)
    steps = [v2.ToImage(), v2.RandomResizedCrop(spec.size, scale=scale, interpolation=interpolation, antialias=True),
             v2.RandomHorizontalFlip()]
    if preset == "strong":
        steps.append(v2.TrivialAugmentWide())  # bilinear: bicubic is unsupported on tensors
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(spec.mean, spec.std)]
    if preset == "strong":
        steps.append(v2.RandomErasing(p=0.25))
    return v2.Compose(steps)


def open_image(image: dict | str | Path):
    """A Pillow RGB image from a row's ``{"bytes", "path"}``, a path, or raw bytes."""

    if isinstance(image, dict):
        source = io.BytesIO(image["bytes"]) if image.get("bytes") is not None else image["path"]
    elif isinstance(image, (bytes, bytearray)):
        source = io.BytesIO(image)
    else:
        source = image
    with Image.open(source) as opened:
        opened.seek(0)  # animated GIF: the first frame
        picture = ImageOps.exif_transpose(opened)  # camera orientation, as viewers show it
        if picture.mode in WIDE_MODES:
            picture = _to_8_bit(picture)
        return picture.convert("RGB")  # grayscale, palette, CMYK, RGBA -> the 3 channels backbones expect


def _to_8_bit(picture):
    """16-bit (or 32-bit / float) grayscale to 8 bits by its value range. Pillow's own ``convert`` clips every
    value above 255, which turns a 16-bit scan almost white."""

    values = np.asarray(picture, dtype=np.float64)
    if picture.mode == "F":
        top = 1.0 if values.size and values.max() <= 1.0 else 255.0
    else:  # I;16 and "I" (Pillow opens 16-bit PNGs as either): the 16-bit range, unless the values are 8-bit ones
        top = 65535.0 if values.size and values.max() > 255 else 255.0
    return Image.fromarray(np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8), "L")


class MixCollator:
    """Stacks a batch; on training batches applies MixUp or CutMix (soft labels)."""

    def __init__(self, num_classes: int, mixup: float = 0.0, cutmix: float = 0.0):

        choices = []
        if mixup > 0:
            choices.append(v2.MixUp(alpha=mixup, num_classes=num_classes))
        if cutmix > 0:
            choices.append(v2.CutMix(alpha=cutmix, num_classes=num_classes))
        self.mix = v2.RandomChoice(choices) if choices else None

    def __call__(self, rows: list[dict]) -> dict:
        training = bool(rows and rows[0].get("_train"))
        pixels = torch.stack([r["pixel_values"] for r in rows])
        labels = label_tensor([r["label"] for r in rows])
        if training and self.mix is not None:
            pixels, labels = self.mix(pixels, labels)
        return {"pixel_values": pixels, "labels": labels}


def augmented_grid(dataset, spec, collator, n: int = 16, seed: int = 0) -> bytes:
    """PNG bytes: ``n`` training samples through the train transform (and MixUp/CutMix), de-normalised."""

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
