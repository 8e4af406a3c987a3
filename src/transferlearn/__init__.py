"""transferlearn: fine-tune pretrained text, image and audio models on your own data."""

from __future__ import annotations

__version__ = "0.1.0"

from .config import TrainConfig, load_config
from .errors import ConfigError, DataError, ModelError, TransferLearnError

__all__ = ["TrainConfig", "load_config", "finetune", "Run", "TransferLearnError", "ConfigError", "DataError",
           "ModelError", "__version__"]


def finetune(config: TrainConfig | dict | str) -> "Run":
    """Fine-tune as ``tl train`` does. ``config`` is a TrainConfig, a dict of its keys, or a YAML path."""
    from .train.engine import finetune as _finetune

    if isinstance(config, dict):
        config = load_config(**config)
    elif not isinstance(config, TrainConfig):
        config = load_config(config)
    return _finetune(config)


def __getattr__(name):
    if name == "Run":
        from .train.run import Run

        return Run
    raise AttributeError(name)
