"""The Hugging Face Trainer every run trains with, and what it adds: batches of similar length (``LengthBucketedSampler``,
see train/sampling.py for why not the Trainer's ``group_by_length``), length-sorted evaluation, a stop before a
non-finite loss changes the weights, every parameter group's learning rate in the log, and contiguous checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from accelerate.utils import extract_model_from_parallel
from transformers import Trainer
from transformers.trainer_utils import PredictionOutput

from ..errors import TrainingDiverged
from ..layout import complete_checkpoints


def length_order(lengths: list[int] | None) -> list[int] | None:
    """Row indices longest first; None for rows without a length."""
    if lengths is None:
        return None
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


class LengthAwareTrainer(Trainer):
    """The HF Trainer, with text batches drawn by ``LengthBucketedSampler`` when one is given (see
    train/sampling.py for why not the Trainer's ``group_by_length``). Its one hook for a custom sampler is
    ``_get_train_sampler``."""

    def __init__(self, *args, length_sampler=None, lengths_of=None, **kwargs):
        self.length_sampler, self.lengths_of = length_sampler, lengths_of
        super().__init__(*args, **kwargs)
        # A classifier's own loss is the mean over its batch; it never reads ``num_items_in_batch``. The Trainer
        # takes a forward with **kwargs for a loss summed over the global batch, and then skips dividing by the
        # accumulation steps and multiplies by the number of processes: gradients N x too large, which changes
        # what max_grad_norm clips (and the logged loss). Our compute_loss_func does read the count.
        self.model_accepts_loss_kwargs = False

    def train(self, *args, **kwargs):
        try:
            return super().train(*args, **kwargs)
        finally:
            # Accelerate wraps the model's forward in autocast for mixed precision and leaves it wrapped: a model
            # trained in bf16 would answer every later call in bf16 (the probe's logit check failed on it).
            extract_model_from_parallel(self.model, keep_fp32_wrapper=False)

    def training_step(self, *args, **kwargs):
        # Checked before the optimizer step, so the weights (and every checkpoint) stay those of the last good
        # step. One scalar read per step; the Trainer's own NaN filter only hides such steps from the log.
        loss = super().training_step(*args, **kwargs)
        if not torch.isfinite(loss).all():
            epoch = f" (epoch {self.state.epoch:.2f})" if self.state.epoch is not None else ""
            kept, _ = complete_checkpoints(Path(self.args.output_dir))
            where = (f"the last good checkpoint, {kept[-1].name}, is kept in {kept[-1].parent}" if kept
                     else "no checkpoint had been saved yet")
            raise TrainingDiverged(
                f"the training loss became {loss.item()} at step {self.state.global_step + 1}{epoch}, and training "
                f"stopped before that step changed the weights; {where}. Lower --lr (it is "
                f"{self.args.learning_rate:g}), keep --max-grad-norm at 1, or check the data for extreme values.")
        return loss

    def log(self, logs, *args, **kwargs):
        # every parameter group's rate (head vs body, discriminative layers), not only the first group's: the
        # trackers, the history and the report show what each part of the model trained at
        if "loss" in logs and self.optimizer is not None:
            seen = {}
            for group in self.optimizer.param_groups:  # unnamed groups are the body's (decay / no decay)
                seen.setdefault(group.get("name") or "body", group["lr"])
            if len(seen) > 1:
                logs.update({f"learning_rate/{name}": lr for name, lr in seen.items()})
        return super().log(logs, *args, **kwargs)

    def _save(self, output_dir=None, state_dict=None):
        # safetensors refuses strided tensors: channels_last convolution weights are saved contiguous
        # (loading copies them back into the model's own layout)
        if state_dict is None:
            state = self.model.state_dict()
            if any(not v.is_contiguous() for v in state.values()):
                state_dict = {k: v.contiguous() for k, v in state.items()}
        return super()._save(output_dir, state_dict=state_dict)

    # Evaluation and prediction batches of token sequences go longest first: each pads to rows of its own
    # length, not to the longest row in file order (SmSA validation: 2.27x the real tokens in file order,
    # 1.06x sorted). predict() puts its rows back in the dataset's order.
    def _length_order(self, dataset):
        """length_order, read once per dataset: every epoch evaluates the same validation split."""
        if self.args.world_size != 1 or self.lengths_of is None:
            return None
        cached = getattr(self, "_length_order_cache", None)
        if cached is None or cached[0] is not dataset:
            self._length_order_cache = (dataset, length_order(self.lengths_of(dataset)))
        return self._length_order_cache[1]

    def _get_eval_sampler(self, eval_dataset):
        order = self._length_order(eval_dataset)
        return order if order is not None else super()._get_eval_sampler(eval_dataset)

    def predict(self, test_dataset, *args, **kwargs):
        output = super().predict(test_dataset, *args, **kwargs)
        order = self._length_order(test_dataset)
        if order is None:
            return output
        back = np.argsort(np.asarray(order))
        predictions = output.predictions
        predictions = tuple(p[back] for p in predictions) if isinstance(predictions, tuple) else predictions[back]
        labels = output.label_ids[back] if output.label_ids is not None else None
        return PredictionOutput(predictions=predictions, label_ids=labels, metrics=output.metrics)

    def _get_train_sampler(self, train_dataset=None):
        if self.length_sampler is not None and (train_dataset is None or train_dataset is self.train_dataset):
            return self.length_sampler
        return super()._get_train_sampler(train_dataset)
