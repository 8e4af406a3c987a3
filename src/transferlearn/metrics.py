"""Classification metrics (scikit-learn: the `evaluate` library needs the Hub)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


def summary_metrics(labels, predictions) -> dict[str, float]:
    """The scalar metrics logged during training."""
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_f1": float(f1_score(labels, predictions, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(labels, predictions, average="weighted", zero_division=0)),
    }


def classification_metrics(labels, logits_or_predictions, label_names: list[str]) -> dict:
    """Accuracy, macro/weighted F1, per-class precision/recall/F1/support and the confusion matrix."""
    scores = np.asarray(logits_or_predictions)
    predictions = scores.argmax(-1) if scores.ndim == 2 else scores
    labels = np.asarray(labels)
    indices = list(range(len(label_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=indices, zero_division=0
    )
    out = summary_metrics(labels, predictions)
    out["per_class"] = {
        name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for name, p, r, f, s in zip(label_names, precision, recall, f1, support)
    }
    out["confusion_matrix"] = confusion_matrix(labels, predictions, labels=indices).tolist()
    out["label_names"] = list(label_names)
    out["num_samples"] = int(len(labels))
    return out


def metric_of(name: str, labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> float:
    """accuracy, macro-F1 or weighted F1 from integer arrays, vectorised (a bootstrap calls it thousands of times);
    the same values as scikit-learn's."""
    if name == "accuracy":
        return float((labels == predicted).mean())
    confusion = np.bincount(labels * num_classes + predicted, minlength=num_classes**2).reshape(num_classes, num_classes)
    true_pos = np.diag(confusion).astype(float)
    support, claimed = confusion.sum(1), confusion.sum(0)
    denominator = support + claimed
    f1 = np.divide(2 * true_pos, denominator, out=np.zeros_like(true_pos), where=denominator > 0)
    if name == "weighted_f1":
        return float((f1 * support).sum() / max(support.sum(), 1))
    present = support > 0  # sklearn's macro average over the classes that occur (labels given: all of them)
    return float(f1[present].mean()) if present.any() else 0.0


def bootstrap_standard_error(metric: str, labels, logits, resamples: int = 300, seed: int = 0) -> float:
    """The standard error of a validation score: its spread over validation rows resampled with replacement.
    Any metric, macro-F1 included (no closed form); ``loss`` is the mean cross-entropy of ``logits``. A perfect
    score has no spread (every resample is perfect too)."""
    labels = np.asarray(labels).astype(np.int64)
    logits = np.asarray(logits, dtype=np.float64)
    rng = np.random.default_rng(seed)
    n, num_classes = len(labels), logits.shape[-1]
    if metric == "loss":
        shifted = logits - logits.max(-1, keepdims=True)
        per_row = np.log(np.exp(shifted).sum(-1)) - shifted[np.arange(n), labels]
        return float(np.std([per_row[rng.integers(0, n, n)].mean() for _ in range(resamples)], ddof=1))
    predicted = logits.argmax(-1)
    values = []
    for _ in range(resamples):
        rows = rng.integers(0, n, n)
        values.append(metric_of(metric, labels[rows], predicted[rows], num_classes))
    return float(np.std(values, ddof=1))


def trainer_metrics(eval_prediction) -> dict[str, float]:
    """``compute_metrics`` for the Hugging Face Trainer."""
    logits, labels = eval_prediction.predictions, eval_prediction.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]
    return summary_metrics(labels, np.asarray(logits).argmax(-1))
