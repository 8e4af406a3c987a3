"""Several label columns, each with its own classes (e.g. CASA's six aspects): one softmax block of the head per
column, cross-entropies summed; metrics per column, their mean, and IndoNLU's flattened macro-F1 (every column's
labels in one list, macro-F1 over the class names)."""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from .base import BadLabel, LabelShape, balanced_class_weights, label_order, register, softmax


@register
class MultiOutput(LabelShape):
    name = "multi-output"
    title = "several label columns (multi-output)"
    problem_type = None  # transformers has no such head: model/ loads as a classifier whose logits are the blocks
    metric_choices = ("mean_macro_f1", "flat_macro_f1", "mean_accuracy")
    class_weighted = True  # per column: each block's classes weighed against each other
    value_dtype = "int64"
    shown_metrics = ("flat_macro_f1", "mean_macro_f1", "mean_accuracy", "exact_match")
    detail_title = "Per-column scores"
    baseline_name = "logistic regression per column"
    report_figures = ("per_column",)

    def __init__(self, columns: list[str]):
        super().__init__(columns)
        self.classes: dict[str, list[str]] = {}
        self.temperatures: dict[str, float] | None = None

    @property
    def primary_metric(self) -> str:
        """IndoNLU's flattened macro-F1 where every column shares one class set (aspect sentiment), else the mean."""
        shared = len({tuple(v) for v in self.classes.values()}) == 1
        return "flat_macro_f1" if shared else "mean_macro_f1"

    def fit(self, raw: list, where: str) -> None:
        for j, column in enumerate(self.columns):
            values = [r[j] for r in raw if str(r[j]).strip()]
            self.classes[column] = label_order([str(v).strip() for v in values])
            if len(self.classes[column]) < 2:
                only = repr(self.classes[column][0]) if self.classes[column] else "none"
                raise DataError(f"{where}: column '{column}' has only one label ({only}); every label column needs "
                                "at least 2 (drop it from --label-column)")

    def encode_row(self, raw) -> list[int]:
        out = []
        for column, value in zip(self.columns, raw, strict=True):
            value = str(value).strip()
            if not value:
                raise BadLabel(f"empty label in column '{column}'")
            if value not in self.classes[column]:
                raise BadLabel(f"column '{column}': label {value!r} is not among its training labels "
                               f"({', '.join(self.classes[column])})")
            out.append(self.classes[column].index(value))
        return out

    @property
    def output_names(self) -> list[str]:
        return [f"{column}={name}" for column in self.columns for name in self.classes[column]]

    def dataset_feature(self):
        import datasets

        return datasets.Sequence(datasets.Value("int64"), length=len(self.columns))  # a class index per column

    @property
    def blocks(self) -> list[slice]:
        out, start = [], 0
        for column in self.columns:
            out.append(slice(start, start + len(self.classes[column])))
            start += len(self.classes[column])
        return out

    def strata(self, labels) -> np.ndarray:
        return np.asarray(labels, dtype=np.int64).reshape(-1, len(self.columns))[:, 0]  # the first column's class

    def counts(self, labels) -> dict:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1, len(self.columns))
        return {"per_column": {c: dict(zip(self.classes[c], np.bincount(labels[:, j], minlength=len(self.classes[c]))
                                           .tolist(), strict=True)) for j, c in enumerate(self.columns)}}

    def check_train(self, labels, where: str, held: str = "") -> None:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1, len(self.columns))
        for j, column in enumerate(self.columns):
            if len(set(labels[:, j].tolist())) < 2:
                raise DataError(f"{where}: the training split holds one class only in column '{column}'; every "
                                "label column needs examples of 2+ classes")

    def balanced_weights(self, labels) -> np.ndarray:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1, len(self.columns))
        return np.concatenate([balanced_class_weights(labels[:, j], len(self.classes[c])) for j, c in enumerate(self.columns)])

    def loss(self, logits, labels, weights=None):
        import torch.nn.functional as F

        labels = labels.view(-1, len(self.columns))
        return sum(F.cross_entropy(logits[:, block].float(), labels[:, j],
                                   weight=None if weights is None else weights[block])
                   for j, block in enumerate(self.blocks))

    def summary(self, labels, logits) -> dict[str, float]:
        from sklearn.metrics import f1_score

        truth = np.asarray(labels, dtype=np.int64).reshape(-1, len(self.columns))
        predicted = self.decisions(logits)
        f1s = [f1_score(truth[:, j], predicted[:, j], average="macro", zero_division=0)
               for j in range(len(self.columns))]
        flat_true = [self.classes[c][i] for j, c in enumerate(self.columns) for i in truth[:, j]]
        flat_pred = [self.classes[c][i] for j, c in enumerate(self.columns) for i in predicted[:, j]]
        return {"mean_macro_f1": float(np.mean(f1s)),
                "flat_macro_f1": float(f1_score(flat_true, flat_pred, average="macro", zero_division=0)),
                "mean_accuracy": float((truth == predicted).mean()),
                "exact_match": float((truth == predicted).all(1).mean())}

    def metrics(self, labels, logits) -> dict:
        from ..metrics import classification_metrics

        truth = np.asarray(labels, dtype=np.int64).reshape(-1, len(self.columns))
        columns = {}
        for j, (column, block) in enumerate(zip(self.columns, self.blocks, strict=True)):
            scored = classification_metrics(truth[:, j], np.asarray(logits)[:, block], self.classes[column])
            columns[column] = {k: scored[k] for k in ("accuracy", "macro_f1", "weighted_f1", "per_class",
                                                      "confusion_matrix", "label_names")}
        return {**super().metrics(labels, logits), "columns": columns}

    def score(self, metric: str, labels, logits) -> float:
        if metric.startswith("columns."):
            _, column, name = metric.split(".", 2)
            return float(self.metrics(labels, logits)["columns"][column][name])
        return super().score(metric, labels, logits)

    def row_losses(self, logits, labels) -> np.ndarray:
        from ..metrics import row_losses

        truth = np.asarray(labels, dtype=np.int64).reshape(-1, len(self.columns))
        logits = np.asarray(logits, dtype=np.float64)
        return sum(row_losses(logits[:, block], truth[:, j]) for j, block in enumerate(self.blocks))

    def calibrate(self, logits, labels, *, temperature: bool) -> dict:
        """With --calibrate, a temperature per column (each block is a softmax of its own)."""
        if not temperature:
            return {}
        from ..metrics import fit_temperature

        truth = np.asarray(labels, dtype=np.int64).reshape(-1, len(self.columns))
        self.temperatures = {c: fit_temperature(np.asarray(logits)[:, block], truth[:, j])
                             for j, (c, block) in enumerate(zip(self.columns, self.blocks, strict=True))}
        return {"method": "temperature scaling per column", "temperatures": self.temperatures, "fitted_on": "validation"}

    def decode(self, logits, top_k: int | None = None) -> list[dict]:
        logits = np.asarray(logits, dtype=np.float64)
        probs = {c: softmax(logits[:, block] / (self.temperatures or {}).get(c, 1.0))
                 for c, block in zip(self.columns, self.blocks, strict=True)}
        results = []
        for i in range(len(logits)):
            row = {}
            for column in self.columns:
                p, names = probs[column][i], self.classes[column]
                order = np.argsort(-p)[: top_k or len(names)]
                row[column] = {"label": names[order[0]], "score": float(p[order[0]]),
                               "probabilities": {names[k]: float(p[k]) for k in order}}
            results.append({"columns": row})
        return results

    def decisions(self, logits):
        logits = np.asarray(logits)
        return np.stack([logits[:, block].argmax(-1) for block in self.blocks], axis=1)

    def result_schema(self) -> dict:
        column = {"type": "object", "required": ["label", "score", "probabilities"], "properties": {
            "label": {"type": "string"}, "score": {"type": "number"},
            "probabilities": {"type": "object", "additionalProperties": {"type": "number"}}}}
        return {"type": "object", "required": ["columns"], "properties": {"columns": {
            "type": "object", "required": list(self.columns), "properties": {c: column for c in self.columns}}}}

    def served_labels(self, result: dict) -> list[str]:
        return [f"{c}={r['label']}" for c, r in result["columns"].items()]

    def counted_names(self) -> list[str]:
        return self.output_names

    def confidence(self, result: dict) -> float | None:
        return min(r["score"] for r in result["columns"].values())  # the least sure column

    def detail_table(self, split_metrics: dict) -> tuple[list[str], list[list]]:
        rows = []
        for column, m in split_metrics.get("columns", {}).items():
            for name, c in m["per_class"].items():
                rows.append([column, name, f"{c['precision']:.3f}", f"{c['recall']:.3f}", f"{c['f1']:.3f}",
                             c["support"], f"{m['macro_f1']:.3f}"])
        return ["column", "class", "precision", "recall", "F1", "support", "column macro-F1"], rows

    def part_scores(self, split_metrics: dict) -> tuple[str, dict[str, float]]:
        return "column macro-F1", {k: v["macro_f1"] for k, v in split_metrics.get("columns", {}).items()}

    def headline(self, result: dict) -> tuple[str, str]:
        return ", ".join(f"{c}={r['label']} ({r['score']:.2f})" for c, r in result["columns"].items()), ""

    def raw_cells(self, label) -> list[str]:
        values = np.asarray(label, dtype=np.int64).ravel()
        return [self.classes[c][v] for c, v in zip(self.columns, values, strict=True)]

    def describe_row(self, label) -> str:
        values = np.asarray(label, dtype=np.int64).ravel()
        return ", ".join(f"{c}={self.classes[c][v]}" for c, v in zip(self.columns, values, strict=True))

    def baseline_model(self, c: float, class_weight: str | None):
        from sklearn.linear_model import LogisticRegression
        from sklearn.multioutput import MultiOutputClassifier

        return MultiOutputClassifier(LogisticRegression(C=c, max_iter=1000, class_weight=class_weight))

    def baseline_logits(self, model, features) -> np.ndarray:
        out = np.full((features.shape[0], self.width), -1e4)
        for estimator, block in zip(model.estimators_, self.blocks, strict=True):
            columns = np.arange(block.start, block.stop)[estimator.classes_]
            out[:, columns] = estimator.predict_log_proba(features)
        return out

    def state(self) -> dict:
        return {**super().state(), "classes": self.classes, "temperatures": self.temperatures}

    def load_state(self, state: dict) -> None:
        self.classes = {str(c): [str(v) for v in state["classes"][c]] for c in self.columns}
        self.temperatures = ({c: float(t) for c, t in state["temperatures"].items()}
                             if state.get("temperatures") else None)

    def describe(self) -> str:
        return (f"{self.title}: columns {', '.join(self.columns)} "
                f"({', '.join(str(len(v)) for v in self.classes.values())} classes)")
