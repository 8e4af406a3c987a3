"""Intent -> plan: what the engine decides before training, decided once and saved once (``plan.json``).

Decisions, in order: the concrete modality; ``auto``'s strategy (from a quick probe); a fallback when cached
features cannot stand for augmented inputs; the learning rate (``--lr auto`` runs the LR finder on the resolved
strategy, else the strategy's default); whether batches are grouped by length (only token sequences have one).
"""

from __future__ import annotations

import logging

from ..config import Plan, TrainConfig
from ..layout import RunLayout
from ..strategies import parse_strategy
from .setup import Setup

log = logging.getLogger(__name__)


def resolve_plan(intent: TrainConfig, setup: Setup, layout: RunLayout):
    """(plan, probe data already computed or None, extra facts for metrics.json)."""
    modality = setup.modality
    updates: dict = {}
    decisions: list[str] = []
    extra: dict = {}
    probe = None
    if intent.task != modality.name:
        decisions.append(f"modality: {modality.name} (detected from the data)")
    config = intent.model_copy(update={"task": modality.name})
    if parse_strategy(config.strategy).name == "auto":
        from .auto import choose_strategy

        probe, choice = choose_strategy(config, setup, layout)
        extra["auto"] = choice
        updates.update(choice.get("config", {}))
        config = config.model_copy(update={"strategy": choice["strategy"], **updates})
        decisions.append(f"strategy: {choice['strategy']} (auto: {choice['reason']})")
    strategy = parse_strategy(config.strategy)
    fallback = getattr(strategy, "fallback", None)
    if fallback and modality.augments(config):
        log.warning("%s: augmentation is on, so cached features cannot be used (each epoch sees new inputs); "
                    "falling back to %s, which runs the frozen backbone every step", strategy.name, fallback)
        decisions.append(f"strategy: {fallback} instead of {strategy.name} (augmentation makes inputs new each epoch)")
        config = config.model_copy(update={"strategy": fallback})
        strategy = parse_strategy(fallback)
    if config.lr == "auto":
        from .lr_find import lr_find_on

        found = lr_find_on(setup, config.model_copy(update={"lr": None, "progress": False}), layout.lr_find)
        lr = found["suggestion"]
        decisions.append(f"learning rate: {lr:.2e} (the LR finder's valley; plot in {layout.lr_find_plot})")
        log.info("--lr auto: the LR finder suggests %.2e (valley); plot in %s", lr, layout.lr_find_plot)
    elif config.lr is None:
        lr = strategy.default_lr
        decisions.append(f"learning rate: {lr:g} (the {strategy.name} strategy's default)")
        log.info("learning rate %.0e (the %s strategy's default)", lr, strategy.name)
    else:
        lr = config.lr
    plan = Plan(task=modality.name, strategy=config.strategy, lr=lr,
                group_by_length=modality.token_lengths and config.group_by_length, updates=updates,
                decisions=decisions)
    plan.save(layout.plan)
    return plan, probe, extra
