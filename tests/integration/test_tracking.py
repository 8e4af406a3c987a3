"""What the trackers logged, read back with each tracker's own reader: TensorBoard events, the wandb offline run's
summary, the MLflow store (and a study's runs nested under its parent run)."""

from __future__ import annotations

import json

import pytest

from transferlearn import finetune, load_config


def _train(folder, tiny_text_model, out, **kw):
    return finetune(load_config(data=str(folder), model=str(tiny_text_model("bert")), strategy="full", epochs=2,
                                batch_size=16, head_lr_multiplier=10.0, progress=False, baseline=False,
                                early_stopping_patience=0, output=str(out), **kw))


def test_tensorboard_events_hold_losses_rates_metrics_and_the_confusion_matrix(tmp_path, sentiment_folder,
                                                                              tiny_text_model, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    run = _train(sentiment_folder, tiny_text_model, tmp_path / "tb", report_to="tensorboard", logging_steps=1)
    scalars, images = {}, {}
    for events in {p.parent for p in (run.path / "tensorboard").rglob("events.out.tfevents*")}:
        accumulator = EventAccumulator(str(events), size_guidance={"images": 0, "scalars": 0}).Reload()
        for tag in accumulator.Tags()["scalars"]:
            scalars[tag] = [e.value for e in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()["images"]:
            images[tag] = accumulator.Images(tag)
    loss = next(tag for tag in scalars if tag.endswith("loss") and "eval" not in tag)
    assert len(scalars[loss]) >= 4
    head = next(v for t, v in scalars.items() if t.endswith("learning_rate/head"))
    body = next(v for t, v in scalars.items() if t.endswith("learning_rate/body"))
    assert max(head) == pytest.approx(10 * max(body), rel=1e-6)  # each group's own rate
    macro_f1 = next(v for t, v in scalars.items() if t.endswith("eval/macro_f1") or t == "eval/macro_f1")
    assert len(macro_f1) >= 2
    assert scalars["final/test_accuracy"][-1] == pytest.approx(run.metrics["test"]["accuracy"], abs=1e-6)
    picture = images["confusion_matrix"][-1]
    assert picture.width > 100 and picture.height > 100 and len(picture.encoded_image_string) > 1000


def test_wandb_offline_summary_holds_the_final_metrics(tmp_path, sentiment_folder, tiny_text_model, monkeypatch):
    pytest.importorskip("wandb")
    for var in ("WANDB_MODE", "WANDB_DIR", "WANDB_API_KEY", "WANDB_RUN_GROUP"):
        monkeypatch.delenv(var, raising=False)
    run = _train(sentiment_folder, tiny_text_model, tmp_path / "wb", report_to="wandb")
    logs = list((run.path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(logs) == 1, "one offline run, in the run folder"
    summary = _wandb_summary(logs[0])
    assert summary["final/test_accuracy"] == pytest.approx(run.metrics["test"]["accuracy"], abs=1e-6)
    assert summary["final/validation_macro_f1"] == pytest.approx(run.metrics["validation"]["macro_f1"], abs=1e-6)
    assert "eval/macro_f1" in summary


def _wandb_records(path):
    """The records of a wandb transaction log (``run-*.wandb``): a ``:W&B`` header, then LevelDB-log framing (32 KiB
    blocks; per record a checksum, a 2-byte length and a FULL / FIRST / MIDDLE / LAST type). wandb 0.31 no longer
    ships a Python reader for offline runs (its core is Go), so the test reads the framing itself."""
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    position, block, pieces = 7, 32768, b""
    while position + 7 <= len(data):
        left = block - position % block
        length, kind = int.from_bytes(data[position + 4 : position + 6], "little"), data[position + 6]
        if left < 7 or (kind == 0 and length == 0):  # the block's zero-filled tail
            position += left
            continue
        payload = data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind == 1:
            yield payload
        elif kind == 2:
            pieces = payload
        elif kind == 3:
            pieces += payload
        elif kind == 4:
            yield pieces + payload


def _wandb_summary(path) -> dict:
    from wandb.proto import wandb_internal_pb2

    summary = {}
    for raw in _wandb_records(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "summary":
            for item in record.summary.update:
                summary[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return summary


def test_mlflow_run_metrics_include_the_final_test_metrics(tmp_path, sentiment_folder, tiny_text_model, monkeypatch):
    from mlflow.tracking import MlflowClient

    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_NESTED_RUN"):
        monkeypatch.delenv(var, raising=False)
    run = _train(sentiment_folder, tiny_text_model, tmp_path / "ml", report_to="mlflow")
    client = MlflowClient(tracking_uri=f"sqlite:///{run.path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("transferlearn")
    logged = client.search_runs([experiment.experiment_id])
    assert len(logged) == 1
    metrics = logged[0].data.metrics
    assert metrics["final_test_accuracy"] == pytest.approx(run.metrics["test"]["accuracy"], abs=1e-6)
    assert metrics["eval_macro_f1"] == pytest.approx(run.metrics["validation"]["macro_f1"], abs=1e-6)
    history = client.get_metric_history(logged[0].info.run_id, "loss")
    assert len(history) >= 2


def test_a_studys_runs_nest_under_its_mlflow_parent_run(tmp_path, sentiment_folder, tiny_text_model, monkeypatch):
    from mlflow.tracking import MlflowClient

    from transferlearn.study.config import StudyConfig
    from transferlearn.study.runner import Study

    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_NESTED_RUN"):
        monkeypatch.delenv(var, raising=False)
    study = Study(StudyConfig(data=str(sentiment_folder), model=str(tiny_text_model("bert")), arms="linear-probe,full",
                              fractions="0.5,1", seeds=1, output=str(tmp_path / "study")),
                  {"epochs": 1, "baseline": False, "report_to": "mlflow"})
    record = study.run(report=lambda line: None)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'study' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("transferlearn")
    logged = client.search_runs([experiment.experiment_id])
    parents = [r for r in logged if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and parents[0].info.run_name == "study"
    children = [r for r in logged if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(record["runs"]) == 4
    assert {r.info.run_name for r in children} == {r["name"] for r in record["runs"]}
    for name in ("linear-probe-f1-s42", "full-f1-s42"):
        final = [r for r in children if r.info.run_name == name and "final_test_accuracy" in r.data.metrics]
        assert len(final) == 1
    assert not (tmp_path / "study" / "runs" / "full-f1-s42" / "mlflow.db").exists()  # one store, the study's
