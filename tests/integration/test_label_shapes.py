"""Tag sets, several label columns and numbers through every stage, on tiny models: train (a fine-tune and the
cached probe), metrics under their fixed names, the baseline, predict's output, evaluate, ONNX export, ``/predict`` in
``tl serve`` with its OpenAPI schema, the report's sections, and the ``model/`` folder in plain transformers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema
import numpy as np
import pytest
from fastapi.testclient import TestClient

from transferlearn import finetune, load_config
from transferlearn.run import Run

KINDS = ["multi-label", "multi-output", "regression"]
EXTRA = {"multi-output": {"label_column": "praise,tone"}}
METRIC_NAMES = {"multi-label": {"micro_f1", "macro_f1", "mean_average_precision", "subset_accuracy"},
                "multi-output": {"mean_macro_f1", "flat_macro_f1", "mean_accuracy", "exact_match"},
                "regression": {"rmse", "mae", "r2", "spearman"}}
TEXTS = ["the food was really great and very good", "the staff was awful and the room really bad",
         "the room was very lovely and the price was terrible"]


def _tl(*args):
    return subprocess.run([sys.executable, "-m", "transferlearn.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})


@pytest.fixture(scope="module")
def shape_runs(tmp_path_factory, shape_folder, tiny_text_model):
    """Per shape: a full fine-tune and a cached linear probe of the tiny BERT."""
    runs, root = {}, tmp_path_factory.mktemp("shape-runs")
    for kind in KINDS:
        for strategy, lr in (("full", 3e-3), ("linear-probe", 1e-2)):
            out = root / f"{kind}-{strategy}"
            runs[kind, strategy] = finetune(load_config(
                data=str(shape_folder(kind)), model=str(tiny_text_model("bert")), strategy=strategy, epochs=8,
                lr=lr, head_lr_multiplier=1.0, warmup_ratio=0.0, batch_size=16, output=str(out), progress=False,
                seed=1, early_stopping_patience=0, **EXTRA.get(kind, {})))
    return runs


@pytest.mark.parametrize("kind", KINDS)
def test_each_shape_trains_with_its_metrics_baseline_and_saved_shape(kind, shape_runs):
    for strategy in ("full", "linear-probe"):
        run = shape_runs[kind, strategy]
        metrics = run.metrics
        assert metrics["problem"] == kind and metrics["metric"] == run.shape.primary_metric
        assert METRIC_NAMES[kind] <= set(metrics["test"]) and METRIC_NAMES[kind] <= set(metrics["baseline"]["test"])
        assert metrics["baseline"]["metric"] == metrics["metric"]
        assert (run.model_dir / "label_shape.json").exists() and run.shape.name == kind
        assert json.loads((run.path / "data.json").read_text())["label_shape"]["problem"] == kind
    probe = shape_runs[kind, "linear-probe"].metrics["test"]
    if kind == "multi-label":
        assert probe["mean_average_precision"] > 0.8  # the cached probe learns the cue words
        assert set(shape_runs[kind, "full"].shape.thresholds) <= set(np.round(np.arange(0.05, 0.951, 0.05), 2))
    elif kind == "multi-output":
        assert set(probe["columns"]) == {"praise", "tone"} and probe["columns"]["praise"]["macro_f1"] > 0.7
        assert run.shape.primary_metric == "mean_macro_f1"  # the columns have different class sets
    else:
        assert probe["r2"] > 0.3 and probe["rmse"] < 1.0 and 0.5 <= probe["interval_coverage"] <= 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_predict_and_evaluate_per_shape(kind, shape_runs):
    run = shape_runs[kind, "linear-probe"]
    result = _tl("predict", run.path, *TEXTS, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["input"] for line in lines] == TEXTS
    jsonschema.validate([{k: v for k, v in line.items() if k != "input"} for line in lines],
                        {"type": "array", "items": run.shape.result_schema()})
    if kind == "multi-label":  # the labels are the tags whose score reaches their tuned threshold
        thresholds = dict(zip(run.shape.tags, run.shape.thresholds, strict=True))
        for line in lines:
            assert set(line["labels"]) == {t for t, p in line["scores"].items() if p >= thresholds[t]}
            assert list(line["scores"]) == sorted(line["scores"], key=line["scores"].get, reverse=True)
    elif kind == "multi-output":
        for line in lines:
            for column in line["columns"].values():
                assert column["label"] == max(column["probabilities"], key=column["probabilities"].get)
                assert sum(column["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    else:
        assert all(line["interval"][0] < line["value"] < line["interval"][1] for line in lines)
    shown = _tl("predict", run.path, TEXTS[0])
    assert shown.returncode == 0 and TEXTS[0] in shown.stdout
    evaluated = _tl("evaluate", run.path, "--json")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    scores = json.loads(evaluated.stdout)
    for name in METRIC_NAMES[kind]:
        assert scores[name] == pytest.approx(run.metrics["test"][name], abs=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_an_empty_input_is_refused_for_every_shape(kind, shape_runs):
    run = shape_runs[kind, "linear-probe"]
    for empty in ("", "   "):
        result = _tl("predict", run.path, empty)
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert "empty" in result.stderr and result.stdout == ""


@pytest.mark.parametrize("kind", KINDS)
def test_onnx_export_and_int8_keep_the_shape_decisions(kind, shape_runs):
    from transferlearn.deploy.export import export_onnx, quantize
    from transferlearn.deploy.predictor import Predictor

    run = Run.load(shape_runs[kind, "linear-probe"].path)
    info = export_onnx(run)
    assert info["validation"]["max_abs_diff"] < 1e-3 and info["validation"]["agreement"] == 1.0
    torch_logits, onnx_logits = Predictor(run).logits(TEXTS), Predictor(Run.load(run.path), "onnx").logits(TEXTS)
    assert np.allclose(torch_logits, onnx_logits, atol=1e-3) and run.shape.agreement(torch_logits, onnx_logits) == 1.0
    dynamic = quantize(run, "dynamic")["validation"]
    assert dynamic["metric"] == run.shape.primary_metric and 0.0 <= dynamic["agreement_with_fp32"] <= 1.0
    from transferlearn.deploy.bench import bench

    report = bench(Run.load(run.path), batch_sizes=(1,), threads=1, max_drop=100.0, budget_s=0.1, min_reps=3)
    assert report["metric"] == run.shape.primary_metric and report["chosen"]["variant"] in report["variants"]
    fp32 = report["variants"]["torch-fp32"]
    assert fp32["score"] == pytest.approx(run.metrics["test"][report["metric"]], abs=1e-4) and fp32["drop_pt"] == 0
    assert np.isfinite(dynamic["score"]) and dynamic["score_fp32"] == pytest.approx(run.metrics["test"][dynamic["metric"]],
                                                                                  abs=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_serve_answers_in_the_shape_schema_and_counts_it(kind, shape_runs):
    from prometheus_client.parser import text_string_to_metric_families

    from transferlearn.serve import ServeConfig, create_app

    run = shape_runs[kind, "linear-probe"]
    with TestClient(create_app(run.path, ServeConfig(backend="torch")), raise_server_exceptions=False) as client:
        assert client.app.state.service.ready.wait(120)
        response = client.post("/predict", json={"inputs": TEXTS, "top_k": 1})
        assert response.status_code == 200, response.text
        body = response.json()
        schema = client.get("/openapi.json").json()
        declared = schema["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        jsonschema.validate(body, declared)
        expected = run.shape.keep_top(run.predict(TEXTS)[0], 1)
        assert json.dumps(body["predictions"][0], sort_keys=True)[:12] == json.dumps(expected, sort_keys=True)[:12]
        assert run.shape.served_labels(body["predictions"][0]) == run.shape.served_labels(expected)
        assert client.post("/predict", json=["  "]).status_code == 422
        assert client.get("/metadata").json()["problem"] == kind
        counted = {s.labels.get("label"): s.value for f in text_string_to_metric_families(client.get("/metrics").text)
                   for s in f.samples if s.name == "tl_predictions_total"}
        if kind == "regression":
            assert sum(counted.values()) == 0  # numbers are not counted as labels
        else:
            assert sum(counted.values()) == sum(len(run.shape.served_labels(p)) for p in body["predictions"])


@pytest.mark.parametrize("kind", KINDS)
def test_the_report_shows_the_shape_sections(kind, shape_runs):
    report = (shape_runs[kind, "full"].path / "report.html").read_text()
    assert shape_runs[kind, "full"].shape.detail_title in report
    expected = {"multi-label": ["Per-tag scores", "average precision", "threshold"],
                "multi-output": ["Per-column scores", "column macro-F1"],
                "regression": ["Predicted vs true", "Residuals", "Per-target scores"]}[kind]
    assert all(text in report for text in expected), [t for t in expected if t not in report]
    assert "Confusion matrix" not in report and "reliability diagram" not in report  # one class a row only


@pytest.mark.parametrize("kind", KINDS)
def test_the_model_folder_loads_in_plain_transformers(kind, shape_runs):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    run = shape_runs[kind, "full"]
    model = AutoModelForSequenceClassification.from_pretrained(run.model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(run.model_dir)
    assert model.config.problem_type == {"multi-label": "multi_label_classification", "multi-output": None,
                                         "regression": "regression"}[kind]
    assert list(model.config.id2label.values()) == run.shape.output_names
    with torch.no_grad():
        logits = model(**tokenizer(TEXTS, return_tensors="pt", padding=True)).logits.numpy()
    assert np.allclose(logits, run.predict_logits(TEXTS), atol=1e-4)


def test_auto_within_a_budget_on_tag_sets(shape_folder, tiny_text_model, tmp_path):
    run = finetune(load_config(data=str(shape_folder("multi-label")), model=str(tiny_text_model("bert")),
                               time_budget="2m", batch_size=16, output=str(tmp_path / "auto"), progress=False))
    auto = run.metrics["train"]["auto"]
    assert auto["metric"] == "mean_average_precision" and auto["winner"] in {c["name"] for c in auto["candidates"]}
    assert run.metrics["test"]["mean_average_precision"] > 0.8


def test_a_study_and_a_sweep_on_tag_sets_use_its_metric(tmp_path, shape_folder, tiny_text_model):
    data, model = shape_folder("multi-label"), tiny_text_model("bert")
    study = _tl("study", "--data", data, "--model", model, "--arms", "linear-probe,full", "--fractions", "1",
                "--seeds", "2", "--output", tmp_path / "study", "--set", "epochs=2", "--set", "baseline=false",
                "--set", "lr=0.003")
    assert study.returncode == 0, study.stderr[-3000:]
    record = json.loads((tmp_path / "study" / "study.json").read_text())
    analysis = record["analysis"]
    assert analysis["metric"] == "mean_average_precision"
    assert all("mean_average_precision" in r["test"] and "micro_f1" in r["test"] for r in record["runs"])
    test = analysis["leaders"]["1"]["paired_test"]
    assert 0.0 <= test["p_value"] <= 1.0 and test["low"] <= test["difference"] <= test["high"]
    assert "mean-average-precision" in " ".join(analysis["recommendation"])

    sweep = _tl("sweep", "--data", shape_folder("regression"), "--model", model, "--strategy", "linear-probe",
                "--space", "lr=1e-3:1e-1:log", "--trials", "2", "--output", tmp_path / "sweep",
                "--set", "baseline=false")
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    record = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert record["metric"] == "r2" and record["best"]["value"] == max(
        t["value"] for t in record["trials"] if t["state"] == "COMPLETE")
    assert all({"rmse", "r2"} <= set(t["test"]) for t in record["trials"] if t["state"] == "COMPLETE")


def test_compare_and_runs_per_shape(shape_runs, tmp_path):
    tags = [shape_runs["multi-label", s].path for s in ("full", "linear-probe")]
    result = _tl("compare", *tags, "--output", tmp_path / "compare.html", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout)["runs"]
    assert [r["metric"] for r in rows] == ["mean_average_precision"] * 2
    assert rows[1]["score"] == pytest.approx(shape_runs["multi-label", "linear-probe"].metrics["test"][
        "mean_average_precision"])
    page = (tmp_path / "compare.html").read_text()
    assert "Per-tag F1" in page and "test micro_f1" in page
    mixed = _tl("compare", tags[0], shape_runs["regression", "full"].path, "--output", tmp_path / "mixed.html")
    assert mixed.returncode == 2 and "different label shapes" in mixed.stderr and not (tmp_path / "mixed.html").exists()
    listed = _tl("runs", tags[0].parent, "--json")
    assert listed.returncode == 0, listed.stderr[-2000:]
    problems = {r["problem"] for r in json.loads(listed.stdout)}
    assert problems == set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_errors_rank_rows_by_the_shape_loss(kind, shape_runs):
    run = shape_runs[kind, "full"]
    result = _tl("errors", run.path, "-n", "5", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout)
    losses = [e["loss"] for e in found["examples"]]
    assert found["problem"] == kind and len(losses) == 5 and losses == sorted(losses, reverse=True)
    logits, labels = run.predictions("test")
    assert losses[0] == pytest.approx(run.shape.row_losses(logits, labels).max(), rel=1e-5)
    first = found["examples"][0]
    assert first["input"] and first["true"] == run.shape.describe_row(labels[first["row"]])
    assert found["most_confused"] == []  # confusions are for one class a row
