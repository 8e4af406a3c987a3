"""Data loading, one module per modality; every loader returns a :class:`LabelledData`."""

from .splits import LabelledData
from .text import load_text_data

__all__ = ["LabelledData", "load_text_data"]
