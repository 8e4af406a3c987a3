"""What the trackers get after training, beside what the Trainer's own integrations log while it trains (loss,
learning rates, validation metrics): the final validation / test metrics as run metrics, and the confusion
matrix as an image. Each tracker is written through its own library, into the places ``tracking_env`` chose."""

from __future__ import annotations

import contextlib
import io
import logging
import os

import numpy as np
from PIL import Image

from ..config import TrainConfig
from ..layout import RunLayout
from ..metrics import scalar_metrics
from ..plots import confusion_figure, png_bytes

log = logging.getLogger(__name__)

@contextlib.contextmanager
def tracking_env(config: TrainConfig, layout: RunLayout):
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
        import mlflow  # lazy: only a run that reports to MLflow pays its import

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


def final_metrics(metrics: dict) -> dict[str, float]:
    """Every scalar score of the scored splits (the label shape's: accuracy / micro-F1 / RMSE ...)."""
    return {f"final/{split}_{key}": float(value) for split in ("validation", "test") if split in metrics
            for key, value in scalar_metrics(metrics[split]).items()}


def log_final(config: TrainConfig, layout: RunLayout, metrics: dict, step: int) -> None:
    values = final_metrics(metrics)
    if not values:
        return
    for name, write in (("tensorboard", _tensorboard), ("mlflow", _mlflow), ("wandb", _wandb)):
        if name in config.report_to:
            try:
                write(layout, metrics, values, step)
            except Exception as exc:  # noqa: BLE001 — a tracker's failure must not lose a finished run
                log.warning("could not log the final metrics to %s: %s", name, exc)


def _confusion_png(metrics: dict) -> bytes | None:
    split = "test" if "test" in metrics else "validation"
    if "confusion_matrix" not in metrics.get(split, {}):  # one class a row only
        return None
    return png_bytes(confusion_figure(metrics[split], f"Confusion matrix ({split})"))


def _tensorboard(layout: RunLayout, metrics: dict, values: dict, step: int) -> None:

    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=os.environ.get("TENSORBOARD_LOGGING_DIR", str(layout.tensorboard)))
    try:
        for name, value in values.items():
            writer.add_scalar(name, value, step)
        png = _confusion_png(metrics)
        if png is not None:
            picture = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
            writer.add_image("confusion_matrix", picture, step, dataformats="HWC")
    finally:
        writer.close()


def _mlflow(layout: RunLayout, metrics: dict, values: dict, step: int) -> None:
    """Into the run the Trainer's MLflow callback logged (named after the run folder), else a new one."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    experiment = client.get_experiment_by_name(os.environ.get("MLFLOW_EXPERIMENT_NAME", "Default"))
    found = [] if experiment is None else client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`mlflow.runName` = '{layout.root.name}'",
        order_by=["attributes.start_time DESC"], max_results=1)
    if found:
        run_id = found[0].info.run_id
    else:
        nested = mlflow.active_run() is not None
        with mlflow.start_run(run_name=layout.root.name, nested=nested) as run:
            run_id = run.info.run_id
    for name, value in values.items():
        client.log_metric(run_id, name.replace("/", "_"), value, step=step)


def _wandb(layout: RunLayout, metrics: dict, values: dict, step: int) -> None:
    import wandb

    if wandb.run is None:
        return
    wandb.run.summary.update(values)
    wandb.finish()  # the run's log is complete now; the next run starts its own wandb run...
    wandb.teardown()  # ...with its own settings (wandb reads WANDB_DIR and the rest once per setup)
