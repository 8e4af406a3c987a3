"""Which label shape the data has: ``--problem`` when given (checked against the data), else detected from the
training labels, and said in one line. A numeric column with many distinct values is never made into classes."""

from __future__ import annotations

import json
import re

from ..errors import DataError
from .base import SHAPES, LabelShape
from .multi_label import MultiLabel, is_flag
from .multi_output import MultiOutput
from .regression import Regression
from .single import SingleLabel
from .token_tags import TokenTags

PROBLEMS = ("auto", "single-label", "multi-label", "multi-output", "regression", "token-tags")
# more distinct whole numbers than this, and more than half the rows distinct: a numeric target, not classes
MANY_NUMBERS = 30
TAG_SEPARATOR = re.compile(r"\S\s*[|;]\s*\S")  # price|service, a; b


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def numeric_target(values: list[str]) -> str | None:
    """Why these labels look like numbers to predict (fractions, or many distinct values), else None."""
    numbers = [_number(v.strip()) for v in values]
    if not values or any(n is None for n in numbers):
        return None
    distinct = sorted(set(numbers))
    if any(not n.is_integer() for n in numbers):
        return f"{len(distinct)} distinct numbers from {distinct[0]:g} to {distinct[-1]:g}, with fractions"
    if len(distinct) > MANY_NUMBERS and len(distinct) > len(values) / 2:
        return f"{len(distinct)} distinct whole numbers from {distinct[0]:g} to {distinct[-1]:g}"
    return None


def tag_sets(values: list[str]) -> list[int]:
    """The rows whose label looks like a set of tags (``a|b``, ``a; b``, a JSON list)."""
    return [i for i, v in enumerate(values) if TAG_SEPARATOR.search(v) or _json_list(v)]


def _json_list(value: str) -> bool:
    if not value.startswith("["):
        return False
    try:
        return isinstance(json.loads(value), list)
    except ValueError:
        return False


def _column(raw: list, j: int) -> list[str]:
    return [str(r[j] if isinstance(r, tuple) else r).strip() for r in raw]


def detect_shape(raw: list, columns: list[str], where: str) -> tuple[type[LabelShape], str]:
    """(shape class, why) for the training labels of ``columns``."""
    if raw and isinstance(raw[0], list):  # a tag per word: read from CoNLL / JSONL token files
        return TokenTags, f"a tag per word ({sum(len(r) for r in raw)} words in {len(raw)} sentences)"
    if len(columns) > 1:
        cells = [_column(raw, j) for j in range(len(columns))]
        if all(is_flag(v) for column in cells for v in column):
            return MultiLabel, f"{len(columns)} label columns holding 0/1 only: each column is a tag"
        numeric = [numeric_target(column) for column in cells]
        if all(n is not None for n in numeric) or (all(_number(v) is not None for c in cells for v in c)
                                                   and any(numeric)):
            return Regression, f"the label columns hold numbers ({next(n for n in numeric if n)})"
        return MultiOutput, f"{len(columns)} label columns, each with its own classes"
    values = _column(raw, 0)
    why = numeric_target(values)
    if why:
        return Regression, f"column '{columns[0]}' holds {why}: a numeric target"
    tagged = tag_sets(values)
    if len(tagged) >= max(2, 0.05 * len(values)):
        return MultiLabel, (f"column '{columns[0]}' holds sets of tags ({values[tagged[0]]!r} in row {tagged[0] + 1} "
                            f"and {len(tagged) - 1} more)")
    return SingleLabel, f"column '{columns[0]}' holds one class per row"


def choose_shape(problem: str, raw: list, columns: list[str], where: str, *, regression_loss: str = "mse"
                 ) -> tuple[LabelShape, str]:
    """The shape to train (unfitted) and the line that says why. ``--problem`` is checked against the data: a
    single-label run over a numeric target, or one column given to a shape that needs several, is refused."""
    detected, why = detect_shape(raw, columns, where)
    if problem == "auto":
        chosen, line = detected, f"label shape: {detected.name} — {why} (--problem to choose another)"
    else:
        chosen, line = SHAPES[problem], f"label shape: {problem} (--problem)"
        _check_asked(chosen, detected, why, raw, columns, where)
    shape = chosen(columns, loss=regression_loss) if chosen is Regression else chosen(columns)
    return shape, line


def _check_asked(chosen: type[LabelShape], detected: type[LabelShape], why: str, raw: list, columns: list[str],
                 where: str) -> None:
    place = f"{where}: column{'s' if len(columns) > 1 else ''} {', '.join(repr(c) for c in columns)}"
    if (chosen is TokenTags) != (detected is TokenTags):
        raise DataError(f"{where}: --problem {chosen.name} needs " + (
            "a tag per word: CoNLL files (token<TAB>tag lines) or JSONL with tokens and tags" if chosen is TokenTags
            else "a label per row; this data holds a tag per word (use --problem token-tags or auto)"))
    if chosen is SingleLabel:
        if len(columns) > 1:
            raise DataError(f"{place}: --problem single-label takes one label column; for several use --problem "
                            "multi-output (a class per column) or multi-label (0/1 columns)")
        if detected is Regression:
            count = len(set(_column(raw, 0)))
            raise DataError(f"{where}: {why}; as classes they would become {count} classes of a few rows each. Pass "
                            "--problem regression (or bin the numbers into a few classes yourself).")
        if detected is MultiLabel:
            raise DataError(f"{where}: {why}; single-label would make every combination a class of its own. Pass "
                            "--problem multi-label.")
    if chosen is MultiOutput and len(columns) < 2:
        raise DataError(f"{place}: --problem multi-output needs several label columns (--label-column a,b,c)")
    if chosen is Regression:
        bad = next(((i, v) for j in range(len(columns)) for i, v in enumerate(_column(raw, j)) if _number(v) is None),
                   None)
        if bad is not None:
            raise DataError(f"{place}: row {bad[0] + 1} holds {bad[1][:40]!r}, not a number: --problem regression "
                            "needs numeric label columns")
