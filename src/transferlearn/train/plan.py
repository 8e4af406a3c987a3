"""Intent -> plan: what the engine decides before training, decided once and saved once (``plan.json``).

Decisions, in order: the concrete modality; a fallback when cached features cannot stand for augmented inputs; the
training precision (``auto``: timed); the learning rate (``--lr auto`` runs the LR finder on the resolved strategy,
else the strategy's default); ``auto``'s candidates; whether batches are grouped by length (only token sequences
have one).
"""

from __future__ import annotations

import copy
import logging
import math

from .. import distributed
from ..config import Plan, TrainConfig
from ..errors import ConfigError
from ..layout import RunLayout
from ..strategies import parse_strategy
from ..strategies.auto import candidate_strategies, choose_candidates, epochs_for, evaluation_steps
from .budget import budget_seconds, choose_precision, forward_seconds, step_seconds
from .lr_find import lr_find_on
from .probe import fit_probe, probe_data
from .setup import Setup

log = logging.getLogger(__name__)


def resolve_plan(intent: TrainConfig, setup: Setup, layout: RunLayout) -> Plan:
    """The plan for ``intent`` on ``setup``, saved as ``plan.json``."""
    modality = setup.modality
    updates: dict = {}
    decisions: list[str] = []
    if intent.task == "auto":
        decisions.append(f"modality: {modality.name} (detected from the data)")
    for key, (value, why) in (setup.settings or {}).items():
        updates[key] = value
        decisions.append(f"{key}: {value} ({why})")
    config = intent.model_copy(update={"task": modality.name, **updates})
    strategy = parse_strategy(config.strategy)
    budget = budget_seconds(config)
    fallback = strategy.fallback
    if fallback and modality.augments(config):
        log.warning("%s: augmentation is on, so cached features cannot be used (each epoch sees new inputs); "
                    "falling back to %s, which runs the frozen backbone every step", strategy.name, fallback)
        decisions.append(f"strategy: {fallback} instead of {strategy.name} (augmentation makes inputs new each epoch)")
        config = config.model_copy(update={"strategy": fallback})
        strategy = parse_strategy(fallback)
    if config.streaming:
        config, strategy = _streaming_choices(config, strategy, updates, decisions)
    if config.precision == "auto":  # before the LR finder and auto's step timings: both run in the chosen one
        precision, note = choose_precision(setup, config, strategy)
        updates["precision"] = precision
        decisions.append(note)
        log.info(note)
        config = config.model_copy(update={"precision": precision})
    lr = _choose_lr(config, strategy, setup, layout, decisions)
    candidates, estimate, reserve = [], None, 0.0
    steps_per_epoch = math.ceil(setup.data.rows("train") / config.global_batch_size)
    epochs_asked = intent.epochs if "epochs" in intent.model_fields_set else None
    if strategy.searches:
        sizes = setup.modality.input_sizes(config, setup.data, setup.bundle)
        if len(sizes) > 1:
            size, note = _choose_input_size(config, setup, layout, sizes)
            updates["image_size"] = size
            decisions.append(note)
            config = config.model_copy(update={"image_size": size})
            setup = setup.at_input_size(size)  # the candidates are timed on inputs of the chosen size
        candidates, estimate, reserve, notes = _auto_candidates(config, setup, budget, lr, steps_per_epoch,
                                                                epochs_asked)
        decisions += notes
    elif epochs_asked is None and strategy.fine_tunes:
        _fine_tune_epochs(config, steps_per_epoch, updates, decisions)
    if config.streaming or config.max_steps:
        _fixed_steps(config, steps_per_epoch, updates, decisions)
    plan = Plan(task=modality.name, strategy=config.strategy, lr=lr,
                group_by_length=modality.token_lengths and config.group_by_length and not config.streaming,
                updates=updates,
                candidates=candidates, budget_s=budget, estimate_s=estimate, reserve_s=reserve,
                decisions=decisions)
    distributed.on_main(plan.save, layout.plan)
    return plan


def _choose_lr(config: TrainConfig, strategy, setup: Setup, layout: RunLayout, decisions: list[str]) -> float:
    """The asked rate; ``auto``: the LR finder's valley; none asked: the strategy's default (a search's fine-tunes:
    the modality's)."""
    modality = setup.modality
    if config.lr == "auto":
        # auto: the sweep runs on the candidate that moves every layer; its rate serves every candidate
        sweep = config.model_copy(update={"lr": None, "progress": False,
                                          **({"strategy": "full"} if strategy.searches else {})})
        found = lr_find_on(setup, sweep, layout.lr_find)
        lr = found["suggestion"]
        decisions.append(f"learning rate: {lr:.2e} (the LR finder's valley; plot in {layout.lr_find_plot})")
        log.info("--lr auto: the LR finder suggests %.2e (valley); plot in %s", lr, layout.lr_find_plot)
    elif config.lr is None and strategy.searches:
        lr = setup.modality.finetune_lr
        decisions.append(f"learning rate: {lr:g} for {strategy.name}'s fine-tunes (the {modality.name} modality's "
                         "default)")
    elif config.lr is None:
        lr = strategy.default_lr
        decisions.append(f"learning rate: {lr:g} (the {strategy.name} strategy's default)")
        log.info("learning rate %.0e (the %s strategy's default)", lr, strategy.name)
    else:
        lr = config.lr
    return lr


def _fine_tune_epochs(config: TrainConfig, steps_per_epoch: int, updates: dict, decisions: list[str]) -> None:
    """Epochs (and the evaluation interval) of a fine-tune whose epochs were not asked for: at least min_steps."""
    epochs = epochs_for(steps_per_epoch, config.min_steps, None, config.epochs)
    if epochs != config.epochs:
        updates["epochs"] = epochs
        decisions.append(f"epochs: {epochs:g} ({steps_per_epoch} steps an epoch; at least {config.min_steps} "
                         "steps, early stopping keeps the best epoch)")
        every = evaluation_steps(steps_per_epoch, epochs) if config.eval_steps is None else None
        if every:
            updates["eval_steps"] = every
            decisions.append(f"evaluate every {every} steps (an epoch is {steps_per_epoch} steps)")


def _streaming_choices(config: TrainConfig, strategy, updates: dict, decisions: list[str]):
    """What streamed training rows rule out: a probe (it caches every row's features), class weights and the
    baseline (they read every label or text at once). ``auto`` becomes ``full``; the rest is refused or turned off."""
    if strategy.searches:
        decisions.append(f"strategy: full instead of {strategy.name} (streaming: it starts from a probe on every row's "
                         "cached features)")
        config = config.model_copy(update={"strategy": "full"})
        strategy = parse_strategy("full")
    elif strategy.needs_feature_cache:
        raise ConfigError(f"strategy {config.strategy} with streaming: it trains on every row's cached features, which "
                          "a stream does not hold. Use a fine-tuning strategy (full, freeze:N, lora, gradual, "
                          "discriminative), or drop streaming (the feature cache is memory-mapped already).")
    if config.class_weights == "balanced":
        raise ConfigError("class_weights balanced with streaming: not supported; the counts are in data.json after a "
                          "first run, or train without streaming")
    if config.baseline:
        updates["baseline"] = False
        decisions.append("baseline: off (streaming: the TF-IDF baseline would read every training text at once)")
        config = config.model_copy(update={"baseline": False})
    return config, strategy


def _fixed_steps(config: TrainConfig, steps_per_epoch: int, updates: dict, decisions: list[str]) -> None:
    """A streamed split has no length, so the Trainer needs max_steps: the asked one, else epochs x the steps in
    one pass over the counted rows. Evaluation (and checkpoints) go by steps: once a pass unless asked."""
    epochs = updates.get("epochs", config.epochs)
    steps = config.max_steps or max(1, math.ceil(epochs * steps_per_epoch))
    if not config.max_steps:
        updates["max_steps"] = steps
        decisions.append(f"max_steps: {steps} ({epochs:g} epochs of {steps_per_epoch} steps over the counted rows)")
    if config.eval_steps is None:
        every = updates.get("eval_steps") or min(steps_per_epoch, steps)
        updates["eval_steps"] = every
        decisions.append(f"evaluate every {every} steps")


def _auto_candidates(config: TrainConfig, setup: Setup, budget: float | None, lr: float, steps_per_epoch: int,
                     epochs_asked: float | None):
    """Time a step of each candidate here, then choose what fits the budget after the probe's own cost."""
    groups = setup.bundle.groups
    step_s = {spec: step_seconds(setup, config, spec) for _, spec in candidate_strategies(groups.num_blocks)}
    forward = forward_seconds(setup, config)
    eval_size = config.eval_batch_size or config.batch_size * 2
    eval_batches = math.ceil(len(setup.encoded["validation"]) / eval_size)
    rows = len(setup.encoded["train"]) + len(setup.encoded["validation"])
    probe_s = forward * math.ceil(rows / eval_size) + 5.0  # features + fit
    reserve = finishing_seconds(setup, forward, eval_size)
    left = None if budget is None else budget - probe_s - reserve
    candidates, notes = choose_candidates(
        n_train=len(setup.encoded["train"]), num_labels=len(setup.data.label_names), num_blocks=groups.num_blocks,
        steps_per_epoch=steps_per_epoch, epoch_eval_s=eval_batches * forward, step_s=step_s, budget_s=left,
        lr=lr, min_steps=config.min_steps, epochs_asked=epochs_asked, default_epochs=config.epochs)
    estimate = round(probe_s + sum(c.estimated_s for c in candidates) + reserve, 1)
    parts = ", ".join(f"{c.name} {c.estimated_s:.0f} s ({c.epochs:g} epochs)" for c in candidates if c.epochs)
    budget_text = f"budget {budget / 60:.0f} min" if budget else "no budget"
    message = (f"auto: about {estimate / 60:.1f} min ({budget_text}): probe {probe_s:.0f} s" + (f", {parts}" if parts else "")
               + f", scoring and report {reserve:.0f} s")
    log.info(message)
    return candidates, estimate, reserve, [message] + notes


def finishing_seconds(setup: Setup, forward_s: float, eval_size: int) -> float:
    """What follows the last candidate, kept out of its budget: scoring validation and test with the winner (one
    forward pass per batch, and the test split's probe features if the probe wins), the baseline and the report."""
    scored = sum(len(setup.encoded[s]) for s in ("validation", "test") if s in setup.encoded)
    return round(forward_s * math.ceil(scored / eval_size) * 1.5 + 15.0, 1)


def _choose_input_size(config: TrainConfig, setup: Setup, layout: RunLayout, sizes: list[int]) -> tuple[int, str]:
    """The converged probe at each size (on a view of the setup at that size); the smallest within 0.005 of the best
    validation score wins (it is also the cheapest to fine-tune). The model's weights are put back after each."""
    head_state = copy.deepcopy(setup.bundle.model.state_dict())
    scores = {}
    for size in sizes:
        view = setup.at_input_size(size)
        probe = probe_data(view.config, view, layout, splits=("train", "validation"))
        scores[size] = fit_probe(config, view.bundle, probe)["validation_score"]
        setup.bundle.model.load_state_dict(head_state)
    best = max(scores.values())
    chosen = min(s for s, v in scores.items() if v >= best - 0.005)
    shown = ", ".join(f"{s} px {v:.4f}" for s, v in sorted(scores.items()))
    note = f"image_size: {chosen} (the pictures are small: converged probe on validation at {shown})"
    log.info(note)
    return chosen, note
