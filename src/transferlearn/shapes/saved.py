"""A fitted label shape saved with a model (``model/label_shape.json``) and read back by every consumer."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ModelError
from .base import SHAPE_FILE, SHAPES, LabelShape
from .single import SingleLabel


def shape_from_state(state: dict, where: str = SHAPE_FILE) -> LabelShape:
    try:
        cls = SHAPES[state["problem"]]
        shape = cls(list(state["columns"]))
        shape.load_state(state)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{where}: not a valid label-shape file ({type(exc).__name__}: {exc}); re-train the run or "
                         "restore the file from its package") from None
    return shape


def load_shape(model_dir: Path, label_names: list[str] | None = None) -> LabelShape:
    """The fitted shape saved with a model; a folder without the file (older runs) is single-label over its names."""
    path = Path(model_dir) / SHAPE_FILE
    if not path.exists():
        return SingleLabel.with_classes(["label"], list(label_names or []))
    try:
        state = json.loads(path.read_text())
    except ValueError as exc:
        raise ModelError(f"{path}: not valid JSON ({exc}); re-train the run or restore the file") from None
    if not isinstance(state, dict):
        raise ModelError(f"{path}: not a valid label-shape file; re-train the run or restore the file")
    return shape_from_state(state, str(path))
