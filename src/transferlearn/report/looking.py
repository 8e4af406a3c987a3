"""The report's sections for looking rather than reading: the examples the model gets most wrong (shown as the
modality shows an input: a snippet, a thumbnail, a player), the most confused pairs, calibration, and a one-line
overfitting diagnosis over the training and validation loss."""

from __future__ import annotations

import html

import numpy as np

from ..plots import subplots
from .errors import expected_calibration_error, softmax, split_predictions, top_losses
from .markup import table_html


def errors_section(run, n: int = 12) -> str | None:
    try:
        found = top_losses(run, None, n, load_missing=False)
    except Exception:  # noqa: BLE001 — no saved predictions (an older run): the report goes without the section
        return None
    show = run.modality.inline_html
    with_p = all("p_true" in e for e in found["examples"])
    rows = "".join(
        f"<tr><td>{e['row']}</td><td class='example'>{show(e['input']) if e['input'] is not None else '-'}</td>"
        f"<td>{html.escape(e['true'])}</td><td>{html.escape(e['predicted'])}</td>"
        + (f"<td>{e['p_true']:.3f}</td>" if with_p else "") + f"<td>{e['loss']:.3f}</td></tr>"
        for e in found["examples"])
    table = ("<table><tr><th>row</th><th>input</th><th>true</th><th>predicted</th>"
             + ("<th>p(true)</th>" if with_p else "") + f"<th>loss</th></tr>{rows}</table>")
    text = (f"<p>The {len(found['examples'])} highest-loss of {found['rows']} {found['split']} rows "
            f"(<code>tl errors {html.escape(str(run.path))}</code> prints them):</p>{table}")
    if not run.shape.one_class_a_row:
        return text
    pairs = table_html(["true", "predicted as", "count", "rows (first 5)"],
                       [[p["true"], p["predicted"], p["count"], ", ".join(map(str, p["rows"]))]
                        for p in found["most_confused"]]) if found["most_confused"] else "<p>No confusions.</p>"
    return text + f"<h3>Most confused pairs</h3>{pairs}"


def reliability_figure(probs: np.ndarray, labels: np.ndarray, title: str, calibrated: np.ndarray | None = None):
    fig, ax = subplots((4.6, 4.2))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    for name, p in (("model", probs), ("temperature-scaled", calibrated)):
        if p is None:
            continue
        result = expected_calibration_error(p, labels)
        bins = result["bins"]
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o",
                label=f"{name} (ECE {result['ece']:.3f})")
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def calibration_figure(run):
    """The reliability diagram of the scored split (after temperature scaling too, when the run was calibrated)."""
    if not run.shape.one_class_a_row:
        return None  # tag sets and columns are calibrated by their thresholds / per-column temperatures
    try:
        split, logits, labels = split_predictions(run, None)
    except Exception:  # noqa: BLE001 — an older run without saved predictions
        return None
    temperature = run.metrics.get("calibration", {}).get("temperature")
    return reliability_figure(softmax(logits), labels, f"Reliability ({split})",
                              softmax(logits / temperature) if temperature else None)


def overfitting_diagnosis(history: list[dict], metric: str = "loss") -> str | None:
    """One line from the validation and training losses: where validation was best, and whether it then rose
    while the training loss kept falling."""
    evals = [(h["step"], h["epoch"], h["eval_loss"]) for h in history if "eval_loss" in h]
    trains = [(h["step"], h["loss"]) for h in history if "loss" in h]
    if len(evals) < 2 or not trains:
        return None
    best = min(range(len(evals)), key=lambda i: evals[i][2])
    step, epoch, loss = evals[best]
    later = evals[best + 1:]
    train_at_best = np.mean([t for s, t in trains if s <= step][-5:] or [trains[0][1]])
    train_end = np.mean([t for _, t in trains][-5:])
    if later and later[-1][2] > loss * 1.05 and train_end < train_at_best:
        return (f"Validation loss was lowest at epoch {epoch:g} ({loss:.3f}) and rose to {later[-1][2]:.3f} while the "
                f"training loss kept falling ({train_at_best:.3f} → {train_end:.3f}): overfitting. The best checkpoint "
                "(by the validation metric) is the model kept.")
    if best == len(evals) - 1:
        return (f"Validation loss was still falling at the last evaluation (epoch {epoch:g}, {loss:.3f}): more "
                "training might help.")
    return f"Validation loss was lowest at epoch {epoch:g} ({loss:.3f}) and stayed close after: no sign of overfitting."
