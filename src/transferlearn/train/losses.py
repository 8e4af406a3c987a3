"""Loss functions handed to the Trainer as ``compute_loss_func`` (no Trainer subclass needed)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def weighted_cross_entropy(weights: torch.Tensor | None, label_smoothing: float = 0.0):
    """(Class-weighted) cross-entropy over integer labels, or soft labels from MixUp/CutMix ([batch, classes]).
    Summed and divided by the number of examples in the whole (gradient-accumulated) batch, as the
    Trainer expects from a ``compute_loss_func``."""

    def loss_fn(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        logits = logits.view(-1, logits.size(-1)).float()
        soft = labels.dim() == 2 and labels.is_floating_point()
        target = labels.float() if soft else labels.view(-1)
        weight = weights.to(logits.device) if weights is not None else None
        loss = F.cross_entropy(logits, target, weight=weight, label_smoothing=label_smoothing, reduction="sum")
        if num_items_in_batch is None:
            count = labels.shape[0] if soft else labels.numel()
        else:  # the Trainer counts label entries: a soft label row has one per class
            count = num_items_in_batch / labels.shape[1] if soft else num_items_in_batch
        return loss / count

    return loss_fn


def shape_loss(shape, weights: torch.Tensor | None = None):
    """The label shape's loss as the Trainer's ``compute_loss_func``: the shape's mean over the micro-batch, scaled to
    a share of the whole (gradient-accumulated) batch, which the Trainer counts in label entries. ``weights``: the
    shape's balanced weights (--class-weights balanced)."""

    def loss_fn(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        mean = shape.loss(logits, labels, None if weights is None else weights.to(logits.device))
        if num_items_in_batch is None:
            return mean
        entries_per_row = labels[0].numel() if labels.dim() > 1 else 1
        return mean * labels.shape[0] * entries_per_row / num_items_in_batch

    return loss_fn


def shape_metrics(shape):
    """``compute_metrics`` for the Trainer: the shape's scalar metrics of the evaluation logits."""

    def compute(eval_prediction) -> dict[str, float]:
        logits = eval_prediction.predictions
        if isinstance(logits, tuple):
            logits = logits[0]
        logits, labels = shape.gather(np.asarray(logits), np.asarray(eval_prediction.label_ids))
        return shape.summary(labels, logits)

    return compute
