"""One policy for labels, the same for text, image and audio.

Training: the label set is the training split's (sorted; numerically when every label is an integer), with at
least two classes. A label in validation or test that train lacks is an error naming the place, the first such
row and what to do (a model cannot predict a class it never saw); ``--on-bad-rows skip`` drops those rows and
notes how many. Scoring a trained run on other data (``label_names`` given): every split is checked against the
model's classes the same way.
"""

from __future__ import annotations

from ..errors import DataError
from .splits import label_order


def resolve_labels(labels_by_split: dict[str, list[str]], label_names: list[str] | None, *,
                   where: dict[str, str], on_bad_rows: str, notes: list[str]) -> tuple[list[str], dict[str, list[int]]]:
    """(label names, the row indices kept in each split). ``where`` names each split's file or folder."""
    training = label_names is None
    if training:
        if "train" not in labels_by_split:
            raise DataError(f"{where.get('train', 'the data')}: no training split")
        names = label_order(labels_by_split["train"])
        if len(names) < 2:
            only = repr(names[0]) if names else "none"
            raise DataError(f"{where['train']}: the training data has only one label ({only}); need at least 2")
    else:
        names = list(label_names)
    known = set(names)
    kept: dict[str, list[int]] = {}
    for split, labels in labels_by_split.items():
        unknown = [i for i, lab in enumerate(labels) if lab not in known] if (split != "train" or not training) else []
        kept[split] = [i for i, lab in enumerate(labels) if lab in known] if unknown else list(range(len(labels)))
        if not unknown:
            continue
        unseen = sorted({labels[i] for i in unknown})
        whose = "the training labels" if training else "the model's classes"
        message = (f"{where.get(split, split)}: label {labels[unknown[0]]!r} (row {unknown[0] + 1}) is not among "
                   f"{whose} ({', '.join(names)}): class(es) {', '.join(unseen)} appear in the {split} split but not "
                   f"in train; {len(unknown)} row(s) — a model cannot predict a class it never saw")
        if on_bad_rows == "error":
            raise DataError(message + " (--on-bad-rows skip drops them)")
        notes.append(message + " — skipped")
    return names, kept
