"""What a study is: arms x fractions of the labelled training rows x seeds, declared once for the CLI
(``tl study`` gains one option per field, as ``tl train`` does from TrainConfig) and the Python API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..config import parse_duration
from ..errors import TransferLearnError

SCRATCH = "scratch"


def _comma_list(value):
    return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value


class StudyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: str = Field(description="Data file, folder, or Hugging Face dataset id (as for tl train).")
    model: str = Field(description="The pretrained backbone every transfer arm starts from.")
    arms: list[str] = Field(["scratch", "linear-probe", "probe-then-finetune", "full"],
                            description="Comma-separated: any strategy (tl strategies), 'scratch' (the same "
                            "architecture from random weights) or 'scratch:MODEL' (e.g. scratch:small_cnn).")
    fractions: list[float] = Field([0.01, 0.1, 0.3, 1.0], description="Comma-separated shares of the training "
                                   "rows; subsets are stratified and nested (1 % lies inside 10 %).")
    seeds: int = Field(3, ge=1, le=100, description="Seeds per arm and fraction (seed s = --seed + s).")
    seed: int = Field(42, description="The first seed; the validation split is carved with it for every run.")
    metric: Literal["macro_f1", "accuracy"] = Field("macro_f1", description="The test metric compared.")
    target: float = Field(0.95, gt=0, le=1, description="Labels needed to reach this share of the full-data score.")
    time_budget: str | None = Field(None, description="Wall time for the whole study (90m, 2h): runs that would "
                                    "not fit are dropped or shortened, and the study says which.")
    output: str | None = Field(None, description="Study folder (default studies/<model>-<data>).")
    backend: Literal["sequential"] = Field("sequential", description="Where runs execute: one after another here.")

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

    @field_validator("time_budget")
    @classmethod
    def _check_budget(cls, value):
        if value is not None:
            parse_duration(value)
        return value

    @property
    def budget_s(self) -> float | None:
        return parse_duration(self.time_budget) if self.time_budget else None
