"""One policy for labels, the same for text, image and audio.

Training: the label set is the training split's (sorted; numerically when every label is an integer), with at
least two classes. A label in validation or test that train lacks is an error naming the place, the first such
row and what to do (a model cannot predict a class it never saw); ``--on-bad-rows skip`` drops those rows and
notes how many. Scoring a trained run on other data (``label_names`` given): every split is checked against the
model's classes the same way.
"""

from __future__ import annotations

import json
import re

from ..errors import DataError
from .splits import label_order

# more distinct whole numbers than this, and more than half the rows distinct: a numeric target, not classes
MANY_NUMBERS = 30
TAG_SEPARATOR = re.compile(r"\S\s*[|;]\s*\S")  # price|service, a; b


def resolve_labels(labels_by_split: dict[str, list[str]], label_names: list[str] | None, *,
                   where: dict[str, str], on_bad_rows: str, notes: list[str],
                   column: str | None = None) -> tuple[list[str], dict[str, list[int]]]:
    """(label names, the row indices kept in each split). ``where`` names each split's file or folder; ``column``
    the label column of a table."""
    training = label_names is None
    if training:
        if "train" not in labels_by_split:
            raise DataError(f"{where.get('train', 'the data')}: no training split")
        refuse_other_label_shapes(labels_by_split["train"],
                                  where["train"] + (f": column '{column}'" if column else ""))
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


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def refuse_other_label_shapes(labels: list[str], where: str) -> None:
    """tl trains one class per row. Labels of another shape are refused, named — never silently made into classes:
    numbers with fractions or with many distinct values (a numeric target: a 1.0-5.0 score would become dozens of
    one-row classes), and sets of tags (``price|service``, ``a; b``, JSON lists: every combination would become a
    class of its own)."""
    values = [str(label).strip() for label in labels]
    numbers = [_number(v) for v in values]
    if values and all(n is not None for n in numbers):
        distinct = sorted(set(numbers))
        fractional = any(not n.is_integer() for n in numbers)
        if fractional or (len(distinct) > MANY_NUMBERS and len(distinct) > len(values) / 2):
            raise DataError(f"{where}: the labels are numbers ({len(distinct)} distinct values from {distinct[0]:g} to "
                            f"{distinct[-1]:g}, e.g. {values[0]!r} in row 1): a numeric target, not classes. tl trains "
                            "one class per row and would make each number a class of its own; regression is not "
                            "supported yet. Give class names (or bin the numbers into a few classes yourself).")
    tagged = [i for i, v in enumerate(values) if TAG_SEPARATOR.search(v) or _json_list(v)]
    if len(tagged) >= max(2, 0.05 * len(values)):
        first = tagged[0]
        raise DataError(f"{where}: label {values[first]!r} (row {first + 1}) and {len(tagged) - 1} more look like sets "
                        "of tags (several labels a row): tl trains one class per row and would make every combination "
                        "a class of its own; multi-label training is not supported yet. Give one class per row.")


def _json_list(value: str) -> bool:
    if not value.startswith("["):
        return False
    try:
        return isinstance(json.loads(value), list)
    except ValueError:
        return False
