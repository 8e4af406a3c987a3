"""``tl study``: every arm x fraction x seed as an ordinary run (the same engine as ``tl train``), into one folder.

- **Same evaluation for all**: the validation split is carved with the study's first seed for every run
  (``split_seed``), and the test split is the data's own, so every run is scored on the same rows.
- **Nested stratified subsets**: a fraction becomes ``max_train_samples``, whose rows are a prefix of a seeded
  stratified order (``data.splits.nested_order``): for one seed the 1 % rows lie inside the 10 % rows.
- **One feature extraction**: probes take their cached features from the whole training split's entry
  (``features_from_full_train``), so every probe arm, fraction and seed after the first is a cache hit.
- **Cheapest first, within a budget**: fractions ascending, then seeds, then arms by cost. With a time budget a
  run whose estimate (its arm's measured seconds per training row so far) does not fit what is left is skipped,
  and ``study.json`` says so.
- **Resumable**: a run is finished when its ``metrics.json`` and ``report.html`` exist. Re-running the same
  command skips finished runs and redoes an unfinished one from the start (``--overwrite`` of its own folder).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np

from ..config import load_config
from ..errors import ConfigError
from ..io import atomic_write_json
from ..metrics import scalar_metrics
from ..modalities import detect_modality
from ..run import Run
from ..strategies import parse_strategy
from ..strategies.auto import epochs_for
from .analysis import analyse
from .backends import executor_for
from .config import SCRATCH, StudyConfig, resolve_metric

log = logging.getLogger(__name__)

SCRATCH_LR = 1e-3  # random weights want a larger step than a pretrained network (the fashion_mnist benchmark's)
SCRATCH_COST = 4  # relative cost, for ordering only: above every strategy's own (strategies' relative_cost)
SPEC_KEYS = ("data", "model", "seed", "metric")  # what makes two studies different studies


def arm_settings(arm: str, model: str) -> dict:
    """The TrainConfig keys an arm sets."""
    if arm == SCRATCH:
        return {"model": model, "from_scratch": True, "strategy": "full", "lr": SCRATCH_LR}
    if arm.startswith(SCRATCH + ":"):
        return {"model": arm.split(":", 1)[1], "from_scratch": True, "strategy": "full", "lr": SCRATCH_LR}
    return {"model": model, "strategy": arm}


def arm_cost(arm: str) -> int:
    """The arm's strategy's relative cost (0 a probe on cached features ... 3 every layer); scratch trains most."""
    if arm == SCRATCH or arm.startswith(SCRATCH + ":"):
        return SCRATCH_COST
    return parse_strategy(arm).relative_cost


def run_name(arm: str, fraction: float, seed: int) -> str:
    """Unique within the study (it also names the run in the trackers): ``probe-then-finetune-f0.1-s42``."""
    return f"{arm.replace(':', '-')}-f{fraction:g}-s{seed}"


def default_study_dir(config: StudyConfig) -> Path:
    model = Path(config.model.split(":", 1)[-1]).name
    return Path("studies") / f"{model}-{Path(config.data.rstrip('/')).name}"


def is_finished(folder: Path) -> bool:
    return (folder / "metrics.json").exists() and (folder / "report.html").exists()


class Study:
    """One study folder: ``study.json`` (spec, every run, the analysis), ``study.html`` and ``runs/``."""

    def __init__(self, config: StudyConfig, settings: dict | None = None):
        self.config = config
        self.settings = dict(settings or {})
        self.folder = Path(config.output) if config.output else default_study_dir(config)
        self.record_file = self.folder / "study.json"
        self.runs_folder = self.folder / "runs"
        self.records: dict[str, dict] = {}
        self.skipped: dict[str, str] = {}

    # --- the plan of runs ----------------------------------------------------------------------------------
    def seeds(self) -> list[int]:
        return [self.config.seed + s for s in range(self.config.seeds)]

    def planned(self) -> list[tuple[str, float, int]]:
        arms = sorted(self.config.arms, key=lambda a: (arm_cost(a), self.config.arms.index(a)))
        return [(arm, fraction, seed) for fraction in self.config.fractions for seed in self.seeds() for arm in arms]

    def train_config(self, arm: str, fraction: float, seed: int, train_rows: int, budget_left: float | None):
        rows = None if fraction >= 1 else max(1, round(fraction * train_rows))
        values = {"data": self.config.data, "metric": self.config.metric, **self.settings,
                  **arm_settings(arm, self.config.model), "seed": seed, "split_seed": self.config.seed,
                  "max_train_samples": rows, "features_from_full_train": True, "progress": False,
                  "output": str(self.runs_folder / run_name(arm, fraction, seed)), "overwrite": True}
        if budget_left is not None and "time_budget" not in self.settings:
            values["time_budget"] = f"{max(int(budget_left), 60)}s"  # auto's candidates fit what the study has left
        return load_config(**values)

    # --- running ------------------------------------------------------------------------------------------
    def _check_same_study(self) -> None:
        if not self.record_file.exists():
            return
        before = json.loads(self.record_file.read_text()).get("spec", {})
        mine = self.spec()
        changed = [k for k in (*SPEC_KEYS, "settings") if before.get(k) != mine.get(k)]
        if changed:
            raise ConfigError(f"{self.folder} holds another study (different {', '.join(changed)}): its runs would be "
                              "mixed with this one's. Use another --output, or delete that folder.")
        self.records = {r["name"]: r for r in json.loads(self.record_file.read_text()).get("runs", []) if "name" in r}

    def spec(self) -> dict:
        return {**self.config.model_dump(), "settings": self.settings}

    def train_rows(self):
        """(training rows once validation is held out, the label shape), from the data as the runs will load it;
        the study's metric is resolved against the shape (``auto``: its primary metric)."""

        base = load_config(data=self.config.data, model=self.config.model, seed=self.config.seed,
                           **{k: v for k, v in self.settings.items() if k not in ("max_train_samples",)})
        data = detect_modality(base).load_data(base)
        self.metric = resolve_metric(self.config.metric, data.shape)
        return len(data.splits["train"]), data.shape

    def planned_steps(self, rows: int) -> int:
        """Optimizer steps a fine-tune on ``rows`` rows will take: the engine's own rule (epochs raised to reach
        min_steps on small data), so a run's cost is estimated in steps, not rows."""

        base = load_config(data=self.config.data, model=self.config.model, **self.settings)
        per_epoch = math.ceil(rows / base.global_batch_size)
        asked = base.epochs if "epochs" in self.settings else None
        return math.ceil(per_epoch * epochs_for(per_epoch, base.min_steps, asked, base.epochs))

    def estimate(self, arm: str, rows: int) -> float | None:
        """Seconds for ``arm`` on ``rows`` rows from its finished runs: a line through (optimizer steps, seconds)
        when they trained for different step counts (the fixed cost of loading and scoring is the intercept), else
        seconds per step; none for a linear probe on cached features (seconds, whatever the rows)."""
        done = [r for r in self.records.values() if r["arm"] == arm and r.get("wall_s")]
        if not done:
            return None
        if parse_strategy(arm_settings(arm, self.config.model)["strategy"]).uses_cached_features:
            return None  # cached features: seconds whatever the rows (its first run pays the one extraction)
        stepped = [r for r in done if r.get("steps")]
        if stepped:
            steps, walls = np.array([r["steps"] for r in stepped], float), np.array([r["wall_s"] for r in stepped], float)
            planned = self.planned_steps(rows)
            if len(set(steps.tolist())) >= 2:
                slope, intercept = np.polyfit(steps, walls, 1)
                if slope > 0:
                    return float(max(intercept, 0.0) + slope * planned)
            return float(np.median(walls / steps) * planned)
        largest = max(done, key=lambda r: r["rows"])
        return max(min(r["wall_s"] for r in done), largest["wall_s"] * rows / max(largest["rows"], 1))

    def run(self, report=print) -> dict:
        self._check_same_study()
        self.folder.mkdir(parents=True, exist_ok=True)
        started = time.time()
        budget = self.config.budget_s
        pool, shape = self.train_rows()
        planned = self.planned()
        report(f"study: {len(self.config.arms)} arms x {len(self.config.fractions)} fractions x "
               f"{self.config.seeds} seeds = {len(planned)} runs on {pool:,} training rows -> {self.folder}")
        waiting = []  # (number, arm, fraction, seed), in the study's order
        for number, (arm, fraction, seed) in enumerate(planned, 1):
            name = run_name(arm, fraction, seed)
            if is_finished(self.runs_folder / name):
                self.records.setdefault(name, self._record(name, arm, fraction, seed, self.runs_folder / name, None))
                self.skipped.pop(name, None)
            else:
                waiting.append((number, arm, fraction, seed))
        with tracking_group(self.folder, self.settings) as group:
            executor = executor_for(self.config, group.before_run)
            try:
                running: dict[str, tuple] = {}
                while waiting or running:
                    chosen = self._next_run(waiting, running, executor.slots)
                    if chosen is None:  # every slot is taken, or the next runs wait for their arm's first run
                        for name, timing in executor.finished(wait=True):
                            self._finish(name, running.pop(name), timing, shape)
                        continue
                    waiting.remove(chosen)
                    number, arm, fraction, seed = chosen
                    name = run_name(arm, fraction, seed)
                    rows = pool if fraction >= 1 else max(1, round(fraction * pool))
                    left = None if budget is None else budget - (time.time() - started)
                    guess = self.estimate(arm, rows)
                    if left is not None and (left <= 0 or (guess is not None and guess > left)):
                        self.skipped[name] = (f"not run: ~{guess:.0f} s estimated, {max(left, 0):.0f} s of the "
                                              f"{budget:.0f} s budget left" if guess else "not run: the budget is spent")
                        report(f"[{number}/{len(planned)}] {name}: {self.skipped[name]}")
                        continue
                    report(f"[{number}/{len(planned)}] {name}: {rows:,} rows" +
                           (f", ~{guess:.0f} s estimated" if guess else ""))
                    running[name] = (arm, fraction, seed)
                    executor.submit(name, self.train_config(arm, fraction, seed, pool, left), group.remote_env())
                    for done, timing in executor.finished():
                        self._finish(done, running.pop(done), timing, shape)
            finally:
                executor.close()
        return self.save(shape, final=True)

    def _next_run(self, waiting: list[tuple], running: dict[str, tuple], slots: int) -> tuple | None:
        """The first waiting run that may start now: a slot is free, and its arm's first run is finished or it is that
        first run (so the arm's cost is measured, and its features extracted once, before the arm fans out)."""
        if len(running) >= slots:
            return None
        finished_arms = {r["arm"] for r in self.records.values()}
        running_arms = {arm for arm, _, _ in running.values()}
        for item in waiting:
            arm = item[1]
            if arm in finished_arms or arm not in running_arms:
                return item
        return None

    def _finish(self, name: str, run: tuple, timing: dict, shape) -> None:
        arm, fraction, seed = run
        self.records[name] = self._record(name, arm, fraction, seed, self.runs_folder / name, timing)
        self.save(shape)  # after every run: a killed study keeps what it measured

    def _record(self, name, arm, fraction, seed, folder: Path, timing: dict | None) -> dict:
        run = Run.load(folder)
        metrics = run.metrics
        train = metrics.get("train", {})
        cache = train.get("feature_cache", {}).get("train")
        record = {"name": name, "arm": arm, "fraction": fraction, "seed": seed, "rows": train.get("num_samples"),
                  "steps": train.get("steps"),
                  "run": str(folder.relative_to(self.folder)), "trainable_parameters": train.get("trainable_parameters"),
                  "train_features_extracted": None if cache is None else not cache["hit"]}
        for split in ("validation", "test"):
            if split in metrics:
                record[split] = scalar_metrics(metrics[split])
        if timing is None:  # finished by an earlier, interrupted invocation: its own training time is what is known
            record.update({"wall_s": train.get("runtime_s"), "cpu_s": None, "timing": "metrics.json runtime_s"})
        else:
            record.update({"wall_s": round(timing["wall_s"], 1), "cpu_s": round(timing["cpu_s"], 1)})
        return record

    def save(self, shape, final: bool = False) -> dict:

        runs = sorted(self.records.values(), key=lambda r: (r["fraction"], r["seed"], arm_cost(r["arm"])))
        record = {"spec": self.spec(), "runs": runs, "skipped": self.skipped,
                  "backbone_passes_over_train": sum(1 for r in runs if r.get("train_features_extracted")),
                  "analysis": analyse(self, runs, shape) if runs else {}}
        atomic_write_json(self.record_file, record)
        if final:
            from .report import write_study_report

            write_study_report(self, record)
        return record


@contextlib.contextmanager
def tracking_group(folder: Path, settings: dict):
    """A multi-run command's runs as one group in the trackers: a W&B group named after the folder; for MLflow
    one store in the folder (``mlflow.db``) with a parent run and every run nested under it. Variables the user
    set are left alone; the rest are restored afterwards."""
    report_to = load_config(data="-", model="-", **{k: v for k, v in settings.items() if k == "report_to"}).report_to
    values = {"WANDB_RUN_GROUP": folder.name}
    if "mlflow" in report_to:
        values.update({"MLFLOW_TRACKING_URI": f"sqlite:///{(folder / 'mlflow.db').resolve()}",
                       "MLFLOW_EXPERIMENT_NAME": "transferlearn", "MLFLOW_NESTED_RUN": "true"})
    uri_before = None
    if "mlflow" in report_to:
        import mlflow

        uri_before = mlflow.get_tracking_uri()  # before the study's variables: what the process had
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    group = _MlflowParent(folder.name, uri_before) if "mlflow" in report_to else _NoParent()
    group.variables = {k: os.environ[k] for k in values}  # the user's where set, else the study's
    try:
        yield group
    finally:
        group.close()
        for key in added:
            os.environ.pop(key, None)


class _NoParent:
    variables: dict[str, str] = {}

    def before_run(self) -> None:
        pass

    def remote_env(self) -> dict[str, str]:
        """The group's variables for a run in another process (a Ray worker)."""
        return dict(self.variables)

    def close(self) -> None:
        pass


class _MlflowParent:
    """The study's parent run, made the active run again before every run: the Trainer's MLflow callback nests
    a run under whatever is active, and a run it did not end (a probe's evaluation-only trainer) or one its
    clean-up ended (``__del__``) must not leave the next run under the wrong parent or under none."""

    def __init__(self, name: str, uri_before: str):
        import mlflow

        self.uri_before, self.had_experiment_id = uri_before, "MLFLOW_EXPERIMENT_ID" in os.environ
        mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
        mlflow.set_experiment(os.environ["MLFLOW_EXPERIMENT_NAME"])
        self.mlflow = mlflow
        self.parent_id = mlflow.start_run(run_name=name).info.run_id

    def before_run(self) -> None:
        while (active := self.mlflow.active_run()) is not None and active.info.run_id != self.parent_id:
            self.mlflow.end_run()
        if self.mlflow.active_run() is None:
            self.mlflow.start_run(run_id=self.parent_id)

    def remote_env(self) -> dict[str, str]:
        """For a run in another process: no active parent run there to nest under, so the child names its parent
        by the tag MLflow's UI nests by (the Trainer's callback sets MLFLOW_TAGS on the run it starts)."""
        env = {k: v for k, v in self.variables.items() if k != "MLFLOW_NESTED_RUN"}
        return {**env, "MLFLOW_TAGS": json.dumps({"mlflow.parentRunId": self.parent_id})}

    def close(self) -> None:
        while self.mlflow.active_run() is not None:
            self.mlflow.end_run()
        self.mlflow.set_tracking_uri(self.uri_before)  # the process's own setting, as it was
        if not self.had_experiment_id:
            os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


def run_study(config: StudyConfig, settings: dict | None = None, report=print) -> dict:
    return Study(config, settings).run(report)
