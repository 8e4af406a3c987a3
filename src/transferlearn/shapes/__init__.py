"""Label shapes: one class per row, tag sets, several label columns, numeric targets, a tag per word (see base.py)."""

from .base import SHAPE_FILE, SHAPES, BadLabel, LabelShape
from .detect import PROBLEMS, choose_shape, detect_shape
from .multi_label import MultiLabel
from .multi_output import MultiOutput
from .regression import Regression
from .saved import load_shape, shape_from_state
from .single import SingleLabel
from .token_tags import TokenTags

__all__ = ["PROBLEMS", "SHAPES", "SHAPE_FILE", "BadLabel", "LabelShape", "MultiLabel", "MultiOutput", "Regression",
           "SingleLabel", "TokenTags", "choose_shape", "detect_shape", "load_shape", "shape_from_state"]
