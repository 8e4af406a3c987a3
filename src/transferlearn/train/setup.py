"""What every training job needs before its first step, built once: the modality, the data, the model bundle and
the encoded splits. Fine-tuning, ``auto``'s probe and the LR finder all start from the same :class:`Setup`."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

from ..config import TrainConfig
from ..errors import ConfigError
from ..modalities import Modality, detect_modality
from ..strategies import parse_strategy


def shape_settings(config: TrainConfig, shape) -> dict:
    """The label shape's say in the config: ``--metric auto`` becomes its own metric; options that make no sense
    for it are refused in one line."""
    if config.metric == "auto":
        settings = {"metric": (shape.primary_metric, f"metric: {shape.primary_metric} ({shape.name})")}
    elif config.metric != "loss" and config.metric not in shape.metric_choices:
        raise ConfigError(f"--metric {config.metric}: not a metric of {shape.name} data (choose from "
                          f"{', '.join(shape.metric_choices)}, loss or auto)")
    else:
        settings = {}
    if (config.mixup or config.cutmix) and not shape.mixes_inputs:
        raise ConfigError(f"--mixup / --cutmix mix class labels; {shape.name} data has none to mix. Drop them.")
    if config.class_weights == "balanced" and not shape.class_weighted:
        raise ConfigError(f"--class-weights balanced weighs classes of one label column; {shape.name} data has no "
                          "such classes. Drop it.")
    if config.label_smoothing and not shape.one_class_a_row:
        raise ConfigError(f"--label-smoothing smooths one class a row; {shape.name} data has other labels. Drop it.")
    return settings


@dataclass
class Setup:
    config: TrainConfig  # as asked; ``task`` may still be auto
    modality: Modality
    data: object  # LabelledData
    bundle: object  # ModelBundle
    encoded: dict

    settings: dict = None  # config keys set from the data: {key: (value, why)}

    @classmethod
    def build(cls, config: TrainConfig) -> "Setup":
        modality = detect_modality(config)
        if config.streaming and not modality.streams:
            from ..errors import ConfigError

            raise ConfigError(f"streaming: the {modality.name} modality reads its files lazily already (and caches "
                              "decoded inputs memory-mapped, decoded_cache); streaming is for text. Drop --set "
                              "streaming=true.")
        data = modality.load_data(config)
        settings = {**shape_settings(config, data.shape), **modality.settings_from_data(config, data)}
        if settings:
            config = config.model_copy(update={k: v for k, (v, _) in settings.items()})
        bundle = modality.load_model(config, data.shape)
        if hasattr(bundle.model.config, "problem_type"):  # a saved model/ loads in plain transformers as this shape
            bundle.model.config.problem_type = data.shape.problem_type
        parse_strategy(config.strategy).check(bundle.groups)
        by_model = modality.settings_from_model(config, bundle)
        if by_model:
            import logging

            for _, why in by_model.values():
                logging.getLogger(__name__).warning(why)
            settings = {**settings, **by_model}
            config = config.model_copy(update={k: v for k, (v, _) in by_model.items()})
        encoded = {split: modality.encode(bundle, ds, config, train=split == "train")
                   for split, ds in data.splits.items()}
        return cls(config, modality, data, bundle, encoded, settings)

    def for_config(self, config: TrainConfig) -> "Setup":
        """The view of this setup that ``config`` (a plan's) trains on: at its input size where the plan chose one."""
        if config.image_size is not None and config.image_size != self.config.image_size:
            return self.at_input_size(config.image_size)
        return self

    def at_input_size(self, size: int) -> "Setup":
        """A view of this setup whose inputs are preprocessed at ``size`` (the same model and data, a processor and
        encodings of its own): trying a size never changes the setup it was tried on."""
        bundle = dataclasses.replace(self.bundle, processor=copy.deepcopy(self.bundle.processor),
                                     info=dict(self.bundle.info))
        self.modality.set_input_size(bundle, size)
        config = self.config.model_copy(update={"image_size": size})
        encoded = {split: self.modality.encode(bundle, ds, config, train=split == "train")
                   for split, ds in self.data.splits.items()}
        return Setup(config, self.modality, self.data, bundle, encoded, self.settings)

    def snapshot(self) -> dict:
        """The model's weights, to put back after a job that trains it only to measure (the LR finder)."""
        return copy.deepcopy(self.bundle.model.state_dict())

    def restore(self, state: dict) -> None:
        self.bundle.model.load_state_dict(state)
