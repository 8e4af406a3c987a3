"""The label-shape contract on arrays whose answers are known: detection, encoding and its errors, metrics against
scikit-learn / scipy, thresholds, intervals, decoding, the saved state and its tampering."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, f1_score, mean_absolute_error, r2_score

from transferlearn.errors import DataError, ModelError
from transferlearn.shapes import MultiLabel, MultiOutput, Regression, SingleLabel, choose_shape, load_shape
from transferlearn.shapes.base import BadLabel
from transferlearn.shapes.multi_label import parse_tags
from transferlearn.shapes.saved import shape_from_state


def _fitted(shape, raw):
    shape.fit(raw, "train.csv")
    return shape


# ------------------------------------------------------------------------------------------ detection


@pytest.mark.parametrize(("raw", "columns", "expected"), [
    (["1.5", "2.25", "4.0", "3.5"], ["score"], "regression"),  # fractions: numbers to predict
    ([str(i) for i in range(80)], ["id"], "regression"),  # 80 distinct whole numbers
    (["price|service", "fuel", "[]", "price; part"], ["aspects"], "multi-label"),
    ([("1", "0"), ("0", "1"), ("1", "1")], ["a", "b"], "multi-label"),  # 0/1 columns: each a tag
    ([("pos", "neg"), ("neu", "pos")], ["fuel", "price"], "multi-output"),
    (["1", "2", "3", "1", "2"], ["stars"], "single-label"),  # a few whole numbers: classes
    (["good", "bad", "good"], ["label"], "single-label"),
])
def test_the_shape_is_detected_and_said_in_one_line(raw, columns, expected):
    shape, line = choose_shape("auto", raw, columns, "train.csv")
    assert shape.name == expected and line.startswith(f"label shape: {expected} — ") and "\n" not in line


def test_a_numeric_column_is_never_made_into_many_classes():
    raw = [f"{1 + i / 40:.3f}" for i in range(80)]
    with pytest.raises(DataError, match=r"^train\.csv: column 'score' holds 80 distinct numbers .* would become 80 "
                                        r"classes.*--problem regression"):
        choose_shape("single-label", raw, ["score"], "train.csv")


def test_asked_shapes_are_checked_against_the_data():
    with pytest.raises(DataError, match=r"row 3 holds 'high', not a number: --problem regression"):
        choose_shape("regression", ["1.5", "2", "high"], ["score"], "t.csv")
    with pytest.raises(DataError, match="--problem multi-output needs several label columns"):
        choose_shape("multi-output", ["a", "b"], ["label"], "t.csv")
    with pytest.raises(DataError, match="single-label would make every combination a class.*--problem multi-label"):
        choose_shape("single-label", ["a|b", "b", "a|c"], ["tags"], "t.csv")


# ------------------------------------------------------------------------------------------ tag sets


def test_tag_cells_in_every_format_and_an_empty_tag_refused():
    assert parse_tags("price|service") == ["price", "service"] == parse_tags(" price ; service ")
    assert parse_tags('["price", "service", "price"]') == ["price", "service"] and parse_tags("[]") == []
    for cell in ("price||service", "price|", "|price"):
        with pytest.raises(BadLabel, match="has an empty tag"):
            parse_tags(cell)
    shape = _fitted(MultiLabel(["tags"]), ["a|b", "b", "[]", "c"])
    assert shape.tags == ["a", "b", "c"] and shape.encode_row("b|c") == [0.0, 1.0, 1.0]
    with pytest.raises(DataError, match=r"t\.csv: row 2: tag set 'a\|\|b' has an empty tag .*; 1 row\(s\) like it"):
        shape.encode(["a", "a||b"], "t.csv", on_bad_rows="error", notes=[], known_only=True)
    with pytest.raises(BadLabel, match="tag 'd' is not among the training tags"):
        shape.encode_row("a|d")


def test_multi_label_metrics_match_scikit_learn_and_thresholds_are_tuned():
    rng = np.random.default_rng(0)
    truth = rng.random((200, 3)) < 0.4
    logits = np.where(truth, 1.0, -1.0) * rng.uniform(0.2, 2, (200, 3)) + rng.normal(0, 1, (200, 3)) - 0.8
    shape = _fitted(MultiLabel(["tags"]), ["a|b|c"])
    labels = truth.astype(np.float32)
    summary = shape.summary(labels, logits)
    predicted = 1 / (1 + np.exp(-logits)) >= 0.5
    assert summary["micro_f1"] == pytest.approx(f1_score(truth, predicted, average="micro"))
    assert summary["macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert summary["mean_average_precision"] == pytest.approx(
        np.mean([average_precision_score(truth[:, j], logits[:, j]) for j in range(3)]))
    assert summary["subset_accuracy"] == pytest.approx((truth == predicted).all(1).mean())
    record = shape.calibrate(logits, labels, temperature=False)
    assert set(record["thresholds"]) == {"a", "b", "c"} and shape.thresholds != [0.5] * 3
    assert shape.summary(labels, logits)["macro_f1"] >= summary["macro_f1"]  # tuned on these rows: never worse
    result = shape.decode(logits[:1])[0]
    probs = 1 / (1 + np.exp(-logits[0]))
    assert result["labels"] == [t for t in np.array(shape.tags)[np.argsort(-probs)]
                                if probs[shape.tags.index(t)] >= shape.thresholds[shape.tags.index(t)]]
    jsonschema.validate(shape.decode(logits[:5]), {"type": "array", "items": shape.result_schema()})
    assert list(shape.keep_top(result, 1)["scores"]) == [shape.tags[int(np.argmax(probs))]]


def test_thresholds_are_saved_and_a_tampered_file_is_refused(tmp_path):
    shape = _fitted(MultiLabel(["tags"]), ["a|b"])
    shape.thresholds = [0.3, 0.7]
    shape.save(tmp_path)
    loaded = load_shape(tmp_path)
    assert isinstance(loaded, MultiLabel) and loaded.thresholds == [0.3, 0.7] and loaded.tags == ["a", "b"]
    state = json.loads((tmp_path / "label_shape.json").read_text())
    for bad in ([0.3], [0.3, 1.7], ["x", 0.5]):
        with pytest.raises(ModelError, match="not a valid label-shape file"):
            shape_from_state({**state, "thresholds": bad})
    (tmp_path / "label_shape.json").write_text("{not json")
    with pytest.raises(ModelError, match="label_shape.json: not valid JSON"):
        load_shape(tmp_path)


# ------------------------------------------------------------------------------------------ several columns


def test_multi_output_metrics_per_column_and_flattened():
    shape = _fitted(MultiOutput(["fuel", "price"]), [("negative", "neutral"), ("positive", "negative"),
                                                     ("neutral", "positive")])
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, (150, 2))
    logits = rng.normal(0, 1, (150, 6))
    logits[np.arange(150), truth[:, 0]] += 1.5
    logits[np.arange(150), 3 + truth[:, 1]] += 0.5
    metrics = shape.metrics(truth, logits)
    predicted = np.stack([logits[:, :3].argmax(1), logits[:, 3:].argmax(1)], 1)
    per_column = [f1_score(truth[:, j], predicted[:, j], average="macro") for j in range(2)]
    assert metrics["columns"]["fuel"]["macro_f1"] == pytest.approx(per_column[0])
    assert metrics["mean_macro_f1"] == pytest.approx(np.mean(per_column))
    names = shape.classes["fuel"]  # both columns share negative / neutral / positive
    flat_true = [names[i] for i in truth.T.ravel()]
    flat_pred = [names[i] for i in predicted.T.ravel()]
    assert metrics["flat_macro_f1"] == pytest.approx(f1_score(flat_true, flat_pred, average="macro"))
    assert shape.primary_metric == "flat_macro_f1" and metrics["exact_match"] == (truth == predicted).all(1).mean()
    decoded = shape.decode(logits[:3])
    assert decoded[0]["columns"]["fuel"]["label"] == names[predicted[0, 0]]
    jsonschema.validate(decoded, {"type": "array", "items": shape.result_schema()})
    assert shape.agreement(logits, logits + 1e-6) == 1.0 and shape.agreement(logits, -logits) < 0.5


def test_multi_output_needs_two_classes_per_column():
    with pytest.raises(DataError, match="column 'price' has only one label .'neutral'.; every label column needs at "
                                        "least 2"):
        _fitted(MultiOutput(["fuel", "price"]), [("negative", "neutral"), ("positive", "neutral")])


# ------------------------------------------------------------------------------------------ numbers


def test_regression_metrics_in_the_data_units_and_intervals_cover():
    rng = np.random.default_rng(2)
    values = rng.normal(50, 10, 400)
    shape = _fitted(Regression(["score"]), [f"{v:.3f}" for v in values[:200]])
    encoded = np.asarray([shape.encode_row(f"{v:.3f}") for v in values])
    predicted = encoded + rng.normal(0, 0.3, encoded.shape)  # standardised units
    summary = shape.summary(encoded, predicted)
    truth, guess = shape.unscale(encoded)[:, 0], shape.unscale(predicted)[:, 0]
    assert summary["rmse"] == pytest.approx(np.sqrt(np.mean((truth - guess) ** 2)), rel=1e-6)
    assert summary["mae"] == pytest.approx(mean_absolute_error(truth, guess), rel=1e-6)
    assert summary["r2"] == pytest.approx(r2_score(truth, guess), rel=1e-6)
    assert summary["spearman"] == pytest.approx(spearmanr(truth, guess).statistic, rel=1e-6)
    shape.calibrate(predicted[200:300], encoded[200:300], temperature=False)  # "validation" rows
    coverage = shape.metrics(encoded[300:], predicted[300:])["interval_coverage"]
    assert 0.8 <= coverage <= 1.0
    result = shape.decode(predicted[:1])[0]
    assert result["value"] == pytest.approx(guess[0]) and result["interval"][0] < guess[0] < result["interval"][1]
    jsonschema.validate([result], {"type": "array", "items": shape.result_schema()})
    assert shape.raw_cells(encoded[0]) == [repr(float(truth[0]))]


def test_a_non_number_in_a_regression_column_is_named_with_its_row():
    shape = _fitted(Regression(["score"]), ["1.5", "2.5", "3"])
    with pytest.raises(DataError, match=r"valid\.csv: row 2: 'n/a' is not a number .*1 row\(s\) like it"):
        shape.encode(["2", "n/a"], "valid.csv", on_bad_rows="error", notes=[], known_only=True)
    notes = []
    values, kept = shape.encode(["2", "n/a", "4"], "valid.csv", on_bad_rows="skip", notes=notes, known_only=True)
    assert kept == [0, 2] and len(values) == 2 and "skipped" in notes[0]


# ------------------------------------------------------------------------------------------ one class a row


def test_single_label_decodes_and_scores_as_before():
    shape = SingleLabel.with_classes(["label"], ["negative", "positive"])
    logits = np.array([[2.0, 0.0], [0.0, 1.0]])
    assert [r["label"] for r in shape.decode(logits)] == ["negative", "positive"]
    assert shape.score("accuracy", np.array([0, 0]), logits) == 0.5
    assert shape.served_labels(shape.decode(logits)[0]) == ["negative"] and shape.confidence(
        shape.decode(logits)[0]) == pytest.approx(1 / (1 + np.exp(-2)))


def test_a_folder_without_a_shape_file_is_single_label(tmp_path):
    shape = load_shape(tmp_path, ["a", "b"])
    assert isinstance(shape, SingleLabel) and shape.classes == ["a", "b"]


def test_balanced_weights_per_shape():
    single = SingleLabel.with_classes(["label"], ["a", "b"])
    assert single.balanced_weights([0, 0, 0, 1]).tolist() == pytest.approx([2 / 3, 2.0])
    columns = _fitted(MultiOutput(["fuel", "price"]), [("neg", "neu"), ("pos", "neu"), ("neu", "pos")])
    weights = columns.balanced_weights(np.array([[0, 1], [0, 1], [1, 1], [2, 0]]))
    assert weights[:3].tolist() == pytest.approx([4 / 6, 4 / 3, 4 / 3])  # fuel: neg neg neu pos
    assert weights[3:].tolist() == pytest.approx([2.0, 2 / 3])  # price: neu once, pos three times
    tags = _fitted(MultiLabel(["tags"]), ["a|b"])
    assert tags.balanced_weights(np.array([[1, 0], [1, 1], [0, 0], [1, 0]])).tolist() == [1 / 3, 3.0]
    import torch

    logits, labels = torch.tensor([[2.0, -1.0]]), torch.tensor([[1.0, 1.0]])
    weighted = tags.loss(logits, labels, torch.tensor([1.0, 3.0]))
    assert weighted > tags.loss(logits, labels)  # the missed rare tag costs three times as much
