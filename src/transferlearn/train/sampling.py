"""Training order for token sequences: batches of similar length (less padding), in random batch order.

Why not the Trainer's own ``group_by_length`` (``LengthGroupedSampler``): it sorts each group of 50 batches
longest first, so within every group the batch length falls step after step. When length predicts the
label, the class mix drifts with it. On SmSA, 86 % of the longest fifth of sentences is positive, and the
shortest fifth is 49 % negative and 29 % neutral. A head trained at LoRA's or a probe's learning rate chases
that drift instead of the features. Training the head alone at 5e-4 on SmSA, the loss climbed from 0.56 to
1.99 over the first 50 steps, and LoRA ended predicting one class (test macro-F1 0.196,
benchmarks/results/strategies_smsa_gpu_hf_sampler.json; 0.860 with this sampler). In an LR sweep, it would
tie sentence length to the learning rate. Shuffling the batches keeps the padding saving and removes the drift.
"""

from __future__ import annotations

import math

import numpy as np
from torch.utils.data import Sampler
from transformers import TrainerCallback


def length_bucketed_order(lengths, batch_size: int, seed: int, group: int = 50) -> list[int]:
    """Rows in groups of ``group`` batches, each group sorted by length and cut into batches; the batches of
    all groups then come in random order. A ragged last batch stays last, so every batch keeps its rows."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    batches = []
    for start in range(0, len(order), group * batch_size):
        chunk = sorted(order[start : start + group * batch_size], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    last = batches.pop() if batches and len(batches[-1]) < batch_size else []
    return [int(i) for b in rng.permutation(len(batches)) for i in batches[b]] + [int(i) for i in last]


class LengthBucketedSampler(Sampler[int]):
    """:func:`length_bucketed_order` with a fresh order each epoch, set by :class:`SamplerEpoch` at each epoch's
    start, so a run resumed from a checkpoint sees the order it would have seen. (The Trainer's own ``set_epoch``
    does not reach a sampler once it wraps the loader to skip the batches a mid-epoch checkpoint has trained.)"""

    def __init__(self, lengths, batch_size: int, seed: int, group: int = 50):
        self.lengths = list(lengths)
        self.batch_size, self.seed, self.group, self.epoch = batch_size, seed, group, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        return iter(length_bucketed_order(self.lengths, self.batch_size, self.seed + self.epoch, self.group))


class SamplerEpoch(TrainerCallback):
    """Sets ``sampler``'s epoch when an epoch begins: the integer part of the Trainer's epoch counter, which a
    resumed run restores from its checkpoint (2.17 in the middle of the third epoch)."""

    def __init__(self, sampler: LengthBucketedSampler):
        self.sampler = sampler

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.sampler.set_epoch(math.floor(state.epoch or 0.0))


def token_length_sampler(lengths: list[int] | None, batch_size: int, seed: int) -> LengthBucketedSampler | None:
    """The sampler over the rows' lengths (the modality's ``encoded_lengths``); None for rows without one."""
    return None if lengths is None else LengthBucketedSampler(lengths, batch_size, seed)
