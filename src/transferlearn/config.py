"""One typed configuration object, filled from YAML and/or CLI flags (flags win).

The run folder keeps a copy as ``config.yaml``; ``tl train -c runs/x/config.yaml`` reproduces the run.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

ReportTo = Literal["none", "tensorboard", "wandb", "mlflow"]
_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float | None:
    """``15m`` -> 900.0, ``2h``, ``90s``, ``1.5h``; ``none`` / ``0`` -> None (no budget)."""
    value = text.strip().lower()
    if value in ("none", "0", "off", ""):
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smh]?)", value)
    if not match:
        raise ConfigError(f"--time-budget '{text}': expected a duration like 90s, 15m or 2h (or none)")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]




class TrainConfig(BaseModel):
    """Everything a training run needs. Unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # --- what to train on -------------------------------------------------------------------
    data: str = Field(description="Data file, folder, or Hugging Face dataset id.")
    model: str = Field(description="Hub id, local folder, or offline:NAME (see `tl models`).")
    task: Literal["auto", "text", "image", "audio"] = Field(
        "auto", description="The data's modality (auto: detected from the data).")
    text_column: str | None = Field(None, description="Text column of a table (default: detected).")
    image_column: str | None = Field(None, description="Image path column of a CSV/JSONL list (default: detected).")
    audio_column: str | None = Field(None, description="Audio path column of a CSV/JSONL list (default: detected).")
    label_from_filename: str | None = Field(None, description="Regex with one group: the label in each file name.")
    group_from_filename: str | None = Field(
        None, description="Regex with one group (e.g. the speaker): no group is in both train and validation.")
    label_column: str | None = Field(None, description="Label column of a table (default: detected).")
    data_config: str | None = Field(None, description="Hugging Face dataset config name.")
    val_split: float = Field(0.1, gt=0.0, lt=0.9, description="Held out when the data has no validation split.")
    max_train_samples: int | None = Field(None, gt=0, description="Stratified subsample of the training split.")
    max_eval_samples: int | None = Field(None, gt=0, description="Stratified subsample of validation and test.")
    streaming: bool = Field(False, description="Text: read the training rows one at a time (datasets' streaming) "
                            "instead of holding them: memory stays flat however large the file or Hub dataset. One "
                            "pass counts the rows first; fine-tuning strategies only.")
    max_steps: int | None = Field(None, gt=0, description="Train for exactly this many optimizer steps (overrides "
                                  "--epochs; with streaming, the default comes from the counted rows x epochs).")
    on_bad_rows: Literal["error", "skip"] = Field(
        "error", description="A bad row or file stops the run (error) or is dropped and counted (skip).")

    # --- model ------------------------------------------------------------------------------
    strategy: str = Field("auto", description="auto (a converged probe, then fine-tuning candidates kept only if "
                          "validation says so) | full | linear-probe | freeze-backbone | freeze:N | gradual[:K] | "
                          "discriminative[:F] | probe-then-finetune[:E] | lora[:r]  (tl strategies)")
    from_scratch: bool = Field(False, description="Same architecture, random weights.")
    head: Literal["linear", "mlp", "keras"] = Field(
        "linear", description="Classification head (mlp: text, hidden sizes from head_hidden; keras: timm images).")
    head_hidden: list[int] = Field(default_factory=lambda: [256], description="Hidden sizes of the mlp head.")
    head_dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout before the classification head.")
    backbone_dropout: float | None = Field(
        None, ge=0.0, lt=1.0, description="Dropout inside the backbone (hidden/attention); default: the model's own.")
    frozen_batchnorm: bool | None = Field(
        None, description="BatchNorm layers keep their running statistics while the rest trains (Keras's advice "
                          "for fine-tuning: small or odd-sized batches would otherwise overwrite the pretrained "
                          "statistics); default: on for pretrained weights, off from scratch.")
    pooling: Literal["default", "cls", "mean"] = Field(
        "default", description="Text: the model's own head (default), or a CLS / mean-pooled head.")
    max_length: int = Field(128, gt=0, description="Truncate texts to this many tokens.")
    image_size: int | None = Field(None, gt=0, description="Input size in pixels (default: the backbone's own).")
    augment: Literal["auto", "none", "light", "strong"] = Field(
        "auto", description="Image/audio augmentation preset; auto = light, or none for linear-probe (cached features).")
    max_duration: float = Field(3.0, gt=0, description="Audio clips are cropped / padded to this many seconds.")
    freeze_feature_encoder: bool = Field(True, description="Keep Wav2Vec2-style CNN feature encoders frozen.")
    background_noise_dir: str | None = Field(None, description="Folder of noise clips mixed in by audio 'strong'.")
    mixup: float = Field(0.0, ge=0, description="MixUp Beta(alpha, alpha) on training batches; 0 = off.")
    cutmix: float = Field(0.0, ge=0, description="CutMix Beta(alpha, alpha) on training batches; 0 = off.")
    trust_remote_code: bool = Field(False, description="Run model code shipped with a Hub model (off: safe).")

    # --- optimisation -----------------------------------------------------------------------
    epochs: float = Field(3.0, gt=0, description="Training epochs (fractions allowed); unless given, raised to reach "
                          "min_steps on small data and lowered to fit the time budget.")
    min_steps: int = Field(200, ge=0, description="Optimizer steps a fine-tune gets at least when --epochs is not "
                           "given (few rows: enough steps to converge; early stopping keeps the best).")
    time_budget: str | None = Field(
        None, description="Wall-time budget, e.g. 15m, 2h, 90s, or none; default 15m on CPU, none on GPU. auto "
        "fits its candidates and epochs to it; an explicit --time-budget also shortens other strategies.")
    head_lr_multiplier: float | None = Field(
        None, gt=0, description="A new head trains at lr x this (fastai-style); default 10 where a new head trains "
        "with the body (full, freeze:N, gradual, discriminative), 1 where it starts probed or trains alone.")
    probe_solver: Literal["lbfgs", "trainer"] = Field(
        "lbfgs", description="Cached linear probe: full-batch L-BFGS to convergence with the L2 strength chosen "
        "on validation (lbfgs), or --epochs of AdamW through the Trainer (trainer).")
    baseline: bool = Field(True, description="Also fit a classical baseline on the same split (TF-IDF / pixels / "
                           "MFCC + logistic regression) and report it beside the model.")
    batch_size: int = Field(32, gt=0, description="Training batch size.")
    eval_batch_size: int | None = Field(None, gt=0, description="Evaluation batch size (default: 2 x batch size).")
    gradient_accumulation_steps: int = Field(1, gt=0, description="Batches summed into one optimizer step.")
    lr: Annotated[float, Field(gt=0)] | Literal["auto"] | None = Field(
        None, description="Peak learning rate; 'auto' runs the LR finder first; default: the strategy's.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (not on biases and norms).")
    warmup_ratio: float = Field(0.1, ge=0, le=1, description="Share of the steps spent warming the rate up.")
    layer_lr_decay: float | None = Field(None, gt=0, le=1, description="Layer-wise LR decay (each lower group x F).")
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = Field(
        "linear", description="Learning-rate schedule after warm-up.")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Label smoothing of the cross-entropy loss.")
    class_weights: Literal["none", "balanced"] = Field(
        "none", description="'balanced' weighs the loss by inverse class frequency (helps macro-F1 on rare classes).")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    seed: int = Field(42, description="Seed of splits, subsamples, initialisation and batch order.")
    split_seed: int | None = Field(None, description="Seed of the validation split carved from train (default: "
                                   "--seed). A study fixes it, so every seed scores on the same rows.")
    group_by_length: bool = Field(True, description="Text: batches of similar length (less padding), in random order.")

    # --- evaluation, early stopping, checkpoints ---------------------------------------------
    metric: Literal["macro_f1", "accuracy", "weighted_f1", "loss"] = Field(
        "macro_f1", description="Validation metric for early stopping and the best model.")
    early_stopping_patience: int = Field(3, ge=0, description="Evaluations without improvement before stopping; 0 disables.")
    early_stopping_threshold: float = Field(0.0, ge=0, description="Smallest improvement that counts.")
    eval_steps: int | None = Field(None, gt=0, description="Evaluate every N steps (default: every epoch).")
    logging_steps: int = Field(10, gt=0, description="Log the training loss every N steps.")
    save_total_limit: int = Field(2, ge=1, description="Checkpoints kept while training.")
    resume: bool = Field(False, description="Continue from the run folder's last complete checkpoint (refused if a "
                         "training setting changed; --epochs may grow).")
    resume_with_changes: bool = Field(False, description="--resume even though training settings changed.")
    keep_checkpoints: bool = Field(
        False, description="Keep checkpoints/ after a successful run (the best model is in model/ either way).")
    calibrate: bool = Field(False, description="Fit temperature scaling on the validation logits; the temperature "
                            "is saved with the model and applied by tl predict, the ONNX variants and tl serve.")
    features_from_full_train: bool = Field(
        False, description="With --max-train-samples, take a probe's cached features from the whole training split's "
        "entry (one extraction shared by every subsample; what `tl study` does).")
    decoded_cache: bool = Field(
        True, description="Decode and resize each picture once into a memory-mapped array ($TL_CACHE_DIR/decoded) "
        "and crop/augment from it every epoch, instead of decoding every file every epoch.")
    feature_cache: str | None = Field(
        None, description="Where linear-probe features are cached: a folder, 'run' (inside the run folder), "
        "or the shared default $TL_CACHE_DIR/features.")

    # --- output and tracking ----------------------------------------------------------------
    output: str | None = Field(None, description="Run folder (default runs/<model>-<data>-<time>).")
    overwrite: bool = Field(False, description="Replace an existing run folder (the old run is kept until the new "
                            "one has finished, and put back if it fails).")
    force: bool = Field(False, description="Write into a folder that is not a run but holds names a run writes "
                        "(model/, report.html, ...), replacing them.")
    report_to: list[ReportTo] = Field(default_factory=lambda: ["none"],
                                      description="none | tensorboard | wandb | mlflow (comma-separated).")
    num_workers: int = Field(0, ge=0, description="Data-loading worker processes (0: in the training process; "
                             "measured faster on 2 cores, see the README's speed section).")
    threads: int | None = Field(None, ge=1, description="CPU threads for torch, onnxruntime and the tokenizer "
                                "(default: what torch picks, the usable physical cores).")
    compile: bool = Field(False, description="torch.compile the model (the Trainer's torch_compile): the first "
                          "steps pay a compile stall; measured in benchmarks/train_throughput.py.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto | cpu | cuda")
    fsdp: str | None = Field(None, description="Under torchrun / accelerate launch: the Trainer's FSDP options, e.g. "
                             "'full_shard auto_wrap' (docs/distributed.md).")
    fsdp_config: str | None = Field(None, description="The Trainer's fsdp_config: a JSON file or inline JSON.")
    deepspeed: str | None = Field(None, description="Under a launcher: a DeepSpeed JSON config (ZeRO stage, offload); "
                                  "needs the deepspeed package.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="Training arithmetic: auto = bf16 on a GPU that has it (else fp16); on a CPU with "
                            "AVX512-BF16 / AMX, bf16 when a timed training step is faster in it (the plan says which), "
                            "fp32 elsewhere; bf16 / fp16 = mixed precision (the Trainer's autocast).")
    progress: bool = Field(True, description="Progress bars.")

    @field_validator("report_to", mode="before")
    @classmethod
    def _split_report_to(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("time_budget")
    @classmethod
    def _check_time_budget(cls, value):
        if value is not None:
            parse_duration(str(value))  # a typo fails when the config is read, not after the data has loaded
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

    @property
    def carve_seed(self) -> int:
        """The seed the validation split is carved with."""
        return self.seed if self.split_seed is None else self.split_seed

    @property
    def global_batch_size(self) -> int:
        """Rows per optimizer step: the batch on each process x accumulation x processes (torchrun's WORLD_SIZE)."""
        from .distributed import world_size

        return self.batch_size * self.gradient_accumulation_steps * world_size()


class Plan(BaseModel):
    """What the engine resolved from a :class:`TrainConfig` before training: computed once, saved once as
    ``plan.json`` beside ``config.yaml`` (which stays what the user asked for). ``apply`` gives the config the
    run actually trained with; ``tl train -c RUN/config.yaml`` applies the plan beside it, so it reproduces the
    run without re-running ``auto``'s probe or the LR finder."""

    model_config = ConfigDict(extra="forbid")

    task: Literal["text", "image", "audio"]
    strategy: str
    lr: float
    group_by_length: bool
    updates: dict[str, Any] = Field(default_factory=dict, description="Other keys the engine decided.")
    candidates: list[dict[str, Any]] = Field(default_factory=list,
                                             description="auto: the fine-tunes tried after the probe.")
    budget_s: float | None = Field(None, description="The wall-time budget in seconds (None: none).")
    estimate_s: float | None = Field(None, description="The estimated training time, when it was estimated.")
    reserve_s: float = Field(0.0, description="Seconds of the budget kept for what follows training: scoring "
                             "validation and test, the report (auto's candidates stop that much earlier).")
    decisions: list[str] = Field(default_factory=list, description="Each decision and why, in words.")

    def apply(self, config: TrainConfig) -> TrainConfig:
        return config.model_copy(update={"task": self.task, "strategy": self.strategy, "lr": self.lr,
                                         "group_by_length": self.group_by_length, **self.updates})

    def save(self, path: str | os.PathLike) -> None:
        from .io import atomic_write_text

        atomic_write_text(path, self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Plan":
        try:
            return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValidationError) as exc:
            raise ConfigError(f"{path}: not a readable plan ({exc})") from None


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
