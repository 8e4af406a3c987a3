"""One policy for labels, the same for text, image and audio, whatever their shape (shapes/).

Training: the shape is ``--problem`` (checked against the data) or detected from the training labels and said in
one line; the shape learns its vocabulary (or scaler) from train. A label in validation or test that the shape
cannot encode (a class train lacks, a word in a numeric column) is an error naming the place, the first such row
and what to do; ``--on-bad-rows skip`` drops those rows and notes how many. Scoring a trained run on other data
(``shape`` given): every split is encoded by the model's own shape the same way.
"""

from __future__ import annotations

import logging

from ..errors import DataError
from ..shapes import LabelShape, choose_shape

log = logging.getLogger(__name__)


def label_columns(wanted: str | None) -> list[str] | None:
    """``--label-column a,b,c`` as a list (None: detect one)."""
    if wanted is None:
        return None
    names = [c.strip() for c in wanted.split(",")]
    if any(not c for c in names) or len(set(names)) != len(names):
        raise DataError(f"--label-column {wanted!r}: give column names separated by commas, each once")
    return names


def raw_label(row: dict, columns: list[str]):
    """A row's raw label: the cell's text for one column, a tuple of cells for several."""
    cells = tuple("" if row.get(c) is None else str(row[c]).strip() for c in columns)
    return cells[0] if len(cells) == 1 else cells


def resolve_labels(labels_by_split: dict[str, list], shape: LabelShape | None, *, where: dict[str, str],
                   on_bad_rows: str, notes: list[str], columns: list[str], problem: str = "auto",
                   regression_loss: str = "mse") -> tuple[LabelShape, dict[str, tuple[list[int], list]]]:
    """(the fitted shape, {split: (kept row indices, label values)}). ``where`` names each split's file or folder;
    ``columns`` the label column(s)."""
    if shape is None:
        if "train" not in labels_by_split:
            raise DataError(f"{where.get('train', 'the data')}: no training split")
        place = where["train"]
        if not labels_by_split["train"]:
            raise DataError(f"{place}: no labelled training rows")
        shape, line = choose_shape(problem, labels_by_split["train"], columns, place, regression_loss=regression_loss)
        shape.fit(labels_by_split["train"], place)
        log.info(line)
        notes.append(line)
    out = {}
    for split, raw in labels_by_split.items():
        values, kept = shape.encode(raw, where.get(split, split), on_bad_rows=on_bad_rows, notes=notes,
                                    known_only=True)
        out[split] = (kept, values)
    return shape, out
