"""What the model gets wrong: the highest-loss examples and the most confused class pairs (fastai's
``plot_top_losses`` / ``most_confused``), and calibration (expected calibration error, the reliability diagram),
read from the final model's saved predictions (``predictions/<split>.npz``) and the run's own data rows."""

from __future__ import annotations

import numpy as np

from ..errors import TransferLearnError
from ..metrics import expected_calibration_error, row_losses, softmax  # noqa: F401 — the report reads them here
from ..run import Run


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
    column = run.modality.row_inputs(data.splits[split])
    return [run.modality.row_value(item) for item in column]


def top_losses(run: Run, split: str | None = None, n: int = 20, load_missing: bool = True) -> dict:
    """The ``n`` highest-loss rows (the label shape's loss). Inputs come from the saved predictions; rows saved
    without one (pictures held as bytes) are read from the data again when ``load_missing`` (``tl errors``; the
    report does not). One class a row also gives the probability of the true class and the most confused pairs."""
    split, logits, labels = split_predictions(run, split)
    shape = run.shape
    losses = shape.row_losses(logits, labels)
    order = np.argsort(-losses, kind="stable")[:n]
    inputs = run.prediction_inputs(split) or [""] * len(labels)
    if load_missing and any(not inputs[i] for i in order):
        inputs = split_inputs(run, split, len(labels))
    inputs = [item if item not in ("", None) else None for item in inputs]
    examples = []
    for i in order:
        true, predicted = shape.compare_row(labels[i], logits[i], inputs[i])
        example = {"row": int(i), "input": inputs[i], "true": true, "predicted": predicted, "loss": float(losses[i])}
        if shape.one_class_a_row:
            probs = softmax(logits[i : i + 1])[0]
            example.update(p_true=float(probs[labels[i]]), p_predicted=float(probs.max()))
        examples.append(example)
    confused = (most_confused(labels, logits.argmax(1), run.label_names) if shape.one_class_a_row else [])
    return {"split": split, "rows": int(len(labels)), "problem": shape.name, "examples": examples,
            "most_confused": confused}


def most_confused(labels: np.ndarray, predicted: np.ndarray, names: list[str], k: int = 5) -> list[dict]:
    """The off-diagonal cells of the confusion matrix, largest first, with the rows of each."""
    pairs: dict[tuple[int, int], list[int]] = {}
    for row, (truth, guess) in enumerate(zip(labels.tolist(), predicted.tolist(), strict=True)):
        if truth != guess:
            pairs.setdefault((truth, guess), []).append(row)
    ranked = sorted(pairs.items(), key=lambda item: (-len(item[1]), item[0]))[:k]
    return [{"true": names[t], "predicted": names[p], "count": len(rows), "rows": rows[:5]} for (t, p), rows in ranked]
