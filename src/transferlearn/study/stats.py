"""The numbers behind a study's recommendation: intervals across seeds, a paired test on the test predictions,
and a learning curve (a power law in the number of labels) with the labels it takes to reach a target.

scipy does the distributions and the least-squares fit; what is written here is the bookkeeping around them.
The paired test is a bootstrap over test rows: both arms were scored on the same rows with the same seeds, so
resampling rows keeps the pairing, and it has power with 3 seeds where a t-test across seeds has almost none.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats
from scipy.optimize import OptimizeWarning, curve_fit


def mean_interval(values: list[float], confidence: float = 0.95, bounds: tuple[float, float] = (0.0, 1.0)) -> dict:
    """Mean, standard deviation and a Student-t interval of the mean, clipped to the metric's range ``bounds``
    (two seeds give t = 12.7: the raw interval can leave [0, 1]); a single value has no interval."""

    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return {"mean": mean, "std": 0.0, "low": None, "high": None, "n": len(x)}
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1)) * std / math.sqrt(len(x))
    return {"mean": mean, "std": std, "low": max(bounds[0], mean - half), "high": min(bounds[1], mean + half), "n": len(x)}


def paired_bootstrap(labels: np.ndarray, a: list[np.ndarray], b: list[np.ndarray], score,
                     resamples: int = 2000, seed: int = 0) -> dict:
    """Arm A minus arm B on the same test rows, averaged over seeds (``a[i]`` and ``b[i]`` share seed i): ``score``
    (labels, outputs) -> the metric, the label shape's. Rows are resampled with replacement; the two-sided p-value is
    how often the resampled difference crosses zero."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    n = len(labels)
    observed = float(np.mean([score(labels, pa) - score(labels, pb) for pa, pb in zip(a, b, strict=True)]))
    diffs = np.empty(resamples)
    for r in range(resamples):
        rows = rng.integers(0, n, n)
        diffs[r] = np.mean([score(labels[rows], pa[rows]) - score(labels[rows], pb[rows])
                            for pa, pb in zip(a, b, strict=True)])
    p = min(1.0, 2 * min(float((diffs <= 0).mean()), float((diffs >= 0).mean())))
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"difference": observed, "low": float(low), "high": float(high), "p_value": p,
            "significant": bool(p < 0.05 and observed != 0)}


def power_law(n, asymptote, scale, exponent):
    """The learning curve: the score approaches ``asymptote`` as ``scale * n ** -exponent`` shrinks."""
    return asymptote - scale * np.power(n, -exponent)


def fit_learning_curve(labels: list[float], scores: list[float]) -> dict | None:
    """Least-squares power law through (labels, score) points; None with fewer than 3 distinct label counts."""

    x, y = np.asarray(labels, dtype=float), np.asarray(scores, dtype=float)
    if len(np.unique(x)) < 3:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)  # flat points: no covariance; the fit itself stands
            (asymptote, scale, exponent), _ = curve_fit(
                power_law, x, y, p0=(min(1.0, y.max() + 0.02), max(y.max() - y.min(), 1e-3) * x.min() ** 0.5, 0.5),
                bounds=([y.max() - 1e-9, 0.0, 1e-3], [1.0 + 1e-9, np.inf, 5.0]), maxfev=20000)
    except (RuntimeError, ValueError):
        return None
    return {"asymptote": float(asymptote), "scale": float(scale), "exponent": float(exponent)}


def labels_needed(curve: dict, target: float) -> float | None:
    """Labels at which the fitted curve reaches ``target`` (None when its asymptote stays below it)."""
    gap = curve["asymptote"] - target
    if gap <= 0 or curve["scale"] <= 0:
        return None
    return float((curve["scale"] / gap) ** (1.0 / curve["exponent"]))


def labels_needed_interval(points: dict[float, list[float]], target: float, resamples: int = 300,
                           seed: int = 0) -> dict | None:
    """``points``: labels -> one score per seed. The estimate from the means, and a 95 % interval from refitting on
    seeds resampled with replacement at every label count."""
    rng = np.random.default_rng(seed)
    xs = sorted(points)
    curve = fit_learning_curve(xs, [float(np.mean(points[x])) for x in xs])
    if curve is None:
        return None
    estimate = labels_needed(curve, target)
    draws = []
    for _ in range(resamples):
        fit = fit_learning_curve(xs, [float(np.mean(rng.choice(points[x], len(points[x])))) for x in xs])
        needed = labels_needed(fit, target) if fit else None
        draws.append(np.inf if needed is None else needed)
    low, high = np.percentile(draws, [2.5, 97.5])
    return {"curve": curve, "target": target, "labels": estimate, "low": float(low),
            "high": float(high) if np.isfinite(high) else None}
