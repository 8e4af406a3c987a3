"""Time: the budget a run may spend, and what a training step of a strategy costs here (measured, not guessed)."""

from __future__ import annotations

import time

import torch

from ..config import TrainConfig, parse_duration
from ..strategies import parse_strategy
from .setup import Setup
from .trainer import use_cpu


def budget_seconds(config: TrainConfig) -> float | None:
    """The run's budget: the asked one, else 15 minutes on a CPU and none on a GPU."""
    if config.time_budget is not None:
        return parse_duration(config.time_budget)
    return 15 * 60.0 if use_cpu(config) else None


def _batch(setup: Setup, config: TrainConfig, split: str, size: int) -> dict:
    """A real batch; for token sequences, of rows near the median length (what a length-grouped batch pads to)."""
    rows = setup.encoded[split]
    picks = list(range(min(size, len(rows))))
    if "input_ids" in getattr(rows, "column_names", ()):
        import numpy as np

        lengths = np.array([len(ids) for ids in rows.with_format(None)["input_ids"]])
        picks = np.argsort(np.abs(lengths - np.median(lengths)), kind="stable")[: len(picks)].tolist()
    batch = setup.modality.collator(setup.bundle, config)([rows[i] for i in picks])
    device = next(setup.bundle.model.parameters()).device
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}


def step_seconds(setup: Setup, config: TrainConfig, strategy_spec: str, steps: int = 2) -> float:
    """Median seconds of a forward + backward + AdamW step of ``strategy_spec`` on a real training batch (after a
    warm-up step); the model's weights and trainable flags are put back afterwards."""
    bundle = setup.bundle
    strategy = parse_strategy(strategy_spec)
    weights = setup.snapshot()
    flags = {n: p.requires_grad for n, p in bundle.model.named_parameters()}
    model = strategy.prepare(bundle.model, bundle.groups)
    batch = _batch(setup, config, "train", config.batch_size)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-7)
    was_training = model.training
    model.train()
    times = []
    try:
        for _ in range(steps + 1):
            start = time.perf_counter()
            model(**batch).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
        strategy.release(model)
        setup.restore(weights)
        for name, param in bundle.model.named_parameters():
            param.requires_grad_(flags[name])
    return sorted(times[1:])[len(times[1:]) // 2]


@torch.no_grad()
def forward_seconds(setup: Setup, config: TrainConfig, split: str = "validation") -> float:
    """Seconds of one evaluation batch through the whole model."""
    model = setup.bundle.model
    batch = _batch(setup, config, split, config.eval_batch_size or config.batch_size * 2)
    batch.pop("labels", None)
    was_training = model.training
    model.eval()
    model(**batch)  # warm-up
    start = time.perf_counter()
    model(**batch)
    model.train(was_training)
    return time.perf_counter() - start
