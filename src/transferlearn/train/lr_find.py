"""LR range test (Smith 2015, fastai's ``lr_find``): ``fit`` with a callback. The one Trainer factory builds the
same trainer as a fine-tune (class weights, mixing, strategy preparation, batch order); the :class:`LRFinder`
callback sweeps the learning rate exponentially, records the loss and stops on divergence; the weights are put
back afterwards, so a run that follows starts from the pretrained ones.

Suggestions follow fastai: ``steepest`` (most negative slope of the smoothed loss vs log-LR) and
``valley`` (two-thirds into the longest descending stretch, fastai's default since v2.5).
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import numpy as np
from transformers import TrainerCallback, set_seed

from .. import distributed
from ..config import TrainConfig
from ..errors import TransferLearnError
from ..io import atomic_write_bytes, atomic_write_json
from ..plots import png_bytes, subplots
from ..strategies import parse_strategy
from ..strategies.base import freeze_batchnorm_statistics
from .callbacks import raise_if_interrupted
from .setup import Setup
from .trainer import make_trainer, training_arguments, use_cpu

log = logging.getLogger(__name__)


class LRFinder(TrainerCallback):
    """Sets every parameter group's rate from the sweep (keeping their ratios: discriminative rates sweep
    together), records the loss at each step, and stops the run once the smoothed loss diverges."""

    def __init__(self, start_lr: float, end_lr: float, num_steps: int, diverge: float, beta: float = 0.98):
        self.start_lr, self.ratio, self.num_steps = start_lr, end_lr / start_lr, num_steps
        self.diverge, self.beta = diverge, beta
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self._avg = 0.0
        self._scales: list[float] | None = None
        self._lr = start_lr

    def on_step_begin(self, args, state, control, optimizer=None, **kwargs):
        if self._scales is None:
            top = max(group["lr"] for group in optimizer.param_groups)
            self._scales = [group["lr"] / top for group in optimizer.param_groups]
        self._lr = self.start_lr * self.ratio ** (state.global_step / max(1, self.num_steps - 1))
        for group, scale in zip(optimizer.param_groups, self._scales, strict=True):
            group["lr"] = self._lr * scale

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:
            return
        loss = float(logs["loss"])
        self._avg = self.beta * self._avg + (1 - self.beta) * loss
        smooth = self._avg / (1 - self.beta ** (len(self.losses) + 1))  # bias-corrected EMA
        self.lrs.append(self._lr)
        self.losses.append(loss)
        self.smoothed.append(smooth)
        if not math.isfinite(loss) or smooth > self.diverge * min(self.smoothed):
            control.should_training_stop = True


def steepest(lrs: np.ndarray, losses: np.ndarray) -> float:
    grads = np.gradient(losses, np.log10(lrs))
    return float(lrs[int(np.argmin(grads))])


def valley(lrs: np.ndarray, losses: np.ndarray) -> float:
    """fastai's valley: the longest strictly descending run of the loss, two-thirds of the way in."""
    n = len(losses)
    lds = [1] * n
    best_end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
        if lds[best_end] < lds[i]:
            best_end = i
    start = best_end - lds[best_end] + 1
    section = (best_end - start) / 3
    return float(lrs[min(n - 1, start + int(section) + int(section / 2))])


def default_sweep_steps(config: TrainConfig) -> int:
    # 50 steps still give ~6 points per decade over 1e-7..10, at half the time of fastai's 100
    # (e5-small on SmSA, 2 CPU cores: ~3-4 s a step; benchmarks/results/lr_find_smsa.json)
    return 50 if use_cpu(config) else 100


def _plot(lrs, smoothed, suggestions: dict[str, float]) -> bytes:

    fig, ax = subplots(figsize=(6, 3.8))
    ax.plot(lrs, smoothed)
    for (name, lr), color in zip(suggestions.items(), ("tab:red", "tab:green"), strict=True):
        ax.axvline(lr, color=color, linestyle="--", label=f"{name}: {lr:.2e}")
    ax.set_xscale("log"), ax.set_xlabel("learning rate"), ax.set_ylabel("smoothed loss")
    ax.set_title("LR finder"), ax.grid(alpha=0.3), ax.legend()
    return png_bytes(fig)


def lr_find(config: TrainConfig, out_dir: str | Path, *, start_lr: float = 1e-7, end_lr: float = 10.0,
            num_steps: int | None = None, diverge: float = 4.0) -> dict:
    """``tl lr-find``: the setup a run would have, then the sweep (``auto``: on its full fine-tune candidate)."""

    set_seed(config.seed)
    out_dir = Path(out_dir)
    setup = Setup.build(config)
    config = config.model_copy(update={"task": setup.modality.name})
    if parse_strategy(config.strategy).searches:  # as a run does: auto's rate is swept on its full candidate
        config = config.model_copy(update={"strategy": "full"})
    return lr_find_on(setup, config, out_dir, start_lr=start_lr, end_lr=end_lr, num_steps=num_steps,
                      diverge=diverge)


def lr_find_on(setup: Setup, config: TrainConfig, out_dir: Path, *, start_lr: float = 1e-7, end_lr: float = 10.0,
               num_steps: int | None = None, diverge: float = 4.0) -> dict:
    """Sweep the learning rate on ``setup``'s training split with ``config.strategy`` (a concrete one); writes
    ``lr_find.json`` and ``lr_find.png`` into ``out_dir``. ``num_steps`` defaults to ``default_sweep_steps``."""
    out_dir = Path(out_dir)
    num_steps = num_steps or default_sweep_steps(config)
    config = config.model_copy(update={"group_by_length": setup.modality.token_lengths and config.group_by_length})
    bundle, strategy = setup.bundle, parse_strategy(config.strategy)
    weights = setup.snapshot()
    model = strategy.prepare(bundle.model, bundle.groups)
    freeze_batchnorm_statistics(model, config)  # as tl train will
    # fastai smooths with beta 0.98 over 100 steps; the same smoothing per LR decade over fewer steps needs a
    # shorter memory, else the curve (and the divergence stop) lags behind the sweep
    finder = LRFinder(start_lr, end_lr, num_steps, diverge, beta=0.98 ** (100 / num_steps))
    args = training_arguments(config, out_dir / "lr_find_tmp", max_steps=num_steps, learning_rate=start_lr,
                              lr_scheduler_type="constant", warmup_steps=0, logging_steps=1, logging_first_step=False,
                              eval_strategy="no", save_strategy="no", load_best_model_at_end=False, report_to=[])
    groups = strategy.optimizer_groups(model, bundle.groups, start_lr, config.weight_decay, config.layer_lr_decay)
    trainer = make_trainer(config, model, args, setup.encoded["train"], collator=setup.modality.collator(bundle, config),
                           processor=bundle.processor, param_groups=groups, shape=setup.data.shape,
                           lengths_of=setup.modality.encoded_lengths,
                           callbacks=[finder], early_stopping=False)
    try:
        trainer.train()
        raise_if_interrupted(trainer, resumable=False)
    finally:
        strategy.release(model)
        setup.restore(weights)
        distributed.on_main(shutil.rmtree, out_dir / "lr_find_tmp", ignore_errors=True)  # the Trainer's; nothing saved
    if len(finder.lrs) < 5:
        raise TransferLearnError(f"the loss diverged after {len(finder.lrs)} steps; lower --start-lr")
    # the last points are past divergence; fastai drops them too
    keep = max(5, len(finder.lrs) - 3) if len(finder.lrs) < num_steps else len(finder.lrs)
    lrs, smoothed = np.array(finder.lrs[:keep]), np.array(finder.smoothed[:keep])
    suggestions = {"valley": valley(lrs, smoothed), "steepest": steepest(lrs, smoothed)}
    result = {"model": config.model, "strategy": config.strategy, "start_lr": start_lr, "end_lr": end_lr,
              "steps": len(finder.lrs), "suggestion": suggestions["valley"], "suggestions": suggestions,
              "lrs": finder.lrs, "losses": finder.losses, "smoothed": finder.smoothed}
    result = distributed.agree(result)  # each rank swept on its own shard's losses: rank 0's curve decides
    distributed.on_main(_write_sweep, out_dir, result, lrs, smoothed, suggestions)
    return result


def _write_sweep(out_dir: Path, result: dict, lrs, smoothed, suggestions) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "lr_find.json", result)
    atomic_write_bytes(out_dir / "lr_find.png", _plot(lrs, smoothed, suggestions))
