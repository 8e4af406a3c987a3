"""``--strategy auto``: a quick linear probe on cached features, then a rule on data size and probe score.

The rule follows the usual transfer-learning guidance (CS231n "Transfer Learning" notes; ULMFiT;
LP-FT): when frozen features already separate the classes, or there are too few examples per class
to move a backbone safely, keep the backbone frozen; on a small dataset unfreeze gradually with
layer-wise learning rates; with enough data fine-tune everything, starting from a probed head.
The features cached by the quick probe are reused by the chosen strategy when it probes too.
"""

from __future__ import annotations

import copy
import logging

from ..config import TrainConfig
from ..io import atomic_write_json
from ..layout import RunLayout
from .setup import Setup

log = logging.getLogger(__name__)

PROBE_IS_ENOUGH = 0.95  # validation score of the frozen features above which training the backbone adds little
MIN_PER_CLASS = 20  # fewer examples per class than this: a backbone overfits before it adapts
SMALL_DATASET = 2000
QUICK_PROBE_EPOCHS = 5


def pick_strategy(n_train: int, num_labels: int, probe_score: float) -> tuple[str, str, dict]:
    """(strategy, reason, config updates) for a dataset of ``n_train`` rows and a quick-probe score."""
    per_class = n_train / max(num_labels, 1)
    if probe_score >= PROBE_IS_ENOUGH:
        return ("linear-probe", f"the frozen features already score {probe_score:.3f} (>= {PROBE_IS_ENOUGH}) on "
                "validation: training the backbone has little to add", {})
    if per_class < MIN_PER_CLASS:
        return ("linear-probe", f"only {per_class:.0f} training examples per class (< {MIN_PER_CLASS}): too few "
                "to move the backbone without overfitting", {})
    if n_train < SMALL_DATASET:
        return ("gradual", f"a small dataset ({n_train} rows < {SMALL_DATASET}) and a probe score of "
                f"{probe_score:.3f}: gradual unfreezing with discriminative learning rates (ULMFiT) adapts the "
                "top of the backbone while protecting the pretrained features", {"layer_lr_decay": 1 / 2.6})
    return ("probe-then-finetune", f"{n_train} training rows and a probe score of {probe_score:.3f}: enough data "
            "to fine-tune every layer; starting from the probed head (LP-FT) keeps the features intact early on", {})


def choose_strategy(config: TrainConfig, setup: Setup, layout: RunLayout):
    """Run the quick probe, pick, log and record why (``auto.json``); returns (probe data, choice)."""
    from .probe import probe_data, train_probe

    bundle, encoded = setup.bundle, setup.encoded
    probe = probe_data(config, setup, layout)
    initial_head = copy.deepcopy(probe.split.head.state_dict())
    trainer, _ = train_probe(config, bundle, probe, layout.auto, epochs=QUICK_PROBE_EPOCHS, lr=1e-3, main=False)
    metric = "macro_f1" if config.metric == "loss" else config.metric
    score = float(trainer.evaluate(probe.datasets["validation"])[f"eval_{metric}"])
    probe.split.head.load_state_dict(initial_head)  # the chosen strategy starts from the same head as any run
    n_train = len(encoded["train"])
    strategy, reason, updates = pick_strategy(n_train, len(bundle.model.config.id2label), score)
    updates = {k: v for k, v in updates.items() if getattr(config, k) is None}  # the user's settings win
    choice = {"strategy": strategy, "reason": reason, "probe_metric": metric, "probe_score": round(score, 4),
              "probe_epochs": QUICK_PROBE_EPOCHS, "train_rows": n_train, "config": updates}
    atomic_write_json(layout.auto_record, choice)
    log.info("--strategy auto chose '%s': %s", strategy, reason)
    return probe, choice
