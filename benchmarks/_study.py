"""Shared by the study benchmarks: run a real ``Study`` (what ``tl study`` runs) and record what it found."""

from __future__ import annotations

import shutil

from _common import RESULTS, write_result


def shown(row: dict) -> str:
    interval = f" [{row['low']:.3f}, {row['high']:.3f}]" if row["low"] is not None else " (one seed)"
    return f"{row['arm']} {row['mean']:.3f}{interval}"


def transfer_vs_scratch(table: list[dict], fractions) -> dict:
    """At each fraction: the best transfer arm's mean and interval against the best scratch arm's."""
    verdict = {}
    for fraction in fractions:
        rows = [r for r in table if r["fraction"] == fraction]
        transfer = max((r for r in rows if not r["arm"].startswith("scratch")), key=lambda r: r["mean"], default=None)
        scratch = max((r for r in rows if r["arm"].startswith("scratch")), key=lambda r: r["mean"], default=None)
        if transfer and scratch:
            keep = ("arm", "labels", "mean", "low", "high", "n")
            verdict[f"{fraction:g}"] = {
                "transfer": {k: transfer[k] for k in keep}, "scratch": {k: scratch[k] for k in keep},
                "transfer_wins": transfer["mean"] > scratch["mean"],
                "intervals_separate": transfer["low"] is not None and scratch["high"] is not None
                and transfer["low"] > scratch["high"]}
    return verdict


def run_and_record(name: str, config, settings: dict, extra: dict | None = None) -> dict:
    from transferlearn.study.runner import Study

    study = Study(config, settings)
    record = study.run(report=lambda line: print(line, flush=True))
    analysis = record["analysis"]
    shutil.copyfile(study.folder / "study.html", RESULTS / f"{name}.html")
    payload = {"data": config.data, "model": config.model, "arms": config.arms, "fractions": config.fractions,
               "seeds": config.seeds, "metric": config.metric, "time_budget": config.time_budget, "settings": settings,
               "runs_done": len(record["runs"]), "runs_skipped": record["skipped"],
               "backbone_passes_over_train": record["backbone_passes_over_train"], "table": analysis["table"],
               "leaders": analysis["leaders"], "learning_curves": analysis["learning_curves"],
               "recommendation": analysis["recommendation"], "page": f"{name}.html",
               "runs": [{k: r.get(k) for k in ("name", "rows", "test", "validation", "wall_s", "cpu_s")}
                        for r in record["runs"]], **(extra(analysis) if extra else {})}
    path = write_result(name, payload)
    for line in analysis["recommendation"]:
        print("-", line)
    print(f"wrote {path} and {RESULTS / f'{name}.html'}")
    return payload
