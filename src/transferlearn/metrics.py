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


def trainer_metrics(eval_prediction) -> dict[str, float]:
    """``compute_metrics`` for the Hugging Face Trainer."""
    logits, labels = eval_prediction.predictions, eval_prediction.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]
    return summary_metrics(labels, np.asarray(logits).argmax(-1))
