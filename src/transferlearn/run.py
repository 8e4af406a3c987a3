"""A run folder as later stages read it (evaluate, predict, report, deploy, serve): each file read once.

Paths come from :class:`~transferlearn.layout.RunLayout`; the modality comes from the resolved plan (or the
config), never guessed from ``metrics.json``, so a run killed after ``model/`` was written still predicts.
"""

from __future__ import annotations

import json
import re
import time
from functools import cached_property
from pathlib import Path

from .config import Plan, TrainConfig, load_config
from .errors import TransferLearnError
from .layout import RunLayout
from .modalities import Modality, detect_modality, modality_of
from .shapes import LabelShape, load_shape


def _slug(text: str) -> str:
    text = text.rstrip("/").split("/")[-1].split(":")[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:40] or "run"


def default_run_dir(config: TrainConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{_slug(config.model)}-{_slug(config.data)}-{stamp}"


def _read_json(path: Path, default):
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else default


class Run:
    """A finished (or evaluated) run folder."""

    def __init__(self, path: str | Path):
        self.layout = RunLayout(path)
        self.path = self.layout.root
        if not self.layout.config.exists():
            raise TransferLearnError(f"{self.path} is not a run folder (no config.yaml)")

    @classmethod
    def load(cls, path: str | Path) -> "Run":
        return cls(path)

    @cached_property
    def intent(self) -> TrainConfig:
        """``config.yaml``: what the user asked for."""
        return load_config(self.layout.config)

    @cached_property
    def plan(self) -> Plan | None:
        return Plan.load(self.layout.plan) if self.layout.plan.exists() else None

    @cached_property
    def config(self) -> TrainConfig:
        """The configuration the run trained with (the intent with the plan applied)."""
        return self.plan.apply(self.intent) if self.plan else self.intent

    @property
    def model_dir(self) -> Path:
        return self.layout.model

    @cached_property
    def metrics(self) -> dict:
        return _read_json(self.layout.metrics, {})

    @cached_property
    def data_summary(self) -> dict:
        return _read_json(self.layout.data_summary, {})

    @cached_property
    def history(self) -> list[dict]:
        if not self.layout.history.exists():
            return []
        lines = self.layout.history.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    @cached_property
    def variants(self) -> dict:
        """``deploy/variants.json``: the exported / quantized variants and how each was checked."""
        return _read_json(self.layout.variants, {})

    @cached_property
    def bench(self) -> dict:
        return _read_json(self.layout.bench_json, {})

    @cached_property
    def label_names(self) -> list[str]:
        names = self.metrics.get("label_names") or self.data_summary.get("labels")
        if names:
            return names
        model_config = _read_json(self.layout.model / "config.json", {})
        if "label_names" in model_config:  # timm folders
            return model_config["label_names"]
        if "id2label" in model_config:
            return [model_config["id2label"][str(i)] for i in range(len(model_config["id2label"]))]
        raise TransferLearnError(f"{self.path}: no labels recorded (no metrics.json, data.json or model/config.json)")

    @cached_property
    def shape(self) -> LabelShape:
        """The fitted label shape saved with the model (older runs: single-label over their names)."""
        return load_shape(self.layout.model, self.label_names)

    def predictions(self, split: str) -> tuple | None:
        """(logits, labels) the final model gave on ``split`` when it was trained (``predictions/<split>.npz``)."""
        import numpy as np

        path = self.layout.predictions_file(split)
        if not path.exists():
            return None
        with np.load(path) as stored:  # plain arrays: allow_pickle stays off
            return stored["logits"], stored["labels"]

    def prediction_inputs(self, split: str) -> list[str] | None:
        """Each row's input as saved with the predictions (text, or a file path; '' for inline bytes)."""
        import numpy as np

        path = self.layout.predictions_file(split)
        if not path.exists():
            return None
        with np.load(path) as stored:
            return stored["inputs"].tolist() if "inputs" in stored.files else None

    @cached_property
    def modality(self) -> Modality:
        task = self.config.task
        return modality_of(task) if task != "auto" else detect_modality(self.config)

    def __repr__(self) -> str:
        test, metric = self.metrics.get("test", {}), self.metrics.get("metric", "macro_f1")
        return f"Run({str(self.path)!r}, test_{metric}={test.get(metric)})"
