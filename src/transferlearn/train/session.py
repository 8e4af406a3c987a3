"""The verbs a strategy trains with (fastai's ``Learner``: ``fine_tune`` is freeze, fit, unfreeze, fit).

A :class:`Session` holds one :class:`~transferlearn.train.setup.Setup` (data, model, encoded splits), the run's
folder, the resolved config, the budget clock and the callbacks the caller passed in. A strategy's ``fit`` calls its
verbs — :meth:`Session.probe`, :meth:`Session.finetune`, :meth:`Session.score`, :meth:`Session.snapshot` /
:meth:`Session.restore`, :meth:`Session.time_step` — and returns the :class:`Fitted` model that is the result. The
session never asks which strategy it serves: what differs between strategies is in their ``fit``.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import distributed
from ..config import Plan, TrainConfig
from ..io import atomic_write_json
from ..layout import RunLayout
from ..modalities import augment_preset
from ..strategies import Strategy, parse_strategy
from ..strategies.auto import evaluation_steps
from ..strategies.base import freeze_batchnorm_statistics
from .budget import step_seconds
from .callbacks import Deadline, raise_if_interrupted
from .probe import ProbeData, probe_data, solve_probe, train_probe
from .setup import Setup
from .trainer import make_trainer, training_arguments

log = logging.getLogger(__name__)


@dataclass
class Fitted:
    """A trained model and what scores it: the trainer whose model is the result (a fine-tune's best epoch, or the
    probed head over cached features), its train output, the datasets it is scored on, and facts for metrics.json."""

    trainer: object
    output: object
    model: object
    eval_sets: dict
    facts: dict = field(default_factory=dict)
    folder: Path | None = None  # where its history.jsonl was written
    stopped_by_deadline: bool = False


class Session:
    """One run's training verbs over ``setup``. ``callbacks``: Trainer callbacks added to every fine-tune and probe
    the run trains (e.g. a sweep's pruning reporter); ``resume_from``: the checkpoint the final fine-tune resumes."""

    def __init__(self, config: TrainConfig, plan: Plan, setup: Setup, layout: RunLayout, *, started: float,
                 callbacks: tuple = (), resume_from: str | None = None):
        self.config, self.plan, self.setup, self.layout = config, plan, setup, layout
        self.started, self.callbacks, self.resume_from = started, tuple(callbacks), resume_from
        self._probe_data: ProbeData | None = None

    @property
    def metric(self) -> str:
        return self.config.metric

    @property
    def modality(self):
        return self.setup.modality

    @property
    def num_blocks(self) -> int:
        return self.setup.bundle.groups.num_blocks

    @property
    def augmentable(self) -> bool:
        """Whether the modality has an augmentation a fine-tune could add (``auto`` tries it as a candidate)."""
        return self.config.augment == "auto" and self.modality.augments(
            self.config.model_copy(update={"augment": "light", "strategy": "full"}))

    # --- the clock -------------------------------------------------------------------------------------------
    def elapsed(self) -> float:
        return time.time() - self.started

    def deadline(self) -> float | None:
        """When training must stop so that scoring and the report still fit the budget (None: no budget)."""
        if self.plan.budget_s is None:
            return None
        return self.started + self.plan.budget_s - self.plan.reserve_s

    def seconds_left(self) -> float | None:
        deadline = self.deadline()
        return None if deadline is None else deadline - time.time()

    # --- weights ----------------------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        """The model's weights as they stand (a copy: later training does not change it)."""
        return self.setup.snapshot()

    def restore(self, state: dict) -> None:
        self.setup.restore(state)

    def time_step(self, spec: str) -> float:
        """Seconds of one training step of strategy ``spec`` on a real batch (weights and flags put back)."""
        return step_seconds(self.setup, self.config, spec)

    # --- the verbs that train ------------------------------------------------------------------------------------
    def probe(self, *, final: bool = True, epochs: float | None = None, lr: float | None = None,
              folder: Path | None = None, splits: tuple[str, ...] | None = None) -> Fitted:
        """The head on cached backbone features: converged (L-BFGS, L2 chosen on validation) unless ``epochs`` of
        AdamW are asked for or the config's solver is the Trainer. ``final``: this probe is the run's result (it
        reports to the trackers and writes the run's history); ``splits``: the features computed now (the rest
        when :meth:`probe_features` asks again)."""
        data = self.probe_features(splits)
        folder = folder or (self.layout.root if final else self.layout.probe)
        bundle = self.setup.bundle
        facts = {"feature_cache": data.cache}
        if self.config.probe_solver == "lbfgs" and (final or epochs is None):
            trainer, output, fit = solve_probe(self.config, bundle, data, folder, main=final)
            facts["probe"] = fit
        else:
            epochs = epochs or self.config.epochs
            lr = self.config.lr if final else (lr or self.config.lr)
            trainer, output = train_probe(self.config, bundle, data, folder, epochs=epochs, lr=lr, main=final,
                                          callbacks=self.callbacks)
            facts["probe"] = {"solver": "trainer", "epochs": epochs, "lr": lr, "train_loss": output.training_loss,
                              "runtime_s": output.metrics.get("train_runtime")}
        return Fitted(trainer, output, bundle.model, data.datasets, facts, folder)

    def probe_features(self, splits: tuple[str, ...] | None = None) -> ProbeData:
        """Cached features of ``splits`` (None: every split), computed once per session and extended on demand."""
        wanted = set(splits or self.setup.encoded)
        if self._probe_data is None or not wanted <= set(self._probe_data.datasets):
            self._probe_data = probe_data(self.config, self.setup, self.layout, splits=splits)
        return self._probe_data

    def finetune(self, strategy: Strategy | str, *, epochs: float | None = None, lr: float | None = None,
                 augment: str | None = None, folder: Path | None = None, head_lr_multiplier: float | None = None,
                 deadline: float | None = None, final: bool = True) -> Fitted:
        """Train ``strategy``'s trainable parameters end to end through the Trainer, from the weights as they stand.

        ``final``: the run's own fine-tune (checkpoints in the run folder, resumable, its history is the run's);
        otherwise a candidate in ``folder`` whose checkpoints go once its best epoch is loaded. ``deadline``: a clock
        time at which it stops (its best epoch so far is kept)."""
        strategy = parse_strategy(strategy) if isinstance(strategy, str) else strategy
        config = self._finetune_config(strategy, epochs, lr, augment, final)
        folder = folder or self.layout.root
        bundle, setup = self.setup.bundle, self.setup
        model = strategy.prepare(bundle.model, bundle.groups)
        if freeze_batchnorm_statistics(model, config) and final:
            log.info("BatchNorm layers keep their pretrained statistics while fine-tuning (frozen_batchnorm)")
        multiplier = head_lr_multiplier or self.config.head_lr_multiplier or strategy.head_lr_multiplier
        groups = strategy.optimizer_groups(model, bundle.groups, config.lr, config.weight_decay, config.layer_lr_decay,
                                           multiplier)
        log.info("fine-tuning (%s): lr %.2g, head lr %.2g, %g epochs%s", strategy.name, config.lr, config.lr * multiplier,
                 config.epochs, f", augmentation {augment_preset(config)}" if setup.modality.augments(config) else "")
        train = setup.encoded["train"]
        if augment and augment != self.config.augment:  # the same rows through the training transform with it
            train = setup.modality.encode(bundle, setup.data.splits["train"], config, train=True)
        checkpoints = self.layout.checkpoints if final else folder / "checkpoints"
        trainer = make_trainer(config, model, training_arguments(config, checkpoints), train,
                               setup.encoded["validation"], collator=setup.modality.collator(bundle, config),
                               processor=bundle.processor, param_groups=groups,
                               shape=setup.data.shape, history=folder / "history.jsonl",
                               lengths_of=setup.modality.encoded_lengths,
                               callbacks=[*strategy.callbacks(bundle.groups), *self.callbacks,
                                          *([Deadline(deadline)] if deadline else [])])
        try:
            output = trainer.train(resume_from_checkpoint=self.resume_from if final else None)
            raise_if_interrupted(trainer, resumable=final)
        finally:
            if not final:
                strategy.release(model)
        if not final:  # its best epoch is loaded (on every rank); nothing resumes a candidate
            distributed.on_main(shutil.rmtree, checkpoints, ignore_errors=True)
        stopped = any(isinstance(c, Deadline) and c.hit for c in trainer.callback_handler.callbacks)
        return Fitted(trainer, output, model, setup.encoded, folder=folder, stopped_by_deadline=stopped)

    def _finetune_config(self, strategy: Strategy, epochs, lr, augment, final: bool) -> TrainConfig:
        """The run's config with this fine-tune's own epochs, rate, augmentation and evaluation interval."""
        if final and epochs is None and lr is None and augment is None:
            return self.config

        epochs = self.config.epochs if epochs is None else epochs
        steps_per_epoch = math.ceil(len(self.setup.encoded["train"]) / self.config.global_batch_size)
        return self.config.model_copy(update={
            "epochs": epochs, "lr": self.config.lr if lr is None else lr,
            "strategy": strategy.spec,  # each candidate logs to the trackers under its own strategy
            "augment": augment or ("none" if not final else self.config.augment),
            "eval_steps": self.config.eval_steps or evaluation_steps(steps_per_epoch, epochs)})

    def score(self, fitted: Fitted) -> dict:
        """Validation score (higher is better: ``loss`` is negated), loss and the score's bootstrap standard error of
        ``fitted`` as it stands (a fine-tune: its best epoch)."""
        trainer = fitted.trainer
        result = trainer.predict(trainer.eval_dataset, metric_key_prefix="eval")
        logits = result.predictions[0] if isinstance(result.predictions, tuple) else result.predictions
        loss = float(result.metrics["eval_loss"])
        score = -loss if self.metric == "loss" else float(result.metrics[f"eval_{self.metric}"])
        se = self.setup.data.shape.standard_error(self.metric, result.label_ids, logits, seed=self.config.seed)
        return {"validation": round(score, 4), "validation_loss": round(loss, 4), "validation_se": round(se, 4)}

    def write_json(self, path: Path, record: dict) -> None:
        """A record of the run's (``auto.json``), written once by rank 0."""
        distributed.on_main(atomic_write_json, path, record)

    def adopt_history(self, fitted: Fitted) -> None:
        """``fitted``'s training curves become the run's (the winner of a search trained in its own folder)."""
        source = (fitted.folder or self.layout.root) / "history.jsonl"
        if source != self.layout.history and source.exists():
            distributed.on_main(shutil.copyfile, source, self.layout.history)
