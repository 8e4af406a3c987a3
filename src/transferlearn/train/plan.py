"""Intent -> plan: what is decided before training, decided once and saved once (``plan.json``).

A :class:`Planner` holds the config as decided so far and offers the verbs a decision needs (time a step, the
forward pass's cost, the budget, a view of the data at another input size); each decision is a key and a reason
(:meth:`Planner.decide`). The order: the concrete modality and what the data sets; a fallback when cached features
cannot stand for augmented inputs; what streaming rules out; the training precision (``auto``: timed); the learning
rate; then the strategy's own plan (``Strategy.plan``: a fine-tune's epochs, ``auto``'s input size and candidates);
fixed steps for a stream. Nothing is changed in the :class:`~transferlearn.train.setup.Setup` it plans on.
"""

from __future__ import annotations

import copy
import logging
import math

from .. import distributed
from ..config import Plan, TrainConfig
from ..errors import ConfigError
from ..layout import RunLayout
from ..planned import Candidate
from ..strategies import Strategy, parse_strategy
from ..strategies.auto import epochs_for, evaluation_steps
from .budget import budget_seconds, choose_precision, forward_seconds, step_seconds
from .lr_find import lr_find_on
from .probe import fit_probe, probe_data
from .setup import Setup

BUDGET_EPOCHS_MAX = 10.0  # auto as one fine-tune (token tags): NER recipes train 3-10 epochs; early stopping picks

log = logging.getLogger(__name__)


class Planner:
    """The decisions before training, over one setup; a strategy's ``plan`` calls its verbs."""

    def __init__(self, intent: TrainConfig, setup: Setup, layout: RunLayout):
        self.intent, self.setup, self.layout = intent, setup, layout
        self.config = intent.model_copy(update={"task": setup.modality.name})
        self.updates: dict = {}
        self.decisions: list[str] = []
        self.candidates: list[Candidate] = []
        self.estimate_s: float | None = None
        self.reserve_s = 0.0
        self.budget_s = budget_seconds(self.config)
        self.fills_budget = False  # auto became one fine-tune: its epochs fill the budget
        self.lr: float | None = None

    # --- what a plan reads ----------------------------------------------------------------------------------------
    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.setup.data.rows("train") / self.config.global_batch_size)

    @property
    def epochs_asked(self) -> float | None:
        """The epochs the user asked for, or None where the default stands."""
        return self.intent.epochs if "epochs" in self.intent.model_fields_set else None

    @property
    def num_blocks(self) -> int:
        return self.setup.bundle.groups.num_blocks

    @property
    def eval_batch_size(self) -> int:
        return self.config.eval_batch_size or self.config.batch_size * 2

    # --- the verbs ----------------------------------------------------------------------------------------------
    def decide(self, key: str, value, why: str, *, quiet: bool = False) -> None:
        """Set config ``key`` to ``value`` for this run, with the reason recorded in ``plan.json``."""
        self.updates[key] = value
        self.config = self.config.model_copy(update={key: value})
        shown = f"{value:g}" if isinstance(value, float) else value
        self.note(f"{key}: {shown} ({why})", quiet=quiet)

    def note(self, text: str, *, quiet: bool = True) -> None:
        self.decisions.append(text)
        if not quiet:
            log.info(text)

    def time_step(self, spec: str) -> float:
        """Seconds of one training step of strategy ``spec`` here (weights and flags put back)."""
        return step_seconds(self.setup, self.config, spec)

    def forward_seconds(self) -> float:
        """Seconds of one evaluation batch's forward pass here."""
        return forward_seconds(self.setup, self.config)

    def rows(self, split: str) -> int:
        return len(self.setup.encoded[split]) if split in self.setup.encoded else 0

    def fine_tune_epochs(self) -> None:
        """Epochs (and the evaluation interval) of a fine-tune whose epochs were not asked for: at least min_steps
        optimizer steps on small data; early stopping keeps the best epoch."""
        if self.epochs_asked is not None:
            return
        steps, config = self.steps_per_epoch, self.config
        epochs = epochs_for(steps, config.min_steps, None, config.epochs)
        if self.fills_budget and self.budget_s:
            self._budget_epochs(epochs)
            return
        if epochs == config.epochs:
            return
        self.decide("epochs", epochs, f"{steps} steps an epoch; at least {config.min_steps} steps, early stopping "
                    "keeps the best epoch")
        every = evaluation_steps(steps, epochs) if config.eval_steps is None else None
        if every:
            self.decide("eval_steps", every, f"an epoch is {steps} steps")

    def choose_input_size(self) -> None:
        """Where the modality offers several input sizes (pictures far smaller than the backbone's input): the
        converged probe at each on a view of the data at that size; the smallest within 0.005 of the best validation
        score wins (it is also the cheapest to fine-tune). Later verbs plan on the chosen size."""
        sizes = self.setup.modality.input_sizes(self.config, self.setup.data, self.setup.bundle)
        if len(sizes) < 2:
            return
        weights = copy.deepcopy(self.setup.bundle.model.state_dict())
        scores = {}
        for size in sizes:
            view = self.setup.at_input_size(size)
            probe = probe_data(view.config, view, self.layout, splits=("train", "validation"))
            scores[size] = fit_probe(self.config, view.bundle, probe)["validation_score"]
            self.setup.bundle.model.load_state_dict(weights)
        best = max(scores.values())
        chosen = min(s for s, v in scores.items() if v >= best - 0.005)
        shown = ", ".join(f"{s} px {v:.4f}" for s, v in sorted(scores.items()))
        self.decide("image_size", chosen, f"the pictures are small: converged probe on validation at {shown}",
                    quiet=False)
        self.setup = self.setup.at_input_size(chosen)

    def _budget_epochs(self, least: float) -> None:
        """``auto`` that became one fine-tune (no cached probe for the label shape): as many epochs as the budget
        holds at the measured step and evaluation pace, between the usual epochs and BUDGET_EPOCHS_MAX; early
        stopping keeps the best epoch, the deadline stops an overrun."""
        steps = self.steps_per_epoch
        forward = self.forward_seconds()
        epoch_s = (steps * self.time_step(self.config.strategy) + forward * math.ceil(
            self.rows("validation") / self.eval_batch_size)) * 1.2  # auto's estimate margin
        room = self.budget_s - self.finishing_seconds(forward)
        epochs = float(min(BUDGET_EPOCHS_MAX, max(least, math.floor(room / max(epoch_s, 1e-6)))))
        self.decide("epochs", epochs, f"auto's budget as one fine-tune: an epoch takes ~{epoch_s:.0f} s here "
                    f"({steps} steps), {room:.0f} s of the {self.budget_s:.0f} s budget are left for training; at most "
                    f"{BUDGET_EPOCHS_MAX:g}, early stopping keeps the best epoch", quiet=False)
        every = evaluation_steps(steps, epochs) if self.config.eval_steps is None else None
        if every:
            self.decide("eval_steps", every, f"an epoch is {steps} steps")

    def finishing_seconds(self, forward_s: float) -> float:
        """What follows training, kept out of its budget: scoring validation and test with the result (one forward
        pass per batch, and the test split's probe features if a probe wins), the baseline and the report."""
        scored = self.rows("validation") + self.rows("test")
        return round(forward_s * math.ceil(scored / self.eval_batch_size) * 1.5 + 15.0, 1)

    def plan_candidates(self, candidates: list[Candidate], estimate_s: float, reserve_s: float) -> None:
        """What a search will try (``plan.json``'s candidates), its estimated seconds, and the seconds kept for
        scoring and the report."""
        self.candidates, self.estimate_s, self.reserve_s = candidates, estimate_s, reserve_s

    # --- the run's own decisions, before the strategy's ----------------------------------------------------------
    def resolve(self) -> Plan:
        if self.intent.task == "auto":
            self.note(f"modality: {self.setup.modality.name} (detected from the data)")
        for key, (value, why) in (self.setup.settings or {}).items():
            self.decide(key, value, why, quiet=True)
        strategy = self._fallback(parse_strategy(self.config.strategy))
        if not self.setup.data.shape.caches_features:
            strategy = self._uncached_choices(strategy)
        if self.config.streaming:
            strategy = self._streaming_choices(strategy)
        if self.config.precision == "auto":  # before the LR finder and a search's step timings: both run in it
            precision, note = choose_precision(self.setup, self.config, strategy)
            self.updates["precision"] = precision
            self.config = self.config.model_copy(update={"precision": precision})
            self.note(note, quiet=False)
        self.lr = self._choose_lr(strategy)
        strategy.plan(self)
        if self.config.streaming or self.config.max_steps:
            self._fixed_steps()
        modality = self.setup.modality
        return Plan(task=modality.name, strategy=self.config.strategy, lr=self.lr,
                    group_by_length=modality.token_lengths and self.config.group_by_length and not self.config.streaming,
                    updates=self.updates, candidates=self.candidates, budget_s=self.budget_s,
                    estimate_s=self.estimate_s, reserve_s=self.reserve_s, decisions=self.decisions)

    def _fallback(self, strategy: Strategy) -> Strategy:
        """A strategy on cached features cannot see augmented inputs: its fallback runs the frozen backbone."""
        if not strategy.fallback or not self.setup.modality.augments(self.config):
            return strategy
        log.warning("%s: augmentation is on, so cached features cannot be used (each epoch sees new inputs); "
                    "falling back to %s, which runs the frozen backbone every step", strategy.name, strategy.fallback)
        self.note(f"strategy: {strategy.fallback} instead of {strategy.name} (augmentation makes inputs new each "
                  "epoch)")
        self.config = self.config.model_copy(update={"strategy": strategy.fallback})
        return parse_strategy(strategy.fallback)

    def _uncached_choices(self, strategy: Strategy) -> Strategy:
        """A label shape with no one feature vector a row (a tag per word) has no cached probe: a search becomes
        ``full`` within the budget, a probe runs the frozen backbone every step, LP-FT is refused."""
        shape = self.setup.data.shape
        if strategy.searches:
            self.fills_budget = True
            self.note(f"strategy: full instead of {strategy.name} ({shape.name}: its candidates start from a probe on "
                      "one cached feature vector a row; a tag per word has none)", quiet=False)
            self.config = self.config.model_copy(update={"strategy": "full"})
            return parse_strategy("full")
        if strategy.fallback:
            self.note(f"strategy: {strategy.fallback} instead of {strategy.name} ({shape.name}: the head trains on the "
                      "frozen backbone run every step, not on cached features)", quiet=False)
            self.config = self.config.model_copy(update={"strategy": strategy.fallback})
            return parse_strategy(strategy.fallback)
        if strategy.needs_feature_cache:
            raise ConfigError(f"strategy {self.config.strategy}: it starts from a probe on cached features, which "
                              f"{shape.name} data has none of. Use full, freeze:N, freeze-backbone, gradual, "
                              "discriminative or lora.")
        return strategy

    def _choose_lr(self, strategy: Strategy) -> float:
        """The asked rate; ``auto``: the LR finder's valley; none asked: the strategy's default (a search's
        fine-tunes: the modality's)."""
        config, modality, layout = self.config, self.setup.modality, self.layout
        if config.lr == "auto":
            # a search: the sweep runs on the candidate that moves every layer; its rate serves every candidate
            sweep = config.model_copy(update={"lr": None, "progress": False,
                                              **({"strategy": "full"} if strategy.searches else {})})
            lr = lr_find_on(self.setup, sweep, layout.lr_find)["suggestion"]
            self.note(f"learning rate: {lr:.2e} (the LR finder's valley; plot in {layout.lr_find_plot})")
            log.info("--lr auto: the LR finder suggests %.2e (valley); plot in %s", lr, layout.lr_find_plot)
            return lr
        if config.lr is not None:
            return config.lr
        if strategy.searches:
            lr = modality.finetune_lr
            self.note(f"learning rate: {lr:g} for {strategy.name}'s fine-tunes (the {modality.name} modality's "
                      "default)")
            return lr
        self.note(f"learning rate: {strategy.default_lr:g} (the {strategy.name} strategy's default)")
        log.info("learning rate %.0e (the %s strategy's default)", strategy.default_lr, strategy.name)
        return strategy.default_lr

    def _streaming_choices(self, strategy: Strategy) -> Strategy:
        """What streamed training rows rule out: a probe (it caches every row's features), class weights and the
        baseline (they read every label or text at once). A search becomes ``full``; the rest is refused or off."""
        config = self.config
        if strategy.searches:
            self.note(f"strategy: full instead of {strategy.name} (streaming: it starts from a probe on every row's "
                      "cached features)")
            self.config = config.model_copy(update={"strategy": "full"})
            strategy = parse_strategy("full")
        elif strategy.needs_feature_cache:
            raise ConfigError(f"strategy {config.strategy} with streaming: it trains on every row's cached features, "
                              "which a stream does not hold. Use a fine-tuning strategy (full, freeze:N, lora, gradual, "
                              "discriminative), or drop streaming (the feature cache is memory-mapped already).")
        if config.class_weights == "balanced":
            raise ConfigError("class_weights balanced with streaming: not supported; the counts are in data.json after "
                              "a first run, or train without streaming")
        if config.baseline:
            self.decide("baseline", False, "streaming: the TF-IDF baseline would read every training text at once")
        return strategy

    def _fixed_steps(self) -> None:
        """A streamed split has no length, so the Trainer needs max_steps: the asked one, else epochs x the steps in
        one pass over the counted rows. Evaluation (and checkpoints) go by steps: once a pass unless asked."""
        config, per_epoch = self.config, self.steps_per_epoch
        steps = config.max_steps or max(1, math.ceil(config.epochs * per_epoch))
        if not config.max_steps:
            self.decide("max_steps", steps, f"{config.epochs:g} epochs of {per_epoch} steps over the counted rows")
        if config.eval_steps is None:
            self.decide("eval_steps", min(per_epoch, steps), "once a pass over the counted rows")


def resolve_plan(intent: TrainConfig, setup: Setup, layout: RunLayout) -> Plan:
    """The plan for ``intent`` on ``setup``, saved as ``plan.json`` (by rank 0)."""
    plan = Planner(intent, setup, layout).resolve()
    distributed.on_main(plan.save, layout.plan)
    return plan
