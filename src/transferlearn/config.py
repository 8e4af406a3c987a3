"""One typed configuration object, filled from YAML and/or CLI flags (flags win).

The run folder keeps a copy as ``config.yaml``; ``tl train -c runs/x/config.yaml`` reproduces the run.

The keys come in groups, as AutoGluon's ``model.* / data.* / optimization.* / env.*`` and HF's
``HfArgumentParser((ModelArguments, DataTrainingArguments, TrainingArguments))``: :data:`GROUPS`. A key is written
flat (``lr: 1e-4``, ``--lr``, ``--set lr=1e-4``) or under its group (``optimisation: {lr: 1e-4}``,
``--set optimisation.lr=1e-4``); ``tl train --help`` shows the options by group. What the rest of the tool needs to
know about a key is declared on its field (:func:`facts`): its group, whether ``--resume`` may change it, whether
changing it invalidates a saved plan, whether a sweep may search it, which ``TrainingArguments`` field it feeds.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_serializer,
    field_validator,
    model_validator,
)

from .errors import ConfigError
from .planned import Candidate
from .shapes import PROBLEMS, SHAPES

# every label shape's metrics (higher is better), declared once on the shapes; auto: the shape's primary metric
METRICS = ("auto", *dict.fromkeys(m for name in PROBLEMS[1:] for m in SHAPES[name].metric_choices), "loss")

ReportTo = Literal["none", "tensorboard", "wandb", "mlflow"]
# the config's groups, in the order help and docs show them
GROUPS = ("data", "model", "strategy", "optimisation", "evaluation", "runtime", "output")


def facts(group: str, *, resume: bool = False, replans: bool = False, sweep: bool = True,
          trainer: str | None = None) -> dict:
    """What a field declares about itself (pydantic's ``json_schema_extra``): ``group`` (one of :data:`GROUPS`);
    ``resume``: --resume may change it (where and how the run reports, not what it trains); ``replans``: a saved
    plan.json no longer holds once it changes; ``sweep``: tl sweep may search it; ``trainer``: the
    ``TrainingArguments`` field it feeds."""
    if group not in GROUPS:
        raise ValueError(f"unknown config group {group!r}")
    return {"group": group, "resume": resume, "replans": replans, "sweep": sweep, "trainer": trainer}


def field_facts(name: str) -> dict:
    return TrainConfig.model_fields[name].json_schema_extra


def fields_where(fact: str, value=True) -> set[str]:
    """The TrainConfig keys whose ``fact`` is ``value`` (e.g. ``fields_where("resume")``)."""
    return {name for name, field in TrainConfig.model_fields.items() if field.json_schema_extra[fact] == value}


def fields_by_group() -> dict[str, list[str]]:
    return {group: [n for n, f in TrainConfig.model_fields.items() if f.json_schema_extra["group"] == group]
            for group in GROUPS}


def flatten_groups(values: dict) -> dict:
    """``{optimisation: {lr: 1e-4}}`` and ``{"optimisation.lr": 1e-4}`` -> ``{lr: 1e-4}``. A key under the wrong group
    is refused, named."""
    flat: dict = {}
    for key, value in values.items():
        group, dot, name = str(key).partition(".")
        if dot or (group in GROUPS and isinstance(value, dict)):
            inner = {name: value} if dot else value
            if group not in GROUPS:
                raise ConfigError(f"'{key}': '{group}' is not a config group (groups: {', '.join(GROUPS)})")
            for sub, sub_value in inner.items():
                sub = str(sub).replace("-", "_")
                field = TrainConfig.model_fields.get(sub)
                if field is not None and field.json_schema_extra["group"] != group:
                    raise ConfigError(f"'{group}.{sub}': {sub} belongs to the {field.json_schema_extra['group']} "
                                      f"group; write {field.json_schema_extra['group']}.{sub} or just {sub}")
                flat[sub] = sub_value
        else:
            flat[key] = value
    return flat
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
    data: str = Field(description="Data file, folder, or Hugging Face dataset id.",
        json_schema_extra=facts("data", replans=True, sweep=False))
    model: str = Field(description="Hub id, local folder, or offline:NAME (see `tl models`).",
        json_schema_extra=facts("model", replans=True, sweep=False))
    task: Literal["auto", "text", "image", "audio"] = Field(
        "auto", description="The data's modality (auto: detected from the data).", json_schema_extra=facts("data", replans=True))
    text_column: str | None = Field(None, description="Text column of a table (default: detected).",
        json_schema_extra=facts("data"))
    image_column: str | None = Field(None, description="Image path column of a CSV/JSONL list (default: detected).",
        json_schema_extra=facts("data"))
    audio_column: str | None = Field(None, description="Audio path column of a CSV/JSONL list (default: detected).",
        json_schema_extra=facts("data"))
    label_from_filename: str | None = Field(None, description="Regex with one group: the label in each file name.",
        json_schema_extra=facts("data"))
    group_from_filename: str | None = Field(
        None, description="Regex with one group (e.g. the speaker): no group is in both train and validation.",
        json_schema_extra=facts("data"))
    label_column: str | None = Field(None, description="Label column of a table (default: detected); several, "
                                     "comma-separated (a,b,c), for several label columns or 0/1 tag columns.",
        json_schema_extra=facts("data", replans=True))
    problem: Literal[PROBLEMS] = Field(
        "auto", description="The label shape (auto: detected from the labels and said in one line): one class a row, "
        "tag sets, several label columns, or numbers.", json_schema_extra=facts("data", replans=True))
    data_config: str | None = Field(None, description="Hugging Face dataset config name.", json_schema_extra=facts("data"))
    bio: Literal["repair", "error"] = Field(
        "repair", description="Token tags: an I-X that continues no X entity (after O or another type) starts one, "
        "as conlleval reads it, and is counted in the data notes (repair); or stops the run naming the file and line "
        "(error).", json_schema_extra=facts("data"))
    val_split: float = Field(0.1, gt=0.0, lt=0.9, description="Held out when the data has no validation split.",
        json_schema_extra=facts("data"))
    max_train_samples: int | None = Field(None, gt=0, description="Stratified subsample of the training split.",
        json_schema_extra=facts("data"))
    max_eval_samples: int | None = Field(None, gt=0, description="Stratified subsample of validation and test.",
        json_schema_extra=facts("data"))
    streaming: bool = Field(False, description="Text: read the training rows one at a time (datasets' streaming) "
                            "instead of holding them: memory stays flat however large the file or Hub dataset. One "
                            "pass counts the rows first; fine-tuning strategies only.", json_schema_extra=facts("data"))
    max_steps: int | None = Field(None, gt=0, description="Train for exactly this many optimizer steps (overrides "
                                  "--epochs; with streaming, the default comes from the counted rows x epochs).",
        json_schema_extra=facts("optimisation", trainer="max_steps"))
    on_bad_rows: Literal["error", "skip"] = Field(
        "error", description="A bad row or file stops the run (error) or is dropped and counted (skip).",
        json_schema_extra=facts("data"))

    # --- model ------------------------------------------------------------------------------
    strategy: str = Field("auto", description="auto (a converged probe, then fine-tuning candidates kept only if "
                          "validation says so) | full | linear-probe | freeze-backbone | freeze:N | gradual[:K] | "
                          "discriminative[:F] | probe-then-finetune[:E] | lora[:r]  (tl strategies)",
        json_schema_extra=facts("strategy", replans=True))
    from_scratch: bool = Field(False, description="Same architecture, random weights.", json_schema_extra=facts("model"))
    head: Literal["linear", "mlp", "keras"] = Field(
        "linear", description="Classification head (mlp: text, hidden sizes from head_hidden; keras: timm images).",
        json_schema_extra=facts("model"))
    head_hidden: list[int] = Field(default_factory=lambda: [256], description="Hidden sizes of the mlp head.",
        json_schema_extra=facts("model"))
    head_dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout before the classification head.",
        json_schema_extra=facts("model"))
    backbone_dropout: float | None = Field(
        None, ge=0.0, lt=1.0, description="Dropout inside the backbone (hidden/attention); default: the model's own.",
        json_schema_extra=facts("model"))
    frozen_batchnorm: bool | None = Field(
        None, description="BatchNorm layers keep their running statistics while the rest trains (Keras's advice "
                          "for fine-tuning: small or odd-sized batches would otherwise overwrite the pretrained "
                          "statistics); default: on for pretrained weights, off from scratch.", json_schema_extra=facts("model"))
    pooling: Literal["default", "cls", "mean"] = Field(
        "default", description="Text: the model's own head (default), or a CLS / mean-pooled head.",
        json_schema_extra=facts("model"))
    max_length: int = Field(128, gt=0, description="Truncate texts to this many tokens (token tagging and sentence "
                            "pairs: see stride).", json_schema_extra=facts("model"))
    stride: int = Field(32, ge=0, description="Token tagging: a sentence longer than max_length is cut into windows "
                        "that overlap by this many tokens (never truncated); each word is predicted by the window "
                        "where it sits most central.", json_schema_extra=facts("model"))
    image_size: int | None = Field(None, gt=0, description="Input size in pixels (default: the backbone's own).",
        json_schema_extra=facts("model"))
    augment: Literal["auto", "none", "light", "strong"] = Field(
        "auto", description="Image/audio augmentation preset; auto = light, or none for linear-probe (cached features).",
        json_schema_extra=facts("data"))
    max_duration: float = Field(3.0, gt=0, description="Audio clips are cropped / padded to this many seconds.",
        json_schema_extra=facts("model"))
    freeze_feature_encoder: bool = Field(True, description="Keep Wav2Vec2-style CNN feature encoders frozen.",
        json_schema_extra=facts("model"))
    background_noise_dir: str | None = Field(None, description="Folder of noise clips mixed in by audio 'strong'.",
        json_schema_extra=facts("data"))
    mixup: float = Field(0.0, ge=0, description="MixUp Beta(alpha, alpha) on training batches; 0 = off.",
        json_schema_extra=facts("data"))
    cutmix: float = Field(0.0, ge=0, description="CutMix Beta(alpha, alpha) on training batches; 0 = off.",
        json_schema_extra=facts("data"))
    trust_remote_code: bool = Field(False, description="Run model code shipped with a Hub model (off: safe).",
        json_schema_extra=facts("model"))

    # --- optimisation -----------------------------------------------------------------------
    epochs: float = Field(3.0, gt=0, description="Training epochs (fractions allowed); unless given, raised to reach "
                          "min_steps on small data and lowered to fit the time budget.",
        json_schema_extra=facts("optimisation", resume=True, replans=True, trainer="num_train_epochs"))
    min_steps: int = Field(200, ge=0, description="Optimizer steps a fine-tune gets at least when --epochs is not "
                           "given (few rows: enough steps to converge; early stopping keeps the best).",
        json_schema_extra=facts("optimisation"))
    time_budget: str | None = Field(
        None, description="Wall-time budget, e.g. 15m, 2h, 90s, or none; default 15m on CPU, none on GPU. auto "
        "fits its candidates and epochs to it; an explicit --time-budget also shortens other strategies.",
        json_schema_extra=facts("strategy", resume=True))
    head_lr_multiplier: float | None = Field(
        None, gt=0, description="A new head trains at lr x this (fastai-style); default 10 where a new head trains "
        "with the body (full, freeze:N, gradual, discriminative), 1 where it starts probed or trains alone.",
        json_schema_extra=facts("strategy"))
    probe_solver: Literal["lbfgs", "trainer"] = Field(
        "lbfgs", description="Cached linear probe: full-batch L-BFGS to convergence with the L2 strength chosen "
        "on validation (lbfgs), or --epochs of AdamW through the Trainer (trainer).", json_schema_extra=facts("strategy"))
    baseline: bool = Field(True, description="Also fit a classical baseline on the same split (TF-IDF / pixels / "
                           "MFCC + logistic regression) and report it beside the model.", json_schema_extra=facts("strategy"))
    batch_size: int = Field(32, gt=0, description="Training batch size.",
        json_schema_extra=facts("optimisation", trainer="per_device_train_batch_size"))
    eval_batch_size: int | None = Field(None, gt=0, description="Evaluation batch size (default: 2 x batch size).",
        json_schema_extra=facts("evaluation", resume=True, trainer="per_device_eval_batch_size"))
    gradient_accumulation_steps: int = Field(1, gt=0, description="Batches summed into one optimizer step.",
        json_schema_extra=facts("optimisation", trainer="gradient_accumulation_steps"))
    lr: Annotated[float, Field(gt=0)] | Literal["auto"] | None = Field(
        None, description="Peak learning rate; 'auto' runs the LR finder first; default: the strategy's.",
        json_schema_extra=facts("optimisation", replans=True, trainer="learning_rate"))
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (not on biases and norms).",
        json_schema_extra=facts("optimisation", trainer="weight_decay"))
    warmup_ratio: float = Field(0.1, ge=0, le=1, description="Share of the steps spent warming the rate up.",
        json_schema_extra=facts("optimisation", trainer="warmup_steps"))
    layer_lr_decay: float | None = Field(None, gt=0, le=1, description="Layer-wise LR decay (each lower group x F).",
        json_schema_extra=facts("optimisation"))
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = Field(
        "linear", description="Learning-rate schedule after warm-up.",
        json_schema_extra=facts("optimisation", trainer="lr_scheduler_type"))
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Label smoothing of the cross-entropy loss.",
        json_schema_extra=facts("optimisation", trainer="label_smoothing_factor"))
    regression_loss: Literal["mse", "huber"] = Field(
        "mse", description="Regression: the loss on standardised targets (huber is less swayed by outliers).",
        json_schema_extra=facts("optimisation"))
    class_weights: Literal["none", "balanced"] = Field(
        "none", description="'balanced' weighs the loss by inverse class frequency (helps macro-F1 on rare classes).",
        json_schema_extra=facts("optimisation"))
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.",
        json_schema_extra=facts("optimisation", trainer="max_grad_norm"))
    seed: int = Field(42, description="Seed of splits, subsamples, initialisation and batch order.",
        json_schema_extra=facts("optimisation", sweep=False, trainer="seed"))
    split_seed: int | None = Field(None, description="Seed of the validation split carved from train (default: "
                                   "--seed). A study fixes it, so every seed scores on the same rows.",
        json_schema_extra=facts("optimisation"))
    group_by_length: bool = Field(True, description="Text: batches of similar length (less padding), in random order.",
        json_schema_extra=facts("optimisation"))

    # --- evaluation, early stopping, checkpoints ---------------------------------------------
    metric: Literal[METRICS] = Field(
        "auto", description="Validation metric for early stopping and the best model (auto: the label shape's own: "
        "macro_f1 for one class a row, mean_average_precision for tag sets, flat_macro_f1 or mean_macro_f1 for "
        "several columns, r2 for numbers).",
        json_schema_extra=facts("evaluation", trainer="metric_for_best_model"))
    early_stopping_patience: int = Field(3, ge=0, description="Evaluations without improvement before stopping; 0 disables.",
        json_schema_extra=facts("evaluation"))
    early_stopping_threshold: float = Field(0.0, ge=0, description="Smallest improvement that counts.",
        json_schema_extra=facts("evaluation"))
    eval_steps: int | None = Field(None, gt=0, description="Evaluate every N steps (default: every epoch).",
        json_schema_extra=facts("evaluation", trainer="eval_steps"))
    logging_steps: int = Field(10, gt=0, description="Log the training loss every N steps.",
        json_schema_extra=facts("output", resume=True, trainer="logging_steps"))
    save_total_limit: int = Field(2, ge=1, description="Checkpoints kept while training.",
        json_schema_extra=facts("output", resume=True, trainer="save_total_limit"))
    resume: bool = Field(False, description="Continue from the run folder's last complete checkpoint (refused if a "
                         "training setting changed; --epochs may grow).", json_schema_extra=facts("output", resume=True))
    resume_with_changes: bool = Field(False, description="--resume even though training settings changed.",
        json_schema_extra=facts("output", resume=True))
    keep_checkpoints: bool = Field(
        False, description="Keep checkpoints/ after a successful run (the best model is in model/ either way).",
        json_schema_extra=facts("output", resume=True))
    calibrate: bool = Field(False, description="Fit temperature scaling on the validation logits; the temperature "
                            "is saved with the model and applied by tl predict, the ONNX variants and tl serve.",
        json_schema_extra=facts("evaluation"))
    features_from_full_train: bool = Field(
        False, description="With --max-train-samples, take a probe's cached features from the whole training split's "
        "entry (one extraction shared by every subsample; what `tl study` does).", json_schema_extra=facts("strategy"))
    decoded_cache: bool = Field(
        True, description="Decode and resize each picture once into a memory-mapped array ($TL_CACHE_DIR/decoded) "
        "and crop/augment from it every epoch, instead of decoding every file every epoch.",
        json_schema_extra=facts("data", resume=True))
    feature_cache: str | None = Field(
        None, description="Where linear-probe features are cached: a folder, 'run' (inside the run folder), "
        "or the shared default $TL_CACHE_DIR/features.", json_schema_extra=facts("strategy"))

    # --- output and tracking ----------------------------------------------------------------
    output: str | None = Field(None, description="Run folder (default runs/<model>-<data>-<time>).",
        json_schema_extra=facts("output", resume=True, sweep=False))
    overwrite: bool = Field(False, description="Replace an existing run folder (the old run is kept until the new "
                            "one has finished, and put back if it fails).", json_schema_extra=facts("output", resume=True))
    force: bool = Field(False, description="Write into a folder that is not a run but holds names a run writes "
                        "(model/, report.html, ...), replacing them.", json_schema_extra=facts("output", resume=True))
    report_to: list[ReportTo] = Field(default_factory=lambda: ["none"],
                                      description="none | tensorboard | wandb | mlflow (comma-separated).",
        json_schema_extra=facts("output", resume=True, trainer="report_to"))
    num_workers: int = Field(0, ge=0, description="Data-loading worker processes (0: in the training process; "
                             "measured faster on 2 cores, see the README's speed section).",
        json_schema_extra=facts("runtime", resume=True, trainer="dataloader_num_workers"))
    threads: int | None = Field(None, ge=1, description="CPU threads for torch, onnxruntime and the tokenizer "
                                "(default: what torch picks, the usable physical cores).",
        json_schema_extra=facts("runtime", resume=True))
    compile: bool = Field(False, description="torch.compile the model (the Trainer's torch_compile): the first "
                          "steps pay a compile stall; measured in benchmarks/train_throughput.py.",
        json_schema_extra=facts("runtime", resume=True, trainer="torch_compile"))
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto | cpu | cuda",
        json_schema_extra=facts("runtime", resume=True, trainer="use_cpu"))
    fsdp: str | None = Field(None, description="Under torchrun / accelerate launch: the Trainer's FSDP options, e.g. "
                             "'full_shard auto_wrap' (docs/distributed.md).", json_schema_extra=facts("runtime", trainer="fsdp"))
    fsdp_config: str | None = Field(None, description="The Trainer's fsdp_config: a JSON file or inline JSON.",
        json_schema_extra=facts("runtime", trainer="fsdp_config"))
    deepspeed: str | None = Field(None, description="Under a launcher: a DeepSpeed JSON config (ZeRO stage, offload); "
                                  "needs the deepspeed package.", json_schema_extra=facts("runtime", trainer="deepspeed"))
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="Training arithmetic: auto = bf16 on a GPU that has it (else fp16); on a CPU with "
                            "AVX512-BF16 / AMX, bf16 when a timed training step is faster in it (the plan says which), "
                            "fp32 elsewhere; bf16 / fp16 = mixed precision (the Trainer's autocast).",
        json_schema_extra=facts("runtime", trainer="bf16"))
    progress: bool = Field(True, description="Progress bars.",
        json_schema_extra=facts("runtime", resume=True, trainer="disable_tqdm"))

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


def _config_updates_model() -> type[BaseModel]:
    """TrainConfig with every key optional: the typed record of the keys a plan decided (validated as the config
    validates them; only the keys set are written)."""
    fields = {name: (Optional[field.annotation], Field(None, description=field.description))
              for name, field in TrainConfig.model_fields.items()}
    return create_model("ConfigUpdates", __config__=ConfigDict(extra="forbid"), **fields)


ConfigUpdates = _config_updates_model()


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
    updates: ConfigUpdates = Field(default_factory=ConfigUpdates, description="Other keys the engine decided.")
    candidates: list[Candidate] = Field(default_factory=list, description="auto: the fine-tunes tried after the probe.")
    budget_s: float | None = Field(None, description="The wall-time budget in seconds (None: none).")
    estimate_s: float | None = Field(None, description="The estimated training time, when it was estimated.")
    reserve_s: float = Field(0.0, description="Seconds of the budget kept for what follows training: scoring "
                             "validation and test, the report (auto's candidates stop that much earlier).")
    decisions: list[str] = Field(default_factory=list, description="Each decision and why, in words.")

    def apply(self, config: TrainConfig) -> TrainConfig:
        return config.model_copy(update={"task": self.task, "strategy": self.strategy, "lr": self.lr,
                                         "group_by_length": self.group_by_length, **self.decided()})

    def decided(self) -> dict[str, Any]:
        """The other keys the plan set, and only those."""
        return self.updates.model_dump(exclude_unset=True)

    @field_serializer("updates")
    def _only_what_was_set(self, updates) -> dict[str, Any]:
        return updates.model_dump(mode="json", exclude_unset=True)

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
        values.update({str(k).replace("-", "_"): v for k, v in flatten_groups(loaded).items()})
        source = f"{path} + command line" if any(v is not None for v in overrides.values()) else str(path)
    values.update({k: v for k, v in flatten_groups(overrides).items() if v is not None})
    try:
        return TrainConfig(**values)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None


def save_config(config: TrainConfig, path: str | os.PathLike) -> None:
    from .io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True))
