"""The linear probe on cached features, run by the same HF Trainer over a features dataset.

Used by ``linear-probe`` (the probe is the result), ``probe-then-finetune`` (LP-FT: the probed head
starts a full fine-tune) and ``auto`` (a quick probe measures how well the frozen features separate
the classes).
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression, Ridge
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.trainer_utils import TrainOutput

from .. import distributed
from ..config import TrainConfig
from ..data.splits import stratified_indices
from ..layout import RunLayout
from ..models.features import FeatureSplit, verified_split
from ..strategies import decay_split
from .callbacks import raise_if_interrupted
from .feature_cache import FeaturesDataset, cached_features, default_cache_root, weights_fingerprint
from .setup import Setup
from .trainer import make_trainer, training_arguments, use_cpu

log = logging.getLogger(__name__)


class CachedFeaturesHead(nn.Module):
    """The model's own head modules, fed cached features instead of the backbone's output."""

    def __init__(self, head: nn.Module, config):
        super().__init__()
        self.head = head
        self.config = config  # the Trainer reads model.config

    def forward(self, features, labels=None):
        logits = self.head(features)
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


@dataclass
class ProbeData:
    split: FeatureSplit
    datasets: dict[str, FeaturesDataset]
    cache: dict[str, dict]  # split name -> cache entry metadata (hit, path, seconds)
    shape: object = None  # the data's LabelShape: the probe's loss and metric


def cache_root(config: TrainConfig, layout: RunLayout) -> Path:
    if config.feature_cache == "run":
        return layout.features
    return Path(config.feature_cache).expanduser() if config.feature_cache else default_cache_root()


def feature_device(config: TrainConfig) -> torch.device:
    return torch.device("cpu" if use_cpu(config) else "cuda")


def probe_data(config: TrainConfig, setup: Setup, layout: RunLayout, splits: tuple[str, ...] | None = None) -> ProbeData:
    """Cached features of every split (or of ``splits``), computed on a miss, after checking the feature split on a
    real batch."""
    bundle, modality = setup.bundle, setup.modality
    encoded = {k: v for k, v in setup.encoded.items() if splits is None or k in splits}
    if modality.augments(config):  # features come from fixed (evaluation-time) inputs
        encoded = {**encoded, "train": modality.encode(bundle, setup.data.splits["train"], config, train=False)}
    collator = modality.collator(bundle, config)
    sample = collator([encoded["train"][i] for i in range(min(4, len(encoded["train"])))])
    sample.pop("labels", None)
    split = verified_split(bundle.model, sample)
    device = feature_device(config)
    weights_hash = weights_fingerprint(bundle.model, split.head)
    bundle.model.to(device)
    preprocessing = modality.preprocessing(bundle, config)
    datasets, cache = {}, {}
    pool = setup.data.train_pool if config.features_from_full_train else None
    for name, dataset in encoded.items():
        rows = None
        if name == "train" and pool is not None:  # the whole split's entry, shared by every subsample of it
            rows, labels = setup.data.train_rows, dataset.with_format(None)["label"]
            dataset = modality.encode(bundle, pool, config, train=False)
        features, meta = cached_features(
            bundle.model, split, dataset, collator, root=cache_root(config, layout), preprocessing=preprocessing,
            weights_hash=weights_hash, device=device, batch_size=config.eval_batch_size or config.batch_size * 2,
            name=name, progress=config.progress, lengths=modality.encoded_lengths(dataset),
        )
        if rows is not None:
            features = np.asarray(features[rows])
        else:  # without the format transform: reading labels through it would decode every image/clip once more
            labels = dataset.with_format(None)["label"]
        datasets[name] = FeaturesDataset(features, labels)
        cache[name] = {k: meta[k] for k in ("hit", "path", "rows", "dim", "seconds")}
        if rows is not None:
            cache[name]["subsample_of_full_train"] = len(rows)
    return ProbeData(split, datasets, cache, setup.data.shape)


L2_SWEEP = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)  # on the mean loss; the strongest within noise of the best wins


def _tensor(features, device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(device)


def _labels(labels, device) -> torch.Tensor:
    """Labels as the shape's loss takes them: class indices (long) or rows of floats (float32)."""
    array = np.asarray(labels)
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    return (tensor.float() if array.dtype.kind == "f" else tensor.long()).to(device)


@torch.no_grad()
def _score(head: nn.Module, features: torch.Tensor, labels: torch.Tensor, metric: str, shape) -> float:
    return shape.score(metric, labels.cpu().numpy(), head(features).float().cpu().numpy())


def _data_loss(head: nn.Module, x: torch.Tensor, y: torch.Tensor, weight, shape) -> torch.Tensor:
    """The shape's loss (weighted where --class-weights balanced applies)."""
    return shape.loss(head(x), y, weight)


def _objective(head: nn.Module, x: torch.Tensor, y: torch.Tensor, weight, l2: float, shape) -> torch.Tensor:
    decayed = [p for p in head.parameters() if p.ndim > 1]
    return _data_loss(head, x, y, weight, shape) + l2 * sum((p**2).sum() for p in decayed)


def _lbfgs(head: nn.Module, x: torch.Tensor, y: torch.Tensor, weight, l2: float, max_iter: int, shape,
           rounds: int = 1) -> tuple[float, int]:
    """Minimise cross-entropy + l2 * ||weights||^2 over the whole training set; (final loss, iterations).

    On a multi-layer head (non-convex), torch's L-BFGS can stop early: its line search returns a tiny step and the
    loss change falls under tolerance_change, mid-descent. With ``rounds`` > 1, another round with a fresh curvature
    history goes on from there while one still lowers the objective by more than 1e-4 (relative). The sweep's fits
    keep one 200-iteration round, as measured on the shared datasets; the extra rounds are for the cold refit of a
    stalled warm start, which starts far from any solution."""
    params = list(head.parameters())
    for param in params:
        param.requires_grad_(True)
    total = 0
    with torch.no_grad():
        previous = float(_objective(head, x, y, weight, l2, shape))
    for _ in range(rounds):
        optimizer = torch.optim.LBFGS(params, lr=1, max_iter=max_iter, tolerance_grad=1e-6, tolerance_change=1e-9,
                                      history_size=20, line_search_fn="strong_wolfe")

        def closure():
            for param in params:
                param.grad = None
            loss = _objective(head, x, y, weight, l2, shape)
            loss.backward()
            return loss

        optimizer.step(closure)
        total += int(optimizer.state[params[0]].get("n_iter", 0))
        with torch.no_grad():
            now = float(_objective(head, x, y, weight, l2, shape))
        if previous - now <= 1e-4 * max(abs(previous), 1e-8):
            break
        previous = now
    with torch.no_grad():
        loss = float(_data_loss(head, x, y, weight, shape))
    return loss, total


def _single_linear(head: nn.Module) -> nn.Linear | None:
    """The head's one Linear layer when everything else in it is parameter-free (dropout, identity)."""
    with_params = [m for m in head.modules() if any(True for _ in m.parameters(recurse=False))]
    return with_params[0] if len(with_params) == 1 and isinstance(with_params[0], nn.Linear) else None


def _sklearn_lbfgs(linear: nn.Linear, x: np.ndarray, y: np.ndarray, weights: str | None, l2: float,
                   max_iter: int) -> int:
    """The same objective (mean cross-entropy + l2 * ||W||^2, bias free) through scikit-learn's compiled L-BFGS,
    written into ``linear``: far less overhead per iteration than a Python closure. Returns the iterations."""

    model = LogisticRegression(C=1.0 / (2.0 * l2 * len(y)), max_iter=max_iter, tol=1e-6, class_weight=weights)
    model.fit(x, y)
    coef, intercept = model.coef_, model.intercept_
    if coef.shape[0] == 1:  # two classes: one log-odds row, as softmax logits [-z/2, z/2]
        coef, intercept = np.concatenate([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
    full_coef = np.zeros((linear.out_features, coef.shape[1]), dtype=np.float32)
    full_bias = np.full(linear.out_features, -1e4 if len(model.classes_) < linear.out_features else 0.0,
                        dtype=np.float32)  # a class absent from train is never predicted
    full_coef[model.classes_], full_bias[model.classes_] = coef, intercept
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(full_coef))
        linear.bias.copy_(torch.from_numpy(full_bias))
    return int(np.max(model.n_iter_))


def _unstall(head: nn.Module, initial: dict, x: torch.Tensor, y: torch.Tensor, weight, l2: float, max_iter: int,
             loss: float, iterations: int, shape) -> tuple[float, int]:
    """A stall, not convergence: a strong L2 shrinks the classifier to ~0, which also cuts the gradient into the layers
    before it, and from there L-BFGS met its gradient tolerance at once, keeping a head that predicts the majority
    class (two SmSA study runs). The same strength from the initial weights too; the lower objective is kept."""
    warm = copy.deepcopy(head.state_dict())
    with torch.no_grad():
        warm_objective = float(_objective(head, x, y, weight, l2, shape))
    head.load_state_dict(initial)
    cold_loss, cold_iterations = _lbfgs(head, x, y, weight, l2, max_iter, shape, rounds=6)
    with torch.no_grad():
        cold_objective = float(_objective(head, x, y, weight, l2, shape))
    if cold_objective < warm_objective:
        return cold_loss, iterations + cold_iterations
    head.load_state_dict(warm)
    return loss, iterations


def _sklearn_ridge(linear: nn.Linear, x: np.ndarray, y: np.ndarray, l2: float) -> int:
    """Ridge regression (closed form, scikit-learn) for the same objective on standardised targets: mean squared
    error + l2 * ||W||^2, i.e. alpha = l2 * rows (the sweep's strengths are ridge's alphas, chosen on validation)."""
    model = Ridge(alpha=l2 * len(y)).fit(x, y.reshape(len(y), -1))
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(np.asarray(model.coef_, dtype=np.float32).reshape(linear.weight.shape)))
        linear.bias.copy_(torch.from_numpy(np.asarray(model.intercept_, dtype=np.float32).reshape(-1)))
    return 1


SWEEP_ROWS = 4096  # the L2 strength is chosen on at most this many training rows; the chosen one refits on all


def fit_probe(config: TrainConfig, bundle, probe: ProbeData, max_iter: int = 200) -> dict:
    """The CLIP linear-probe protocol on cached features: the label shape's loss + L2, to convergence, for each L2
    strength of a small sweep; the best validation score (ties: the stronger L2) wins and is refit on every
    training row into the model's own head. Seconds on CPU, whatever ``--epochs`` says.

    A head that is one Linear layer is solved in closed form or by compiled code where the shape has one (logistic
    regression by scikit-learn's L-BFGS for one class a row, ridge regression for numbers); every other head and
    shape by ``torch.optim.LBFGS``, warm-started from the stronger L2's solution (restarted from the initial weights
    when that stalls), the sweep on a sample of at most ``SWEEP_ROWS`` rows."""
    head, shape = probe.split.head, probe.shape
    device = next(head.parameters()).device
    features, labels = probe.datasets["train"].features, np.asarray(probe.datasets["train"].labels)
    val_x = _tensor(probe.datasets["validation"].features, device)
    val_y = _labels(probe.datasets["validation"].labels, device)
    balanced = config.class_weights == "balanced"
    weight = torch.tensor(shape.balanced_weights(labels), dtype=torch.float32, device=device) if balanced else None
    metric = shape.primary_metric if config.metric in ("loss", "auto") else config.metric
    start, initial = time.time(), copy.deepcopy(head.state_dict())
    was_training = head.training
    head.eval()  # dropout off: the probe is a deterministic fit (convex for a linear head)
    linear = _single_linear(head) if shape.probe_solver != "lbfgs" else None
    rows = np.arange(len(labels))
    if linear is None and len(rows) > SWEEP_ROWS:
        strata = shape.strata(labels)
        rows, _ = stratified_indices(strata if strata is not None else np.zeros(len(labels), dtype=np.int64),
                                     SWEEP_ROWS, config.seed)

    def fit(x, y, l2):
        if linear is not None and shape.probe_solver == "ridge":
            iterations = _sklearn_ridge(linear, x.cpu().numpy(), y.cpu().numpy(), l2)
        elif linear is not None:
            iterations = _sklearn_lbfgs(linear, x.cpu().numpy(), y.cpu().numpy(), "balanced" if balanced else None,
                                        l2, 1000)
        else:
            return _lbfgs(head, x, y, weight, l2, max_iter, shape)
        with torch.no_grad():
            return float(_data_loss(head, x, y, weight, shape)), iterations

    sweep_x, sweep_y = _tensor(features[rows], device), _labels(labels[rows], device)
    results, states = {}, {}
    for l2 in sorted(L2_SWEEP, reverse=True):  # strong to weak: each warm-starts the next (torch path)
        if linear is not None:
            head.load_state_dict(initial)
        loss, iterations = fit(sweep_x, sweep_y, l2)
        if linear is None and iterations <= 1:
            loss, iterations = _unstall(head, initial, sweep_x, sweep_y, weight, l2, max_iter, loss, iterations, shape)
        results[l2] = {"validation": round(_score(head, val_x, val_y, metric, shape), 4), "train_loss": round(loss, 4),
                       "iterations": iterations}
        states[l2] = copy.deepcopy(head.state_dict())
    best_score = max(r["validation"] for r in results.values())
    best = max(l2 for l2, r in results.items() if r["validation"] >= best_score - 1e-3)  # strongest within noise
    head.load_state_dict(states[best])
    loss, iterations = results[best]["train_loss"], results[best]["iterations"]
    if len(rows) < len(labels):  # refit the chosen strength on every row, from its sweep solution
        loss, iterations = fit(_tensor(features, device), _labels(labels, device), best)
        loss = round(loss, 4)
    solver = {"logistic": "lbfgs (scikit-learn)", "ridge": "ridge (scikit-learn)"}.get(
        shape.probe_solver if linear is not None else "", "lbfgs (torch)")
    result = {"solver": solver, "l2": best,
            "metric": metric, "validation_score": round(_score(head.eval(), val_x, val_y, metric, shape), 4),
            "train_loss": loss, "iterations": iterations, "sweep_rows": int(len(rows)),
            "sweep": {f"{l2:g}": r for l2, r in sorted(results.items())}, "seconds": round(time.time() - start, 2)}
    head.train(was_training)
    return result


def probe_trainer(config: TrainConfig, bundle, probe: ProbeData, out_dir: Path, main: bool):
    """A factory trainer over the cached features with the head as its model (to evaluate and predict)."""
    head_model = CachedFeaturesHead(probe.split.head, bundle.model.config)
    probe_config = config.model_copy(update={"group_by_length": False, **({} if main else {"report_to": ["none"]})})
    args = training_arguments(probe_config, out_dir / "checkpoints", report_to=[])
    groups = decay_split(list(head_model.named_parameters()), config.lr or 1e-3, config.weight_decay)
    return make_trainer(probe_config, head_model, args, probe.datasets["train"], probe.datasets["validation"],
                        collator=None, processor=None, param_groups=groups, shape=probe.shape)


def solve_probe(config: TrainConfig, bundle, probe: ProbeData, out_dir: Path, main: bool):
    """The L-BFGS probe, returned like a Trainer run: (trainer to evaluate with, TrainOutput, fit record)."""

    fit = fit_probe(config, bundle, probe)
    trainer = probe_trainer(config, bundle, probe, out_dir, main)
    rows = len(probe.datasets["train"])
    output = TrainOutput(fit["iterations"], fit["train_loss"],
                         {"train_runtime": fit["seconds"],
                          "train_samples_per_second": round(rows * max(1, fit["iterations"]) / max(fit["seconds"], 1e-6), 1)})
    if main:
        from ..io import append_jsonl

        record = {"step": fit["iterations"], "epoch": 0.0, "probe_l2": fit["l2"], "loss": fit["train_loss"],
                  f"eval_{fit['metric']}": fit["validation_score"]}
        distributed.on_main(append_jsonl, out_dir / "history.jsonl", record)
    return trainer, output, fit


def train_probe(config: TrainConfig, bundle, probe: ProbeData, out_dir: Path, *, epochs: float, lr: float,
                main: bool, callbacks: tuple = ()):
    """Train the head on cached features; returns (trainer, train output). ``main`` runs report to
    the user's trackers and write the run's history; a preliminary probe keeps to its own folder."""
    head_model = CachedFeaturesHead(probe.split.head, bundle.model.config)
    for param in head_model.parameters():
        param.requires_grad_(True)
    update = {"epochs": epochs, "lr": lr, "group_by_length": False}
    if not main:
        update["report_to"] = ["none"]
    probe_config = config.model_copy(update=update)
    args = training_arguments(probe_config, out_dir / "checkpoints")
    groups = decay_split(list(head_model.named_parameters()), lr, config.weight_decay)
    trainer = make_trainer(probe_config, head_model, args, probe.datasets["train"], probe.datasets["validation"],
                           collator=None, processor=None, param_groups=groups, shape=probe.shape,
                           history=out_dir / "history.jsonl",
                           callbacks=callbacks)
    output = trainer.train()
    raise_if_interrupted(trainer, resumable=False)
    return trainer, output
