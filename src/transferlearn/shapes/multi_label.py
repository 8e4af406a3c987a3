"""Tag sets: any number of labels a row. One sigmoid per tag and binary cross-entropy; a decision threshold per tag,
tuned on validation and saved with the model; micro / macro F1, mean average precision, subset accuracy.

Data: one column of ``a|b``, ``a;b`` or JSON lists (``["a", "b"]``, ``[]`` for none), or several 0/1 columns (the
column names are the tags)."""

from __future__ import annotations

import json
import re

import numpy as np

from ..errors import DataError
from .base import BadLabel, LabelShape, register, sigmoid

TAG_SPLIT = re.compile(r"[|;]")
TRUE_WORDS, FALSE_WORDS = {"1", "1.0", "true", "yes", "y"}, {"0", "0.0", "false", "no", "n", ""}
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)


def parse_tags(cell: str) -> list[str]:
    """A tag-set cell as its tags; an empty tag (``a||b``, ``a|``) is a BadLabel."""
    cell = str(cell).strip()
    if cell.startswith("["):
        try:
            values = json.loads(cell)
        except ValueError:
            raise BadLabel(f"{cell!r} starts like a JSON list but is not valid JSON") from None
        if not isinstance(values, list) or not all(isinstance(v, (str, int)) for v in values):
            raise BadLabel(f"{cell!r}: a JSON list of tags must hold strings")
        tags = [str(v).strip() for v in values]
    else:
        tags = [t.strip() for t in TAG_SPLIT.split(cell)]
    if any(not t for t in tags):
        raise BadLabel(f"tag set {cell!r} has an empty tag (two separators in a row, or one at an end); write "
                       "the tags between single separators, or [] for a row without tags")
    return list(dict.fromkeys(tags))


def is_flag(value: str) -> bool:
    return str(value).strip().lower() in TRUE_WORDS | FALSE_WORDS


@register
class MultiLabel(LabelShape):
    name = "multi-label"
    title = "multi-label classification (tag sets)"
    problem_type = "multi_label_classification"
    shown_metrics = ("micro_f1", "macro_f1", "mean_average_precision", "subset_accuracy")
    detail_title = "Per-tag scores"
    baseline_name = "logistic regression per tag"
    report_figures = ("per_label",)
    metric_choices = ("mean_average_precision", "micro_f1", "macro_f1", "subset_accuracy")
    class_weighted = True  # a positive weight per tag

    def __init__(self, columns: list[str]):
        super().__init__(columns)
        self.tags: list[str] = []
        self.thresholds: list[float] | None = None

    @property
    def flag_columns(self) -> bool:
        """Several 0/1 columns (each column a tag) rather than one column of tag sets."""
        return len(self.columns) > 1

    def _row_tags(self, raw) -> list[str]:
        if self.flag_columns:
            cells = raw if isinstance(raw, tuple) else (raw,)
            bad = [(c, v) for c, v in zip(self.columns, cells, strict=True) if not is_flag(v)]
            if bad:
                raise BadLabel(f"column '{bad[0][0]}' holds {bad[0][1]!r}: a tag column holds 0/1 (or true/false)")
            return [c for c, v in zip(self.columns, cells, strict=True) if str(v).strip().lower() in TRUE_WORDS]
        return parse_tags(raw)

    def fit(self, raw: list, where: str) -> None:
        if self.flag_columns:
            self.tags = list(self.columns)
            return
        seen = set()
        for cell in raw:
            try:
                seen.update(parse_tags(cell))
            except BadLabel:
                continue  # named with its row when the split is encoded
        self.tags = sorted(seen)
        if len(self.tags) < 2:
            raise DataError(f"{where}: the tag sets hold {len(self.tags)} distinct tag(s); multi-label needs at least "
                            "2 (one tag is a yes/no question: give it as a class column)")

    def encode_row(self, raw) -> list[float]:
        tags = self._row_tags(raw)
        unknown = [t for t in tags if t not in self._index]
        if unknown:
            raise BadLabel(f"tag {unknown[0]!r} is not among the training tags ({', '.join(self.tags)})")
        out = [0.0] * len(self.tags)
        for tag in tags:
            out[self._index[tag]] = 1.0
        return out

    @property
    def _index(self) -> dict[str, int]:
        return {tag: i for i, tag in enumerate(self.tags)}

    @property
    def output_names(self) -> list[str]:
        return self.tags

    def counts(self, labels) -> dict:
        labels = np.asarray(labels).reshape(-1, len(self.tags))
        return {"per_label": dict(zip(self.tags, labels.sum(0).astype(int).tolist(), strict=True)),
                "tags_per_row": round(float(labels.sum(1).mean()), 3) if len(labels) else 0.0}

    def check_train(self, labels, where: str, held: str = "") -> None:
        labels = np.asarray(labels).reshape(-1, len(self.tags))
        never = [t for t, n in zip(self.tags, labels.sum(0), strict=True) if n == 0]
        if len(never) == len(self.tags):
            raise DataError(f"{where}: no training row carries any tag; multi-label needs positive examples")
        if never:
            import logging

            logging.getLogger(__name__).warning("%s: no training row carries tag(s) %s: the model cannot learn them",
                                                where, ", ".join(never))

    def balanced_weights(self, labels) -> np.ndarray:
        """Each tag's positives weighed as its negatives (BCE ``pos_weight`` = negatives / positives)."""
        labels = np.asarray(labels).reshape(-1, len(self.tags)) > 0.5
        positives = labels.sum(0).astype(np.float64)
        return (len(labels) - positives) / np.maximum(positives, 1)

    def loss(self, logits, labels, weights=None):
        import torch.nn.functional as F

        return F.binary_cross_entropy_with_logits(logits.float(), labels.float(), pos_weight=weights)

    def _thresholds(self) -> np.ndarray:
        return np.asarray(self.thresholds if self.thresholds is not None else [0.5] * len(self.tags))

    def _per_label(self, labels, probs) -> tuple[np.ndarray, dict]:
        from sklearn.metrics import average_precision_score, precision_recall_fscore_support

        truth = np.asarray(labels).reshape(-1, len(self.tags)) > 0.5
        predicted = probs >= self._thresholds()
        precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, zero_division=0)
        precisions = np.full(len(self.tags), np.nan)
        for j in range(len(self.tags)):
            if truth[:, j].any():
                precisions[j] = average_precision_score(truth[:, j], probs[:, j])
        table = {tag: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s),
                       "average_precision": None if np.isnan(ap) else float(ap), "threshold": float(t)}
                 for tag, p, r, f, s, ap, t in zip(self.tags, precision, recall, f1, support, precisions,
                                                   self._thresholds(), strict=True)}
        return precisions, table

    def summary(self, labels, logits) -> dict[str, float]:
        from sklearn.metrics import f1_score

        probs = sigmoid(np.asarray(logits, dtype=np.float64))
        truth = np.asarray(labels).reshape(-1, len(self.tags)) > 0.5
        predicted = self.decisions(logits)
        precisions, _ = self._per_label(labels, probs)
        scored = precisions[~np.isnan(precisions)]
        return {"micro_f1": float(f1_score(truth, predicted, average="micro", zero_division=0)),
                "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
                "mean_average_precision": float(scored.mean()) if len(scored) else 0.0,
                "subset_accuracy": float((truth == predicted).all(1).mean())}

    def metrics(self, labels, logits) -> dict:
        probs = sigmoid(np.asarray(logits, dtype=np.float64))
        _, table = self._per_label(labels, probs)
        return {**super().metrics(labels, logits), "per_label": table, "label_names": self.tags}

    def row_losses(self, logits, labels) -> np.ndarray:
        x = np.asarray(logits, dtype=np.float64)
        y = np.asarray(labels, dtype=np.float64).reshape(x.shape)
        return (np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))).sum(1)

    def calibrate(self, logits, labels, *, temperature: bool) -> dict:
        """Each tag's threshold: the grid value with the best validation F1 (ties: the one nearest 0.5); 0.5 for a
        tag validation never shows."""
        probs = sigmoid(np.asarray(logits, dtype=np.float64))
        truth = np.asarray(labels).reshape(-1, len(self.tags)) > 0.5
        chosen = []
        for j in range(len(self.tags)):
            if not truth[:, j].any():
                chosen.append(0.5)
                continue
            best = max(THRESHOLD_GRID, key=lambda t: (_f1(truth[:, j], probs[:, j] >= t), -abs(t - 0.5)))
            chosen.append(float(best))
        self.thresholds = chosen
        return {"method": "per-label decision thresholds (best F1 on validation)", "fitted_on": "validation",
                "thresholds": dict(zip(self.tags, chosen, strict=True))}

    def decode(self, logits, top_k: int | None = None) -> list[dict]:
        probs = sigmoid(np.asarray(logits, dtype=np.float64))
        thresholds = self._thresholds()
        results = []
        for row in probs:
            order = np.argsort(-row)[: top_k or len(self.tags)]
            results.append({"labels": [self.tags[i] for i in np.argsort(-row) if row[i] >= thresholds[i]],
                            "scores": {self.tags[i]: float(row[i]) for i in order}})
        return results

    def decisions(self, logits):
        return sigmoid(np.asarray(logits, dtype=np.float64)) >= self._thresholds()

    def result_schema(self) -> dict:
        return {"type": "object", "required": ["labels", "scores"], "properties": {
            "labels": {"type": "array", "items": {"type": "string", "enum": self.tags},
                       "description": "the tags whose score reaches their tuned threshold"},
            "scores": {"type": "object", "additionalProperties": {"type": "number"}}}}

    def served_labels(self, result: dict) -> list[str]:
        return list(result["labels"])

    def counted_names(self) -> list[str]:
        return list(self.tags)

    def detail_table(self, split_metrics: dict) -> tuple[list[str], list[list]]:
        rows = [[tag, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}",
                 "-" if m["average_precision"] is None else f"{m['average_precision']:.3f}", f"{m['threshold']:.2f}",
                 m["support"]] for tag, m in split_metrics.get("per_label", {}).items()]
        return ["tag", "precision", "recall", "F1", "average precision", "threshold", "support"], rows

    def part_scores(self, split_metrics: dict) -> tuple[str, dict[str, float]]:
        return "tag F1", {k: v["f1"] for k, v in split_metrics.get("per_label", {}).items()}

    def headline(self, result: dict) -> tuple[str, str]:
        return ", ".join(result["labels"]) or "(no tag)", ", ".join(f"{k} {v:.3f}" for k, v in result["scores"].items())

    def raw_cells(self, label) -> list[str]:
        flags = np.asarray(label).ravel() > 0.5
        if self.flag_columns:
            return ["1" if f else "0" for f in flags]
        return [json.dumps([t for t, f in zip(self.tags, flags, strict=True) if f], ensure_ascii=False)]

    def describe_row(self, label) -> str:
        return "|".join(t for t, v in zip(self.tags, np.asarray(label).ravel(), strict=True) if v > 0.5) or "(none)"

    def baseline_model(self, c: float, class_weight: str | None):
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier

        return OneVsRestClassifier(LogisticRegression(C=c, max_iter=1000, class_weight=class_weight))

    def baseline_logits(self, model, features) -> np.ndarray:
        probs = np.clip(model.predict_proba(features), 1e-6, 1 - 1e-6)
        return np.log(probs / (1 - probs))

    def state(self) -> dict:
        return {**super().state(), "tags": self.tags, "thresholds": self.thresholds}

    def load_state(self, state: dict) -> None:
        self.tags = [str(t) for t in state["tags"]]
        thresholds = state.get("thresholds")
        if thresholds is not None:
            thresholds = [float(t) for t in thresholds]
            if len(thresholds) != len(self.tags) or not all(0.0 <= t <= 1.0 for t in thresholds):
                raise ValueError(f"thresholds must be {len(self.tags)} numbers between 0 and 1")
        self.thresholds = thresholds

    def describe(self) -> str:
        source = f"columns {', '.join(self.columns)} (0/1)" if self.flag_columns else f"column '{self.columns[0]}'"
        return f"{self.title}: {source}, {len(self.tags)} tags"


def _f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    tp = float((truth & predicted).sum())
    denominator = float(truth.sum() + predicted.sum())
    return 2 * tp / denominator if denominator else 0.0
