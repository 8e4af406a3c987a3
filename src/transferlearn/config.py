"""One typed configuration object, filled from YAML and/or CLI flags (flags win).

The run folder keeps a copy as ``config.yaml``; ``tl train -c runs/x/config.yaml`` reproduces the run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

ReportTo = Literal["none", "tensorboard", "wandb", "mlflow"]


class TrainConfig(BaseModel):
    """Everything a training run needs. Unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # --- what to train on -------------------------------------------------------------------
    data: str = Field(description="Data file, folder, or Hugging Face dataset id.")
    model: str = Field(description="Hub id, local folder, or offline zoo name (offline:NAME).")
    task: Literal["auto", "text", "image", "audio"] = "auto"
    text_column: str | None = None
    image_column: str | None = Field(None, description="Image path column of a CSV/JSONL list (default: detected).")
    audio_column: str | None = Field(None, description="Audio path column of a CSV/JSONL list (default: detected).")
    label_from_filename: str | None = Field(None, description="Regex with one group: the label in each file name.")
    group_from_filename: str | None = Field(
        None, description="Regex with one group (e.g. the speaker): no group is in both train and validation.")
    label_column: str | None = None
    data_config: str | None = Field(None, description="Hugging Face dataset config name.")
    val_split: float = Field(0.1, gt=0.0, lt=0.9, description="Held out when the data has no validation split.")
    max_train_samples: int | None = Field(None, gt=0)
    max_eval_samples: int | None = Field(None, gt=0)
    on_bad_rows: Literal["error", "skip"] = "error"

    # --- model ------------------------------------------------------------------------------
    strategy: str = "full"
    from_scratch: bool = False
    head: Literal["linear", "mlp", "keras"] = "linear"
    head_hidden: list[int] = Field(default_factory=lambda: [256])
    head_dropout: float = Field(0.1, ge=0.0, lt=1.0)
    backbone_dropout: float | None = Field(
        None, ge=0.0, lt=1.0, description="Dropout inside the backbone (hidden/attention); default: the model's own.")
    frozen_batchnorm: bool | None = Field(
        None, description="BatchNorm layers keep their running statistics while the rest trains (Keras's advice "
                          "for fine-tuning: small or odd-sized batches would otherwise overwrite the pretrained "
                          "statistics); default: on for pretrained weights, off from scratch.")
    pooling: Literal["default", "cls", "mean"] = "default"
    max_length: int = Field(128, gt=0)
    image_size: int | None = Field(None, gt=0, description="Input size in pixels (default: the backbone's own).")
    augment: Literal["auto", "none", "light", "strong"] = Field(
        "auto", description="Image/audio augmentation preset; auto = light, or none for linear-probe (cached features).")
    max_duration: float = Field(3.0, gt=0, description="Audio clips are cropped / padded to this many seconds.")
    freeze_feature_encoder: bool = Field(True, description="Keep Wav2Vec2-style CNN feature encoders frozen.")
    background_noise_dir: str | None = Field(None, description="Folder of noise clips mixed in by audio 'strong'.")
    mixup: float = Field(0.0, ge=0, description="MixUp Beta(alpha, alpha) on training batches; 0 = off.")
    cutmix: float = Field(0.0, ge=0, description="CutMix Beta(alpha, alpha) on training batches; 0 = off.")
    trust_remote_code: bool = False

    # --- optimisation -----------------------------------------------------------------------
    epochs: float = Field(3.0, gt=0)
    batch_size: int = Field(32, gt=0)
    eval_batch_size: int | None = Field(None, gt=0)
    gradient_accumulation_steps: int = Field(1, gt=0)
    lr: Annotated[float, Field(gt=0)] | Literal["auto"] | None = Field(
        None, description="Peak learning rate; 'auto' runs the LR finder first; default: the strategy's.")
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    layer_lr_decay: float | None = Field(None, gt=0, le=1, description="Layer-wise LR decay (each lower group x F).")
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    class_weights: Literal["none", "balanced"] = Field(
        "none", description="'balanced' weighs the loss by inverse class frequency (helps macro-F1 on rare classes).")
    max_grad_norm: float = Field(1.0, gt=0)
    seed: int = 42
    group_by_length: bool = Field(True, description="Text: batches of similar length (less padding), in random order.")

    # --- evaluation, early stopping, checkpoints ---------------------------------------------
    metric: Literal["macro_f1", "accuracy", "weighted_f1", "loss"] = "macro_f1"
    early_stopping_patience: int = Field(3, ge=0, description="Evaluations without improvement before stopping; 0 disables.")
    early_stopping_threshold: float = Field(0.0, ge=0)
    eval_steps: int | None = Field(None, gt=0, description="Evaluate every N steps (default: every epoch).")
    logging_steps: int = Field(10, gt=0)
    save_total_limit: int = Field(2, ge=1)
    resume: bool = False
    feature_cache: str | None = Field(
        None, description="Where linear-probe features are cached: a folder, 'run' (inside the run folder), "
        "or the shared default $TL_CACHE_DIR/features.")

    # --- output and tracking ----------------------------------------------------------------
    output: str | None = Field(None, description="Run folder (default runs/<model>-<data>-<time>).")
    overwrite: bool = False
    report_to: list[ReportTo] = Field(default_factory=lambda: ["none"])
    num_workers: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    progress: bool = True

    @field_validator("report_to", mode="before")
    @classmethod
    def _split_report_to(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        from .strategies import parse_strategy

        parse_strategy(value)  # raises ConfigError naming the strategy
        return value

    @model_validator(mode="after")
    def _check(self) -> "TrainConfig":
        if "none" in self.report_to and len(self.report_to) > 1:
            raise ValueError("report_to: 'none' cannot be combined with other integrations")
        return self


def _format_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        if err["type"] == "extra_forbidden":
            known = ", ".join(sorted(TrainConfig.model_fields))
            lines.append(f"  unknown key '{key}' (known keys: {known})")
        elif err["type"] == "missing":
            lines.append(f"  missing required key '{key}'")
        else:
            lines.append(f"  key '{key}': {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)


def load_config(path: str | os.PathLike | None = None, **overrides: Any) -> TrainConfig:
    """Read ``path`` (YAML) if given, then apply ``overrides`` whose value is not None."""
    values: dict[str, Any] = {}
    source = "command line"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} must hold a mapping of keys to values, got {type(loaded).__name__}")
        values.update({str(k).replace("-", "_"): v for k, v in loaded.items()})
        source = f"{path} + command line" if any(v is not None for v in overrides.values()) else str(path)
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return TrainConfig(**values)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None


def save_config(config: TrainConfig, path: str | os.PathLike) -> None:
    from .io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True))
