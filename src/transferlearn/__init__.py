"""transferlearn: fine-tune pretrained text, image and audio models on your own data."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .config import TrainConfig, load_config
from .errors import ConfigError, DataError, ModelError, TransferLearnError

try:
    __version__ = version("transferlearn")  # one place: pyproject.toml
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["TrainConfig", "load_config", "finetune", "Run", "TransferLearnError", "ConfigError", "DataError",
           "ModelError", "__version__"]


def __getattr__(name):
    if name in ("Run", "finetune"):  # imported on first use: the training stack takes seconds to import
        from . import api

        return getattr(api, name)
    raise AttributeError(name)
