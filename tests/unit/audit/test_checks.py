"""The audit's checks on data whose answer is known."""

from __future__ import annotations

import numpy as np

from transferlearn.audit import checks
from transferlearn.audit.labels import out_of_fold_outputs
from transferlearn.shapes import SingleLabel
from transferlearn.shapes.base import softmax


def _blobs(n_per_class=60, classes=3, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (classes, dim))
    labels = np.repeat(np.arange(classes), n_per_class)
    return centres[labels] + rng.normal(0, 1, (len(labels), dim)), labels


def test_flipped_labels_are_found_first():
    features, labels = _blobs()
    noisy = labels.copy()
    flipped = [3, 70, 150, 151, 20, 99]
    for row in flipped:
        noisy[row] = (labels[row] + 1) % 3
    shape = SingleLabel.with_classes(["label"], ["a", "b", "c"])
    probabilities = softmax(out_of_fold_outputs(shape, features, noisy))
    issues = checks.label_issues(noisy, probabilities)
    assert len(set(flipped) & {i["row"] for i in issues}) >= 5 and len(issues) <= 2 * len(flipped)
    assert all(i["suggested"] == labels[i["row"]] for i in issues if i["row"] in flipped)
    ranking = checks.label_quality_ranking(noisy, probabilities, 2 * len(flipped))
    assert set(flipped) <= {r["row"] for r in ranking}  # every flip within the top 2x of the ranking


def test_exact_duplicates_within_and_across_splits():
    hashes = [checks.content_hash(t) for t in ["a b", "c d", " a b ", "e f", "c d", "g"]]
    splits = ["train", "train", "test", "train", "train", "validation"]
    groups = checks.exact_duplicates(hashes, splits)
    assert groups[0] == {"rows": [0, 2], "splits": ["test", "train"], "across": True}
    assert groups[1] == {"rows": [1, 4], "splits": ["train"], "across": False}


def test_file_contents_are_hashed_not_names(tmp_path):
    (tmp_path / "a.png").write_bytes(b"same")
    (tmp_path / "b.png").write_bytes(b"same")
    (tmp_path / "c.png").write_bytes(b"other")
    rows = [{"path": str(tmp_path / n), "bytes": None} for n in ("a.png", "b.png", "c.png")]
    digests = [checks.content_hash(r) for r in rows]
    assert digests[0] == digests[1] != digests[2]
    assert checks.content_hash({"path": None, "bytes": b"same"}) == digests[0]


def test_near_duplicates_across_splits_and_not_the_exact_ones():
    features, _ = _blobs(seed=1)
    features[10] = features[100] * 1.001 + 1e-4  # near copy of row 100
    features[11] = features[101]  # exact copy (excluded: counted as an exact duplicate)
    splits = ["train"] * 90 + ["test"] * 90
    pairs = checks.near_duplicates(features, splits, 0.999, exclude={(11, 101)}, block=32)
    found = {tuple(p["rows"]) for p in pairs}
    assert (10, 100) in found and (11, 101) not in found
    assert next(p for p in pairs if tuple(p["rows"]) == (10, 100))["across"]


def test_imbalance_warns_and_outliers_are_far_from_every_centre():
    balance = checks.class_balance({"train": np.array([0] * 90 + [1] * 10)}, ["big", "small"])
    assert balance["max_over_min"] == 9 and "--class-weights balanced" in balance["warning"]
    assert checks.class_balance({"train": np.array([0] * 50 + [1] * 40)}, ["a", "b"])["warning"] is None
    features, labels = _blobs(seed=2)
    features[5] = -features[:90].mean(0) * 10  # pointing away from every class
    assert checks.outliers(features, labels, n=3)[0]["row"] == 5


def test_a_flag_most_rows_share_becomes_one_note():
    from transferlearn.audit.runner import _input_flags

    class Pictures:
        def input_flags(self, item):
            return ["tiny: 28x28 px"] + (["extreme aspect ratio: 200x10"] if item == 3 else [])

    rows, notes = _input_flags(Pictures(), list(range(10)), lambda r: {"row": r})
    assert rows == [{"row": 3, "flags": ["extreme aspect ratio: 200x10"]}]
    assert len(notes) == 1 and "10 of 10 rows are flagged 'tiny'" in notes[0]
