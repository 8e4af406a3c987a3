"""``tl compare`` and ``tl runs``: several run folders side by side, and a leaderboard of every run under a folder."""

from __future__ import annotations

import html
import json
from pathlib import Path

from ..errors import ConfigError
from ..io import atomic_write_text
from ..plots import subplots
from ..run import Run
from .html import figures_html, page, table_html

NOT_COMPARED = ("output",)  # every run has its own folder: it names the columns instead
def scores_of(runs: list[Run]) -> list[str]:
    """The metrics the runs' label shapes show, in order (accuracy / macro-F1 ..., micro-F1 ..., RMSE ...)."""
    return list(dict.fromkeys(m for run in runs for m in run.shape.shown_metrics))


def same_shape(runs: list[Run]) -> None:
    """Side-by-side scores mean something only between runs of one label shape."""
    shapes = {run.shape.name for run in runs}
    if len(shapes) > 1:
        raise ConfigError("tl compare: the runs have different label shapes (" + ", ".join(
            f"{run_label(r, runs)}: {r.shape.name}" for r in runs) + "); their scores do not compare. Compare runs "
            "of one shape (tl runs lists them all).")


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
    shared, names = main_split(runs), scores_of(runs)
    for run in runs:
        metrics, train = run.metrics, run.metrics.get("train", {})
        metric = metrics.get("metric", run.shape.primary_metric)  # the metric the run was selected on
        split = shared if common_split else ("test" if "test" in metrics else "validation")
        rows.append({"run": run_label(run, runs), "path": str(run.path), "model": metrics.get("model"),
                     "strategy": metrics.get("strategy"), "data": Path(str(run.config.data).rstrip("/")).name,
                     "split": split, "problem": run.shape.name, "metric": metric,
                     "score": metrics.get(split, {}).get(metric),
                     **{k: metrics.get(split, {}).get(k) for k in names},
                     "validation_score": metrics.get("validation", {}).get(metric),
                     "train_s": train.get("runtime_s"), "trainable_parameters": train.get("trainable_parameters"),
                     "size_mb": round(run.layout.size_bytes() / 2**20, 1)})
    return rows


def part_scores(runs: list[Run]) -> tuple[str, list[list]]:
    """(what, rows of [class / tag / column / target, score of each run]) on the runs' shared split."""
    split = main_split(runs)
    scored = [run.shape.part_scores(run.metrics.get(split, {})) for run in runs]
    names = list(dict.fromkeys(name for _, parts in scored for name in parts))  # every run's parts, in order
    return scored[0][0], [[name, *[parts.get(name) for _, parts in scored]] for name in names]


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
    same_shape(runs)
    labels = [run_label(r, runs) for r in runs]
    differing = differing_keys(runs)
    rows = summary_rows(runs)
    split, metric = rows[0]["split"], rows[0]["metric"]
    score_table = table_html(["", *labels], [
        [f"{split} {k}", *[f"{r[k]:.4f}" if r[k] is not None else "-" for r in rows]] for k in scores_of(runs)] + [
        [f"validation {metric}", *[f"{r['validation_score']:.4f}" if r["validation_score"] is not None else "-"
                                   for r in rows]],
        ["training s", *[r["train_s"] for r in rows]], ["trainable parameters", *[r["trainable_parameters"] for r in rows]],
        ["size MB", *[r["size_mb"] for r in rows]]])
    config_table = (table_html(["key", *labels], [[k, *[json.dumps(v) for v in values]] for k, values in differing.items()])
                    if differing else "<p>The runs were trained with the same configuration.</p>")
    what, parts = part_scores(runs)
    class_table = table_html([what.split()[0], *labels], [[c[0], *[f"{v:.3f}" if v is not None else "-" for v in c[1:]]]
                                                          for c in parts])
    figures = [("Training loss", curves_figure(runs, "loss", "step", "Training loss")),
               ("Validation loss", curves_figure(runs, "eval_loss", "epoch", "Validation loss")),
               (f"Validation {metric}", curves_figure(runs, f"eval_{metric}", "epoch", f"Validation {metric}"))]
    sections = [("Scores", score_table), ("Configuration keys that differ", config_table),
                ("Curves", figures_html(figures)), (f"Per-{what} ({split})", class_table),
                ("Runs", "<ul>" + "".join(f"<li>{html.escape(label)}: {html.escape(str(r.path))}</li>"
                                         for label, r in zip(labels, runs, strict=True)) + "</ul>")]
    return page(f"transferlearn compare — {len(runs)} runs", f"scored on <b>{split}</b>", sections)


def write_compare(runs: list[Run], path: Path) -> Path:
    atomic_write_text(path, render_compare(runs))
    return path
