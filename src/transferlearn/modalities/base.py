"""The modality contract: everything that differs between text, image and audio, asked by every stage.

A stage never compares ``modality.name``; it asks the modality (how data loads, how a model and its processor
load, how rows become model inputs, what the ONNX graph takes, which quantization fits, ...). A new modality is
one subclass registered with :func:`register`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..config import TrainConfig
from ..data.splits import LabelledData

MODALITIES: dict[str, "Modality"] = {}


def register(cls: type["Modality"]) -> type["Modality"]:
    """Class decorator: one instance of each modality, found by name (``task`` in the config)."""
    MODALITIES[cls.name] = cls()
    return cls


def augment_preset(config: TrainConfig) -> str:
    """``auto``: light augmentation, except for strategies whose cached features need fixed inputs."""
    if config.augment != "auto":
        return config.augment
    from ..strategies import parse_strategy  # lazy: the strategies import torch, and `tl --help` need not wait

    return "light" if parse_strategy(config.strategy).augments_by_default else "none"


def label_request(config: TrainConfig, shape=None) -> dict:
    """The loaders' label arguments: the column(s), the shape asked for, the regression loss; ``shape`` when scoring
    a trained run's model on other data."""
    return {"label_column": config.label_column, "shape": shape, "problem": config.problem,
            "regression_loss": config.regression_loss}


class Modality(ABC):
    name: ClassVar[str]
    row_column: ClassVar[str]  # the raw-input column of its datasets (what predict / evaluate read)
    pipeline_tag: ClassVar[str]  # the Hugging Face task name
    onnx_inputs: ClassVar[tuple[str, ...]]  # model inputs the ONNX graph may take, in order
    sequence_inputs: ClassVar[tuple[str, ...]] = ()  # inputs whose axis 1 has a variable length
    token_lengths: ClassVar[bool] = False  # rows have a length: batches can be grouped by it
    file_inputs: ClassVar[bool] = True  # raw inputs are files (paths, uploads, bytes); text's are strings
    streams: ClassVar[bool] = False  # load_data can stream the training rows (--set streaming=true)
    finetune_lr: ClassVar[float] = 5e-5  # auto's fine-tunes (from a probed head): transformers 5e-5, CNNs higher

    # --- data and model -------------------------------------------------------------------------
    @abstractmethod
    def load_data(self, config: TrainConfig, shape=None, data: str | None = None) -> LabelledData:
        """The run's splits; with ``data``, another source scored by the model's fitted label ``shape`` (no
        carve-out)."""

    @abstractmethod
    def load_model(self, config: TrainConfig, shape):
        """A :class:`~transferlearn.models.bundle.ModelBundle` for training, its head sized for the label ``shape``."""

    @abstractmethod
    def load_model_folder(self, folder: Path):
        """A saved ``model/`` folder as an eval-mode model."""

    @abstractmethod
    def load_processor(self, folder: Path):
        """The saved processor (tokenizer / image spec / audio feature extractor), without the model."""

    # --- rows to model inputs -------------------------------------------------------------------
    @abstractmethod
    def encode(self, bundle, dataset, config: TrainConfig, train: bool = False):
        """A dataset of model inputs + label (tokenized, or decoded by a transform on access)."""

    @abstractmethod
    def collator(self, bundle, config: TrainConfig):
        """The Trainer's data collator."""

    @abstractmethod
    def read_inputs(self, processor, items: list, max_length: int) -> dict:
        """Raw inputs (texts, image files, clips) -> a batch of tensors."""

    def read_labelled(self, processor, items: list, labels: np.ndarray, max_length: int,
                      stride: int = 32) -> tuple[dict, np.ndarray]:
        """(a batch of tensors, the labels in the layout of the model's outputs): rows score as they are."""
        return self.read_inputs(processor, list(items), max_length), labels

    def batches(self, processor, items: list, max_length: int, batch_size: int, max_tokens: int | None = None):
        """``(indices, model batch)`` pairs that cover ``items`` once, for prediction; by default consecutive
        slices of ``batch_size``. (``max_tokens`` bounds a batch's padded tokens where rows have lengths.)"""
        for start in range(0, len(items), batch_size):
            indices = list(range(start, min(start + batch_size, len(items))))
            yield indices, self.read_inputs(processor, [items[i] for i in indices], max_length)

    def example_input(self):
        """One valid raw input (the server warms up on it before it reports ready)."""
        raise NotImplementedError

    def upload_size(self, data: bytes) -> tuple[float, str]:
        """How big an uploaded file is, read from its header only: ``(amount, unit)`` with unit ``pixels`` or
        ``seconds``; an unreadable file raises DataError. (Text has no uploads.)"""
        raise NotImplementedError

    def check_inputs(self, items: list) -> list[str]:
        """Raw prediction inputs checked before any is read: unusable ones raise DataError (naming them);
        returns warnings about suspicious ones. Image and audio models take files: each path must be one."""
        from ..errors import DataError

        missing = [str(item) for item in items if isinstance(item, (str, Path)) and not Path(item).is_file()]
        if missing:
            shown = ", ".join(repr(m[:60]) for m in missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3
                                                                     else "")
            raise DataError(f"{shown}: not {'a file' if len(missing) == 1 else 'files'}. This is an {self.name} model: "
                            f"give paths of {self.name} files (or use a text model for text).")
        return []

    def preprocessing(self, bundle, config: TrainConfig) -> dict:
        """The settings that shape the model inputs (part of the feature-cache key)."""
        return {"modality": self.name}

    def augments(self, config: TrainConfig) -> bool:
        """Are training inputs random each epoch (so cached features cannot stand for them)?"""
        return False

    def settings_from_data(self, config: TrainConfig, data: LabelledData) -> dict[str, tuple[Any, str]]:
        """Config keys to set from the data itself (only keys the user did not set): {key: (value, why)}."""
        return {}

    def settings_from_model(self, config: TrainConfig, bundle) -> dict[str, tuple[Any, str]]:
        """Config keys the loaded model constrains (e.g. a length it cannot exceed): {key: (value, why)}."""
        return {}

    def input_sizes(self, config: TrainConfig, data: LabelledData, bundle) -> list[int]:
        """Input sizes worth comparing on the probe (first: the model's own); one size where there is no choice."""
        return []

    def set_input_size(self, bundle, size: int) -> None:
        """Make ``bundle`` preprocess inputs at ``size`` (what ``input_sizes`` offered)."""
        raise NotImplementedError

    def lengths(self, items: list) -> list[int] | None:
        """A size per raw input, for grouping similar ones in a batch; None where inputs have no length."""
        return None

    def encoded_lengths(self, dataset) -> list[int] | None:
        """The length of each encoded row (``encode``'s output: token ids), for batches of similar length and
        length-sorted evaluation; None where rows have no length (pictures, fixed-length clips, cached features)."""
        return None

    def augmentation_preview(self, encoded_train, bundle, config: TrainConfig, n: int = 16) -> bytes | None:
        """A PNG of augmented training inputs for the report, where one can be drawn."""
        return None

    @abstractmethod
    def baseline(self):
        """(name, scikit-learn transformer from raw inputs to features) of the built-in classical baseline's features
        (the label shape brings the model on them)."""

    # --- deployment -----------------------------------------------------------------------------
    def dynamic_axes(self, names: list[str]) -> dict:
        axes = {n: ({0: "batch", 1: "sequence"} if n in self.sequence_inputs else {0: "batch"}) for n in names}
        return {**axes, "logits": {0: "batch"}}

    def quantization_misfit(self, method: str) -> str | None:
        """Why ``method`` suits this modality's models badly, or None when it fits."""
        return None

    def dynamic_int8_ops(self) -> list[str]:
        """Op types onnxruntime's dynamic quantization converts."""
        return ["MatMul"]

    def fusable_family(self, model) -> bool:
        """Does onnxruntime's transformer optimizer (fused attention, layer norm) apply to ``model``?"""
        return False

    def library_name(self, model_dir: Path) -> str:
        return "transformers"

    def usage_snippet(self, model_dir: Path) -> list[str]:
        """Model-card lines showing how the packaged folder loads."""
        return ["```python", "from transformers import pipeline",
                f'classify = pipeline("{self.pipeline_tag}", model=".")', "```"]

    def row_inputs(self, dataset) -> list:
        """A split's rows as the model's raw inputs (what ``read_inputs`` and the predictor take)."""
        return list(dataset.with_format(None)[self.row_column])

    def row_value(self, item: Any) -> str | None:
        """A data row's input (``row_column``) as it is written to a file: the text, or the picture's / clip's path
        (None for one held only as bytes)."""
        return (item.get("path") or None) if isinstance(item, dict) else str(item)

    def describe_input(self, item: Any) -> str:
        return str(item)[:80]

    def input_flags(self, item: Any) -> list[str]:
        """What looks wrong with one raw input on its own (tl audit): nothing, unless the modality knows better."""
        return []

    def inline_html(self, item: Any) -> str:
        """An input as a self-contained HTML fragment for the reports (a snippet, a thumbnail, a player)."""
        import html

        return html.escape(self.describe_input(item))
