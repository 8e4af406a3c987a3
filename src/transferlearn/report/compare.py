"""``tl compare`` and ``tl runs``: several run folders side by side, and a leaderboard of every run under a folder."""

from __future__ import annotations

import html
import json
from pathlib import Path

from ..io import atomic_write_text
from ..plots import subplots
from ..run import Run
from .html import figures_html, page, table_html

NOT_COMPARED = ("output",)  # every run has its own folder: it names the columns instead
SCORES = ("accuracy", "macro_f1", "weighted_f1")


def find_runs(root: Path, max_depth: int = 4) -> list[Path]:
    """Finished run folders (config.yaml and metrics.json) under ``root``, itself included; hidden folders and a
    run's own sub-folders (model/, checkpoints/, auto/...) are not searched."""
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        if (folder / "config.yaml").exists() and (folder / "metrics.json").exists():
            found.append(folder)
            return
        if depth >= max_depth:
            return
        for child in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            walk(child, depth + 1)

    if root.is_dir():
        walk(root, 0)
    return found


def expand(paths: list[Path]) -> list[Run]:
    """Run folders as given; a folder that is not a run (a study, a runs/ folder) stands for the runs inside it."""
    runs = []
    for path in paths:
        if (path / "config.yaml").exists():
            runs.append(Run.load(path))
        else:
            runs += [Run.load(p) for p in find_runs(path)]
    return runs


def differing_keys(runs: list[Run]) -> dict[str, list]:
    """Config keys (as each run trained: the intent with its plan applied) whose values are not all equal."""
    configs = [run.config.model_dump(mode="json") for run in runs]
    keys = sorted({k for c in configs for k in c} - set(NOT_COMPARED))
    return {k: [c.get(k) for c in configs] for k in keys if len({json.dumps(c.get(k), sort_keys=True) for c in configs}) > 1}


def run_label(run: Run, runs: list[Run]) -> str:
    """The shortest trailing path that tells the runs apart (``full/f0.1-s42`` inside a study)."""
    for depth in range(1, 4):
        labels = ["/".join(r.path.parts[-depth:]) for r in runs]
        if len(set(labels)) == len(labels):
            return "/".join(run.path.parts[-depth:])
    return str(run.path)


def main_split(runs: list[Run]) -> str:
    return "test" if all("test" in r.metrics for r in runs) else "validation"


def summary_rows(runs: list[Run], common_split: bool = True) -> list[dict]:
    """One row per run, scored on the split all of them have (or, ``common_split=False``, each on its own test
    split when it has one: a leaderboard of unrelated runs)."""
    rows = []
    shared = main_split(runs)
    for run in runs:
        metrics, train = run.metrics, run.metrics.get("train", {})
        split = shared if common_split else ("test" if "test" in metrics else "validation")
        rows.append({"run": run_label(run, runs), "path": str(run.path), "model": metrics.get("model"),
                     "strategy": metrics.get("strategy"), "data": Path(str(run.config.data).rstrip("/")).name,
                     "split": split, **{k: metrics.get(split, {}).get(k) for k in SCORES},
                     "validation_macro_f1": metrics.get("validation", {}).get("macro_f1"),
                     "train_s": train.get("runtime_s"), "trainable_parameters": train.get("trainable_parameters"),
                     "size_mb": round(run.layout.size_bytes() / 2**20, 1)})
    return rows


def per_class_f1(runs: list[Run]) -> tuple[list[str], list[list]]:
    split = main_split(runs)
    names = list(dict.fromkeys(name for run in runs for name in run.label_names))  # every run's classes, in order
    table = []
    for name in names:
        table.append([name] + [run.metrics.get(split, {}).get("per_class", {}).get(name, {}).get("f1") for run in runs])
    return names, table


def curves_figure(runs: list[Run], key: str, x: str, title: str):
    fig, ax = subplots((6.4, 4.0))
    for run in runs:
        points = [(h[x], h[key]) for h in run.history if key in h]
        if points:
            ax.plot(*zip(*points, strict=True), marker="." if x == "epoch" else None, label=run_label(run, runs))
    ax.set_xlabel(x)
    ax.set_ylabel(key)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def render_compare(runs: list[Run]) -> str:
    labels = [run_label(r, runs) for r in runs]
    differing = differing_keys(runs)
    rows = summary_rows(runs)
    split = rows[0]["split"]
    score_table = table_html(["", *labels], [
        [f"{split} {k}", *[f"{r[k]:.4f}" if r[k] is not None else "-" for r in rows]] for k in SCORES] + [
        ["validation macro_f1", *[f"{r['validation_macro_f1']:.4f}" if r["validation_macro_f1"] is not None else "-"
                                  for r in rows]],
        ["training s", *[r["train_s"] for r in rows]], ["trainable parameters", *[r["trainable_parameters"] for r in rows]],
        ["size MB", *[r["size_mb"] for r in rows]]])
    config_table = (table_html(["key", *labels], [[k, *[json.dumps(v) for v in values]] for k, values in differing.items()])
                    if differing else "<p>The runs were trained with the same configuration.</p>")
    _, classes = per_class_f1(runs)
    class_table = table_html(["class", *labels], [[c[0], *[f"{v:.3f}" if v is not None else "-" for v in c[1:]]]
                                                  for c in classes])
    figures = [("Training loss", curves_figure(runs, "loss", "step", "Training loss")),
               ("Validation loss", curves_figure(runs, "eval_loss", "epoch", "Validation loss")),
               ("Validation macro-F1", curves_figure(runs, "eval_macro_f1", "epoch", "Validation macro-F1"))]
    sections = [("Scores", score_table), ("Configuration keys that differ", config_table),
                ("Curves", figures_html(figures)), (f"Per-class F1 ({split})", class_table),
                ("Runs", "<ul>" + "".join(f"<li>{html.escape(label)}: {html.escape(str(r.path))}</li>"
                                         for label, r in zip(labels, runs, strict=True)) + "</ul>")]
    return page(f"transferlearn compare — {len(runs)} runs", f"scored on <b>{split}</b>", sections)


def write_compare(runs: list[Run], path: Path) -> Path:
    atomic_write_text(path, render_compare(runs))
    return path
