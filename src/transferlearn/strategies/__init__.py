"""Transfer strategies, chosen by name (``--strategy NAME[:ARG]``) from one registry.

A strategy decides which parameter groups train (``prepare``) and with which optimizer groups
(``optimizer_groups``); it may add Trainer callbacks. It never owns the training loop: the Hugging
Face Trainer runs every strategy.
"""

from __future__ import annotations

from typing import Callable

from ..errors import ConfigError
from .base import Strategy, decay_split, layerwise_groups
from .lora import LoRA

class Full(Strategy):
    def trainable(self, groups):
        return set(groups.backbone()) | set(groups.head)


class FreezeBackbone(Strategy):
    default_lr = 1e-3

    def trainable(self, groups):
        return set(groups.head)


class FreezeFirst(Strategy):
    """``freeze:N`` — embeddings and blocks 0..N-1 frozen, the rest trains."""

    def trainable(self, groups):
        n = int(self.arg)
        if n > groups.num_blocks:
            raise ConfigError(f"strategy freeze:{n}: the model has only {groups.num_blocks} blocks")
        return {name for block in groups.blocks[n:] for name in block} | set(groups.head)


class Discriminative(Full):
    """``discriminative[:F]`` — every parameter trains, each group at its own LR (default F = 1/2.6)."""

    def optimizer_groups(self, model, groups, lr, weight_decay, layer_lr_decay=None):
        decay = layer_lr_decay if layer_lr_decay is not None else float(self.arg or 1 / 2.6)
        return super().optimizer_groups(model, groups, lr, weight_decay, decay)


class Gradual(Strategy):
    """``gradual[:K]`` — ULMFiT gradual unfreezing: the head first, then one more group from the top
    every K epochs (default 1; fractions allowed, e.g. 0.25), or at explicit milestones
    (``gradual:0.5,1,2`` — the epochs at which the next group unfreezes). Every group sits in the
    optimizer from the start, at its own LR when a layer-wise decay is set; a frozen group has no
    gradient, so AdamW leaves it untouched until the callback unfreezes it."""

    def trainable(self, groups):
        return set(groups.head)

    def optimizer_groups(self, model, groups, lr, weight_decay, layer_lr_decay=None):
        return layerwise_groups(model, groups, lr, weight_decay, layer_lr_decay, trainable_only=False)

    def milestones(self, num_groups: int) -> list[float]:
        """Epochs at which the 2nd, 3rd, ... group (from the top) unfreezes."""
        values = [float(v) for v in (self.arg or "1").split(",")]
        if len(values) > 1:
            return sorted(values)
        return [values[0] * i for i in range(1, num_groups)]

    def unfrozen_groups(self, epoch: float, num_groups: int) -> int:
        return 1 + sum(epoch + 1e-6 >= m for m in self.milestones(num_groups))

    def callbacks(self, groups):
        from transformers import TrainerCallback

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


class LinearProbe(FreezeBackbone):
    """``linear-probe`` — backbone frozen, its features computed once and cached; only the head trains,
    on the cache. Falls back to ``freeze-backbone`` when augmentation makes every epoch's inputs new."""

    cached_probe = True
    finetune_after_probe = False


class ProbeThenFinetune(Full):
    """``probe-then-finetune[:E]`` — LP-FT (Kumar et al. 2022): E epochs (default 10) of linear probe on
    cached features, then every parameter fine-tunes from the probed head. A trained head does not
    send large random gradients into the pretrained features at the start of fine-tuning."""

    cached_probe = True

    @property
    def probe_epochs(self) -> float:
        return float(self.arg or 10)


class Auto(Strategy):
    """``auto`` — chosen by the engine from the data size and a quick probe (see ``train/auto.py``)."""

    def trainable(self, groups):
        raise ConfigError("strategy 'auto' is resolved to a concrete strategy before training")


REGISTRY: dict[str, tuple[type[Strategy], str, Callable[[str | None], str | None] | None]] = {}


def register(name: str, cls: type[Strategy], description: str, check_arg=None) -> None:
    REGISTRY[name] = (cls, description, check_arg)


def _int_arg(name: str, required: bool):
    def check(arg: str | None) -> str | None:
        if arg is None:
            if required:
                raise ConfigError(f"strategy '{name}' needs a number, e.g. {name}:4")
            return None
        if not arg.isdigit():
            raise ConfigError(f"strategy '{name}:{arg}': '{arg}' is not a non-negative integer")
        return arg

    return check


def _no_arg(name: str):
    def check(arg: str | None) -> None:
        if arg is not None:
            raise ConfigError(f"strategy '{name}' takes no argument (got '{name}:{arg}')")

    return check


register("full", Full, "train every parameter", _no_arg("full"))
register("freeze-backbone", FreezeBackbone, "backbone frozen (runs every step), only the head trains",
         _no_arg("freeze-backbone"))
register("freeze", FreezeFirst, "freeze:N — embeddings and the first N blocks frozen", _int_arg("freeze", True))
def _gradual_arg(arg: str | None) -> str | None:
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


register("gradual", Gradual, "gradual[:K] — unfreeze one more group from the top every K epochs, or at "
         "milestones gradual:0.5,1,2 (ULMFiT)", _gradual_arg)


register("linear-probe", LinearProbe, "backbone frozen, features cached once, only the head trains on them",
         _no_arg("linear-probe"))
register("probe-then-finetune", ProbeThenFinetune,
         "probe-then-finetune[:E] — E epochs of cached linear probe (10), then full fine-tune (LP-FT)",
         _int_arg("probe-then-finetune", False))
register("auto", Auto, "pick a strategy from the data size and a quick linear probe; the choice is logged",
         _no_arg("auto"))


register("lora", LoRA, "lora[:r] — LoRA adapters (rank r, default 8) on the blocks' linear layers + head",
         _int_arg("lora", False))


def _decay_arg(arg: str | None) -> str | None:
    if arg is None:
        return None
    try:
        value = float(arg)
    except ValueError:
        raise ConfigError(f"strategy 'discriminative:{arg}': '{arg}' is not a number") from None
    if not 0 < value <= 1:
        raise ConfigError(f"strategy 'discriminative:{arg}': the decay factor must be in (0, 1]")
    return arg


register("discriminative", Discriminative, "discriminative[:F] — layer-wise LRs, each group below x F (1/2.6)",
         _decay_arg)


def parse_strategy(spec: str) -> Strategy:
    name, _, arg = spec.partition(":")
    name = name.strip().lower()
    if name not in REGISTRY:
        raise ConfigError(f"unknown strategy '{spec}'. Known: {', '.join(sorted(REGISTRY))}")
    cls, description, check = REGISTRY[name]
    arg = arg or None
    if check is not None:
        arg = check(arg)
    return cls(name=name, arg=arg, description=description)
