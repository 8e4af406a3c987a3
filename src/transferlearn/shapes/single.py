"""One class per row: softmax over the classes, cross-entropy, accuracy / macro-F1, temperature scaling."""

from __future__ import annotations

import logging

import numpy as np

from ..errors import DataError
from .base import BadLabel, LabelShape, balanced_class_weights, label_order, register, softmax

log = logging.getLogger(__name__)


@register
class SingleLabel(LabelShape):
    name = "single-label"
    title = "single-label classification"
    problem_type = "single_label_classification"
    probe_solver = "logistic"
    metric_choices = ("macro_f1", "accuracy", "weighted_f1")
    mixes_inputs = True
    class_weighted = True
    model_loss = True
    value_dtype = "int64"
    one_class_a_row = True
    shown_metrics = ("accuracy", "macro_f1", "weighted_f1")
    detail_title = "Per-class scores"
    report_figures = ("per_class", "confusion")

    def __init__(self, columns: list[str]):
        super().__init__(columns)
        self.classes: list[str] = []
        self.temperature: float | None = None

    @classmethod
    def with_classes(cls, columns: list[str], classes: list[str]) -> "SingleLabel":
        shape = cls(columns)
        shape.classes = list(classes)
        return shape

    def fit(self, raw: list, where: str) -> None:
        self.classes = label_order([str(r) for r in raw])
        if len(self.classes) < 2:
            only = repr(self.classes[0]) if self.classes else "none"
            raise DataError(f"{where}: the training data has only one label ({only}); need at least 2")
        self._index = {name: i for i, name in enumerate(self.classes)}

    def encode_row(self, raw) -> int:
        index = getattr(self, "_index", None) or {name: i for i, name in enumerate(self.classes)}
        self._index = index
        if raw not in index:
            raise BadLabel(f"label {raw!r} is not among the training labels ({', '.join(self.classes)}): a model "
                           "cannot predict a class it never saw")
        return index[raw]

    @property
    def output_names(self) -> list[str]:
        return self.classes

    def dataset_feature(self):
        import datasets

        return datasets.ClassLabel(names=self.classes)

    def strata(self, labels: np.ndarray) -> np.ndarray:
        return np.asarray(labels, dtype=np.int64)

    def counts(self, labels: np.ndarray) -> dict:
        per_class = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(self.classes))
        return {"per_class": dict(zip(self.classes, per_class.tolist(), strict=True))}

    # the metrics module imports torch: these methods import it when called (`tl --help` loads this module)
    def check_train(self, labels, where: str, held: str = "") -> None:
        """A classifier needs examples of 2+ classes to learn from; classes seen only outside train are said by name."""
        present = set(np.asarray(labels, dtype=np.int64).tolist())
        if len(present) < 2:
            only = self.classes[next(iter(present))] if present else "none"
            raise DataError(f"{where}: the training split{held} holds examples of one class only ({only}, "
                            f"{len(labels)} rows). Add rows so that every class has at least 2 examples, or give a "
                            "validation file of its own.")
        missing = [name for i, name in enumerate(self.classes) if i not in present]
        if missing:
            log.warning("%s: no training example%s of %s: the model cannot learn %s", where, held,
                        ", ".join(missing), "them" if len(missing) > 1 else "it")

    def balanced_weights(self, labels) -> np.ndarray:
        return balanced_class_weights(np.asarray(labels, dtype=np.int64), len(self.classes))

    def loss(self, logits, labels, weights=None):
        import torch.nn.functional as F

        soft = labels.dim() == 2 and labels.is_floating_point()  # MixUp / CutMix: a class distribution per row
        return F.cross_entropy(logits.float(), labels.float() if soft else labels.view(-1), weight=weights)

    def summary(self, labels, logits) -> dict[str, float]:
        from ..metrics import summary_metrics

        return summary_metrics(np.asarray(labels), np.asarray(logits).argmax(-1))

    def metrics(self, labels, logits) -> dict:
        from ..metrics import classification_metrics, expected_calibration_error

        out = classification_metrics(labels, logits, self.classes)
        probs = softmax(np.asarray(logits, dtype=np.float64))
        out["ece"] = expected_calibration_error(probs, np.asarray(labels))["ece"]
        if self.temperature is not None:
            calibrated = softmax(np.asarray(logits, dtype=np.float64) / self.temperature)
            out["ece_calibrated"] = expected_calibration_error(calibrated, np.asarray(labels))["ece"]
        return out

    def score(self, metric: str, labels, logits) -> float:
        if metric in ("accuracy", "macro_f1", "weighted_f1"):  # vectorised: a paired bootstrap asks thousands of times
            from ..metrics import metric_of

            return metric_of(metric, np.asarray(labels).astype(np.int64), np.asarray(logits).argmax(-1),
                             len(self.classes))
        return super().score(metric, labels, logits)

    def standard_error(self, metric: str, labels, logits, resamples: int = 300, seed: int = 0) -> float:
        from ..metrics import bootstrap_standard_error

        return bootstrap_standard_error(metric, labels, logits, resamples, seed)  # vectorised for classes

    def row_losses(self, logits, labels) -> np.ndarray:
        from ..metrics import row_losses as cross_entropy_rows

        return cross_entropy_rows(np.asarray(logits, dtype=np.float64), np.asarray(labels, dtype=np.int64))

    def calibrate(self, logits, labels, *, temperature: bool) -> dict:
        from ..metrics import fit_temperature

        if not temperature:
            return {}
        self.temperature, self.calibrated_rows = fit_temperature(logits, labels), int(len(labels))
        return {"method": "temperature scaling", "temperature": self.temperature, "fitted_on": "validation",
                "rows": int(len(labels))}

    def decode(self, logits, top_k: int | None = None) -> list[dict]:
        # the Predictor divides by the temperature already (every backend alike)
        probs = softmax(np.asarray(logits, dtype=np.float64))
        results = []
        for row in probs:
            order = np.argsort(-row)[: top_k or len(self.classes)]
            results.append({"label": self.classes[order[0]], "score": float(row[order[0]]),
                            "probabilities": {self.classes[i]: float(row[i]) for i in order}})
        return results

    def decisions(self, logits):
        return np.asarray(logits).argmax(-1)

    def result_schema(self) -> dict:
        return {"type": "object", "required": ["label", "score", "probabilities"], "properties": {
            "label": {"type": "string", "enum": self.classes}, "score": {"type": "number"},
            "probabilities": {"type": "object", "additionalProperties": {"type": "number"}}}}

    def served_labels(self, result: dict) -> list[str]:
        return [result["label"]]

    def counted_names(self) -> list[str]:
        return list(self.classes)

    def confidence(self, result: dict) -> float | None:
        return result["score"]

    def detail_table(self, split_metrics: dict) -> tuple[list[str], list[list]]:
        rows = [[name, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", m["support"]]
                for name, m in split_metrics.get("per_class", {}).items()]
        return ["class", "precision", "recall", "F1", "support"], rows

    def part_scores(self, split_metrics: dict) -> tuple[str, dict[str, float]]:
        return "class F1", {k: v["f1"] for k, v in split_metrics.get("per_class", {}).items()}

    def headline(self, result: dict) -> tuple[str, str]:
        probs = ", ".join(f"{k} {v:.3f}" for k, v in result["probabilities"].items())
        return f"{result['label']} ({result['score']:.3f})", probs

    def raw_cells(self, label) -> list[str]:
        return [self.classes[int(label)]]

    def describe_row(self, label) -> str:
        return self.classes[int(label)]

    def baseline_model(self, c: float, class_weight: str | None):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=c, max_iter=1000, class_weight=class_weight)

    def baseline_logits(self, model, features) -> np.ndarray:
        out = np.full((features.shape[0], len(self.classes)), -1e4)
        out[:, model.classes_] = model.predict_log_proba(features)
        return out

    def state(self) -> dict:
        return {**super().state(), "classes": self.classes, "temperature": self.temperature}

    def load_state(self, state: dict) -> None:
        self.classes = [str(c) for c in state["classes"]]
        temperature = state.get("temperature")
        self.temperature = None if temperature is None else float(temperature)

    def save(self, folder) -> None:
        from ..metrics import save_temperature

        super().save(folder)
        if self.temperature is not None:  # the file every backend's Predictor divides logits by
            save_temperature(folder, self.temperature, "validation", getattr(self, "calibrated_rows", 0))

    def describe(self) -> str:
        return f"{self.title}: column '{self.columns[0]}', {len(self.classes)} classes"

