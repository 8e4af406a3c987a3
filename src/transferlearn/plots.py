"""Figures without global state: ``matplotlib.figure.Figure`` objects render through their own Agg canvas, so
no module selects a backend or keeps pyplot figures open as a side effect of being imported."""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure


def subplots(figsize: tuple[float, float], **kwargs):
    """(figure, axes), like ``pyplot.subplots`` but owned by the caller alone."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(**kwargs)


def png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def confusion_figure(split_metrics, title):
    matrix = np.asarray(split_metrics["confusion_matrix"])
    names = split_metrics["label_names"]
    size = max(4, 0.45 * len(names) + 2)
    fig, ax = subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=90), ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted"), ax.set_ylabel("true"), ax.set_title(title)
    if len(names) <= 20:
        threshold = matrix.max() / 2 if matrix.size else 0
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > threshold else "black")
    return fig
