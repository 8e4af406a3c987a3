"""``tl audit``: data quality before training, from one forward pass of the frozen backbone over every split.

The features come from the same cache as every linear probe (same backbone, same preprocessing, same rows), so
an audit followed by ``tl train`` extracts them once. Output: ``audit.json`` and a self-contained ``audit.html``
(examples inline, as the run report shows them); ``--fix-out DIR`` writes a cleaned copy of a table-style dataset
and never touches the original."""

from __future__ import annotations

import csv
import html
import time
from collections import Counter
from pathlib import Path

import numpy as np

from ..config import TrainConfig
from ..errors import ConfigError
from ..io import atomic_write_json, atomic_write_text
from ..layout import RunLayout
from ..report.html import page, table_html
from ..train.probe import probe_data
from ..train.setup import Setup
from . import checks
from .labels import label_audit, out_of_fold_outputs


def run_audit(config: TrainConfig, output: Path, near_threshold: float = 0.98, fix_out: Path | None = None,
              examples: int = 20, ranking_rows: int | None = None, report=print) -> dict:

    started = time.time()
    if fix_out is not None:
        _check_fix_out(Path(config.data), fix_out)
    config = config.model_copy(update={"strategy": "linear-probe", "augment": "none", "progress": False})
    setup = Setup.build(config)
    modality, shape = setup.modality, setup.data.shape
    if not shape.caches_features:
        raise ConfigError(f"tl audit reads one feature vector a row from the backbone; {shape.name} data (a tag per "
                          "word) has none yet. Audit the sentences' tags with the run's errors instead: tl errors RUN")
    audit = label_audit(shape)
    sizes = modality.input_sizes(config, setup.data, setup.bundle)
    if len(sizes) > 1:  # pictures far smaller than the backbone's input: the smaller size auto would also try
        setup = setup.at_input_size(min(sizes))
        report(f"audit: pictures at {min(sizes)} px (their median side is far below the backbone's {max(sizes)} px)")
    features = probe_data(config, setup, RunLayout(output))
    split_names, rows_in_split, items, blocks, labels = [], [], [], [], []
    for split, dataset in setup.data.splits.items():
        raw = dataset.with_format(None)
        items += modality.row_inputs(dataset)
        labels.append(np.asarray(raw["label"]))
        blocks.append(np.asarray(features.datasets[split].features, dtype=np.float32))
        split_names += [split] * len(dataset)
        rows_in_split += list(range(len(dataset)))
    x, y = np.concatenate(blocks), np.concatenate(labels)
    report(f"audit: {len(y):,} rows, {x.shape[1]} features per row ({time.time() - started:.0f} s so far)")

    def where(row: int) -> dict:
        item = items[row]
        shown = setup.modality.row_value(item)
        return {"row": row, "split": split_names[row], "split_row": rows_in_split[row],
                "input": shown if shown is not None else "<inline bytes>", "label": shape.describe_row(y[row])}

    outputs = out_of_fold_outputs(shape, x, y, seed=config.seed)
    issues = audit.issues(y, outputs)
    ranking = audit.ranking(y, outputs, ranking_rows or max(200, 3 * len(issues)))
    exact = checks.exact_duplicates([checks.content_hash(i) for i in items], split_names)
    same = {(a, b) for g in exact for a in g["rows"] for b in g["rows"] if a < b}
    near = checks.near_duplicates(x, split_names, near_threshold, same)
    balance = audit.balance({s: y[np.asarray(split_names) == s] for s in setup.data.splits})
    far = audit.outliers(x, y)
    flagged, common = _input_flags(modality, items, where)
    result = {
        "data": config.data, "model": config.model, "rows": int(len(y)), "feature_dim": int(x.shape[1]),
        "problem": shape.name, "issue_score": audit.score_name, "balance_title": audit.balance_title,
        "seconds": None, "near_duplicate_threshold": near_threshold, "class_balance": balance,
        "counts": {"label_issues": len(issues), "exact_duplicate_groups": len(exact),
                   "cross_split_exact_duplicates": sum(1 for g in exact if g["across"]),
                   "near_duplicate_pairs": len(near), "cross_split_near_duplicates": sum(1 for p in near if p["across"]),
                   "input_flags": len(flagged)},
        "label_issues": [{**where(i["row"]), **{k: v for k, v in i.items() if k != "row"}} for i in issues],
        "label_quality_ranking": [{**where(r["row"]), "quality": r["quality"], "suggested": r["suggested"]}
                                  for r in ranking],
        "exact_duplicates": [{"rows": [where(r) for r in g["rows"]], "across": g["across"]} for g in exact],
        "near_duplicates": [{"rows": [where(r) for r in p["rows"]], "cosine": p["cosine"], "across": p["across"]}
                            for p in near],
        "outliers": [{**where(o["row"]), "distance": o["distance"]} for o in far],
        "input_flags": flagged, "notes": setup.data.notes + common,
    }
    result["seconds"] = round(time.time() - started, 1)
    output.mkdir(parents=True, exist_ok=True)
    atomic_write_json(output / "audit.json", result)
    atomic_write_text(output / "audit.html", render_audit(result, modality, items, examples))
    if fix_out is not None:
        result["fixed"] = write_fixed_copy(result, setup, fix_out)
    return result


def _input_flags(modality, items: list, where) -> tuple[list[dict], list[str]]:
    """Per-row flags (tiny picture, silent clip, ...). A kind of flag that most rows share describes the dataset, not
    an odd row: it becomes one note ("most pictures are tiny: 28x28 px") instead of thousands of rows."""

    flags = {r: f for r, item in enumerate(items) if (f := modality.input_flags(item))}
    kinds = Counter(flag.split(":")[0] for row_flags in flags.values() for flag in set(row_flags))
    common = {kind for kind, count in kinds.items() if count > len(items) / 2}
    notes = [f"{count:,} of {len(items):,} rows are flagged '{kind}' "
             f"(e.g. {next(f for fs in flags.values() for f in fs if f.startswith(kind))}): a trait of this dataset, "
             "not listed row by row" for kind, count in kinds.items() if kind in common]
    rows = [{**where(r), "flags": kept} for r, row_flags in flags.items()
            if (kept := [f for f in row_flags if f.split(":")[0] not in common])]
    return rows, notes


def render_audit(result: dict, modality, items: list, examples: int) -> str:
    def shown(entry) -> str:
        item = items[entry["row"]]
        return f"<td class='example'>{modality.inline_html(item)}</td>"

    counts = result["counts"]
    issue_rows = "".join(f"<tr><td>{e['split']} {e['split_row']}</td>{shown(e)}<td>{html.escape(e['given'])}</td>"
                         f"<td>{html.escape(e['suggested'])}</td><td>{e['score']:.3f}</td></tr>"
                         for e in result["label_issues"][:examples])
    dup_rows = "".join("<tr>" + "".join(f"<td>{r['split']} {r['split_row']}</td>{shown(r)}" for r in g["rows"][:2])
                       + f"<td>{'across splits' if g['across'] else 'one split'}</td></tr>"
                       for g in result["exact_duplicates"][:examples])
    near_rows = "".join("<tr>" + "".join(f"<td>{r['split']} {r['split_row']}</td>{shown(r)}" for r in p["rows"])
                        + f"<td>{p['cosine']:.4f}</td></tr>" for p in result["near_duplicates"][:examples])
    far_rows = "".join(f"<tr><td>{o['split']} {o['split_row']}</td>{shown(o)}<td>{html.escape(o['label'])}</td>"
                       f"<td>{o['distance']:.3f}</td></tr>" for o in result["outliers"][:examples])
    balance = result["class_balance"]
    sections = [
        ("Summary", table_html(["check", "found"], [[k.replace("_", " "), v] for k, v in counts.items()])
         + (f"<p style='color:#b00'>{html.escape(balance['warning'])}</p>" if balance["warning"] else "")
         + "".join(f"<p class='note'>{html.escape(n)}</p>" for n in result["notes"])),
        ("Likely label errors", "<table><tr><th>row</th><th>input</th><th>given</th>"
         f"<th>suggested</th><th>{html.escape(result['issue_score'])}</th></tr>{issue_rows}</table>"),
        ("Exact duplicates", f"<table>{dup_rows}</table>" if dup_rows else "<p>None.</p>"),
        (f"Near duplicates (feature cosine ≥ {result['near_duplicate_threshold']})",
         f"<table>{near_rows}</table>" if near_rows else "<p>None.</p>"),
        (result["balance_title"], table_html(["split", *next(iter(balance["counts"].values()))],
                                             [[s, *c.values()] for s, c in balance["counts"].items()])),
        ("Outliers (far from every class centre, or from the data's centre)",
         f"<table><tr><th>row</th><th>input</th><th>label</th><th>distance</th></tr>{far_rows}</table>"),
        ("Inputs flagged", table_html(["row", "input", "flags"], [[f"{f['split']} {f['split_row']}", f["input"],
                                                                   "; ".join(f["flags"])]
                                                                  for f in result["input_flags"][:examples]])
         if result["input_flags"] else "<p>None.</p>"),
    ]
    note = (f"data <b>{html.escape(str(result['data']))}</b>, backbone <b>{html.escape(str(result['model']))}</b>; "
            f"{result['rows']:,} rows in {result['seconds']} s")
    return page("transferlearn audit", note, sections)


def _check_fix_out(source: Path, fix_out: Path) -> None:
    source, target = source.resolve(), fix_out.resolve()
    root = source if source.is_dir() else source.parent
    if target == root or root in target.parents or target in root.parents:
        raise ConfigError(f"--fix-out {fix_out}: it is, holds or sits inside the data ({root}); the original is never "
                          "written to: choose a folder outside it")
    if target.exists() and any(target.iterdir()):
        raise ConfigError(f"--fix-out {fix_out}: the folder is not empty; choose a new one")


def write_fixed_copy(result: dict, setup, fix_out: Path) -> dict:
    """A cleaned copy of a table-style dataset (inputs that are strings: texts): each training row that also sits
    in validation or test is dropped, and every row the audit doubts is marked in an ``audit_flag`` column."""
    if setup.modality.file_inputs:
        raise ConfigError("--fix-out writes a cleaned copy of table-style data (text); for pictures and clips, use "
                          "audit.json's rows to move or relabel files")
    flags: dict[tuple[str, int], list[str]] = {}
    for e in result["label_issues"]:
        flags.setdefault((e["split"], e["split_row"]), []).append(f"label? suggested {e['suggested']}")
    dropped = set()
    for group in result["exact_duplicates"]:
        if group["across"]:
            dropped |= {(r["split"], r["split_row"]) for r in group["rows"] if r["split"] == "train"}
    for pair in result["near_duplicates"]:
        for r in pair["rows"]:
            flags.setdefault((r["split"], r["split_row"]), []).append(f"near duplicate (cosine {pair['cosine']:.3f})")
    fix_out.mkdir(parents=True)
    shape, written = setup.data.shape, {}
    for split, dataset in setup.data.splits.items():
        raw = dataset.with_format(None)
        path = fix_out / f"{split}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            # tl train reads it back as it is: the label columns under their own names, then the flag
            writer.writerow([setup.modality.row_column, *shape.columns, "audit_flag"])
            kept = 0
            for row, (item, label) in enumerate(zip(raw[setup.modality.row_column], raw["label"], strict=True)):
                if (split, row) in dropped:
                    continue
                writer.writerow([setup.modality.row_value(item) or "", *shape.raw_cells(label),
                                 "; ".join(flags.get((split, row), []))])
                kept += 1
        written[split] = {"file": str(path), "rows": kept}
    return {"folder": str(fix_out), "splits": written, "dropped_train_rows": len(dropped)}
