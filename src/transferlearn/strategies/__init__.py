"""Transfer strategies, chosen by name (``--strategy NAME[:ARG]``) from one registry.

A strategy decides which parameter groups train (``prepare``), with which optimizer groups
(``optimizer_groups``), and fits itself with a training session's verbs (``fit``: a cached probe, a fine-tune, both,
or a search over candidates); it may add Trainer callbacks. It never owns the training loop: the Hugging Face Trainer
runs every fine-tune. A new strategy is a class registered with ``@register`` — nothing else changes.
"""

from __future__ import annotations

from transformers import TrainerCallback

from ..errors import ConfigError
from .auto import Auto
from .base import Strategy, decay_split, layerwise_groups
from .lora import LoRA
from .registry import REGISTRY, int_arg, parse_strategy, register

__all__ = ["REGISTRY", "Auto", "Strategy", "parse_strategy", "register", "decay_split", "layerwise_groups", "LoRA"]


@register("full", "train every parameter")
class Full(Strategy):
    head_lr_multiplier = 10.0

    def trainable(self, groups):
        return set(groups.backbone()) | set(groups.head)


@register("freeze-backbone", "backbone frozen (runs every step), only the head trains")
class FreezeBackbone(Strategy):
    default_lr = 1e-3
    relative_cost = 1

    def trainable(self, groups):
        return set(groups.head)


@register("freeze", "freeze:N — embeddings and the first N blocks frozen")
class FreezeFirst(Strategy):
    """``freeze:N`` — embeddings and blocks 0..N-1 frozen, the rest trains."""

    head_lr_multiplier = 10.0
    relative_cost = 1

    @classmethod
    def parse_arg(cls, name, arg):
        return int_arg(name, arg, required=True)

    def trainable(self, groups):
        n = int(self.arg)
        if n > groups.num_blocks:
            raise ConfigError(f"strategy freeze:{n}: the model has only {groups.num_blocks} blocks")
        return {name for block in groups.blocks[n:] for name in block} | set(groups.head)


@register("discriminative", "discriminative[:F] — layer-wise LRs, each group below x F (1/2.6)")
class Discriminative(Full):
    """``discriminative[:F]`` — every parameter trains, each group at its own LR (default F = 1/2.6)."""

    @classmethod
    def parse_arg(cls, name, arg):
        if arg is None:
            return None
        try:
            value = float(arg)
        except ValueError:
            raise ConfigError(f"strategy 'discriminative:{arg}': '{arg}' is not a number") from None
        if not 0 < value <= 1:
            raise ConfigError(f"strategy 'discriminative:{arg}': the decay factor must be in (0, 1]")
        return arg

    def optimizer_groups(self, model, groups, lr, weight_decay, layer_lr_decay=None, head_lr_multiplier=1.0):
        decay = layer_lr_decay if layer_lr_decay is not None else float(self.arg or 1 / 2.6)
        return super().optimizer_groups(model, groups, lr, weight_decay, decay, head_lr_multiplier)


@register("gradual", "gradual[:K] — unfreeze one more group from the top every K epochs, or at milestones "
          "gradual:0.5,1,2 (ULMFiT)")
class Gradual(Strategy):
    """``gradual[:K]`` — ULMFiT gradual unfreezing: the head first, then one more group from the top
    every K epochs (default 1; fractions allowed, e.g. 0.25), or at explicit milestones
    (``gradual:0.5,1,2`` — the epochs at which the next group unfreezes). Every group sits in the
    optimizer from the start, at its own LR when a layer-wise decay is set; a frozen group has no
    gradient, so AdamW leaves it untouched until the callback unfreezes it."""

    @classmethod
    def parse_arg(cls, name, arg):
        if arg is None:
            return None
        try:
            values = [float(v) for v in arg.split(",")]
        except ValueError:
            raise ConfigError(f"strategy 'gradual:{arg}': expected a number of epochs (gradual:1, gradual:0.25) or "
                              "milestone epochs (gradual:0.5,1,2)") from None
        if any(v <= 0 for v in values):
            raise ConfigError(f"strategy 'gradual:{arg}': epochs must be positive")
        return arg

    head_lr_multiplier = 10.0

    def trainable(self, groups):
        return set(groups.head)

    def optimizer_groups(self, model, groups, lr, weight_decay, layer_lr_decay=None, head_lr_multiplier=1.0):
        return layerwise_groups(model, groups, lr, weight_decay, layer_lr_decay, trainable_only=False,
                                head_lr_multiplier=head_lr_multiplier)

    def milestones(self, num_groups: int) -> list[float]:
        """Epochs at which the 2nd, 3rd, ... group (from the top) unfreezes."""
        values = [float(v) for v in (self.arg or "1").split(",")]
        if len(values) > 1:
            return sorted(values)
        return [values[0] * i for i in range(1, num_groups)]

    def unfrozen_groups(self, epoch: float, num_groups: int) -> int:
        return 1 + sum(epoch + 1e-6 >= m for m in self.milestones(num_groups))

    def callbacks(self, groups):

        top_down = [names for _, names in reversed(groups.ordered())]  # head, block N-1, ..., embeddings
        strategy = self

        class UnfreezeCallback(TrainerCallback):
            current = None

            def on_step_begin(self, args, state, control, model=None, **kwargs):
                unfrozen = strategy.unfrozen_groups(state.epoch or 0.0, len(top_down))
                if unfrozen == self.current:
                    return
                self.current = unfrozen
                params = dict(model.named_parameters())
                frozen = set(groups.always_frozen)
                for depth, names in enumerate(top_down):
                    for name in names:
                        if name in params:
                            params[name].requires_grad_(depth < unfrozen and name not in frozen)

        return [UnfreezeCallback()]


@register("linear-probe", "backbone frozen, features cached once, only the head trains on them")
class LinearProbe(FreezeBackbone):
    """``linear-probe`` — backbone frozen, its features computed once and cached; only the head trains,
    on the cache. Falls back to ``freeze-backbone`` when augmentation makes every epoch's inputs new."""

    fallback = "freeze-backbone"  # what runs when cached features cannot stand for the training inputs
    uses_cached_features = True
    needs_feature_cache = True
    augments_by_default = False
    relative_cost = 0

    def fit(self, session):
        return session.probe(final=True)


@register("probe-then-finetune", "probe-then-finetune[:E] — a cached linear probe (converged, or E epochs), "
          "then full fine-tune from the probed head (LP-FT)")
class ProbeThenFinetune(Full):
    """``probe-then-finetune[:E]`` — LP-FT (Kumar et al. 2022): a linear probe on cached features (fit to
    convergence, or E epochs of AdamW), then every parameter fine-tunes from the probed head. A trained head does not
    send large random gradients into the pretrained features at the start of fine-tuning."""

    head_lr_multiplier = 1.0  # the head starts probed
    needs_feature_cache = True
    relative_cost = 2

    @classmethod
    def parse_arg(cls, name, arg):
        return int_arg(name, arg, required=False)

    @property
    def probe_epochs(self) -> float | None:
        """E epochs of AdamW when given; else the probe is fit to convergence (L-BFGS)."""
        return float(self.arg) if self.arg else None

    def fit(self, session):
        probed = session.probe(final=False, epochs=self.probe_epochs, lr=self.probe_lr)
        fitted = session.finetune(self)
        fitted.facts = {**probed.facts, **fitted.facts}
        return fitted


register("lora", "lora[:r] — LoRA adapters (rank r, default 8) on the blocks' linear layers + head")(LoRA)
