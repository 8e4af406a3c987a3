"""``tl sweep``: a hyper-parameter search with Optuna (TPE sampler, median pruning on the validation metric), each
trial an ordinary run from the same engine and Trainer factory as ``tl train``.

Why Optuna directly rather than ``Trainer.hyperparameter_search``: that API re-creates the model inside one
Trainer (``model_init``) and sets ``TrainingArguments`` fields. A transferlearn run is more than one Trainer
(a probe then a fine-tune, auto's candidates, strategies that build their own parameter groups and freeze
layers), with its own run folder and report. So each trial is a whole ``finetune`` and the Trainer's evaluations
report to Optuna through a callback (``OptunaReport``: it reports the score and flips ``should_training_stop``
when the pruner says so), the same mechanism ``hyperparameter_search`` uses internally. Trials of probe
strategies share the feature cache like any run.

Resumable: the study lives in ``sweep.db`` (Optuna's SQLite storage). Re-run the same command after a kill: the
interrupted trial is marked failed and its parameters are tried again first; finished trials are kept.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from functools import cached_property
from pathlib import Path

import yaml
from transformers import TrainerCallback

from ..config import TrainConfig, load_config
from ..errors import ConfigError
from ..io import atomic_write_json, atomic_write_text
from ..metrics import scalar_metrics
from ..modalities import detect_modality
from ..report.html import write_report
from ..train.engine import finetune
from .config import SweepConfig, parse_space
from .runner import tracking_group
from .sweep_report import write_sweep_report

log = logging.getLogger(__name__)


def suggest(trial, space: dict[str, dict]) -> dict:
    params = {}
    for key, spec in space.items():
        if spec["kind"] == "choice":
            params[key] = trial.suggest_categorical(key, spec["choices"])
        elif spec["kind"] == "int":
            params[key] = trial.suggest_int(key, spec["low"], spec["high"])
        else:
            params[key] = trial.suggest_float(key, float(spec["low"]), float(spec["high"]), log=spec["log"])
    return params


class OptunaReport(TrainerCallback):
    """Reports every validation score to the trial; when the pruner says stop, the run stops (and is marked)."""

    def __init__(self, trial, metric: str):
        self.trial, self.metric, self.pruned, self.reports = trial, metric, False, 0

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        key = "eval_loss" if self.metric == "loss" else f"eval_{self.metric}"
        if not metrics or key not in metrics:
            return
        self.trial.report(float(metrics[key]), self.reports)  # one step per evaluation, across a run's trainers
        self.reports += 1
        if self.trial.should_prune():
            self.pruned = True
            control.should_training_stop = True


class Sweep:
    def __init__(self, config: SweepConfig, settings: dict | None = None):
        self.config, self.settings = config, dict(settings or {})
        self.space = parse_space(config.space)
        name = f"{Path(config.model.split(':', 1)[-1]).name}-{Path(config.data.rstrip('/')).name}-" \
               f"{config.strategy.replace(':', '-')}"
        self.folder = Path(config.output) if config.output else Path("sweeps") / name

    @cached_property
    def metric(self) -> str:
        """The validation metric trials are ranked by: ``auto`` is the label shape's primary metric (read from the
        data when the sweep starts, not before its settings are checked)."""
        base = load_config(data=self.config.data, model=self.config.model, **self.settings)
        return base.metric if base.metric != "auto" else detect_modality(base).load_data(base).shape.primary_metric

    def trial_config(self, number: int, params: dict) -> TrainConfig:
        return load_config(**{"data": self.config.data, "model": self.config.model, "strategy": self.config.strategy,
                              **self.settings, **params, "seed": self.config.seed, "progress": False,
                              "output": str(self.folder / "trials" / f"trial-{number:03d}"), "overwrite": True})

    def _study(self):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.folder.mkdir(parents=True, exist_ok=True)
        return optuna.create_study(
            study_name="sweep", storage=f"sqlite:///{self.folder / 'sweep.db'}", load_if_exists=True,
            direction="minimize" if self.metric == "loss" else "maximize",
            sampler=optuna.samplers.TPESampler(seed=self.config.seed),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1))

    def _recover(self, study) -> None:
        """A trial left RUNNING by a killed process: marked failed, and its parameters queued to run again."""
        from optuna.trial import TrialState

        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            study.tell(trial.number, state=TrialState.FAIL)
            study.enqueue_trial(trial.params, skip_if_exists=False)
            log.info("trial %d was interrupted: it runs again with the same parameters", trial.number)

    def run(self, report=print) -> dict:
        import optuna
        from optuna.trial import TrialState

        if self.config.backend != "sequential":
            raise ConfigError(f"tl sweep --backend {self.config.backend}: a sweep's trials run in this process (they "
                              "report to its Optuna study as they train); use tl study for Ray, or drop --backend")
        study = self._study()
        self._recover(study)
        done = lambda: len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))  # noqa: E731
        budget = self.config.budget_s
        started = time.time()

        def objective(trial):
            params = suggest(trial, self.space)
            config = self.trial_config(trial.number, params)
            report(f"trial {trial.number}: {json.dumps(params)}")
            reporter = OptunaReport(trial, self.metric)
            began = time.time()
            self._group.before_run()
            run = finetune(config, callbacks=(reporter,), finish=(write_report,))
            trial.set_user_attr("run", str(Path(config.output).relative_to(self.folder)))
            trial.set_user_attr("wall_s", round(time.time() - began, 1))
            trial.set_user_attr("validation", run.metrics.get("validation", {}).get(self.metric)
                                if self.metric != "loss" else None)
            trial.set_user_attr("test", scalar_metrics(run.metrics["test"])
                                if "test" in run.metrics else None)
            if reporter.pruned:
                raise optuna.TrialPruned(f"validation {self.metric} below the median of earlier trials")
            if self.metric == "loss":
                return min(h["eval_loss"] for h in run.history if "eval_loss" in h)
            return run.metrics["validation"][self.metric]

        with tracking_group(self.folder, self.settings) as group:  # trials as one W&B group / MLflow parent
            self._group = group
            while done() < self.config.trials:
                if budget is not None and time.time() - started > budget:
                    report(f"time budget spent: {done()} of {self.config.trials} trials finished")
                    break
                study.optimize(objective, n_trials=1, catch=())
        return self.save(study)

    def save(self, study) -> dict:
        from optuna.trial import TrialState

        trials = [{"number": t.number, "state": t.state.name, "params": t.params, "value": t.value,
                   **{k: t.user_attrs.get(k) for k in ("run", "wall_s", "validation", "test")}}
                  for t in study.get_trials(deepcopy=False)]
        record = {"spec": {**self.config.model_dump(), "settings": self.settings}, "metric": self.metric,
                  "trials": trials}
        complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        if complete:
            best = study.best_trial
            record["best"] = {"number": best.number, "value": best.value, "params": best.params,
                              "run": best.user_attrs.get("run")}
            self._write_best(best)
            try:
                import optuna

                record["importances"] = optuna.importance.get_param_importances(study) if len(complete) > 1 else {}
            except (RuntimeError, ValueError) as exc:  # one distinct value per parameter: nothing to attribute
                record["importances"] = {"not computed": str(exc)}
        atomic_write_json(self.folder / "sweep.json", record)

        write_sweep_report(self, record)
        return record

    def _write_best(self, best) -> None:
        """``best/config.yaml`` (+ its ``plan.json``): ``tl train -c sweeps/X/best/config.yaml`` trains it again."""
        source = self.folder / best.user_attrs["run"]
        target = self.folder / "best"
        target.mkdir(exist_ok=True)
        text = yaml.safe_load((source / "config.yaml").read_text())
        text.update({"output": None, "overwrite": False})
        atomic_write_text(target / "config.yaml", yaml.safe_dump(text, sort_keys=False, allow_unicode=True))
        if (source / "plan.json").exists():
            shutil.copyfile(source / "plan.json", target / "plan.json")
