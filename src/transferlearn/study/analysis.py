"""From a study's runs to its table and its recommendation in plain words, each claim with its number."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..run import Run
from .stats import labels_needed_interval, mean_interval, paired_bootstrap


def scored_split(runs: list[dict]) -> str:
    return "test" if all("test" in r for r in runs) else "validation"


def _predictions(study, record: dict, split: str):
    stored = Run.load(study.folder / record["run"]).predictions(split)
    if stored is None:
        return None
    logits, labels = stored
    return labels, logits


def analyse(study, runs: list[dict], shape) -> dict:
    """``shape``: the runs' label shape (its metric scores the paired test; its floor bounds the intervals)."""
    metric = study.metric
    split = scored_split(runs)
    groups: dict[tuple[str, float], list[dict]] = defaultdict(list)
    for r in runs:
        groups[(r["arm"], r["fraction"])].append(r)
    table = []
    for (arm, fraction), members in sorted(groups.items(), key=lambda item: (item[0][1], item[0][0])):
        scores = [m[split][metric] for m in members]
        cpu = [m["cpu_s"] for m in members if m.get("cpu_s") is not None]
        table.append({"arm": arm, "fraction": fraction, "labels": round(float(np.mean([m["rows"] for m in members]))),
                      "seeds": sorted(m["seed"] for m in members),
                      **mean_interval(scores, bounds=(shape.metric_floor, 1.0)),
                      "wall_s": round(float(np.mean([m["wall_s"] for m in members if m.get("wall_s") is not None]
                                                    or [0.0])), 1),
                      "cpu_minutes": round(float(np.mean(cpu)) / 60, 2) if cpu else None})
    fractions = sorted({row["fraction"] for row in table})
    leaders = {f: _compare_leaders(study, [row for row in table if row["fraction"] == f], groups, split, metric, shape)
               for f in fractions}
    curves = {}
    for arm in study.config.arms:
        points = {}
        for fraction in fractions:
            members = groups.get((arm, fraction))
            if members:
                points[float(np.mean([m["rows"] for m in members]))] = [m[split][metric] for m in members]
        if len(points) >= 3:
            full = points[max(points)]
            fit = labels_needed_interval(points, study.config.target * float(np.mean(full)))
            if fit is not None:
                curves[arm] = {**fit, "full_data_score": float(np.mean(full)), "full_data_labels": max(points)}
    return {"split": split, "metric": metric, "table": table, "leaders": {f"{f:g}": v for f, v in leaders.items()},
            "learning_curves": curves,
            "recommendation": recommend(study.config, table, leaders, curves, split, metric)}


def _compare_leaders(study, rows: list[dict], groups, split: str, metric: str, shape) -> dict:
    ranked = sorted(rows, key=lambda row: row["mean"], reverse=True)
    best = ranked[0]
    result = {"best": best["arm"], "mean": best["mean"], "low": best["low"], "high": best["high"]}
    if len(ranked) < 2:
        return result
    runner_up = ranked[1]
    result["runner_up"] = runner_up["arm"]
    result["runner_up_mean"] = runner_up["mean"]
    a = {m["seed"]: m for m in groups[(best["arm"], best["fraction"])]}
    b = {m["seed"]: m for m in groups[(runner_up["arm"], runner_up["fraction"])]}
    shared = sorted(set(a) & set(b))
    pairs = [(_predictions(study, a[s], split), _predictions(study, b[s], split)) for s in shared]
    pairs = [(pa, pb) for pa, pb in pairs if pa is not None and pb is not None]
    if pairs:
        labels = pairs[0][0][0]
        result["paired_test"] = {"kind": f"paired bootstrap over {split} rows, {len(pairs)} seed(s)",
                                 **paired_bootstrap(labels, [pa[1] for pa, _ in pairs], [pb[1] for _, pb in pairs],
                                                    lambda y, out: shape.score(metric, y, out))}
    return result


def _pct(fraction: float) -> str:
    return f"{fraction:.0%}" if fraction >= 0.01 else f"{fraction:.1%}"


def _interval(row) -> str:
    return f" (95 % CI {row['low']:.3f}-{row['high']:.3f})" if row.get("low") is not None else ""


def recommend(config, table: list[dict], leaders: dict, curves: dict, split: str, metric: str) -> list[str]:
    """Sentences a user can act on, each carrying the number behind it."""
    lines = []
    metric = metric.replace("_", "-")
    for fraction, lead in leaders.items():
        row = next(r for r in table if r["fraction"] == fraction and r["arm"] == lead["best"])
        text = (f"With {_pct(fraction)} of the labels ({row['labels']:,}): {lead['best']} is best, {split} {metric} "
                f"{lead['mean']:.3f}{_interval(row)}")
        if "runner_up" in lead:
            test = lead.get("paired_test")
            verdict = "" if test is None else (
                f"; its lead of {test['difference']:+.3f} is {'significant' if test['significant'] else 'not significant'}"
                f" ({test['kind']}, p = {test['p_value']:.3f})")
            text += f", ahead of {lead['runner_up']} {lead['runner_up_mean']:.3f}{verdict}"
        lines.append(text + ".")
    scratch = [a for a in config.arms if a.startswith("scratch")]
    transfer = [a for a in config.arms if not a.startswith("scratch")]
    if scratch and transfer:
        for fraction in leaders:
            best_t = max((r for r in table if r["fraction"] == fraction and r["arm"] in transfer),
                         key=lambda r: r["mean"], default=None)
            best_s = max((r for r in table if r["fraction"] == fraction and r["arm"] in scratch),
                         key=lambda r: r["mean"], default=None)
            if best_t and best_s:
                gap = best_t["mean"] - best_s["mean"]
                verb = "beats" if gap > 0 else "ties with" if gap == 0 else "loses to"
                lines.append(f"At {_pct(fraction)}: transfer ({best_t['arm']}, {best_t['mean']:.3f}) {verb} training "
                             f"from scratch ({best_s['arm']}, {best_s['mean']:.3f}): {gap:+.3f} {metric}.")
    for arm, curve in curves.items():
        fewest = min(r["labels"] for r in table if r["arm"] == arm)
        reference = f"its score with the most labels tried ({curve['full_data_score']:.3f} with " \
                    f"{curve['full_data_labels']:,.0f})"
        if curve["labels"] is not None and curve["labels"] <= fewest:
            lines.append(f"{arm} is within {config.target:.0%} of {reference} already with the fewest labels tried "
                         f"({fewest:,}).")
            continue
        if curve["labels"] is None:
            lines.append(f"{arm}: the fitted learning curve levels off below {config.target:.0%} of {reference}.")
            continue
        high = f"{curve['high']:,.0f}" if curve.get("high") else "beyond the data's reach"
        lines.append(f"{arm} reaches {config.target:.0%} of {reference}, i.e. {curve['target']:.3f}, at about "
                     f"{curve['labels']:,.0f} labels (95 % interval {curve['low']:,.0f}-{high}; power-law fit, "
                     f"exponent {curve['curve']['exponent']:.2f}).")
    return lines
