"""The audit's label checks per label shape, on features whose planted label errors are known."""

from __future__ import annotations

import numpy as np

from transferlearn.audit.labels import label_audit, out_of_fold_outputs
from transferlearn.shapes import MultiLabel, MultiOutput, Regression


def _features(n=240, dim=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (n, dim))


def test_tag_sets_with_flipped_tags_are_found():
    x = _features()
    truth = np.stack([x[:, 0] > 0, x[:, 1] > 0.3], 1).astype(np.float32)  # tags readable from the features
    shape = MultiLabel(["tags"])
    shape.fit(["a|b"], "t")
    noisy = truth.copy()
    planted = [5, 40, 77, 150, 201]
    noisy[planted, 0] = 1 - noisy[planted, 0]
    audit = label_audit(shape)
    outputs = out_of_fold_outputs(shape, x * 4, noisy)
    issues = audit.issues(noisy, outputs)
    assert len(set(planted) & {i["row"] for i in issues}) >= 4 and len(issues) <= 4 * len(planted)
    first = next(i for i in issues if i["row"] in planted)
    assert first["given"] == shape.describe_row(noisy[first["row"]])
    ranking = audit.ranking(noisy, outputs, 20)
    assert set(planted) <= {r["row"] for r in ranking}
    counts = audit.balance({"train": noisy})["counts"]["train"]
    assert counts == {"a": int(noisy[:, 0].sum()), "b": int(noisy[:, 1].sum())}


def test_several_columns_audit_each_column():
    x = _features()
    truth = np.stack([(x[:, 0] > 0).astype(int), (x[:, 1] > 0).astype(int) + (x[:, 1] > 1)], 1)
    shape = MultiOutput(["fuel", "price"])
    shape.fit([("neg", "a"), ("pos", "b"), ("neg", "c")], "t")
    noisy = truth.copy()
    planted = np.flatnonzero(x[:, 1] < -1.2)[:2]  # clearly the first class: relabelled as the last
    noisy[planted, 1] = 2
    issues = label_audit(shape).issues(noisy, out_of_fold_outputs(shape, x * 4, noisy))
    found = {(i["row"], i["column"]) for i in issues}
    assert {(int(r), "price") for r in planted} <= found
    flagged = next(i for i in issues if i["row"] == planted[0])
    assert flagged["given"] == "price=c" and flagged["suggested"] == "price=a"


def test_numbers_far_from_their_prediction_are_outliers():
    x = _features()
    values = 3 * x[:, 0] - 2 * x[:, 1] + np.random.default_rng(1).normal(0, 0.2, len(x))
    shape = Regression(["score"])
    shape.fit([str(v) for v in values], "t")
    labels = np.asarray([shape.encode_row(str(v)) for v in values])
    labels[[12, 130]] += 5.0  # five standard deviations off
    audit = label_audit(shape)
    outputs = out_of_fold_outputs(shape, x, labels)
    issues = audit.issues(labels, outputs)
    assert {i["row"] for i in issues[:2]} == {12, 130} and abs(issues[0]["score"]) > 3.5
    assert {r["row"] for r in audit.ranking(labels, outputs, 2)} == {12, 130}
    summary = audit.balance({"train": labels})["counts"]["train"]
    assert summary["score mean"] == round(float(shape.unscale(labels).mean()), 4)
