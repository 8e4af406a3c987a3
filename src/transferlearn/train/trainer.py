"""The one Trainer factory. Fine-tuning, the cached linear probe and the LR finder all build their Hugging Face
Trainer here, so they share the optimizer, class weights, MixUp/CutMix loss, callbacks and batch order."""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

import numpy as np
import torch
from transformers import EarlyStoppingCallback, TrainingArguments
from transformers.integrations import get_reporting_integration_callbacks

from ..config import TrainConfig
from ..errors import ConfigError
from ..machine import has_cpu_bf16
from ..models.batchnorm_fold import unfold_batchnorm
from .callbacks import CheckpointFileMode, HistoryCallback, StopOnSignal, TrainingClock
from .feature_cache import FeaturesDataset
from .hf_trainer import LengthAwareTrainer
from .losses import shape_loss, shape_metrics, weighted_cross_entropy
from .sampling import SamplerEpoch, token_length_sampler

log = logging.getLogger(__name__)


def use_cpu(config: TrainConfig) -> bool:
    """The Trainer's ``use_cpu`` for ``config.device``; asking for CUDA without a GPU is an error."""
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' was asked for but no CUDA GPU is visible")
    return config.device == "cpu" or (config.device == "auto" and not torch.cuda.is_available())


def training_precision(config: TrainConfig) -> str:
    """fp32 | bf16 | fp16 for ``config.precision`` on this machine. ``auto`` on a GPU: bf16 where it has it, else
    fp16. On a CPU the plan decides ``auto`` by timing (train/budget.py ``choose_precision``); anything that trains
    without a plan (the LR finder alone) keeps fp32."""

    cpu = use_cpu(config)
    if config.precision == "auto":
        if not cpu:
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if config.precision == "fp16" and cpu:
        raise ConfigError("precision: fp16 mixed precision needs a CUDA GPU; on a CPU use bf16 (or auto)")
    if config.precision == "bf16" and cpu and not has_cpu_bf16():
        log.warning("precision bf16: this CPU has no AVX512-BF16 / AMX, so bf16 is emulated and may be slower")
    return config.precision


def autocast(config: TrainConfig, device: torch.device):
    """The autocast context the Trainer trains and evaluates under with this precision (timing steps outside it)."""
    precision = training_precision(config)
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype, enabled=precision != "fp32")


def training_arguments(config: TrainConfig, output_dir: Path, **overrides):
    """``TrainingArguments`` from the config; ``overrides`` replace any of them (the LR finder's sweep)."""

    by_steps = config.eval_steps is not None
    precision = training_precision(config)
    metric = "eval_loss" if config.metric == "loss" else f"eval_{config.metric}"
    values = dict(
        output_dir=str(output_dir),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,  # streamed rows have no length: the plan sets it from the counted rows
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size or config.batch_size * 2,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.lr,
        weight_decay=config.weight_decay,
        # transformers takes a float below 1 as a ratio of the steps and 1.0 as one step: a ratio of 1 is all steps
        warmup_steps=min(config.warmup_ratio, 0.999999) if config.warmup_ratio else 0,
        lr_scheduler_type=config.scheduler,
        label_smoothing_factor=config.label_smoothing,
        max_grad_norm=config.max_grad_norm,
        eval_strategy="steps" if by_steps else "epoch",
        eval_steps=config.eval_steps,
        save_strategy="steps" if by_steps else "epoch",
        save_steps=config.eval_steps,
        save_total_limit=config.save_total_limit,
        load_best_model_at_end=True,
        metric_for_best_model=metric,
        greater_is_better=config.metric != "loss",
        logging_steps=config.logging_steps,
        logging_first_step=True,
        report_to=[] if config.report_to == ["none"] else list(config.report_to),
        run_name=Path(output_dir).parent.name,
        seed=config.seed,
        data_seed=config.seed,
        disable_tqdm=not config.progress,
        dataloader_num_workers=config.num_workers,
        train_sampling_strategy="random",  # text batches: make_trainer passes a LengthBucketedSampler instead
        remove_unused_columns=False,  # image/audio rows are decoded by a dataset transform from their raw columns
        use_cpu=use_cpu(config),
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        restore_callback_states_from_checkpoint=True,  # early stopping (and the clock) go on where they were
        torch_compile=config.compile,
        **engine_options(config),
    )
    values.update(overrides)
    return TrainingArguments(**values)


def engine_options(config: TrainConfig) -> dict:
    """FSDP / DeepSpeed, handed to the Trainer as they are (it and Accelerate own both); checked here so a missing
    package or file is one line before any data is read, not a traceback from inside the launcher's processes."""
    options = {}
    if config.fsdp:
        # the Trainer's own spelling: "true", or the options string ("full_shard auto_wrap"; transformers 5 reads it
        # into fsdp_config and says it prefers fsdp=true with fsdp_config)
        options["fsdp"] = True if config.fsdp.lower() == "true" else config.fsdp
        if use_cpu(config):
            log.warning("fsdp: Accelerate shards with FSDP on GPUs only; on the CPU this run is plain DDP (every "
                        "process holds the whole model)")
        if config.fsdp_config:
            options["fsdp_config"] = _json_option("fsdp_config", config.fsdp_config)
    if config.deepspeed:
        import importlib.util

        if importlib.util.find_spec("deepspeed") is None:
            raise ConfigError("deepspeed: the deepspeed package is not installed (pip install deepspeed); or use "
                              "--set fsdp='full_shard auto_wrap', which needs nothing beyond torch")
        options["deepspeed"] = _json_option("deepspeed", config.deepspeed)
    return options


def _json_option(key: str, value: str):
    """A JSON file's path, or inline JSON (parsed): what the Trainer accepts for fsdp_config and deepspeed."""

    if value.lstrip().startswith("{"):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ConfigError(f"{key}: not valid JSON ({exc})") from None
    if not Path(value).is_file():
        raise ConfigError(f"{key}: {value} is not a file; give a JSON file or inline JSON")
    return value


@contextlib.contextmanager
def without_trackers(trainer):
    """The trainer with its tracker callbacks (TensorBoard, MLflow, W&B) detached: scoring the final model after
    training would otherwise log into a finished run (MLflow even opens a new run for it). The final metrics go
    to the trackers once, through train/tracking.py."""

    kinds = tuple(get_reporting_integration_callbacks(trainer.args.report_to))
    detached = [c for c in trainer.callback_handler.callbacks if kinds and isinstance(c, kinds)]
    for callback in detached:
        trainer.callback_handler.remove_callback(callback)
    try:
        yield trainer
    finally:
        for callback in detached:
            trainer.callback_handler.add_callback(callback)


def make_trainer(config: TrainConfig, model, args, train_dataset, eval_dataset=None, *, collator, processor,
                 param_groups, shape, history: Path | None = None, callbacks=(), early_stopping=True,
                 lengths_of=None):
    """The one HF Trainer every strategy, the linear probe and the LR finder train with, on the label ``shape``'s
    loss and metrics. ``lengths_of``: the modality's ``encoded_lengths`` (rows of similar length batched together,
    evaluation length-sorted), or None."""

    # The fused AdamW kernel is ~7x faster than the default on CPU (measured on a 96M-parameter
    # embedding matrix: 0.69 s -> 0.10 s per step), which matters for large-vocabulary models.
    optimizer = torch.optim.AdamW(param_groups, lr=args.learning_rate, fused=True)
    if config.compile:
        # inductor fuses BatchNorm passes itself and compiles the folded form slower: an EfficientNet-Lite0 step
        # (224 px, batch 16, frozen BatchNorm) took 1.24 s compiled folded, 1.00 s compiled plain, 0.78 s eager
        unfold_batchnorm(model)
    callbacks = ([HistoryCallback(history)] if history is not None else []) + [TrainingClock(), StopOnSignal(),
                                                                                CheckpointFileMode(), *callbacks]
    weights = None
    if config.class_weights == "balanced":
        # the raw label column: images and audio carry a decoding transform that must not run here
        cached = isinstance(train_dataset, FeaturesDataset)
        labels = train_dataset.labels if cached else train_dataset.with_format(None)["label"]
        weights = torch.tensor(shape.balanced_weights(np.asarray(labels)), dtype=torch.float32)
        log.info("class weights (balanced): %s", [round(w, 3) for w in weights.tolist()])
    # MixUp / CutMix mix the model's inputs, never cached features
    mixing = (config.mixup > 0 or config.cutmix > 0) and not isinstance(train_dataset, FeaturesDataset)
    if not shape.model_loss:
        loss_fn = shape_loss(shape, weights)
    else:
        loss_fn = weighted_cross_entropy(weights, config.label_smoothing) if weights is not None or mixing else None
    if early_stopping and config.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(config.early_stopping_patience, config.early_stopping_threshold))
    lengths = lengths_of(train_dataset) if lengths_of is not None and config.group_by_length else None
    sampler = token_length_sampler(lengths, args.train_batch_size, config.seed)
    if sampler is not None:
        callbacks.append(SamplerEpoch(sampler))
    return trainer_class()(
        model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset, data_collator=collator,
        processing_class=processor, compute_metrics=shape_metrics(shape) if eval_dataset is not None else None,
        callbacks=callbacks, optimizers=(optimizer, None), compute_loss_func=loss_fn, length_sampler=sampler,
        lengths_of=lengths_of,
    )


def trainer_class():
    """The Trainer subclass every run trains with (``hf_trainer.LengthAwareTrainer``). Imported on first use:
    ``transformers.Trainer`` takes seconds to import, and ``tl --help`` need not wait for it."""

    return LengthAwareTrainer
