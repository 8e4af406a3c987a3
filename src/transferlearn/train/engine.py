"""``finetune(config) -> Run``: intent -> setup -> plan (saved once) -> the strategy's steps -> run folder.

The engine runs what the strategy lists (``Strategy.steps``: a cached probe, a fine-tune, or both) on one
:class:`~transferlearn.train.setup.Setup`; it does not branch on strategy names.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import distributed
from ..config import Plan, TrainConfig, save_config
from ..errors import ConfigError, RunInterrupted
from ..failpoints import failpoint
from ..io import apply_file_mode, atomic_write_bytes, atomic_write_json
from ..layout import RunLayout, SetAside
from ..machine import thread_settings
from ..metrics import classification_metrics
from ..modalities import augment_preset
from ..run import Run, default_run_dir
from ..strategies import Step, Strategy, parse_strategy
from ..strategies.base import freeze_batchnorm_statistics
from .callbacks import TrainingClock, raise_if_interrupted
from .plan import resolve_plan
from .setup import Setup
from .trainer import make_trainer, training_arguments, training_precision, use_cpu, without_trackers

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _tracking_env(config: TrainConfig, layout: RunLayout):
    """Defaults that keep every integration offline-safe and inside the run folder.

    Only variables the user has not set are filled, and only for the duration of this run, so a
    second run in the same process does not log into the first one's folder.
    """
    defaults: dict[str, str] = {}
    if "tensorboard" in config.report_to:
        defaults["TENSORBOARD_LOGGING_DIR"] = str(layout.tensorboard)
    if "mlflow" in config.report_to:
        defaults["MLFLOW_TRACKING_URI"] = f"sqlite:///{layout.mlflow_db.resolve()}"
        defaults["MLFLOW_EXPERIMENT_NAME"] = "transferlearn"
    if "wandb" in config.report_to:
        if not os.environ.get("WANDB_API_KEY"):
            defaults["WANDB_MODE"] = "offline"  # no key: log locally, `wandb sync` later
        defaults["WANDB_DIR"] = str(layout.root)  # wandb writes its wandb/ folder inside
        defaults["WANDB_PROJECT"] = "transferlearn"
    mlflow_uri_before = None
    if "mlflow" in config.report_to:
        # mlflow keeps the first URI set in the process and ignores the variable from then on (and the Trainer's
        # callback only sets one when none is set): each run sets its own, and the previous one comes back after
        import mlflow

        mlflow_uri_before = mlflow.get_tracking_uri()
    added = [k for k in defaults if k not in os.environ] + [k for k in ("MLFLOW_EXPERIMENT_ID",) if k not in os.environ]
    os.environ.update({k: defaults[k] for k in added if k in defaults})
    if mlflow_uri_before is not None:
        mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    try:
        yield
    finally:
        if mlflow_uri_before is not None:
            mlflow.set_tracking_uri(mlflow_uri_before)
        for key in added:  # after: set_tracking_uri writes the variable too; set_experiment leaves an experiment id
            os.environ.pop(key, None)


# what --resume may change without --resume-with-changes: where and how the run reports, not what it trains
RESUME_MAY_CHANGE = {"resume", "resume_with_changes", "overwrite", "force", "output", "progress", "report_to", "epochs",
                     "keep_checkpoints", "time_budget", "num_workers", "eval_batch_size", "save_total_limit",
                     "logging_steps", "device", "threads", "decoded_cache", "compile"}


def _last_checkpoint(layout: RunLayout) -> str | None:
    """The newest complete checkpoint; one cut off while it was written is skipped (and said so)."""
    from .callbacks import complete_checkpoints

    if not layout.checkpoints.is_dir():
        return None
    complete, incomplete = complete_checkpoints(layout.checkpoints)
    newer = [p for p in incomplete if not complete or int(p.name.split("-")[-1]) > int(complete[-1].name.split("-")[-1])]
    if newer:
        log.warning("--resume: %s is incomplete (cut off while being written): skipped%s", ", ".join(p.name for p in newer),
                    f"; resuming from {complete[-1].name}" if complete else "")
    return str(complete[-1]) if complete else None


def _check_resume(config: TrainConfig, layout: RunLayout) -> None:
    """--resume continues the run its checkpoints come from: a changed training setting is refused, named."""
    from ..config import load_config

    if not layout.config.exists() or config.resume_with_changes:
        return
    saved = load_config(layout.config).model_dump()
    asked = config.model_dump()
    changed = [f"{k}: {saved[k]!r} -> {asked[k]!r}" for k in saved if k not in RESUME_MAY_CHANGE
               and saved.get(k) != asked.get(k)]
    if changed:
        raise ConfigError(f"--resume: {'; '.join(changed)} differ from {layout.config}, which the checkpoints were "
                          "trained with. Drop the changed flags to continue the same run, pass "
                          "--resume-with-changes to continue anyway, or start a new run in another --output.")


def _trim_history(layout: RunLayout, checkpoint: str) -> None:
    """A resumed run logs again from its checkpoint's step: drop what the killed process logged after it."""
    import json

    if not layout.history.exists():
        return
    step = int(Path(checkpoint).name.split("-")[-1])
    lines = [line for line in layout.history.read_text(encoding="utf-8").splitlines() if line.strip()]
    # records after the checkpoint's step go, and so does the closing summary of a process that had finished training
    # (killed while writing model/ or the report): the resumed process writes its own
    kept = [line for line in lines if json.loads(line).get("step", 0) <= step and "train_runtime" not in json.loads(line)]
    if len(kept) != len(lines):
        from ..io import atomic_write_text

        atomic_write_text(layout.history, "".join(line + "\n" for line in kept))


def prepare_run_dir(layout: RunLayout, *, overwrite: bool, resume: bool, force: bool = False) -> SetAside | None:
    """Never clobber an earlier run by accident: an existing run folder needs --overwrite or --resume, and a
    folder that is not a run but holds names a run writes (``model/``, ``report.html``, ...) needs --force.
    What is replaced is only set aside (returned): the caller deletes it once the new run has succeeded."""
    if layout.root.exists() and not layout.root.is_dir():
        raise ConfigError(f"--output {layout.root} is a file, not a folder")
    present = layout.owned_present() if layout.root.exists() else []
    if present and not layout.is_run() and not force:
        raise ConfigError(f"--output {layout.root} is not a run folder (no config.yaml) but holds "
                          f"{', '.join(p.name for p in present)}, which a run would write over. Choose a new or "
                          "empty folder, or pass --force to replace them.")
    existing = layout.markers() if present else []
    if existing and layout.is_run() and not (overwrite or resume):
        raise ConfigError(f"{layout.root} already holds a run ({', '.join(existing)}). Use --resume to continue it, "
                          "--overwrite to replace it, or another --output.")
    try:  # a read-only or full disk fails now, with a clear message, not after the first epoch
        layout.root.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(layout.root / ".tl-write-check", b"ok")
        (layout.root / ".tl-write-check").unlink()
    except OSError as exc:
        raise ConfigError(f"--output {layout.root} cannot be written to ({exc.strerror or exc}). Choose a folder "
                          "on a writable disk with free space.") from None
    if present and (overwrite or force) and not resume:
        return layout.set_aside()
    return None


def finetune(config: TrainConfig, plan: Plan | None = None) -> Run:
    """Train, evaluate and report; returns the finished :class:`Run`. ``plan``: decisions to reuse as they are
    (reproducing a run) instead of resolving them again."""
    training_precision(config)  # --device cuda without a GPU, fp16 on a CPU: refused before any data is read
    # under torchrun / accelerate launch: the process group now, so the ranks agree from the first step on; only
    # rank 0 touches the run folder (distributed.on_main), and every rank trains and evaluates
    distributed.init(cpu=use_cpu(config))
    layout = RunLayout(config.output or default_run_dir(config))
    resume_from = None
    if config.resume:
        resume_from = _last_checkpoint(layout)
        if resume_from is None:
            raise ConfigError(f"--resume: no checkpoint in {layout.checkpoints} to resume from")
        _check_resume(config, layout)
        distributed.on_main(_trim_history, layout, resume_from)
    fresh = not layout.root.is_dir() or not any(layout.root.iterdir())
    replaced = distributed.on_main(_prepare_folder, config, layout)
    try:
        config = config.model_copy(update={"output": str(layout.root)})
        if not (config.resume and layout.config.exists() and not config.resume_with_changes):
            distributed.on_main(save_config, config, layout.config)  # once: what was asked for (a resumed run keeps its own)
        with _tracking_env(config, layout), thread_settings(config.threads):
            run = _finetune_in(config, layout, resume_from, plan)
    except BaseException as exc:
        unresumable = isinstance(exc, RunInterrupted) and not exc.resumable
        if distributed.is_main() and not config.resume and (unresumable or not _has_checkpoints(layout)):
            _remove_failed_start(layout, fresh)  # nothing to resume: a fixed re-run must not meet "already a run"
        if replaced is not None:  # the new run failed: the old one comes back as it was
            replaced.restore()
            if isinstance(exc, RunInterrupted):
                raise RunInterrupted(f"stopped by {exc.signal_name}; {layout.root} holds the previous run again, as "
                                     "it was (the interrupted --overwrite run is discarded)", exc.signal_name) from None
        raise
    if replaced is not None:
        replaced.discard()
    return run


def _prepare_folder(config: TrainConfig, layout: RunLayout) -> SetAside | None:
    replaced = prepare_run_dir(layout, overwrite=config.overwrite, resume=config.resume, force=config.force)
    for leftover in layout.temporaries():  # half-written files of a killed process: never read, so just removed
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    return replaced


def _has_checkpoints(layout: RunLayout) -> bool:
    from .callbacks import complete_checkpoints

    return any(complete_checkpoints(folder)[0] for folder in
               (layout.checkpoints, layout.probe / "checkpoints", layout.auto / "checkpoints") if folder.is_dir())


def _remove_failed_start(layout: RunLayout, fresh: bool) -> None:
    """A new run that failed before its first checkpoint leaves nothing behind (only what the layout owns)."""
    layout.clear()
    if fresh:
        with contextlib.suppress(OSError):
            layout.root.rmdir()  # only if empty: nothing of the user's is removed


@dataclass
class Outcome:
    """What the steps leave for the metrics: the trainer whose model is the result, its train output, the
    datasets the result is scored on, and facts for metrics.json."""

    trainer: object = None
    output: object = None
    model: object = None
    eval_sets: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


def _finetune_in(intent: TrainConfig, layout: RunLayout, resume_from: str | None, given: Plan | None) -> Run:
    from transformers import set_seed

    set_seed(intent.seed)
    run_started = time.time()  # the time budget counts from here: loading and planning are part of the run
    # a resumed run keeps the decisions its checkpoints were made with; a reproduced one, the decisions it was given
    known = Plan.load(layout.plan) if resume_from and layout.plan.exists() else given
    setup = Setup.build(known.apply(intent) if known else intent)  # e.g. at the plan's input size
    distributed.on_main(_check_free_space, layout, setup.bundle.info.get("parameters"), intent)
    distributed.on_main(atomic_write_json, layout.data_summary, setup.data.summary())
    if known is not None:
        plan, probe, extra = known, None, {}
        distributed.on_main(plan.save, layout.plan)
    else:
        plan, probe, extra = resolve_plan(intent, setup, layout)
        plan = distributed.agree(plan)  # measured steps and the LR finder's loss differ by rank: rank 0's plan rules
    config = plan.apply(intent)
    strategy = parse_strategy(config.strategy)

    log.info("run folder: %s", layout.root)
    start = time.time()
    outcome = Outcome(extra=extra)
    for step in strategy.steps():
        probe = _run_step(step, strategy, config, plan, setup, layout, probe, outcome, resume_from, run_started)
    train_time = time.time() - start
    trainable = sum(p.numel() for p in outcome.trainer.model.parameters() if p.requires_grad)
    final_model = strategy.finalize(outcome.model, layout.adapter)
    strategy.release(outcome.model)
    distributed.on_main(_save_model, final_model, setup.bundle.processor, layout.model)
    if config.baseline:
        from .baseline import fit_baseline

        outcome.extra["baseline"] = distributed.on_main(fit_baseline, config, setup)
    _write_metrics(config, setup, layout, outcome, train_time, trainable)  # every rank predicts; rank 0 writes
    distributed.on_main(_finish_folder, config, setup, layout, outcome)
    distributed.barrier()  # the other ranks return the run rank 0 has finished writing
    return Run.load(layout.root)


def _finish_folder(config: TrainConfig, setup: Setup, layout: RunLayout, outcome: Outcome) -> None:
    """Trackers, the augmentation preview and the report; then the checkpoints go."""
    if config.report_to and config.report_to != ["none"]:
        from .tracking import log_final

        log_final(config, layout, Run.load(layout.root).metrics, outcome.output.global_step)
    preview = setup.modality.augmentation_preview(setup.encoded["train"], setup.bundle, config)
    if preview is not None:
        atomic_write_bytes(layout.augmentation, preview)
    from ..report.html import write_report

    write_report(Run.load(layout.root))
    # last: until the report is written, a crashed run can still be finished from its checkpoints with --resume
    if not config.keep_checkpoints:  # the best model is in model/
        for folder in (layout.checkpoints, layout.probe / "checkpoints", layout.auto / "checkpoints"):
            shutil.rmtree(folder, ignore_errors=True)


def _run_step(step: Step, strategy: Strategy, config: TrainConfig, plan: Plan, setup: Setup, layout: RunLayout,
              probe, outcome: Outcome, resume_from: str | None, run_started: float | None = None):
    """Run one step into ``outcome``; returns the probe data (computed once, reused by later steps)."""
    bundle = setup.bundle
    if step.kind == "candidates":
        from .auto import run_auto

        run_auto(config, plan, setup, layout, outcome, run_started)
        return probe
    if step.kind == "probe":
        from .probe import probe_data, solve_probe, train_probe

        probe = probe or probe_data(config, setup, layout)
        outcome.extra["feature_cache"] = probe.cache
        folder = layout.root if step.final else layout.probe
        # the probe converges (L-BFGS, L2 chosen on validation) unless AdamW epochs were asked for
        converge = config.probe_solver == "lbfgs" and (step.final or step.epochs is None)
        if converge:
            trainer, output, fit = solve_probe(config, bundle, probe, folder, main=step.final)
            outcome.extra["probe"] = fit
        else:
            lr = config.lr if step.final else (step.lr or config.lr)
            trainer, output = train_probe(config, bundle, probe, folder, epochs=step.epochs or config.epochs, lr=lr,
                                          main=step.final)
            outcome.extra["probe"] = {"solver": "trainer", "epochs": step.epochs or config.epochs, "lr": lr,
                                      "train_loss": output.training_loss,
                                      "runtime_s": output.metrics.get("train_runtime")}
        if step.final:
            outcome.trainer, outcome.output = trainer, output
            outcome.model, outcome.eval_sets = bundle.model, probe.datasets
        return probe
    model = strategy.prepare(bundle.model, bundle.groups)
    if freeze_batchnorm_statistics(model, config):
        log.info("BatchNorm layers keep their pretrained statistics while fine-tuning (frozen_batchnorm)")
    head_lr_multiplier = config.head_lr_multiplier or strategy.head_lr_multiplier
    param_groups = strategy.optimizer_groups(model, bundle.groups, config.lr, config.weight_decay,
                                             config.layer_lr_decay, head_lr_multiplier)
    log.info("fine-tuning (%s): lr %.2g, head lr %.2g, %g epochs%s", strategy.name, config.lr,
             config.lr * head_lr_multiplier, config.epochs,
             f", augmentation {augment_preset(config)}" if setup.modality.augments(config) else "")
    trainer = make_trainer(
        config, model, training_arguments(config, layout.checkpoints), setup.encoded["train"],
        setup.encoded["validation"], collator=setup.modality.collator(bundle, config), processor=bundle.processor,
        param_groups=param_groups, num_labels=len(setup.data.label_names), history=layout.history,
        callbacks=strategy.callbacks(bundle.groups),
    )
    outcome.output = trainer.train(resume_from_checkpoint=resume_from)
    raise_if_interrupted(trainer)
    outcome.trainer, outcome.model, outcome.eval_sets = trainer, model, setup.encoded
    return probe


def _check_free_space(layout: RunLayout, parameters: int | None, config: TrainConfig) -> None:
    """Refuse to start when the disk cannot hold the final model and the checkpoints (weights + AdamW's two
    moments, fp32) the run keeps: better now than a full disk after an hour of training."""
    if not parameters:
        return
    kept = (config.save_total_limit or 2) + 1  # the Trainer may write the next before removing the oldest
    needed = parameters * 4 * (1 + 3 * kept)
    free = shutil.disk_usage(layout.root).free
    if free < needed:
        raise ConfigError(f"--output {layout.root}: the disk has {free / 2**20:.0f} MiB free, and this run needs about "
                          f"{needed / 2**20:.0f} MiB ({parameters:,} parameters: the model plus {kept} checkpoints). "
                          "Free some space, write to another disk, or lower --save-total-limit.")


def _write_metrics(config: TrainConfig, setup: Setup, layout: RunLayout, outcome: Outcome, train_time: float,
                   trainable: int) -> None:
    trainer, output, label_names = outcome.trainer, outcome.output, setup.data.label_names
    clock = next((c for c in trainer.callback_handler.callbacks if isinstance(c, TrainingClock)), None)
    if clock is not None and clock.seconds_before > 0:  # resumed: totals over every process of the run
        train_time = clock.seconds
        losses = [h["loss"] for h in Run.load(layout.root).history if "loss" in h]
        output = output.__class__(output.global_step, float(np.mean(losses)) if losses else output.training_loss,
                                  {**output.metrics, "train_samples_per_second": round(
                                      output.global_step * config.global_batch_size
                                      / max(train_time, 1e-6), 3)})
    metrics = {
        "model": config.model, "strategy": config.strategy, "modality": setup.modality.name,
        "label_names": label_names,
        "train": {
            "runtime_s": round(train_time, 2),
            "samples_per_second": output.metrics.get("train_samples_per_second"),
            "steps": output.global_step, "epochs": trainer.state.epoch,
            "train_loss": output.training_loss, "num_samples": setup.data.rows("train"),
            "trainable_parameters": trainable, "total_parameters": setup.bundle.info.get("parameters"),
            "best_checkpoint": trainer.state.best_model_checkpoint,
            "best_metric": trainer.state.best_metric,
            "device": str(trainer.args.device),
            **{k: v for k, v in outcome.extra.items() if k != "baseline"},
        },
    }
    if "baseline" in outcome.extra:
        metrics["baseline"] = outcome.extra["baseline"]
    scored = {}
    for split in ("validation", "test"):
        if split in outcome.eval_sets:
            with without_trackers(trainer):
                predictions = trainer.predict(outcome.eval_sets[split])
            logits = predictions.predictions
            logits = np.asarray(logits[0] if isinstance(logits, tuple) else logits)
            metrics[split] = classification_metrics(predictions.label_ids, logits, label_names)
            scored[split] = (logits, predictions.label_ids)
    distributed.on_main(_write_scores, config, setup, layout, metrics, scored)


def _write_scores(config: TrainConfig, setup: Setup, layout: RunLayout, metrics: dict, scored: dict) -> None:
    for split, (logits, labels) in scored.items():
        _save_predictions(layout.predictions_file(split), logits, labels, _row_inputs(setup, split, len(labels)))
    _calibrate(config, layout, metrics, scored)
    from .baseline import compare_with_baseline

    warning = compare_with_baseline(metrics)
    if warning:
        metrics["baseline"]["warning"] = warning
        log.warning(warning)
    atomic_write_json(layout.metrics, metrics)


def _calibrate(config: TrainConfig, layout: RunLayout, metrics: dict, scored: dict) -> None:
    """Every scored split gets its expected calibration error; with --calibrate, a temperature fitted on validation
    is saved with the model, and the ECE it gives is reported beside the raw one."""
    from ..report.errors import expected_calibration_error, softmax

    temperature = None
    if config.calibrate and "validation" in scored:
        from .calibration import fit_temperature, save_temperature

        temperature = fit_temperature(*scored["validation"])
        save_temperature(layout.model, temperature, "validation", len(scored["validation"][1]))
        log.info("temperature scaling: T = %.3f (fitted on validation)", temperature)
    for split, (logits, labels) in scored.items():
        metrics[split]["ece"] = expected_calibration_error(softmax(logits), labels)["ece"]
        if temperature is not None:
            metrics[split]["ece_calibrated"] = expected_calibration_error(softmax(logits / temperature), labels)["ece"]
    if temperature is not None:
        metrics["calibration"] = {"method": "temperature scaling", "temperature": temperature, "fitted_on": "validation"}


def _row_inputs(setup: Setup, split: str, rows: int) -> list[str]:
    """Each row's input as text: the sentence, or the file's path ('' for a picture or clip held as bytes)."""
    dataset = setup.data.splits.get(split)
    if dataset is None or len(dataset) != rows:
        return [""] * rows
    column = dataset.with_format(None)[setup.modality.row_column]
    return [(item.get("path") or "") if isinstance(item, dict) else str(item) for item in column]


def _save_predictions(path: Path, logits: np.ndarray, labels: np.ndarray, inputs: list[str]) -> None:
    """What a study pairs by row and an error report ranks and shows: logits (float32), labels and each row's
    input as text, in row order (plain arrays: read back without pickle)."""
    import io

    buffer = io.BytesIO()
    np.savez_compressed(buffer, logits=logits.astype(np.float32), labels=np.asarray(labels, dtype=np.int64),
                        inputs=np.asarray(inputs, dtype=str))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())


def _save_model(model, processor, model_dir: Path) -> None:
    """Weights (safetensors), config and processor, written beside and renamed into place."""
    from safetensors.torch import save_file

    tmp_dir = model_dir.parent / f".{model_dir.name}.tmp"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    device = next(model.parameters()).device
    model.to("cpu")  # in place: the weights are written from host memory...
    try:
        if hasattr(model, "save_pretrained"):
            model.save_pretrained(tmp_dir)
        else:
            tmp_dir.mkdir(parents=True)
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_dir / "model.safetensors"))
    finally:
        model.to(device)  # ...and the model goes back: the Trainer evaluates it on its device right after
    if processor is not None:
        processor.save_pretrained(tmp_dir)
    if hasattr(model, "save_metadata"):  # custom heads: what rebuilds them beside the weights
        model.save_metadata(tmp_dir)
    apply_file_mode(tmp_dir)
    failpoint("model")  # tests kill the process here: the new model is written, the old one not yet replaced
    if model_dir.exists():
        shutil.rmtree(model_dir)
    os.replace(tmp_dir, model_dir)
