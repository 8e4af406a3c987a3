"""metrics: values against hand-computed ones; io: atomic writes leave no partial file."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from transferlearn.io import append_jsonl, atomic_write_json, atomic_write_text
from transferlearn.metrics import (
    bootstrap_standard_error,
    classification_metrics,
    metric_of,
    summary_metrics,
    trainer_metrics,
)


def test_classification_metrics_by_hand():
    labels = [0, 0, 1, 1, 2]
    logits = np.array([[2, 0, 0], [0, 2, 0], [0, 2, 0], [0, 2, 0], [0, 0, 2]], dtype=float)  # one 0 -> 1 error
    m = classification_metrics(labels, logits, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(0.8)
    assert m["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3) and m["per_class"]["b"]["recall"] == 1.0
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 1.0) / 3)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [0, 0, 1]] and m["num_samples"] == 5
    assert classification_metrics(labels, np.argmax(logits, 1), ["a", "b", "c"])["macro_f1"] == m["macro_f1"]


def test_absent_classes_count_as_zero_not_an_error():
    m = classification_metrics([0, 0], np.array([[1.0, 0.0], [1.0, 0.0]]), ["a", "b"])
    assert m["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_trainer_metrics_reads_tuple_predictions():
    class Prediction:
        predictions = (np.array([[0.1, 0.9], [0.8, 0.2]]), np.zeros((2, 4)))
        label_ids = np.array([1, 1])

    assert trainer_metrics(Prediction()) == summary_metrics([1, 1], [1, 0])


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1", "weighted_f1"])
def test_the_vectorised_metrics_match_scikit_learn(metric):
    rng = np.random.default_rng(3)
    labels, predicted = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    predicted[:5] = 3  # and a class never predicted right
    assert metric_of(metric, labels, predicted, 4) == pytest.approx(summary_metrics(labels, predicted)[metric])


def test_the_bootstrap_standard_error_of_an_accuracy_is_the_binomial_one():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    right = rng.random(400) < 0.8
    logits = np.eye(2)[np.where(right, labels, 1 - labels)]
    p = right.mean()
    se = bootstrap_standard_error("accuracy", labels, logits, resamples=2000)
    assert se == pytest.approx(np.sqrt(p * (1 - p) / 400), rel=0.1)
    assert bootstrap_standard_error("accuracy", labels, np.eye(2)[labels]) == 0.0  # a perfect score has no spread
    # macro-F1 and the loss have one too, larger on fewer rows
    assert bootstrap_standard_error("macro_f1", labels[:50], logits[:50]) > bootstrap_standard_error("macro_f1", labels,
                                                                                                      logits)
    assert bootstrap_standard_error("loss", labels, logits * 3.0) > 0


def test_atomic_write_leaves_the_old_file_when_serialising_fails(tmp_path):
    path = tmp_path / "metrics.json"
    atomic_write_json(path, {"ok": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left behind


def test_atomic_write_replaces_and_appends(tmp_path):
    path = tmp_path / "sub" / "x.txt"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    log = tmp_path / "h.jsonl"
    append_jsonl(log, {"step": 1, "v": np.float32(0.5)})
    append_jsonl(log, {"step": 2})
    assert [json.loads(x) for x in log.read_text().splitlines()] == [{"step": 1, "v": 0.5}, {"step": 2}]
    assert os.stat(path).st_size == 3
