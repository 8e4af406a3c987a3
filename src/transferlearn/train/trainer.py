"""The one Trainer factory. Fine-tuning, the cached linear probe and the LR finder all build their Hugging Face
Trainer here, so they share the optimizer, class weights, MixUp/CutMix loss, callbacks and batch order."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
from pathlib import Path

import torch

from ..config import TrainConfig
from ..errors import ConfigError, TrainingDiverged
from ..metrics import trainer_metrics
from ..models.batchnorm_fold import unfold_batchnorm
from .callbacks import CheckpointFileMode, HistoryCallback, StopOnSignal, TrainingClock
from .losses import balanced_class_weights, weighted_cross_entropy
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
    from ..machine import has_cpu_bf16

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
    from transformers import TrainingArguments

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
    import json

    if value.lstrip().startswith("{"):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ConfigError(f"{key}: not valid JSON ({exc})") from None
    if not Path(value).is_file():
        raise ConfigError(f"{key}: {value} is not a file; give a JSON file or inline JSON")
    return value


# Callbacks a caller above the engine adds to every trainer a run builds (a sweep's pruning reporter), without
# threading them through each step: set with ``extra_callbacks``, read by make_trainer.
_EXTRA_CALLBACKS: contextvars.ContextVar[tuple] = contextvars.ContextVar("extra_callbacks", default=())


@contextlib.contextmanager
def extra_callbacks(*callbacks):
    token = _EXTRA_CALLBACKS.set(_EXTRA_CALLBACKS.get() + callbacks)
    try:
        yield
    finally:
        _EXTRA_CALLBACKS.reset(token)


@contextlib.contextmanager
def without_trackers(trainer):
    """The trainer with its tracker callbacks (TensorBoard, MLflow, W&B) detached: scoring the final model after
    training would otherwise log into a finished run (MLflow even opens a new run for it). The final metrics go
    to the trackers once, through train/tracking.py."""
    from transformers.integrations import get_reporting_integration_callbacks

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
                 param_groups, num_labels: int, history: Path | None = None, callbacks=(), early_stopping=True):
    """The one HF Trainer every strategy, the linear probe and the LR finder train with."""
    from transformers import EarlyStoppingCallback

    # The fused AdamW kernel is ~7x faster than the default on CPU (measured on a 96M-parameter
    # embedding matrix: 0.69 s -> 0.10 s per step), which matters for large-vocabulary models.
    optimizer = torch.optim.AdamW(param_groups, lr=args.learning_rate, fused=True)
    if config.compile:
        # inductor fuses BatchNorm passes itself and compiles the folded form slower: an EfficientNet-Lite0 step
        # (224 px, batch 16, frozen BatchNorm) took 1.24 s compiled folded, 1.00 s compiled plain, 0.78 s eager
        unfold_batchnorm(model)
    callbacks = ([HistoryCallback(history)] if history is not None else []) + [TrainingClock(), StopOnSignal(),
                                                                                CheckpointFileMode(), *callbacks,
                                                                                *_EXTRA_CALLBACKS.get()]
    weights = None
    if config.class_weights == "balanced":
        # the raw label column: images and audio carry a decoding transform that must not run here
        labels = (train_dataset.with_format(None)["label"] if hasattr(train_dataset, "column_names")
                  else train_dataset.labels)
        weights = balanced_class_weights(labels, num_labels)
        log.info("class weights (balanced): %s", [round(w, 3) for w in weights.tolist()])
    mixing = (config.mixup > 0 or config.cutmix > 0) and hasattr(train_dataset, "column_names")
    loss_fn = weighted_cross_entropy(weights, config.label_smoothing) if weights is not None or mixing else None
    if early_stopping and config.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(config.early_stopping_patience, config.early_stopping_threshold))
    sampler = token_length_sampler(train_dataset, args.train_batch_size, config.seed) if config.group_by_length \
        else None
    if sampler is not None:
        callbacks.append(SamplerEpoch(sampler))
    return trainer_class()(
        model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset, data_collator=collator,
        processing_class=processor, compute_metrics=trainer_metrics if eval_dataset is not None else None,
        callbacks=callbacks, optimizers=(optimizer, None), compute_loss_func=loss_fn, length_sampler=sampler,
    )


def length_order(dataset) -> list[int] | None:
    """Row indices longest first, for a dataset of token sequences (``input_ids``); None for anything else."""
    if not hasattr(dataset, "column_names") or "input_ids" not in dataset.column_names:
        return None
    lengths = [len(ids) for ids in dataset.with_format(None)["input_ids"]]
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


@functools.cache
def trainer_class():
    from transformers import Trainer  # imported on first use: it takes seconds, and the CLI need not wait

    class _Trainer(Trainer):
        """The HF Trainer, with text batches drawn by ``LengthBucketedSampler`` when one is given (see
        train/sampling.py for why not the Trainer's ``group_by_length``). Its one hook for a custom sampler is
        ``_get_train_sampler``."""

        def __init__(self, *args, length_sampler=None, **kwargs):
            self.length_sampler = length_sampler
            super().__init__(*args, **kwargs)
            # A classifier's own loss is the mean over its batch; it never reads ``num_items_in_batch``. The Trainer
            # takes a forward with **kwargs for a loss summed over the global batch, and then skips dividing by the
            # accumulation steps and multiplies by the number of processes: gradients N x too large, which changes
            # what max_grad_norm clips (and the logged loss). Our compute_loss_func does read the count.
            self.model_accepts_loss_kwargs = False

        def train(self, *args, **kwargs):
            try:
                return super().train(*args, **kwargs)
            finally:
                # Accelerate wraps the model's forward in autocast for mixed precision and leaves it wrapped: a model
                # trained in bf16 would answer every later call in bf16 (the probe's logit check failed on it).
                from accelerate.utils import extract_model_from_parallel

                extract_model_from_parallel(self.model, keep_fp32_wrapper=False)

        def training_step(self, *args, **kwargs):
            # Checked before the optimizer step, so the weights (and every checkpoint) stay those of the last good
            # step. One scalar read per step; the Trainer's own NaN filter only hides such steps from the log.
            loss = super().training_step(*args, **kwargs)
            if not torch.isfinite(loss).all():
                from .callbacks import complete_checkpoints

                epoch = f" (epoch {self.state.epoch:.2f})" if self.state.epoch is not None else ""
                kept, _ = complete_checkpoints(Path(self.args.output_dir))
                where = (f"the last good checkpoint, {kept[-1].name}, is kept in {kept[-1].parent}" if kept
                         else "no checkpoint had been saved yet")
                raise TrainingDiverged(
                    f"the training loss became {loss.item()} at step {self.state.global_step + 1}{epoch}, and training "
                    f"stopped before that step changed the weights; {where}. Lower --lr (it is "
                    f"{self.args.learning_rate:g}), keep --max-grad-norm at 1, or check the data for extreme values.")
            return loss

        def log(self, logs, *args, **kwargs):
            # every parameter group's rate (head vs body, discriminative layers), not only the first group's: the
            # trackers, the history and the report show what each part of the model trained at
            if "loss" in logs and self.optimizer is not None:
                seen = {}
                for group in self.optimizer.param_groups:  # unnamed groups are the body's (decay / no decay)
                    seen.setdefault(group.get("name") or "body", group["lr"])
                if len(seen) > 1:
                    logs.update({f"learning_rate/{name}": lr for name, lr in seen.items()})
            return super().log(logs, *args, **kwargs)

        def _save(self, output_dir=None, state_dict=None):
            # safetensors refuses strided tensors: channels_last convolution weights are saved contiguous
            # (loading copies them back into the model's own layout)
            if state_dict is None:
                state = self.model.state_dict()
                if any(not v.is_contiguous() for v in state.values()):
                    state_dict = {k: v.contiguous() for k, v in state.items()}
            return super()._save(output_dir, state_dict=state_dict)

        # Evaluation and prediction batches of token sequences go longest first: each pads to rows of its own
        # length, not to the longest row in file order (SmSA validation: 2.27x the real tokens in file order,
        # 1.06x sorted). predict() puts its rows back in the dataset's order.
        def _length_order(self, dataset):
            """length_order, read once per dataset: every epoch evaluates the same validation split."""
            if self.args.world_size != 1:
                return None
            cached = getattr(self, "_length_order_cache", None)
            if cached is None or cached[0] is not dataset:
                self._length_order_cache = (dataset, length_order(dataset))
            return self._length_order_cache[1]

        def _get_eval_sampler(self, eval_dataset):
            order = self._length_order(eval_dataset)
            return order if order is not None else super()._get_eval_sampler(eval_dataset)

        def predict(self, test_dataset, *args, **kwargs):
            output = super().predict(test_dataset, *args, **kwargs)
            order = self._length_order(test_dataset)
            if order is None:
                return output
            import numpy as np
            from transformers.trainer_utils import PredictionOutput

            back = np.argsort(np.asarray(order))
            predictions = output.predictions
            predictions = tuple(p[back] for p in predictions) if isinstance(predictions, tuple) else predictions[back]
            labels = output.label_ids[back] if output.label_ids is not None else None
            return PredictionOutput(predictions=predictions, label_ids=labels, metrics=output.metrics)

        def _get_train_sampler(self, train_dataset=None):
            if self.length_sampler is not None and (train_dataset is None or train_dataset is self.train_dataset):
                return self.length_sampler
            return super()._get_train_sampler(train_dataset)

    return _Trainer
