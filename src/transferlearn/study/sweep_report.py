"""``sweep.html``: the optimisation history, parameter importances, the score against each parameter, the trials."""

from __future__ import annotations

import html

from ..io import atomic_write_text
from ..plots import subplots
from ..report.html import figures_html, page, table_html


def history_figure(record: dict):
    fig, ax = subplots((6.0, 3.8))
    scored = [t for t in record["trials"] if t["value"] is not None]
    ax.scatter([t["number"] for t in scored], [t["value"] for t in scored], label="trial")
    pruned = [t for t in record["trials"] if t["state"] == "PRUNED" and t.get("validation") is not None]
    if pruned:
        ax.scatter([t["number"] for t in pruned], [t["validation"] for t in pruned], marker="x", label="pruned")
    best, running = [], None
    maximise = record["metric"] != "loss"
    for t in sorted(scored, key=lambda t: t["number"]):
        running = t["value"] if running is None else (max if maximise else min)(running, t["value"])
        best.append((t["number"], running))
    if best:
        ax.plot(*zip(*best, strict=True), color="tab:red", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {record['metric']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def importance_figure(importances: dict):
    fig, ax = subplots((6.0, 0.5 + 0.45 * len(importances)))
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names])
    ax.set_xlabel("importance (Optuna get_param_importances)")
    ax.grid(axis="x", alpha=0.3)
    return fig


def parameter_figures(record: dict) -> list:
    scored = [t for t in record["trials"] if t["value"] is not None]
    figures = []
    for name in sorted({k for t in scored for k in t["params"]}):
        fig, ax = subplots((4.2, 3.2))
        values = [t["params"].get(name) for t in scored]
        if all(isinstance(v, (int, float)) for v in values):
            ax.scatter(values, [t["value"] for t in scored])
            if name == "lr" or (min(values) > 0 and max(values) / max(min(values), 1e-12) > 50):
                ax.set_xscale("log")
        else:
            labels = [str(v) for v in values]
            ax.scatter(labels, [t["value"] for t in scored])
        ax.set_xlabel(name)
        ax.set_ylabel(f"validation {record['metric']}")
        ax.grid(alpha=0.3)
        figures.append((f"validation {record['metric']} vs {name}", fig))
    return figures


def render_sweep(sweep, record: dict) -> str:
    sections = []
    best = record.get("best")
    if best:
        sections.append(("Best trial", f"<p>trial {best['number']}: validation {html.escape(record['metric'])} "
                         f"<b>{best['value']:.4f}</b> with {html.escape(str(best['params']))}. Train it again with "
                         f"<code>tl train -c {html.escape(str(sweep.folder / 'best' / 'config.yaml'))}</code>.</p>"))
    figures = [("Optimisation history", history_figure(record))]
    importances = {k: v for k, v in (record.get("importances") or {}).items() if isinstance(v, (int, float))}
    if importances:
        figures.append(("Parameter importances", importance_figure(importances)))
    sections.append(("Plots", figures_html(figures + parameter_figures(record))))
    rows = [[t["number"], t["state"], str(t["params"]), f"{t['value']:.4f}" if t["value"] is not None
             else "-", t.get("wall_s") or "-", t.get("run") or "-"] for t in record["trials"]]
    sections.append(("Trials", table_html(["trial", "state", "parameters", f"validation {record['metric']}", "wall s",
                                           "run folder"], rows)))
    note = (f"data <b>{html.escape(sweep.config.data)}</b>, model <b>{html.escape(sweep.config.model)}</b>, strategy "
            f"<b>{html.escape(sweep.config.strategy)}</b>; TPE sampler, median pruner")
    return page(f"transferlearn sweep — {sweep.folder.name}", note, sections)


def write_sweep_report(sweep, record: dict) -> None:
    atomic_write_text(sweep.folder / "sweep.html", render_sweep(sweep, record))
