"""What the model gets wrong: the highest-loss examples and the most confused class pairs (fastai's
``plot_top_losses`` / ``most_confused``), and calibration (expected calibration error, the reliability diagram),
read from the final model's saved predictions (``predictions/<split>.npz``) and the run's own data rows."""

from __future__ import annotations

import numpy as np

from ..errors import TransferLearnError
from ..run import Run


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def row_losses(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cross-entropy of each row (log-softmax, numerically stable)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels]


def split_predictions(run: Run, split: str | None) -> tuple[str, np.ndarray, np.ndarray]:
    chosen = split or ("test" if run.layout.predictions_file("test").exists() else "validation")
    stored = run.predictions(chosen)
    if stored is None:
        raise TransferLearnError(f"{run.path}: no saved {chosen} predictions (predictions/{chosen}.npz); runs "
                                 "trained before this version lack them: train again, or pick another --split")
    return chosen, stored[0], stored[1]


def split_inputs(run: Run, split: str, rows: int) -> list:
    """The split's raw inputs (texts, file paths), in the order the predictions were saved in."""
    data = run.modality.load_data(run.config)
    if split not in data.splits or len(data.splits[split]) != rows:
        return [None] * rows  # the data changed since training: the examples cannot be shown, the numbers stand
    column = data.splits[split].with_format(None)[run.modality.row_column]
    return [item.get("path") if isinstance(item, dict) else item for item in column]


def top_losses(run: Run, split: str | None = None, n: int = 20, load_missing: bool = True) -> dict:
    """The ``n`` highest-loss rows. Inputs come from the saved predictions; rows saved without one (pictures held
    as bytes) are read from the data again when ``load_missing`` (``tl errors``; the report does not)."""
    split, logits, labels = split_predictions(run, split)
    names = run.label_names
    probs, losses = softmax(logits), row_losses(logits, labels)
    order = np.argsort(-losses, kind="stable")[:n]
    inputs = run.prediction_inputs(split) or [""] * len(labels)
    if load_missing and any(not inputs[i] for i in order):
        inputs = split_inputs(run, split, len(labels))
    inputs = [item if item not in ("", None) else None for item in inputs]
    examples = [{"row": int(i), "input": inputs[i], "true": names[labels[i]], "predicted": names[int(probs[i].argmax())],
                 "p_true": float(probs[i, labels[i]]), "p_predicted": float(probs[i].max()), "loss": float(losses[i])}
                for i in order]
    return {"split": split, "rows": int(len(labels)), "examples": examples,
            "most_confused": most_confused(labels, probs.argmax(1), names)}


def most_confused(labels: np.ndarray, predicted: np.ndarray, names: list[str], k: int = 5) -> list[dict]:
    """The off-diagonal cells of the confusion matrix, largest first, with the rows of each."""
    pairs: dict[tuple[int, int], list[int]] = {}
    for row, (truth, guess) in enumerate(zip(labels.tolist(), predicted.tolist())):
        if truth != guess:
            pairs.setdefault((truth, guess), []).append(row)
    ranked = sorted(pairs.items(), key=lambda item: (-len(item[1]), item[0]))[:k]
    return [{"true": names[t], "predicted": names[p], "count": len(rows), "rows": rows[:5]} for (t, p), rows in ranked]


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
