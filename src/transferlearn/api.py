"""The Python API: ``transferlearn.finetune(config) -> Run`` and ``Run.predict``. It sits on top of every layer
(like the CLI), so the run folder reader below it need not know about predictors."""

from __future__ import annotations

from functools import cache

import numpy as np

from . import run as _run
from .config import TrainConfig, load_config
from .deploy.predictor import Predictor
from .report.html import write_report
from .train.engine import finetune as _finetune


class Run(_run.Run):
    """A run folder with prediction: ``Run.load("runs/x").predict(["..."])`` (``onnx=True``: onnxruntime)."""

    @cache  # noqa: B019 — one predictor per backend for the life of this Run object
    def predictor(self, backend: str = "torch"):

        return Predictor(self, backend)

    def predict_logits(self, inputs: list, batch_size: int = 32, onnx: bool = False) -> np.ndarray:
        return self.predictor("onnx" if onnx else "torch").logits(inputs, batch_size)

    def predict(self, inputs: list, top_k: int | None = None, onnx: bool = False) -> list[dict]:
        """Label and class probabilities for each input, most likely first (``onnx``: onnxruntime only)."""
        return self.predictor("onnx" if onnx else "torch").predict(inputs, top_k)


def finetune(config: TrainConfig | dict | str, plan=None, callbacks: tuple | list = ()) -> Run:
    """Fine-tune as ``tl train`` does, report included. ``config`` is a TrainConfig, a dict of its keys, or a YAML
    path; ``plan`` (a :class:`~transferlearn.config.Plan`) reuses another run's decisions; ``callbacks``: Hugging
    Face ``TrainerCallback`` objects added to every trainer the run builds."""

    if isinstance(config, dict):
        config = load_config(**config)
    elif not isinstance(config, TrainConfig):
        config = load_config(config)
    return Run.load(_finetune(config, plan, callbacks=tuple(callbacks), finish=(write_report,)).path)
