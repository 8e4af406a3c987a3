"""Figures without global state: ``matplotlib.figure.Figure`` objects render through their own Agg canvas, so
no module selects a backend or keeps pyplot figures open as a side effect of being imported."""

from __future__ import annotations

import io

from matplotlib.figure import Figure


def subplots(figsize: tuple[float, float], **kwargs):
    """(figure, axes), like ``pyplot.subplots`` but owned by the caller alone."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(**kwargs)


def png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()
