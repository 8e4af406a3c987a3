"""Time: the budget a run may spend, and what a training step of a strategy costs here (measured, not guessed)."""

from __future__ import annotations

import itertools
import time

import numpy as np
import torch

from ..config import TrainConfig, parse_duration
from ..machine import has_cpu_bf16
from ..strategies import parse_strategy
from .setup import Setup
from .trainer import autocast, training_precision, use_cpu


def budget_seconds(config: TrainConfig) -> float | None:
    """The run's budget: the asked one, else 15 minutes on a CPU and none on a GPU."""
    if config.time_budget is not None:
        return parse_duration(config.time_budget)
    return 15 * 60.0 if use_cpu(config) else None


def _batch(setup: Setup, config: TrainConfig, split: str, size: int) -> dict:
    """A real batch; for token sequences, of rows near the median length (what a length-grouped batch pads to)."""
    rows = setup.encoded[split]
    if not hasattr(rows, "__len__"):  # streamed: its first rows
        items = list(itertools.islice(iter(rows), size))
    else:
        picks = list(range(min(size, len(rows))))
        lengths = setup.modality.encoded_lengths(rows)
        if lengths is not None:
            lengths = np.array(lengths)
            picks = np.argsort(np.abs(lengths - np.median(lengths)), kind="stable")[: len(picks)].tolist()
        items = [rows[i] for i in picks]
    batch = setup.modality.collator(setup.bundle, config)(items)
    device = next(setup.bundle.model.parameters()).device
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}


def step_seconds(setup: Setup, config: TrainConfig, strategy_spec: str, steps: int = 2) -> float:
    """Median seconds of a forward + backward + AdamW step of ``strategy_spec`` on a real training batch (after a
    warm-up step); the model's weights and trainable flags are put back afterwards."""
    times = timed_steps(setup, config, strategy_spec, [config.precision] * (steps + 1))[config.precision]
    return sorted(times)[len(times) // 2]


def timed_steps(setup: Setup, config: TrainConfig, strategy_spec: str, precisions: list[str]) -> dict[str, list]:
    """Seconds of one training step per entry of ``precisions`` (fp32 | bf16 | fp16, in that order, so two can be
    interleaved), by precision; each precision's first step is a warm-up and is left out."""
    bundle = setup.bundle
    strategy = parse_strategy(strategy_spec)
    weights = setup.snapshot()
    flags = {n: p.requires_grad for n, p in bundle.model.named_parameters()}
    model = strategy.prepare(bundle.model, bundle.groups)
    batch = _batch(setup, config, "train", config.batch_size)
    labels = batch.pop("labels")
    shape = setup.data.shape
    # fused, as the Trainer's (make_trainer): the default kernel costs ~0.6 s more per step on a 96M-entry embedding
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-7, fused=True)
    was_training = model.training
    model.train()
    times: dict[str, list] = {}
    device = next(model.parameters()).device
    # the random state put back too (dropout draws from it): timing must not change what the run then initialises
    # (a LoRA adapter's matrices) or draws
    contexts = {p: autocast(config.model_copy(update={"precision": p}), device) for p in set(precisions)}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        try:
            for precision in precisions:
                start = time.perf_counter()
                with contexts[precision]:
                    loss = shape.loss(model(**batch).logits, labels)  # the loss the Trainer will take
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                times.setdefault(precision, []).append(time.perf_counter() - start)
        finally:
            model.train(was_training)
            strategy.release(model)
            setup.restore(weights)
            for name, param in bundle.model.named_parameters():
                param.requires_grad_(flags[name])
    return {precision: seconds[1:] for precision, seconds in times.items()}


@torch.no_grad()
def forward_seconds(setup: Setup, config: TrainConfig, split: str = "validation") -> float:
    """Seconds of one evaluation batch through the whole model."""
    model = setup.bundle.model
    batch = _batch(setup, config, split, config.eval_batch_size or config.batch_size * 2)
    batch.pop("labels", None)
    was_training = model.training
    model.eval()
    with autocast(config, next(model.parameters()).device):
        model(**batch)  # warm-up
        start = time.perf_counter()
        model(**batch)
    model.train(was_training)
    return time.perf_counter() - start


BF16_MIN_SPEEDUP = 1.15  # a clear win only: a step timed twice varies by a few per cent on a shared CPU
BF16_MIN_STEP_S = 0.1  # faster fp32 steps: the run is cheap either way, and a few-ms timing is mostly noise


def choose_precision(setup: Setup, config: TrainConfig, strategy) -> tuple[str, str]:
    """(precision, why) for ``precision: auto``. On a GPU: bf16 where it has it, else fp16. On a CPU with native
    bf16: a step of every layer is timed in fp32 and in bf16 autocast, and bf16 is kept if it is clearly faster;
    the speed-up depends on the architecture, not the modality (measured here, batch 16 at 224 px: ResNet-50 2.5x,
    ViT-S 2.1x, ConvNeXt-T 1.5x, EfficientNet-Lite0 0.9x; e5-small 1.4x, Whisper tiny 1.7x)."""

    if not use_cpu(config):
        chosen = training_precision(config)
        return chosen, f"precision: {chosen} mixed precision (the GPU runs it natively)"
    if not has_cpu_bf16():
        return "fp32", "precision: fp32 (this CPU has no AVX512-BF16 / AMX)"
    if strategy.uses_cached_features:
        return "fp32", f"precision: fp32 ({strategy.name} trains a head on cached features)"
    # interleaved, the fastest of each: timed one after the other, the first precision pays the process's cold start
    # (it made EfficientNet-Lite0's fp32 step look 1.5x slower than its bf16 one, the reverse of the truth)
    times = timed_steps(setup, config, "full", ["fp32", "bf16"] * 3)
    fp32, bf16 = min(times["fp32"]), min(times["bf16"])
    chosen = "bf16" if fp32 >= max(bf16 * BF16_MIN_SPEEDUP, BF16_MIN_STEP_S) else "fp32"
    return chosen, (f"precision: {chosen} (a training step of every layer took {bf16:.2f} s in bf16 autocast and "
                    f"{fp32:.2f} s in fp32 here)")
