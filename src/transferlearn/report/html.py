"""A self-contained ``report.html`` (plots embedded as PNG) for a run folder."""

from __future__ import annotations

import html
import json

import numpy as np
import yaml

from ..io import atomic_write_text
from ..plots import confusion_figure, subplots
from .looking import calibration_figure, errors_section, overfitting_diagnosis
from .markup import figures_html, page, table_html


def _series(history: list[dict], key: str) -> tuple[list, list]:
    points = [(h["step"], h[key]) for h in history if key in h]
    return [p[0] for p in points], [p[1] for p in points]


def loss_figure(history):
    fig, ax = subplots(figsize=(6, 3.6))
    for key, label in (("loss", "train loss"), ("eval_loss", "validation loss")):
        x, y = _series(history, key)
        if x:
            ax.plot(x, y, marker="o" if key == "eval_loss" else None, label=label)
    ax.set_xlabel("step"), ax.set_ylabel("loss"), ax.set_title("Loss"), ax.grid(alpha=0.3), ax.legend()
    return fig


def lr_figure(history):
    fig, ax = subplots(figsize=(6, 3.6))
    x, y = _series(history, "learning_rate")
    ax.plot(x, y)
    ax.set_xlabel("step"), ax.set_ylabel("learning rate"), ax.set_title("Learning-rate schedule"), ax.grid(alpha=0.3)
    return fig


def validation_figure(history, keys: tuple[str, ...] = ("macro_f1", "accuracy")):
    fig, ax = subplots(figsize=(6, 3.6))
    for key in (f"eval_{k}" for k in keys):
        points = [(h["epoch"], h[key]) for h in history if key in h]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=key.removeprefix("eval_"))
    ax.set_xlabel("epoch"), ax.set_title("Validation metrics"), ax.grid(alpha=0.3), ax.legend()
    return fig


def per_class_figure(split_metrics, title, table: str = "per_class"):
    names = list(split_metrics[table])
    fig, ax = subplots(figsize=(max(6, 0.6 * len(names) + 2), 3.6))
    x = np.arange(len(names))
    for i, key in enumerate(("precision", "recall", "f1")):
        ax.bar(x + (i - 1) * 0.27, [split_metrics[table][n][key] for n in names], 0.27, label=key)
    ax.set_xticks(x, names, rotation=45 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center")
    ax.set_ylim(0, 1.05), ax.set_title(title), ax.legend(ncols=3, fontsize=8), ax.grid(axis="y", alpha=0.3)
    return fig


METRIC_TITLES = {"macro_f1": "macro F1", "weighted_f1": "weighted F1", "micro_f1": "micro F1",
                 "mean_average_precision": "mean average precision", "subset_accuracy": "subset accuracy",
                 "flat_macro_f1": "flat macro F1", "mean_macro_f1": "mean macro F1", "mean_accuracy": "mean accuracy",
                 "exact_match": "exact match", "rmse": "RMSE", "mae": "MAE", "r2": "R²", "spearman": "Spearman"}


def _metrics_table(metrics: dict, shown: tuple[str, ...]) -> str:
    """Each scored split's headline metrics (the label shape's), with the baseline's under it."""
    rows = []
    baseline = metrics.get("baseline", {})

    def cells(m: dict) -> list:
        return [f"{m[k]:.4f}" if isinstance(m.get(k), (int, float)) else "-" for k in shown]

    for split in ("validation", "test"):
        if split in metrics:
            rows.append([split, metrics[split]["num_samples"], *cells(metrics[split])])
            if split in baseline:
                rows.append([f"baseline ({baseline['name']})", "", *cells(baseline[split])])
    return table_html(["split", "samples", *(METRIC_TITLES.get(k, k) for k in shown)], rows)


def _detail_table(shape, split_metrics: dict, split: str) -> str:
    headers, rows = shape.detail_table(split_metrics)
    return f"<p class='note'>{html.escape(split)}</p>" + table_html(headers, rows)


def per_column_figure(split_metrics, title):
    columns = list(split_metrics["columns"])
    fig, ax = subplots(figsize=(max(6, 0.8 * len(columns) + 2), 3.6))
    x = np.arange(len(columns))
    for i, key in enumerate(("accuracy", "macro_f1")):
        ax.bar(x + (i - 0.5) * 0.4, [split_metrics["columns"][c][key] for c in columns], 0.4, label=key)
    ax.set_xticks(x, columns, rotation=45 if len(columns) > 6 else 0, ha="right" if len(columns) > 6 else "center")
    ax.set_ylim(0, 1.05), ax.set_title(title), ax.legend(fontsize=8), ax.grid(axis="y", alpha=0.3)
    return fig


def _regression_values(run, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) in the data's units, rows x targets, from the saved predictions."""
    logits, labels = run.predictions(split)
    unscaled = [run.shape.decode(np.asarray(a, dtype=np.float64)) for a in (labels, logits)]

    def values(rows):
        return np.asarray([[r["value"]] if "value" in r else list(r["values"].values()) for r in rows])

    return values(unscaled[0]), values(unscaled[1])


def predicted_vs_true_figure(run, split: str, title: str):
    truth, predicted = _regression_values(run, split)
    fig, ax = subplots(figsize=(4.8, 4.4))
    for j, target in enumerate(run.shape.columns):
        ax.scatter(truth[:, j], predicted[:, j], s=10, alpha=0.6, label=target)
    low, high = float(min(truth.min(), predicted.min())), float(max(truth.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="grey", linestyle="--", label="predicted = true")
    ax.set_xlabel("true"), ax.set_ylabel("predicted"), ax.set_title(title), ax.grid(alpha=0.3), ax.legend(fontsize=8)
    return fig


def residuals_figure(run, split: str, title: str):
    truth, predicted = _regression_values(run, split)
    fig, ax = subplots(figsize=(4.8, 4.0))
    for j, target in enumerate(run.shape.columns):
        ax.scatter(predicted[:, j], truth[:, j] - predicted[:, j], s=10, alpha=0.6, label=target)
    ax.axhline(0, color="grey", linestyle="--")
    ax.set_xlabel("predicted"), ax.set_ylabel("true − predicted"), ax.set_title(title), ax.grid(alpha=0.3)
    return fig


def shape_figures(run, split: str) -> list[tuple[str, object]]:
    """The figures the run's label shape asks for, of one scored split."""
    metrics = run.metrics[split]
    makers = {
        "per_class": ("Per-class scores", lambda caption: per_class_figure(metrics, caption)),
        "confusion": ("Confusion matrix", lambda caption: confusion_figure(metrics, caption)),
        "per_label": ("Per-tag scores", lambda caption: per_class_figure(metrics, caption, "per_label")),
        "per_column": ("Per-column scores", lambda caption: per_column_figure(metrics, caption)),
        "predicted_vs_true": ("Predicted vs true", lambda caption: predicted_vs_true_figure(run, split, caption)),
        "residuals": ("Residuals", lambda caption: residuals_figure(run, split, caption)),
    }
    figures = []
    for kind in run.shape.report_figures:
        title, make = makers[kind]
        caption = f"{title} ({split})"
        try:
            figures.append((caption, make(caption)))
        except (KeyError, TypeError):  # an older run without the saved predictions or the table
            continue
    return figures


def _data_tables(summary: dict) -> str:
    """Splits and class counts as a table; the source, columns and notes as a list."""
    splits = summary.get("splits", {})
    labels = summary.get("labels", [])
    counted = all("per_class" in s for s in splits.values())
    counts = table_html(["split", "rows", *labels], [[split, s["rows"], *[s["per_class"].get(n, 0) for n in labels]]
                                                     for split, s in splits.items()]) if splits and counted else ""
    if splits and not counted:  # other label shapes: their own summary per split
        counts = table_html(["split", "rows", "labels"], [[split, s["rows"], json.dumps(
            {k: v for k, v in s.items() if k != "rows"}, ensure_ascii=False)[:400]] for split, s in splits.items()])
    facts = [f"source: {summary.get('source')}"] + [f"columns: {summary['columns']}"] * bool(summary.get("columns")) + \
        list(summary.get("notes", []))
    return counts + "<ul>" + "".join(f"<li>{html.escape(str(f))}</li>" for f in facts) + "</ul>"


def _config_tables(config, config_yaml: str) -> str:
    """The keys set differently from the defaults, then everything folded."""
    defaults = {name: field.default for name, field in type(config).model_fields.items()}
    values = config.model_dump(mode="json")
    changed = [[k, json.dumps(v, ensure_ascii=False)] for k, v in values.items()
               if k in defaults and defaults[k] is not ... and v != defaults[k] and k not in ("data", "model", "output")]
    return (f"<p>data <b>{html.escape(str(values.get('data')))}</b>, model <b>{html.escape(str(values.get('model')))}"
            "</b>; keys not at their defaults:</p>" + (table_html(["key", "value"], changed) if changed else "<p>none</p>")
            + f"<details><summary>the whole configuration</summary><pre>{html.escape(config_yaml)}</pre></details>")


def _plus_minus(candidate: dict) -> str:
    return f" ± {candidate['validation_se']:.4f}" if candidate.get("validation_se") is not None else ""


def _auto_section(auto: dict) -> list[tuple[str, str]]:
    rows = "".join(
        f"<tr><td>{html.escape(c['name'])}</td><td>{html.escape(c.get('strategy', ''))}</td>"
        f"<td>{c.get('epochs', '')}</td><td>{c['validation']:.4f}{_plus_minus(c)}</td><td>{c.get('seconds', '')}</td></tr>"
        if "validation" in c else
        f"<tr><td>{html.escape(c['name'])}</td><td colspan='4'>skipped: {html.escape(c['skipped'])}</td></tr>"
        for c in auto["candidates"])
    text = (f"<p><b>auto kept {html.escape(auto['winner'])}</b>: {html.escape(auto['why'])}. Budget "
            f"{auto.get('budget_s')} s, estimated {auto.get('estimate_s')} s, spent {auto.get('seconds')} s.</p>")
    return [("What auto tried", text + f"<table><tr><th>candidate</th><th>strategy</th><th>epochs</th>"
             f"<th>validation {html.escape(auto['metric'])} ± standard error</th><th>seconds</th></tr>{rows}</table>")]


def render_report(run, extra_sections: list[tuple[str, str]] | None = None) -> str:
    metrics, history = run.metrics, run.history
    train = metrics.get("train", {})
    figures = []
    if history:
        figures += [("Loss", loss_figure(history)), ("Learning rate", lr_figure(history)),
                    ("Validation metrics", validation_figure(history, run.shape.shown_metrics))]
    main_split = "test" if "test" in metrics else "validation"
    shape = run.shape
    if main_split in metrics:
        figures += shape_figures(run, main_split)

    calibration = calibration_figure(run)
    if calibration is not None:
        figures.append(("Calibration: reliability diagram", calibration))
    layout = run.layout
    for path, caption in ((layout.lr_find_plot, "LR finder (--lr auto)"),
                          (layout.augmentation, "Augmented training samples (what the model sees)"),
                          (layout.bench_plot, "Deployment variants: latency vs quality (tl bench)")):
        if path.exists():  # already rendered: embedded as they are
            figures.append((caption, path.read_bytes()))
    data_summary = run.data_summary
    config_yaml = yaml.safe_dump(run.config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    sections = [
        ("Results", f"<p>{html.escape(shape.describe())}</p>" + _metrics_table(metrics, shape.shown_metrics) + (
            f"<p style='color:#b00'><b>{html.escape(metrics['baseline']['warning'])}</b></p>"
            if metrics.get("baseline", {}).get("warning") else "") + (
            f"<p>Training: {train.get('runtime_s')} s, {train.get('steps')} steps, {train.get('epochs')} epochs, "
            f"{train.get('samples_per_second')} samples/s; trainable parameters {train.get('trainable_parameters'):,} "
            f"of {train.get('total_parameters'):,}.</p>" if train.get("trainable_parameters") is not None else "")),
        *(_auto_section(train["auto"]) if train.get("auto") else []),
        ("Plots", (f"<p>{html.escape(diagnosis)}</p>" if (diagnosis := overfitting_diagnosis(history)) else "")
         + figures_html(figures)),
        *([("What the model gets wrong", wrong)] if (wrong := errors_section(run)) else []),
        *([(shape.detail_title, _detail_table(shape, metrics[main_split], main_split))] if main_split in metrics else []),
        ("Data", _data_tables(data_summary)),
        ("Configuration", _config_tables(run.config, config_yaml)),
    ] + list(extra_sections or [])
    return page(f"transferlearn run — {run.path.name}",
                f"model <b>{html.escape(str(metrics.get('model')))}</b>, strategy "
                f"<b>{html.escape(str(metrics.get('strategy')))}</b>", sections)


def write_report(run, extra_sections=None) -> None:
    atomic_write_text(run.layout.report, render_report(run, extra_sections))
