"""Numeric targets (one or more columns): the head predicts standardised values (the scaler is fitted on train and
saved with the model), MSE or Huber loss; RMSE, MAE, R², Spearman in the data's own units; 90 % prediction
intervals from the validation residuals (split conformal)."""

from __future__ import annotations

import math

import numpy as np

from ..errors import DataError
from .base import BadLabel, LabelShape, register

COVERAGE = 0.9  # the prediction intervals' target coverage


def parse_number(value) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise BadLabel(f"{str(value)[:40]!r} is not a number (a regression column holds numbers only)") from None
    if not math.isfinite(number):
        raise BadLabel(f"{value!r} is not a finite number")
    return number


@register
class Regression(LabelShape):
    name = "regression"
    title = "regression"
    problem_type = "regression"
    shown_metrics = ("rmse", "mae", "r2", "spearman")
    detail_title = "Per-target scores"
    baseline_name = "ridge regression"
    report_figures = ("predicted_vs_true", "residuals")
    probe_solver = "ridge"
    metric_choices = ("r2", "spearman")
    metric_floor = -np.inf  # R² has no floor

    def __init__(self, columns: list[str], loss: str = "mse"):
        super().__init__(columns)
        self.mean = np.zeros(len(columns))
        self.std = np.ones(len(columns))
        self.loss_name = loss
        self.half_width: list[float] | None = None  # of the conformal interval, per target, in the data's units

    def _values(self, raw) -> list[float]:
        cells = raw if isinstance(raw, tuple) else (raw,)
        return [parse_number(c) for c in cells]

    def fit(self, raw: list, where: str) -> None:
        rows = []
        for cell in raw:
            try:
                rows.append(self._values(cell))
            except BadLabel:
                continue  # named with its row when the split is encoded
        values = np.asarray(rows, dtype=np.float64).reshape(-1, len(self.columns))
        if len(values) < 2:
            raise DataError(f"{where}: fewer than 2 numeric training rows")
        self.mean, self.std = values.mean(0), values.std(0)
        flat = [c for c, s in zip(self.columns, self.std, strict=True) if s == 0]
        if flat:
            raise DataError(f"{where}: column '{flat[0]}' holds one value only ({values[0, self.columns.index(flat[0])]:g}"
                            "): nothing to learn")

    def encode_row(self, raw) -> list[float]:
        return ((np.asarray(self._values(raw)) - self.mean) / self.std).tolist()

    @property
    def output_names(self) -> list[str]:
        return self.columns

    def strata(self, labels) -> np.ndarray:
        first = np.asarray(labels, dtype=np.float64).reshape(-1, len(self.columns))[:, 0]
        edges = np.quantile(first, [0.2, 0.4, 0.6, 0.8])
        return np.digitize(first, np.unique(edges))  # quintiles of the first target: splits keep its spread

    def counts(self, labels) -> dict:
        values = self.unscale(np.asarray(labels, dtype=np.float64).reshape(-1, len(self.columns)))
        return {"per_target": {c: {"mean": round(float(values[:, j].mean()), 4) if len(values) else None,
                                   "std": round(float(values[:, j].std()), 4) if len(values) else None,
                                   "min": float(values[:, j].min()) if len(values) else None,
                                   "max": float(values[:, j].max()) if len(values) else None}
                               for j, c in enumerate(self.columns)}}

    def unscale(self, standardised: np.ndarray) -> np.ndarray:
        return np.asarray(standardised, dtype=np.float64) * self.std + self.mean

    def loss(self, logits, labels, weights=None):
        import torch.nn.functional as F

        labels = labels.view(logits.shape).float()
        if self.loss_name == "huber":
            return F.huber_loss(logits.float(), labels)
        return F.mse_loss(logits.float(), labels)

    def _per_target(self, labels, logits) -> list[dict]:
        from scipy.stats import spearmanr

        truth = self.unscale(np.asarray(labels, dtype=np.float64).reshape(-1, len(self.columns)))
        predicted = self.unscale(np.asarray(logits, dtype=np.float64).reshape(truth.shape))
        out = []
        for j in range(len(self.columns)):
            error = predicted[:, j] - truth[:, j]
            variance = ((truth[:, j] - truth[:, j].mean()) ** 2).sum()
            rho = spearmanr(truth[:, j], predicted[:, j]).statistic if np.ptp(predicted[:, j]) > 0 else 0.0
            out.append({"rmse": float(np.sqrt((error**2).mean())), "mae": float(np.abs(error).mean()),
                        "r2": float(1 - (error**2).sum() / variance) if variance > 0 else 0.0,
                        "spearman": 0.0 if np.isnan(rho) else float(rho)})
        return out

    def summary(self, labels, logits) -> dict[str, float]:
        per_target = self._per_target(labels, logits)
        return {k: float(np.mean([t[k] for t in per_target])) for k in ("rmse", "mae", "r2", "spearman")}

    def metrics(self, labels, logits) -> dict:
        out = {**super().metrics(labels, logits), "targets": dict(zip(self.columns, self._per_target(labels, logits),
                                                                       strict=True))}
        if self.half_width is not None:
            truth = self.unscale(np.asarray(labels, dtype=np.float64).reshape(-1, len(self.columns)))
            predicted = self.unscale(np.asarray(logits, dtype=np.float64).reshape(truth.shape))
            out["interval_coverage"] = float((np.abs(predicted - truth) <= np.asarray(self.half_width)).mean())
        return out

    def row_losses(self, logits, labels) -> np.ndarray:
        x = np.asarray(logits, dtype=np.float64)
        return ((x - np.asarray(labels, dtype=np.float64).reshape(x.shape)) ** 2).sum(1)

    def calibrate(self, logits, labels, *, temperature: bool) -> dict:
        """Split conformal: the interval's half-width is the ⌈(n+1)·0.9⌉-th smallest absolute validation residual."""
        truth = self.unscale(np.asarray(labels, dtype=np.float64).reshape(-1, len(self.columns)))
        residuals = np.abs(self.unscale(np.asarray(logits, dtype=np.float64).reshape(truth.shape)) - truth)
        n = len(residuals)
        rank = min(n, math.ceil((n + 1) * COVERAGE)) - 1
        self.half_width = [float(np.sort(residuals[:, j])[rank]) for j in range(len(self.columns))]
        return {"method": "split conformal prediction intervals", "coverage": COVERAGE, "fitted_on": "validation",
                "half_width": dict(zip(self.columns, self.half_width, strict=True))}

    def decode(self, logits, top_k: int | None = None) -> list[dict]:
        values = self.unscale(np.asarray(logits, dtype=np.float64).reshape(-1, len(self.columns)))
        results = []
        for row in values:
            if len(self.columns) == 1:
                result = {"value": float(row[0])}
                if self.half_width is not None:
                    result["interval"] = [float(row[0] - self.half_width[0]), float(row[0] + self.half_width[0])]
            else:
                result = {"values": {c: float(v) for c, v in zip(self.columns, row, strict=True)}}
                if self.half_width is not None:
                    result["intervals"] = {c: [float(v - h), float(v + h)]
                                           for c, v, h in zip(self.columns, row, self.half_width, strict=True)}
            results.append(result)
        return results

    def agreement(self, expected, got) -> float:
        close = np.abs(np.asarray(got, dtype=np.float64) - np.asarray(expected, dtype=np.float64)) <= 0.05
        return float(close.reshape(len(close), -1).all(1).mean()) if len(close) else 1.0  # standardised units

    def result_schema(self) -> dict:
        interval = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2,
                    "description": f"a {COVERAGE:.0%} prediction interval (split conformal on validation)"}
        if len(self.columns) == 1:
            return {"type": "object", "required": ["value"], "properties": {"value": {"type": "number"},
                                                                             "interval": interval}}
        return {"type": "object", "required": ["values"], "properties": {
            "values": {"type": "object", "properties": {c: {"type": "number"} for c in self.columns}},
            "intervals": {"type": "object", "properties": {c: interval for c in self.columns}}}}

    def detail_table(self, split_metrics: dict) -> tuple[list[str], list[list]]:
        rows = [[target, *(f"{m[k]:.4f}" for k in ("rmse", "mae", "r2", "spearman"))]
                for target, m in split_metrics.get("targets", {}).items()]
        return ["target", "RMSE", "MAE", "R²", "Spearman"], rows

    def part_scores(self, split_metrics: dict) -> tuple[str, dict[str, float]]:
        return "target R²", {k: v["r2"] for k, v in split_metrics.get("targets", {}).items()}

    def headline(self, result: dict) -> tuple[str, str]:
        if "value" in result:
            interval = result.get("interval")
            return f"{result['value']:.4g}", (f"90 % interval {interval[0]:.4g} to {interval[1]:.4g}" if interval else "")
        return ", ".join(f"{c} {v:.4g}" for c, v in result["values"].items()), ""

    def raw_cells(self, label) -> list[str]:
        return [repr(float(v)) for v in self.unscale(np.asarray(label, dtype=np.float64).reshape(1, -1))[0]]

    def describe_row(self, label) -> str:
        values = self.unscale(np.asarray(label, dtype=np.float64).reshape(1, -1))[0]
        return ", ".join(f"{v:g}" for v in values)

    def baseline_model(self, c: float, class_weight: str | None):
        from sklearn.linear_model import Ridge

        return Ridge(alpha=1.0 / c)

    def baseline_logits(self, model, features) -> np.ndarray:
        return np.asarray(model.predict(features), dtype=np.float64).reshape(features.shape[0], -1)

    def state(self) -> dict:
        return {**super().state(), "mean": self.mean.tolist(), "std": self.std.tolist(), "loss": self.loss_name,
                "interval": None if self.half_width is None else {"coverage": COVERAGE, "half_width": self.half_width}}

    def load_state(self, state: dict) -> None:
        self.mean = np.asarray(state["mean"], dtype=np.float64)
        self.std = np.asarray(state["std"], dtype=np.float64)
        if self.mean.shape != (len(self.columns),) or self.std.shape != self.mean.shape or (self.std <= 0).any():
            raise ValueError("the scaler must hold a mean and a positive std per target")
        self.loss_name = str(state.get("loss", "mse"))
        interval = state.get("interval")
        self.half_width = [float(h) for h in interval["half_width"]] if interval else None

    def describe(self) -> str:
        return f"{self.title}: column(s) {', '.join(self.columns)} ({self.loss_name} on standardised targets)"
