"""LR range test (Smith 2015, fastai's ``lr_find``): the HF Trainer runs a few hundred steps while an
exponential schedule sweeps the learning rate; a callback records the loss and stops on divergence.

Suggestions follow fastai: ``steepest`` (most negative slope of the smoothed loss vs log-LR) and
``valley`` (two-thirds into the longest descending stretch, fastai's default since v2.5).
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import numpy as np
import torch
from transformers import TrainerCallback

from ..config import TrainConfig
from ..io import atomic_write_bytes, atomic_write_json
from ..modalities import detect_modality
from ..strategies import parse_strategy
from ..strategies.base import freeze_batchnorm_statistics
from .engine import trainer_class, use_cpu
from .sampling import token_length_sampler

log = logging.getLogger(__name__)


class _RecordLoss(TrainerCallback):
    def __init__(self, diverge: float, beta: float = 0.98):
        self.diverge, self.beta = diverge, beta
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self._avg = 0.0

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs or "learning_rate" not in logs:
            return
        loss = float(logs["loss"])
        self._avg = self.beta * self._avg + (1 - self.beta) * loss
        smooth = self._avg / (1 - self.beta ** (len(self.losses) + 1))  # bias-corrected EMA
        self.lrs.append(float(logs["learning_rate"]))
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
    import io

    from ..report.html import plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.plot(lrs, smoothed)
    for (name, lr), color in zip(suggestions.items(), ("tab:red", "tab:green")):
        ax.axvline(lr, color=color, linestyle="--", label=f"{name}: {lr:.2e}")
    ax.set_xscale("log"), ax.set_xlabel("learning rate"), ax.set_ylabel("smoothed loss")
    ax.set_title("LR finder"), ax.grid(alpha=0.3), ax.legend()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def lr_find(config: TrainConfig, out_dir: str | Path, *, start_lr: float = 1e-7, end_lr: float = 10.0,
            num_steps: int | None = None, diverge: float = 4.0) -> dict:
    """Sweep the learning rate on the training split; writes ``lr_find.json`` and ``lr_find.png``.
    ``num_steps`` defaults to ``default_sweep_steps`` (100 on a GPU, 50 on a CPU)."""
    from transformers import TrainingArguments, set_seed

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    set_seed(config.seed)
    num_steps = num_steps or default_sweep_steps(config)
    modality = detect_modality(config)
    data = modality.load_data(config)
    bundle = modality.load_model(config, data.label_names)
    strategy = parse_strategy(config.strategy)
    model = strategy.prepare(bundle.model, bundle.groups)
    freeze_batchnorm_statistics(model, config)  # as tl train will
    train = modality.encode(bundle, data.splits["train"], config)
    groups = strategy.optimizer_groups(model, bundle.groups, start_lr, config.weight_decay, config.layer_lr_decay)
    optimizer = torch.optim.AdamW(groups, lr=start_lr, fused=True)  # ~7x faster step on large embeddings (CPU)
    ratio = end_lr / start_lr
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: ratio ** (step / max(1, num_steps - 1)))
    # fastai smooths with beta 0.98 over 100 steps; the same smoothing per LR decade over fewer steps needs a
    # shorter memory, else the curve (and the divergence stop) lags behind the sweep
    recorder = _RecordLoss(diverge, beta=0.98 ** (100 / num_steps))
    args = TrainingArguments(
        output_dir=str(out_dir / "lr_find_tmp"), max_steps=num_steps, per_device_train_batch_size=config.batch_size,
        logging_steps=1, eval_strategy="no", save_strategy="no", report_to=[], seed=config.seed,
        disable_tqdm=not config.progress, use_cpu=use_cpu(config), max_grad_norm=config.max_grad_norm,
        dataloader_num_workers=config.num_workers, remove_unused_columns=False,
    )
    trainer = trainer_class()(model=model, args=args, train_dataset=train, processing_class=bundle.processor,
                              data_collator=modality.collator(bundle, config), optimizers=(optimizer, schedule),
                              callbacks=[recorder])
    if config.group_by_length:  # batches as tl train makes them
        trainer.length_sampler = token_length_sampler(train, args.train_batch_size, config.seed)
    trainer.train()
    shutil.rmtree(out_dir / "lr_find_tmp", ignore_errors=True)  # the Trainer's output_dir; nothing saved there
    if len(recorder.lrs) < 5:
        raise RuntimeError(f"the loss diverged after {len(recorder.lrs)} steps; lower --start-lr")
    # the last points are past divergence; fastai drops them too
    keep = max(5, len(recorder.lrs) - 3) if len(recorder.lrs) < num_steps else len(recorder.lrs)
    lrs, smoothed = np.array(recorder.lrs[:keep]), np.array(recorder.smoothed[:keep])
    suggestions = {"valley": valley(lrs, smoothed), "steepest": steepest(lrs, smoothed)}
    result = {"model": config.model, "strategy": config.strategy, "start_lr": start_lr, "end_lr": end_lr,
              "steps": len(recorder.lrs), "suggestion": suggestions["valley"], "suggestions": suggestions,
              "lrs": recorder.lrs, "losses": recorder.losses, "smoothed": recorder.smoothed}
    atomic_write_json(out_dir / "lr_find.json", result)
    atomic_write_bytes(out_dir / "lr_find.png", _plot(lrs, smoothed, suggestions))
    return result
