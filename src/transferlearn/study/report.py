"""``study.html``: score vs labels (log axis, 95 % intervals), score vs compute, the table, and the recommendation."""

from __future__ import annotations

import html

import numpy as np

from ..io import atomic_write_text
from ..plots import subplots
from ..report.html import figures_html, page, table_html
from .stats import power_law


def _by_arm(table: list[dict]) -> dict[str, list[dict]]:
    arms: dict[str, list[dict]] = {}
    for row in table:
        arms.setdefault(row["arm"], []).append(row)
    return {arm: sorted(rows, key=lambda r: r["labels"]) for arm, rows in arms.items()}


def _error_bars(rows):
    means = np.array([r["mean"] for r in rows])
    low = np.array([r["low"] if r["low"] is not None else r["mean"] for r in rows])
    high = np.array([r["high"] if r["high"] is not None else r["mean"] for r in rows])
    return means, np.vstack([means - low, high - means])


def labels_figure(analysis: dict):
    fig, ax = subplots((6.4, 4.2))
    for arm, rows in _by_arm(analysis["table"]).items():
        xs = [r["labels"] for r in rows]
        means, bars = _error_bars(rows)
        line = ax.errorbar(xs, means, yerr=bars, marker="o", capsize=3, linestyle="--" if arm.startswith("scratch")
                           else "-", label=arm)
        curve = analysis["learning_curves"].get(arm)
        if curve:
            grid = np.geomspace(min(xs), max(xs), 60)
            fit = curve["curve"]
            ax.plot(grid, power_law(grid, fit["asymptote"], fit["scale"], fit["exponent"]), alpha=0.35,
                    color=line.lines[0].get_color())
    ax.set_xscale("log")
    ax.set_xlabel("labelled training examples (log)")
    ax.set_ylabel(f"{analysis['split']} {analysis['metric']} (mean, 95 % CI)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def compute_figure(analysis: dict):
    fig, ax = subplots((6.4, 4.2))
    for arm, rows in _by_arm(analysis["table"]).items():
        rows = [r for r in rows if r.get("cpu_minutes")]
        if rows:
            ax.plot([r["cpu_minutes"] for r in rows], [r["mean"] for r in rows], marker="o", label=arm)
    ax.set_xscale("log")
    ax.set_xlabel("CPU-minutes per run (log)")
    ax.set_ylabel(f"{analysis['split']} {analysis['metric']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def render_study(study, record: dict) -> str:
    analysis = record.get("analysis") or {}
    sections = []
    if analysis:
        sections.append(("Recommendation", "<ul>" + "".join(f"<li>{html.escape(line)}</li>"
                                                           for line in analysis["recommendation"]) + "</ul>"))
        sections.append(("Plots", figures_html([("Score vs number of labels", labels_figure(analysis)),
                                                ("Score vs compute", compute_figure(analysis))])))
        rows = [[r["arm"], f"{r['fraction']:g}", f"{r['labels']:,}", len(r["seeds"]), f"{r['mean']:.4f} ± {r['std']:.4f}",
                 f"{r['low']:.4f}-{r['high']:.4f}" if r["low"] is not None else "-", r["wall_s"],
                 r["cpu_minutes"] if r["cpu_minutes"] is not None else "-"] for r in analysis["table"]]
        sections.append(("Table", table_html(["arm", "fraction", "labels", "seeds", f"{analysis['metric']} mean ± std",
                                              "95 % CI", "wall s", "CPU-min"], rows)))
    if record.get("skipped"):
        sections.append(("Not run", table_html(["run", "why"], [[k, v] for k, v in record["skipped"].items()])))
    metric = analysis.get("metric", study.config.metric)
    runs = [[r["name"], r["rows"], r.get("test", r.get("validation", {})).get(metric), r.get("wall_s"),
             r.get("trainable_parameters"), r["run"]] for r in record["runs"]]
    sections.append(("Runs", table_html(["run", "rows", metric, "wall s", "trainable", "folder"], runs)))
    note = (f"data <b>{html.escape(study.config.data)}</b>, model <b>{html.escape(study.config.model)}</b>; "
            f"backbone passes over the training set for probe features: {record.get('backbone_passes_over_train')}")
    return page(f"transferlearn study — {study.folder.name}", note, sections)


def write_study_report(study, record: dict) -> None:
    atomic_write_text(study.folder / "study.html", render_study(study, record))
