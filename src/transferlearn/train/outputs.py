"""What a trained run leaves in its folder besides the checkpoints: the model (safetensors), every split's scores and
predictions, the calibration, and ``metrics.json``. Every rank predicts (a distributed run shards the work); rank 0
writes."""

from __future__ import annotations

import io
import logging
import os
import shutil
from pathlib import Path

import numpy as np
from safetensors.torch import save_file

from .. import distributed
from ..config import TrainConfig
from ..failpoints import failpoint
from ..io import apply_file_mode, atomic_write_bytes, atomic_write_json
from ..layout import RunLayout
from ..run import Run
from .baseline import compare_with_baseline
from .callbacks import TrainingClock
from .session import Fitted
from .setup import Setup
from .trainer import without_trackers

log = logging.getLogger(__name__)


def write_metrics(config: TrainConfig, setup: Setup, layout: RunLayout, fitted: Fitted, train_time: float,
                  trainable: int, baseline: dict | None) -> None:
    """Score validation and test with the final model; rank 0 writes predictions, calibration and metrics.json."""
    trainer, clock = fitted.trainer, _clock(fitted.trainer)
    output = _train_output(config, layout, fitted.output, clock)
    if clock is not None and clock.seconds_before > 0:  # resumed: the time over every process of the run
        train_time = clock.seconds
    shape = setup.data.shape
    metrics = {
        "model": config.model, "strategy": config.strategy, "modality": setup.modality.name,
        "problem": shape.name, "metric": config.metric, "label_names": setup.data.label_names,
        "train": {
            "runtime_s": round(train_time, 2),
            "samples_per_second": output.metrics.get("train_samples_per_second"),
            "steps": output.global_step, "epochs": trainer.state.epoch,
            "train_loss": output.training_loss, "num_samples": setup.data.rows("train"),
            "trainable_parameters": trainable, "total_parameters": setup.bundle.info.get("parameters"),
            "best_checkpoint": trainer.state.best_model_checkpoint,
            "best_metric": trainer.state.best_metric,
            "device": str(trainer.args.device),
            **fitted.facts,
        },
    }
    if baseline is not None:
        metrics["baseline"] = baseline
    scored = {}
    for split in ("validation", "test"):
        if split in fitted.eval_sets:
            with without_trackers(trainer):
                predictions = trainer.predict(fitted.eval_sets[split])
            logits = predictions.predictions
            logits = np.asarray(logits[0] if isinstance(logits, tuple) else logits)
            dataset = fitted.eval_sets[split]
            groups = dataset["sentence"] if "sentence" in (getattr(dataset, "column_names", None) or ()) else None
            scored[split] = shape.gather(logits, np.asarray(predictions.label_ids), groups)  # a row per input
    # what the shape tunes on validation (a temperature, thresholds, intervals) before every split is scored with it
    if "validation" in scored:
        calibration = shape.calibrate(*scored["validation"], temperature=config.calibrate)
        if calibration:
            metrics["calibration"] = calibration
            log.info("calibration (%s) fitted on validation", calibration["method"])
    for split, (logits, labels) in scored.items():
        metrics[split] = shape.metrics(labels, logits)
    distributed.on_main(_write_scores, config, setup, layout, metrics, scored)


def _clock(trainer) -> TrainingClock | None:
    return next((c for c in trainer.callback_handler.callbacks if isinstance(c, TrainingClock)), None)


def _train_output(config: TrainConfig, layout: RunLayout, output, clock: TrainingClock | None):
    """The train output; a resumed run's loss and pace are over every process of the run, read from its history."""
    if clock is None or clock.seconds_before <= 0:
        return output
    losses = [h["loss"] for h in Run.load(layout.root).history if "loss" in h]
    pace = round(output.global_step * config.global_batch_size / max(clock.seconds, 1e-6), 3)
    return output.__class__(output.global_step, float(np.mean(losses)) if losses else output.training_loss,
                            {**output.metrics, "train_samples_per_second": pace})


def _write_scores(config: TrainConfig, setup: Setup, layout: RunLayout, metrics: dict, scored: dict) -> None:
    for split, (logits, labels) in scored.items():
        save_predictions(layout.predictions_file(split), logits, labels, _row_inputs(setup, split, len(labels)))
    setup.data.shape.save(layout.model)  # the fitted shape (classes, thresholds, scaler) beside the weights
    atomic_write_json(layout.model / "inputs.json", setup.data.columns)  # a sentence pair's two text columns
    warning = compare_with_baseline(metrics)
    if warning:
        metrics["baseline"]["warning"] = warning
        log.warning(warning)
    atomic_write_json(layout.metrics, metrics)


def _row_inputs(setup: Setup, split: str, rows: int) -> list[str]:
    """Each row's input as text: the sentence, or the file's path ('' for a picture or clip held as bytes)."""
    dataset = setup.data.splits.get(split)
    if dataset is None or len(dataset) != rows:
        return [""] * rows
    return [setup.modality.row_value(item) or "" for item in setup.modality.row_inputs(dataset)]


def save_predictions(path: Path, logits: np.ndarray, labels: np.ndarray, inputs: list[str]) -> None:
    """What a study pairs by row and an error report ranks and shows: logits (float32), labels and each row's
    input as text, in row order (plain arrays: read back without pickle)."""
    buffer = io.BytesIO()
    labels = np.asarray(labels)
    np.savez_compressed(buffer, logits=logits.astype(np.float32),
                        labels=labels if labels.dtype.kind == "f" else labels.astype(np.int64),
                        inputs=np.asarray(inputs, dtype=str))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())


def save_model(model, processor, model_dir: Path) -> None:
    """Weights (safetensors), config and processor, written beside and renamed into place."""
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
