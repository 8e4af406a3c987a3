"""One class per modality (text, image, audio) behind one contract (:class:`Modality`)."""

from __future__ import annotations

from . import audio, image, text  # noqa: F401  (each registers itself)
from .base import MODALITIES, Modality, augment_preset, register
from .detect import detect_modality

TEXT, IMAGE, AUDIO = MODALITIES["text"], MODALITIES["image"], MODALITIES["audio"]


def modality_of(name: str) -> Modality:
    return MODALITIES[name]


__all__ = ["MODALITIES", "Modality", "register", "augment_preset", "detect_modality", "modality_of", "TEXT", "IMAGE",
           "AUDIO"]
