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


def validation_figure(history):
    fig, ax = subplots(figsize=(6, 3.6))
    for key in ("eval_macro_f1", "eval_accuracy"):
        points = [(h["epoch"], h[key]) for h in history if key in h]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=key.removeprefix("eval_"))
    ax.set_xlabel("epoch"), ax.set_title("Validation metrics"), ax.grid(alpha=0.3), ax.legend()
    return fig


def per_class_figure(split_metrics, title):
    names = list(split_metrics["per_class"])
    fig, ax = subplots(figsize=(max(6, 0.6 * len(names) + 2), 3.6))
    x = np.arange(len(names))
    for i, key in enumerate(("precision", "recall", "f1")):
        ax.bar(x + (i - 1) * 0.27, [split_metrics["per_class"][n][key] for n in names], 0.27, label=key)
    ax.set_xticks(x, names, rotation=45 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center")
    ax.set_ylim(0, 1.05), ax.set_title(title), ax.legend(ncols=3, fontsize=8), ax.grid(axis="y", alpha=0.3)
    return fig


def _metrics_table(metrics: dict) -> str:
    rows = []
    baseline = metrics.get("baseline", {})
    for split in ("validation", "test"):
        if split in metrics:
            m = metrics[split]
            rows.append(f"<tr><td>{split}</td><td>{m['num_samples']}</td><td>{m['accuracy']:.4f}</td>"
                        f"<td>{m['macro_f1']:.4f}</td><td>{m['weighted_f1']:.4f}</td></tr>")
            if split in baseline:
                b = baseline[split]
                rows.append(f"<tr class='note'><td>baseline ({html.escape(baseline['name'])})</td><td></td>"
                            f"<td>{b['accuracy']:.4f}</td><td>{b['macro_f1']:.4f}</td><td>{b['weighted_f1']:.4f}</td></tr>")
    return ("<table><tr><th>split</th><th>samples</th><th>accuracy</th><th>macro F1</th><th>weighted F1</th></tr>"
            + "".join(rows) + "</table>")


def _per_class_table(split_metrics: dict, split: str) -> str:
    per_class = split_metrics.get("per_class", {})
    rows = [[name, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", m["support"]]
            for name, m in per_class.items()]
    return f"<p class='note'>{html.escape(split)}</p>" + table_html(["class", "precision", "recall", "F1", "support"],
                                                                    rows)


def _data_tables(summary: dict) -> str:
    """Splits and class counts as a table; the source, columns and notes as a list."""
    splits = summary.get("splits", {})
    labels = summary.get("labels", [])
    counts = table_html(["split", "rows", *labels], [[split, s["rows"], *[s["per_class"].get(n, 0) for n in labels]]
                                                     for split, s in splits.items()]) if splits else ""
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
                    ("Validation metrics", validation_figure(history))]
    main_split = "test" if "test" in metrics else "validation"
    if main_split in metrics:
        for title, make in (("Per-class scores", per_class_figure), ("Confusion matrix", confusion_figure)):
            caption = f"{title} ({main_split})"
            figures.append((caption, make(metrics[main_split], caption)))

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
        ("Results", _metrics_table(metrics) + (
            f"<p style='color:#b00'><b>{html.escape(metrics['baseline']['warning'])}</b></p>"
            if metrics.get("baseline", {}).get("warning") else "") + (
            f"<p>Training: {train.get('runtime_s')} s, {train.get('steps')} steps, {train.get('epochs')} epochs, "
            f"{train.get('samples_per_second')} samples/s; trainable parameters {train.get('trainable_parameters'):,} "
            f"of {train.get('total_parameters'):,}.</p>" if train.get("trainable_parameters") is not None else "")),
        *(_auto_section(train["auto"]) if train.get("auto") else []),
        ("Plots", (f"<p>{html.escape(diagnosis)}</p>" if (diagnosis := overfitting_diagnosis(history)) else "")
         + figures_html(figures)),
        *([("What the model gets wrong", wrong)] if (wrong := errors_section(run)) else []),
        *([("Per-class scores", _per_class_table(metrics[main_split], main_split))] if main_split in metrics else []),
        ("Data", _data_tables(data_summary)),
        ("Configuration", _config_tables(run.config, config_yaml)),
    ] + list(extra_sections or [])
    return page(f"transferlearn run — {run.path.name}",
                f"model <b>{html.escape(str(metrics.get('model')))}</b>, strategy "
                f"<b>{html.escape(str(metrics.get('strategy')))}</b>", sections)


def write_report(run, extra_sections=None) -> None:
    atomic_write_text(run.layout.report, render_report(run, extra_sections))
