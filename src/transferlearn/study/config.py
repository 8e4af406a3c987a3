"""What a study and a sweep are: arms x fractions of the labelled training rows x seeds, declared once for the CLI
(``tl study`` gains one option per field, as ``tl train`` does from TrainConfig) and the Python API."""

from __future__ import annotations

from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..config import TrainConfig, parse_duration
from ..errors import TransferLearnError

SCRATCH = "scratch"


def _comma_list(value):
    return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value


class MultiRunConfig(BaseModel):
    """What every command that runs many runs (a study, a sweep) takes."""

    model_config = ConfigDict(extra="forbid")

    data: str = Field(description="Data file, folder, or Hugging Face dataset id (as for tl train).")
    model: str = Field(description="The pretrained backbone.")
    time_budget: str | None = Field(None, description="Wall time for the whole command (90m, 2h): runs that would "
                                    "not fit are not started, and the record says which.")
    output: str | None = Field(None, description="Output folder (default studies/... or sweeps/...).")
    backend: Literal["sequential", "ray"] = Field("sequential", description="Where runs execute: sequential (one "
                                                 "after another, here) or ray (Ray tasks, several at once).")
    address: str | None = Field(None, description="--backend ray: the cluster to join (auto, or ray://HOST:10001); "
                                "default: a local Ray instance on this machine.")
    workers: int | None = Field(None, ge=1, description="--backend ray: runs at once at most (default: as many as the "
                                "CPUs (and GPUs) allow).")
    cpus_per_run: float = Field(1.0, gt=0, description="--backend ray: CPUs each run needs (its torch threads).")
    gpus_per_run: float | None = Field(None, ge=0, description="--backend ray: GPUs each run needs (default 1 when "
                                       "this machine has a GPU, else 0; fractions share one).")

    @field_validator("time_budget")
    @classmethod
    def _check_budget(cls, value):
        if value is not None:
            parse_duration(value)
        return value

    @property
    def budget_s(self) -> float | None:
        return parse_duration(self.time_budget) if self.time_budget else None


def resolve_metric(metric: str, shape) -> str:
    """``auto`` -> the label shape's primary metric; a named metric must be one the shape scores (higher is better)."""
    if metric == "auto":
        return shape.primary_metric
    if metric not in shape.metric_choices:
        raise TransferLearnError(f"--metric {metric}: not a metric of {shape.title} (choose auto or one of "
                                 f"{', '.join(shape.metric_choices)})")
    return metric


class StudyConfig(MultiRunConfig):
    arms: list[str] = Field(["scratch", "linear-probe", "probe-then-finetune", "full"],
                            description="Comma-separated: any strategy (tl strategies), 'scratch' (the same "
                            "architecture from random weights) or 'scratch:MODEL' (e.g. scratch:small_cnn).")
    fractions: list[float] = Field([0.01, 0.1, 0.3, 1.0], description="Comma-separated shares of the training "
                                   "rows; subsets are stratified and nested (1 % lies inside 10 %).")
    seeds: int = Field(3, ge=1, le=100, description="Seeds per arm and fraction (seed s = --seed + s).")
    seed: int = Field(42, description="The first seed; the validation split is carved with it for every run.")
    metric: str = Field("auto", description="The test metric compared: auto (the label shape's primary metric: "
                        "macro_f1 for one class a row, mean_average_precision for tag sets, flat_macro_f1 or "
                        "mean_macro_f1 for several label columns, r2 for numbers) or one of the shape's metrics.")
    target: float = Field(0.95, gt=0, le=1, description="Labels needed to reach this share of the score with the "
                          "most labels tried.")

    @field_validator("arms", "fractions", mode="before")
    @classmethod
    def _split(cls, value):
        return _comma_list(value)

    @field_validator("fractions")
    @classmethod
    def _check_fractions(cls, value: list[float]) -> list[float]:
        if not value or any(not 0 < f <= 1 for f in value):
            raise ValueError(f"fractions must lie in (0, 1], got {value}")
        return sorted(set(value))

    @field_validator("arms")
    @classmethod
    def _check_arms(cls, value: list[str]) -> list[str]:
        from ..strategies import parse_strategy

        if not value:
            raise ValueError("no arms given")
        for arm in value:
            if arm == SCRATCH or arm.startswith(SCRATCH + ":"):
                if arm.startswith(SCRATCH + ":") and not arm.split(":", 1)[1]:
                    raise ValueError("scratch:MODEL needs a model name, e.g. scratch:small_cnn")
                continue
            try:
                parse_strategy(arm)
            except TransferLearnError as exc:  # a ValueError for pydantic: reported beside the other options' errors
                raise ValueError(str(exc)) from None
        if len(set(value)) != len(value):
            raise ValueError(f"an arm is listed twice: {value}")
        return value


class SweepConfig(MultiRunConfig):
    strategy: str = Field("full", description="The strategy every trial trains with (tl strategies).")
    space: str = Field(description="Comma-separated: KEY=LOW:HIGH[:log] (a range; integers when both ends are) or "
                       "KEY=A|B|C (choices), for any tl train key, e.g. lr=1e-5:1e-3:log,batch_size=16|32,epochs=2:6")
    trials: int = Field(20, ge=1, description="Trials to finish (pruned ones count), across resumed invocations.")
    seed: int = Field(42, description="Seed of the sampler and of every trial's run.")

    @field_validator("space")
    @classmethod
    def _check_space(cls, value: str) -> str:
        parse_space(value)
        return value


def _number(text: str):
    """An int if it reads as one, else a float (YAML would read ``1e-5`` as a string), else the text itself."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_space(text: str) -> dict[str, dict]:
    """``lr=1e-5:1e-3:log,batch_size=16|32`` -> {name: {"kind": float|int|choice, ...}}; keys checked against
    TrainConfig so a typo fails before the first trial."""
    space = {}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        key, sep, spec = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not spec:
            raise ValueError(f"space item {item!r}: expected KEY=LOW:HIGH[:log] or KEY=A|B")
        if key not in TrainConfig.model_fields or not TrainConfig.model_fields[key].json_schema_extra["sweep"]:
            raise ValueError(f"space key {key!r} is not a tl train key a sweep can vary")
        if "|" in spec:
            space[key] = {"kind": "choice", "choices": [yaml.safe_load(c) for c in spec.split("|")]}
            continue
        parts = spec.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
            raise ValueError(f"space item {item!r}: a range is LOW:HIGH or LOW:HIGH:log")
        low, high = (_number(p) for p in parts[:2])
        if not all(isinstance(v, (int, float)) for v in (low, high)) or low >= high:
            raise ValueError(f"space item {item!r}: LOW and HIGH must be numbers with LOW < HIGH")
        log_scale = len(parts) == 3
        if log_scale and low <= 0:
            raise ValueError(f"space item {item!r}: a log range needs LOW > 0")
        kind = "int" if isinstance(low, int) and isinstance(high, int) and not log_scale else "float"
        space[key] = {"kind": kind, "low": low, "high": high, "log": log_scale}
    if not space:
        raise ValueError("the space is empty")
    return space
