"""The audit's label checks, one per label shape: likely label errors, every row ranked by label quality, the labels'
balance per split, and outliers. Registered by shape class (as modalities and shapes register), so the runner asks
``label_audit(shape)`` and never a shape's name.

Likely label errors come from out-of-fold outputs of the shape's own classical model (its baseline estimator on the
frozen-backbone features, K-fold, each row scored by a model that never saw it), then:

* one class a row: confident learning (``cleanlab.filter.find_label_issues``);
* tag sets: cleanlab's multi-label confident learning (``cleanlab.multilabel_classification``);
* several label columns: confident learning on each column;
* numbers: rows whose out-of-fold residual is far from the others' (robust z-score over 3.5, Iglewicz and Hoaglin's
  cut-off), ranked by cleanlab's regression label quality (``cleanlab.regression.rank``).
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.preprocessing import StandardScaler

from ..shapes import LabelShape, MultiLabel, MultiOutput, Regression, SingleLabel
from ..shapes.base import sigmoid, softmax
from . import checks

AUDITS: dict[type, type["LabelAudit"]] = {}
ROBUST_Z = 3.5  # a residual this many (MAD-scaled) deviations out is an outlier (Iglewicz & Hoaglin, 1993)


def audits(shape_class: type[LabelShape]):
    def register(cls):
        AUDITS[shape_class] = cls
        return cls

    return register


def label_audit(shape: LabelShape) -> "LabelAudit":
    for cls in type(shape).__mro__:
        if cls in AUDITS:
            return AUDITS[cls](shape)
    raise TypeError(f"no label audit for {type(shape).__name__}")


def out_of_fold_outputs(shape: LabelShape, features: np.ndarray, labels: np.ndarray, folds: int = 5,
                        seed: int = 0) -> np.ndarray:
    """Each row's outputs (in the head's layout) from the shape's classical model fitted without it; folds are
    stratified where the shape has strata. Standardised features; C = 1."""
    strata = shape.strata(labels)
    if strata is not None:
        smallest = int(np.bincount(np.asarray(strata, dtype=np.int64)).min())
        folds = max(2, min(folds, smallest)) if smallest >= 2 else 2
        splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(features, strata)
    else:
        splits = KFold(n_splits=min(folds, len(labels)), shuffle=True, random_state=seed).split(features)
    out = np.zeros((len(labels), shape.width), dtype=np.float64)
    for train, held in splits:
        scaler = StandardScaler().fit(features[train])
        model = shape.baseline_model(1.0, None).fit(scaler.transform(features[train]), labels[train])
        out[held] = shape.baseline_logits(model, scaler.transform(features[held]))
    return out


class LabelAudit:
    score_name = "p(given)"  # what an issue's ``score`` is, for the report
    balance_title = "Class counts"

    def __init__(self, shape):
        self.shape = shape

    def issues(self, labels: np.ndarray, outputs: np.ndarray) -> list[dict]:
        """Likely label errors, most doubtful first: row, given, suggested (text), score."""
        raise NotImplementedError

    def ranking(self, labels: np.ndarray, outputs: np.ndarray, n: int) -> list[dict]:
        """The ``n`` rows of lowest label quality: row, quality, suggested."""
        raise NotImplementedError

    def balance(self, labels_by_split: dict[str, np.ndarray]) -> dict:
        """counts per split (a table of label -> rows), and a warning where training is badly unbalanced."""
        counts = {split: {k: int(v) for k, v in self.shape.counts(labels).get("per_label", {}).items()}
                  for split, labels in labels_by_split.items()}
        return {"counts": counts, "max_over_min": None, "warning": None}

    def outliers(self, features: np.ndarray, labels: np.ndarray, n: int = 20) -> list[dict]:
        """Rows far from the rest: row, distance."""
        return checks.outliers(features, np.zeros(len(features), dtype=np.int64), n)  # far from the data's centre

    def suggestion(self, output_row: np.ndarray) -> str:
        return self.shape.decode(output_row[None, :])[0].get("label", "")


@audits(SingleLabel)
class SingleLabelAudit(LabelAudit):
    def issues(self, labels, outputs):
        names = self.shape.classes
        return [{**i, "given": names[i["given"]], "suggested": names[i["suggested"]], "score": i["p_given"]}
                for i in checks.label_issues(labels.astype(np.int64), softmax(outputs))]

    def ranking(self, labels, outputs, n):
        names = self.shape.classes
        return [{**r, "suggested": names[r["suggested"]]}
                for r in checks.label_quality_ranking(labels.astype(np.int64), softmax(outputs), n)]

    def balance(self, labels_by_split):
        return checks.class_balance({s: y.astype(np.int64) for s, y in labels_by_split.items()}, self.shape.classes)

    def outliers(self, features, labels, n=20):
        return checks.outliers(features, labels.astype(np.int64), n)  # far from every class centre


@audits(MultiLabel)
class MultiLabelAudit(LabelAudit):
    score_name = "label quality"
    balance_title = "Tag counts"

    def _tag_lists(self, labels):
        return [np.flatnonzero(row > 0.5).tolist() for row in labels.reshape(len(labels), -1)]

    def _suggested(self, probs_row) -> str:
        return self.shape.describe_row(probs_row >= np.asarray(self.shape.thresholds or [0.5] * len(probs_row)))

    def issues(self, labels, outputs):
        from cleanlab.multilabel_classification.filter import find_label_issues
        from cleanlab.multilabel_classification.rank import get_label_quality_scores

        probs, tags = sigmoid(outputs), self._tag_lists(labels)
        ranked = find_label_issues(tags, probs, return_indices_ranked_by="self_confidence", n_jobs=1)
        quality = get_label_quality_scores(tags, probs)
        return [{"row": int(i), "given": self.shape.describe_row(labels[i]), "suggested": self._suggested(probs[i]),
                 "score": float(quality[i])} for i in ranked]

    def ranking(self, labels, outputs, n):
        from cleanlab.multilabel_classification.rank import get_label_quality_scores

        probs = sigmoid(outputs)
        quality = get_label_quality_scores(self._tag_lists(labels), probs)
        return [{"row": int(i), "quality": float(quality[i]), "suggested": self._suggested(probs[i])}
                for i in np.argsort(quality, kind="stable")[:n]]

    def balance(self, labels_by_split):
        result = super().balance(labels_by_split)
        train = np.asarray(list((result["counts"].get("train") or {}).values()) or [1])
        ratio = float(train.max() / max(train.min(), 1))
        result["max_over_min"] = ratio
        if ratio >= 10:
            result["warning"] = (f"the most frequent tag is on {ratio:.0f}x the training rows of the rarest: its "
                                 "threshold and F1 will be unstable; add rows that carry the rare tags")
        return result


@audits(MultiOutput)
class MultiOutputAudit(LabelAudit):
    balance_title = "Label counts per column"

    def _columns(self, labels, outputs):
        labels = labels.reshape(len(labels), -1).astype(np.int64)
        for j, (column, block) in enumerate(zip(self.shape.columns, self.shape.blocks, strict=True)):
            yield j, column, labels[:, j], softmax(outputs[:, block])

    def issues(self, labels, outputs):
        found = []
        for _, column, y, probs in self._columns(labels, outputs):
            names = self.shape.classes[column]
            found += [{**i, "given": f"{column}={names[i['given']]}", "suggested": f"{column}={names[i['suggested']]}",
                       "score": i["p_given"], "column": column} for i in checks.label_issues(y, probs)]
        return sorted(found, key=lambda i: i["score"])

    def ranking(self, labels, outputs, n):
        quality = np.ones(len(labels))
        suggested = [""] * len(labels)
        for _, column, y, probs in self._columns(labels, outputs):
            given = probs[np.arange(len(y)), y]
            worse = given < quality
            quality = np.where(worse, given, quality)
            for i in np.flatnonzero(worse):
                suggested[i] = f"{column}={self.shape.classes[column][int(probs[i].argmax())]}"
        return [{"row": int(i), "quality": float(quality[i]), "suggested": suggested[i]}
                for i in np.argsort(quality, kind="stable")[:n]]  # each row by its least likely column

    def balance(self, labels_by_split):
        counts = {split: {f"{c}={name}": int(n) for c, per in self.shape.counts(y)["per_column"].items()
                          for name, n in per.items()} for split, y in labels_by_split.items()}
        return {"counts": counts, "max_over_min": None, "warning": None}


@audits(Regression)
class RegressionAudit(LabelAudit):
    score_name = "residual (robust z)"
    balance_title = "Target summary"

    def _residual_z(self, labels, outputs):
        """Each row's most extreme residual as a robust z-score (median and MAD of that target's residuals)."""
        residual = labels.reshape(len(labels), -1) - outputs.reshape(len(outputs), -1)
        centre = np.median(residual, 0)
        z = (residual - centre) / np.maximum(np.median(np.abs(residual - centre), 0) * 1.4826, 1e-12)
        return z[np.arange(len(z)), np.abs(z).argmax(1)]

    def issues(self, labels, outputs):
        z = self._residual_z(labels, outputs)
        far = np.flatnonzero(np.abs(z) > ROBUST_Z)
        return [{"row": int(i), "given": self.shape.describe_row(labels[i]),
                 "suggested": self.shape.describe_row(outputs[i]), "score": float(z[i])}
                for i in far[np.argsort(-np.abs(z[far]))]]

    def ranking(self, labels, outputs, n):
        from cleanlab.regression.rank import get_label_quality_scores

        y, predicted = labels.reshape(len(labels), -1), outputs.reshape(len(outputs), -1)
        quality = np.min([get_label_quality_scores(y[:, j], predicted[:, j]) for j in range(y.shape[1])], axis=0)
        return [{"row": int(i), "quality": float(quality[i]), "suggested": self.shape.describe_row(outputs[i])}
                for i in np.argsort(quality, kind="stable")[:n]]

    def balance(self, labels_by_split):
        counts = {}
        for split, y in labels_by_split.items():
            values = self.shape.unscale(y.reshape(len(y), -1))
            counts[split] = {f"{c} {stat}": round(float(f(values[:, j])), 4) for j, c in enumerate(self.shape.columns)
                             for stat, f in (("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max))}
        return {"counts": counts, "max_over_min": None, "warning": None}
