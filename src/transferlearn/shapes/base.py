"""The label-shape contract: everything that differs between one class per row, tag sets, several label columns and
numeric targets, asked by every stage (loading, loss, probe, metrics, baseline, calibration, prediction, serving).

Every shape trains the same model: a backbone and one linear head of ``width`` outputs (the head's logits). The
shape says what those outputs mean: softmax over classes, one sigmoid per tag, a softmax per label column, or
standardised numbers. A stage never compares a shape's name; it asks the shape. A new shape is one subclass
registered with :func:`register`.

Raw labels are what a file holds: a string per row for one label column, a tuple of strings for several.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import DataError

SHAPES: dict[str, type["LabelShape"]] = {}
SHAPE_FILE = "label_shape.json"  # in model/: the fitted shape (classes, thresholds, scaler), read by every consumer


def register(cls: type["LabelShape"]) -> type["LabelShape"]:
    SHAPES[cls.name] = cls
    return cls


class BadLabel(ValueError):
    """One row's label cannot be read as this shape (the message says why; the caller adds where)."""


class LabelShape(ABC):
    name: ClassVar[str]
    title: ClassVar[str]  # how the report and the serve schema name it
    problem_type: ClassVar[str | None] = None  # transformers' config.problem_type where it has the shape
    metric_choices: ClassVar[tuple[str, ...]]  # --metric values that make sense (besides loss), higher is better
    mixes_inputs: ClassVar[bool] = False  # MixUp / CutMix's label mixing means something for this shape
    class_weighted: ClassVar[bool] = False  # --class-weights balanced applies (balanced_weights)
    probe_solver: ClassVar[str] = "lbfgs"  # a linear probe's solver: lbfgs (torch), logistic or ridge (scikit-learn)
    one_class_a_row: ClassVar[bool] = False  # one softmax over one class set: confusions, a reliability diagram
    shown_metrics: ClassVar[tuple[str, ...]]  # the results table's columns
    report_figures: ClassVar[tuple[str, ...]] = ()  # the report's figures of a scored split, by kind
    detail_title: ClassVar[str] = "Scores in detail"
    baseline_name: ClassVar[str] = "logistic regression"  # the baseline's model on the modality's features
    metric_floor: ClassVar[float] = 0.0  # the lowest value its metrics take (a confidence interval is clipped to it)
    model_loss: ClassVar[bool] = False  # the classifier's own loss is this shape's (else the Trainer gets ``loss``)
    per_token: ClassVar[bool] = False  # a label per word (a token classifier) instead of one per input
    caches_features: ClassVar[bool] = True  # a probe can train on one cached feature vector per row

    def __init__(self, columns: list[str]):
        self.columns = list(columns)

    # --- labels from data ---------------------------------------------------------------------
    @abstractmethod
    def fit(self, raw: list, where: str) -> None:
        """Learn the label vocabulary (or the scaler) from the training split's raw labels; refuse what cannot be."""

    @abstractmethod
    def encode_row(self, raw) -> Any:
        """One raw label as the dataset's label value; BadLabel when it cannot be (unknown class, not a number)."""

    @property
    @abstractmethod
    def output_names(self) -> list[str]:
        """The name of each head output, in order (the model config's id2label)."""

    @property
    def width(self) -> int:
        return len(self.output_names)

    @property
    def primary_metric(self) -> str:
        return self.metric_choices[0]

    def encode(self, raw_labels: list, where: str, *, on_bad_rows: str, notes: list[str],
               known_only: bool) -> tuple[list, list[int]]:
        """(label values, kept row indices). A row that cannot be encoded is an error naming the place and the row,
        or with ``--on-bad-rows skip`` dropped and counted."""
        values, kept, bad = [], [], []
        for i, raw in enumerate(raw_labels):
            try:
                values.append(self.encode_row(raw))
                kept.append(i)
            except BadLabel as exc:
                bad.append((i, str(exc)))
        if bad:
            first, why = bad[0]
            message = f"{where}: row {first + 1}: {why}; {len(bad)} row(s) like it"
            if on_bad_rows == "error":
                raise DataError(message + " (--on-bad-rows skip drops them)")
            notes.append(message + " — skipped")
        return values, kept

    def dataset_feature(self):
        """The ``datasets`` feature of the label column."""
        import datasets

        return datasets.Sequence(datasets.Value(self.value_dtype), length=self.width)

    value_dtype: ClassVar[str] = "float32"

    def label_array(self, values) -> np.ndarray:
        """A split's label column (a list of label values) as one array, rows first."""
        return np.asarray(values)

    def gather(self, logits: np.ndarray, labels: np.ndarray, groups=None) -> tuple[np.ndarray, np.ndarray]:
        """The model's raw outputs as the arrays every metric reads (one row per input); ``groups``: the input each
        model row belongs to, where an input is cut into several (windows of a long sentence)."""
        return logits, labels

    def join(self, parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """Batches of (logits, labels) as one (logits, labels), rows in order."""
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def strata(self, labels: np.ndarray) -> np.ndarray | None:
        """An integer per row to stratify splits by; None for a plain seeded split."""
        return None

    def counts(self, labels: np.ndarray) -> dict:
        """The data summary of one split's labels."""
        return {}

    def check_train(self, labels: np.ndarray, where: str, held: str = "") -> None:
        """Refuse a training split this shape cannot learn from; ``held`` says a validation split was carved."""
        return None

    # --- model --------------------------------------------------------------------------------
    @abstractmethod
    def loss(self, logits, labels, weights=None):
        """The mean training loss over a batch (torch tensors); ``weights``: ``balanced_weights`` as a tensor."""

    def balanced_weights(self, labels: np.ndarray) -> np.ndarray | None:
        """``--class-weights balanced``: a weight per head output from the training labels (rare classes count more),
        as scikit-learn's ``class_weight='balanced'`` does; None where the shape has no classes to weigh."""
        return None

    def prepare_logits(self, logits: np.ndarray) -> np.ndarray:
        return np.asarray(logits, dtype=np.float64)

    # --- evaluation ---------------------------------------------------------------------------
    @abstractmethod
    def summary(self, labels: np.ndarray, logits: np.ndarray) -> dict[str, float]:
        """The scalar metrics logged while training."""

    def metrics(self, labels: np.ndarray, logits: np.ndarray) -> dict:
        """Every metric of a scored split (``metrics.json``)."""
        return {**self.summary(labels, logits), "num_samples": int(len(labels)), "problem": self.name}

    def score(self, metric: str, labels: np.ndarray, logits: np.ndarray) -> float:
        """``metric`` (higher is better; ``loss`` negated)."""
        if metric == "loss":
            return -float(np.mean(self.row_losses(logits, labels)))
        return float(self.summary(labels, logits)[metric])

    def standard_error(self, metric: str, labels: np.ndarray, logits: np.ndarray, resamples: int = 200,
                       seed: int = 0) -> float:
        """The spread of a validation score over validation rows resampled with replacement (``auto`` asks whether
        two candidates differ by more than noise)."""
        labels, logits = np.asarray(labels), np.asarray(logits)
        rng = np.random.default_rng(seed)
        values = [self.score(metric, labels[rows], logits[rows])
                  for rows in (rng.integers(0, len(labels), len(labels)) for _ in range(resamples))]
        return float(np.std(values, ddof=1))

    @abstractmethod
    def row_losses(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Each row's loss: what the error report ranks by."""

    def calibrate(self, logits: np.ndarray, labels: np.ndarray, *, temperature: bool) -> dict:
        """Fit what the shape tunes on validation after training (thresholds, intervals) into its state; returns
        the record for metrics.json (empty when nothing was fitted)."""
        return {}

    # --- prediction ---------------------------------------------------------------------------
    @abstractmethod
    def decode(self, logits: np.ndarray, top_k: int | None = None) -> list[dict]:
        """What ``predict`` returns for each row (documented per shape in docs/label-shapes.md)."""

    def agreement(self, expected: np.ndarray, got: np.ndarray) -> float:
        """The share of rows on which two backends' logits decide the same (an exported or quantized model against
        PyTorch): the same class, tag set, label per column; numbers within 0.05 standard deviations."""
        same = self.decisions(np.asarray(expected)) == self.decisions(np.asarray(got))
        return float(same.reshape(len(same), -1).all(1).mean()) if len(same) else 1.0

    def decisions(self, logits: np.ndarray) -> np.ndarray:
        """What a row's logits decide, comparable with ``==`` (classes, tag flags, a label per column); a shape
        whose outputs are compared with a tolerance (numbers) overrides ``agreement`` instead."""
        raise NotImplementedError(f"{type(self).__name__} compares outputs in agreement()")

    @abstractmethod
    def result_schema(self) -> dict:
        """The JSON schema of one decoded prediction (``tl serve``'s OpenAPI)."""

    def served_labels(self, result: dict) -> list[str]:
        """The labels one prediction counts in the server's ``tl_predictions`` counter (none for numbers)."""
        return []

    def counted_names(self) -> list[str]:
        """Every label ``served_labels`` can return (the counter starts each at 0)."""
        return []

    def confidence(self, result: dict) -> float | None:
        """The top-1 probability the server's confidence histogram observes (None: the shape has none)."""
        return None

    def keep_top(self, result: dict, k: int) -> dict:
        """``result`` with at most ``k`` entries in each score table (the server applies a request's ``top_k``
        after batching, where requests with different ``top_k`` share a batch)."""
        def cut(value):
            if not isinstance(value, dict):
                return value
            return {key: dict(list(v.items())[:k]) if key in ("probabilities", "scores") else cut(v)
                    for key, v in value.items()}
        return cut(result)

    @abstractmethod
    def detail_table(self, split_metrics: dict) -> tuple[list[str], list[list]]:
        """(headers, rows) of the report's per-class / per-tag / per-column / per-target table."""

    @abstractmethod
    def part_scores(self, split_metrics: dict) -> tuple[str, dict[str, float]]:
        """(what, {part: score}) of each class / tag / column / target, for side-by-side comparisons."""

    @abstractmethod
    def headline(self, result: dict) -> tuple[str, str]:
        """(the answer, the detail) of one decoded prediction, for a line of ``tl predict``."""

    def describe_row(self, label) -> str:
        """A row's true label as text (error report)."""
        return str(label)

    def compare_row(self, label, logits: np.ndarray, item: str | None = None) -> tuple[str, str]:
        """(the truth, what the model said) of one row for the error report; ``item``: the row's input as text."""
        return self.describe_row(label), self.headline(self.decode(np.asarray(logits)[None])[0])[0]

    @abstractmethod
    def raw_cells(self, label) -> list[str]:
        """A row's label as the cells of its label columns, as a file would hold them (``tl audit --fix-out``
        writes them; loading them back gives the same label)."""

    # --- baseline -----------------------------------------------------------------------------
    @abstractmethod
    def baseline_model(self, c: float, class_weight: str | None):
        """A scikit-learn estimator over classical features, regularised by ``c`` (inverse strength)."""

    @abstractmethod
    def baseline_logits(self, model, features) -> np.ndarray:
        """The baseline's outputs in the head's layout (so the same metrics score it)."""

    # --- saved with the model -----------------------------------------------------------------
    def state(self) -> dict:
        return {"problem": self.name, "columns": self.columns}

    @abstractmethod
    def load_state(self, state: dict) -> None:
        """Restore what fit / calibrate learned; a tampered file is refused by the caller's ModelError."""

    def save(self, folder: Path) -> None:
        from ..io import atomic_write_json

        atomic_write_json(Path(folder) / SHAPE_FILE, self.state())

    def describe(self) -> str:
        """One line: what the shape is, for logs and the report."""
        return f"{self.title} ({', '.join(self.columns)})"


def label_order(labels: list[str]) -> list[str]:
    """Sorted label names; numerically when every label is an integer (so "10" comes after "9")."""
    unique = set(labels)
    if all(re.fullmatch(r"-?\d+", u) for u in unique):
        return sorted(unique, key=int)
    return sorted(unique)


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """scikit-learn's ``class_weight='balanced'``: n_samples / (n_classes * count(class)); an absent class gets the
    weight of a class seen once."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    return len(labels) / (num_classes * np.maximum(counts, 1))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(logits, -60, 60)))
