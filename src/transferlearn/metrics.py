"""Classification metrics (scikit-learn: the `evaluate` library needs the Hub), the softmax and calibration maths.

Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", 2017): one scalar T fitted on the
validation logits, so that softmax(logits / T) says how often the model is right. Argmax, hence accuracy and F1,
do not change. A few lines on the logits rather than a library: the well-kept calibration packages either wrap
scikit-learn estimators (sigmoid / isotonic, not temperature) or bring a deep-learning stack of their own. The
temperature is saved beside the weights (``model/calibration.json``); the Predictor divides logits by it, so
``tl predict``, the ONNX variants and ``tl serve`` apply it alike."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from .io import atomic_write_json


def scalar_metrics(split_metrics: dict) -> dict:
    """A split's numbers (the shape's summary: accuracy / micro-F1 / RMSE ...), without tables and counts."""
    return {k: v for k, v in split_metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "num_samples"}


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
        for name, p, r, f, s in zip(label_names, precision, recall, f1, support, strict=True)
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


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def row_losses(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cross-entropy of each row (log-softmax, numerically stable)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels]


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> dict:
    """ECE over equal-width confidence bins (Guo et al. 2017), with each bin's confidence and accuracy."""
    confidence, predicted = probs.max(1), probs.argmax(1)
    correct = (predicted == labels).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            gap = abs(confidence[members].mean() - correct[members].mean())
            ece += members.mean() * gap
            table.append({"low": float(edges[b]), "high": float(edges[b + 1]), "rows": int(members.sum()),
                          "confidence": float(confidence[members].mean()), "accuracy": float(correct[members].mean())})
    return {"ece": float(ece), "bins": table}


CALIBRATION_FILE = "calibration.json"


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 that minimises the mean negative log-likelihood of ``logits / T`` (L-BFGS on log T)."""
    x = torch.from_numpy(np.asarray(logits, dtype=np.float64))
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x / log_t.exp(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp().clamp(1e-2, 1e2))


def save_temperature(model_dir: Path, temperature: float, fitted_on: str, rows: int) -> None:
    atomic_write_json(Path(model_dir) / CALIBRATION_FILE, {"temperature": temperature, "method": "temperature scaling",
                                                           "fitted_on": fitted_on, "rows": rows})


def load_temperature(model_dir: Path) -> float | None:
    path = Path(model_dir) / CALIBRATION_FILE
    return float(json.loads(path.read_text())["temperature"]) if path.exists() else None
