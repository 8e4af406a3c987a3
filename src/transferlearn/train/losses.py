"""Loss functions handed to the Trainer as ``compute_loss_func`` (no Trainer subclass needed)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def balanced_class_weights(labels, num_classes: int) -> torch.Tensor:
    """scikit-learn's ``class_weight='balanced'``: n_samples / (n_classes * count(class))."""
    counts = np.bincount(np.asarray(labels), minlength=num_classes).astype(np.float64)
    weights = len(labels) / (num_classes * np.maximum(counts, 1))
    return torch.tensor(weights, dtype=torch.float32)


def weighted_cross_entropy(weights: torch.Tensor, label_smoothing: float = 0.0):
    """Class-weighted cross-entropy. Summed and divided by the number of labels in the whole
    (gradient-accumulated) batch, as the Trainer expects from a ``compute_loss_func``."""

    def loss_fn(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), labels.view(-1),
                               weight=weights.to(logits.device), label_smoothing=label_smoothing, reduction="sum")
        count = num_items_in_batch if num_items_in_batch is not None else labels.numel()
        return loss / count

    return loss_fn
