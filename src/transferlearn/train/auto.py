"""``--strategy auto`` (the default): a converged linear probe, then the planned fine-tuning candidates, each from
the probed head; the best validation score wins, the probe included. What was tried, each candidate's score and
cost, and why the winner won go to ``auto.json``, ``metrics.json`` and the report.

The candidates and their epochs were chosen before training (``plan.json``: data size, measured step times, the
time budget; see ``strategies/auto.py``). A candidate that would overrun the budget as it stands is skipped.
"""

from __future__ import annotations

import copy
import logging
import math
import shutil
import time

from .. import distributed
from ..config import Plan, TrainConfig
from ..io import atomic_write_json
from ..layout import RunLayout
from ..metrics import bootstrap_standard_error
from ..strategies import parse_strategy
from ..strategies.auto import choose_winner, evaluation_steps, fit_epochs
from ..strategies.base import freeze_batchnorm_statistics
from .callbacks import Deadline, raise_if_interrupted
from .setup import Setup
from .trainer import make_trainer, training_arguments

log = logging.getLogger(__name__)


def _score(trainer, metric: str, seed: int) -> dict:
    """Validation score (higher is better: ``loss`` is negated), loss and the score's bootstrap standard error of a
    trained model as it stands (a fine-tune: its best epoch)."""
    result = trainer.predict(trainer.eval_dataset, metric_key_prefix="eval")
    logits = result.predictions[0] if isinstance(result.predictions, tuple) else result.predictions
    loss = float(result.metrics["eval_loss"])
    score = -loss if metric == "loss" else float(result.metrics[f"eval_{metric}"])
    se = bootstrap_standard_error(metric, result.label_ids, logits, seed=seed)
    return {"validation": round(score, 4), "validation_loss": round(loss, 4), "validation_se": round(se, 4)}


def _cpu_copy(model) -> dict:
    return {key: value.detach().to("cpu", copy=True) for key, value in model.state_dict().items()}


def run_auto(config: TrainConfig, plan: Plan, setup: Setup, layout: RunLayout, outcome,
             run_started: float | None = None) -> None:
    """Fill ``outcome`` (trainer, output, model, eval sets, extra) with the winner. The budget counts from
    ``run_started`` (loading and planning included); no candidate trains past it."""
    from .probe import probe_data, solve_probe

    started = run_started or time.time()
    bundle = setup.bundle
    metric = config.metric
    probe = probe_data(config, setup, layout, splits=("train", "validation"))
    probe_trainer, probe_output, fit = solve_probe(config, bundle, probe, layout.auto, main=True)
    probe_score = _score(probe_trainer, metric, config.seed)
    tried = [{"name": "linear-probe", "strategy": "linear-probe", **probe_score,
              "seconds": round(time.time() - started, 1), "l2": fit["l2"]}]
    log.info("auto: converged probe scores %.4f %s on validation (L2 %g)", probe_score["validation"], metric,
             fit["l2"])
    probed = copy.deepcopy(bundle.model.state_dict())  # pretrained backbone + probed head: every candidate's start
    # the first fine-tune with the highest score so far: choose_winner keeps the first of equals, so no other
    # fine-tune can win and only this one's weights are held
    best: dict | None = None
    pace = {"estimated": 0.0, "actual": 0.0}

    def attempt(planned: dict) -> None:
        nonlocal best
        elapsed = time.time() - started
        left = None if plan.budget_s is None else plan.budget_s - plan.reserve_s - elapsed
        scale = pace["actual"] / pace["estimated"] if pace["estimated"] else 1.0  # the pace measured so far
        epochs = distributed.agree(fit_epochs(planned, left, scale))  # from clocks: rank 0's decides for all
        if epochs < min(0.5, planned.get("wanted_epochs") or planned["epochs"]):
            tried.append({**planned, "skipped": f"{elapsed:.0f} s spent of the {plan.budget_s:.0f} s budget; one epoch "
                          f"takes ~{planned['epoch_s'] * scale:.0f} s at the measured pace"})
            return
        candidate = {**planned, "epochs": epochs}
        bundle.model.load_state_dict(probed)
        start = time.time()
        deadline = None if plan.budget_s is None else started + plan.budget_s - plan.reserve_s
        trainer, output, stopped = _finetune_candidate(config, setup, layout, candidate, deadline)
        pace["estimated"] += candidate["epoch_s"] * float(trainer.state.epoch or epochs)
        pace["actual"] += time.time() - start
        score = _score(trainer, metric, config.seed)
        tried.append({**candidate, **score, "seconds": round(time.time() - start, 1), "steps": output.global_step,
                      **({"stopped": "the time budget ran out"} if stopped else {})})
        log.info("auto: %s (%s) scores %.4f on validation in %.0f s", candidate["name"], candidate["strategy"],
                 score["validation"], time.time() - start)
        if best is None or score["validation"] > best["validation"]:
            best = {"name": candidate["name"], "validation": score["validation"], "state": _cpu_copy(trainer.model),
                    "trainer": trainer, "output": output, "planned": planned, "history": layout.auto / candidate["name"]}

    for planned in plan.candidates:
        attempt(planned)
    # augmentation is a candidate too, not a silent default: the best fine-tune again with the light preset, kept
    # only if validation agrees (it helped spoken words and hurt small pictures in the measurements behind this)
    augmentable = setup.modality.augments(config.model_copy(update={"augment": "light", "strategy": "full"}))
    if best is not None and config.augment == "auto" and augmentable:
        attempt({**best["planned"], "name": f"{best['name']}+light", "augment": "light"})
    winner, why = choose_winner(tried, metric)
    if winner == "linear-probe":  # the probe won: its head on the pretrained backbone
        bundle.model.load_state_dict(probed)
        full = probe_data(config, setup, layout)  # the test split's features, only now that they are needed
        outcome.trainer, outcome.output, outcome.eval_sets = probe_trainer, probe_output, full.datasets
        outcome.extra["feature_cache"] = full.cache
        distributed.on_main(shutil.copyfile, layout.auto / "history.jsonl", layout.history)
    else:  # best is the winner: the probe did not tie it, and it is the first of the highest scores
        bundle.model.load_state_dict(best["state"])
        outcome.trainer, outcome.output, outcome.eval_sets = best["trainer"], best["output"], setup.encoded
        distributed.on_main(shutil.copyfile, best["history"] / "history.jsonl", layout.history)  # the winner's curves
    outcome.model = bundle.model
    record = {"winner": winner, "why": why, "metric": metric, "probe_score": probe_score["validation"],
              "candidates": tried, "budget_s": plan.budget_s, "estimate_s": plan.estimate_s,
              "started_at": round(started, 3), "seconds": round(time.time() - started, 1), "probe": fit}
    distributed.on_main(atomic_write_json, layout.auto_record, record)
    outcome.extra["auto"] = record
    log.info("auto kept %s: %s", winner, why)


def _finetune_candidate(config: TrainConfig, setup: Setup, layout: RunLayout, candidate: dict,
                        deadline: float | None = None):
    """One candidate: the strategy on the model as it stands (pretrained + probed head), in ``auto/<name>/``."""
    bundle = setup.bundle
    strategy = parse_strategy(candidate["strategy"])
    steps_per_epoch = math.ceil(len(setup.encoded["train"]) / config.global_batch_size)
    eval_steps = config.eval_steps or evaluation_steps(steps_per_epoch, candidate["epochs"])
    run_config = config.model_copy(update={"epochs": candidate["epochs"], "lr": candidate["lr"],
                                           "strategy": candidate["strategy"],  # each candidate logs to the trackers
                                           "augment": candidate.get("augment", "none"), "eval_steps": eval_steps})
    folder = layout.auto / candidate["name"]
    model = strategy.prepare(bundle.model, bundle.groups)
    freeze_batchnorm_statistics(model, run_config)
    groups = strategy.optimizer_groups(model, bundle.groups, candidate["lr"], config.weight_decay,
                                       config.layer_lr_decay, head_lr_multiplier=1.0)  # the head is probed already
    train = setup.encoded["train"]
    if candidate.get("augment"):  # the same rows, through the training transform with augmentation
        train = setup.modality.encode(bundle, setup.data.splits["train"], run_config, train=True)
    trainer = make_trainer(run_config, model, training_arguments(run_config, folder / "checkpoints"),
                           train, setup.encoded["validation"],
                           collator=setup.modality.collator(bundle, run_config), processor=bundle.processor,
                           param_groups=groups, num_labels=len(setup.data.label_names),
                           history=folder / "history.jsonl",
                           callbacks=[*strategy.callbacks(bundle.groups), *([Deadline(deadline)] if deadline else [])])
    try:
        output = trainer.train()
        raise_if_interrupted(trainer, resumable=False)
    finally:
        strategy.release(model)
    # the best epoch is loaded (every rank, before this); nothing resumes a candidate
    distributed.on_main(shutil.rmtree, folder / "checkpoints", ignore_errors=True)
    stopped = any(isinstance(c, Deadline) and c.hit for c in trainer.callback_handler.callbacks)
    return trainer, output, stopped
