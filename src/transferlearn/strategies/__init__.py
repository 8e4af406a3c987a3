"""Transfer strategies, chosen by name (``--strategy NAME[:ARG]``) from one registry.

A strategy decides which parameter groups train (``prepare``) and with which optimizer groups
(``optimizer_groups``); it may add Trainer callbacks. It never owns the training loop: the Hugging
Face Trainer runs every strategy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

from torch import nn

from ..errors import ConfigError
from ..models.contract import ParamGroups

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "layernorm.weight", "norm.weight", "bn", "ln_")


@dataclass
class Strategy:
    name: str
    arg: str | None = None
    description: str = ""
    # Used when the user sets no --lr: a head alone on frozen features wants a far larger step than a
    # whole pretrained network (fastai and Keras recipes use ~1e-3 vs ~1e-5..5e-5).
    default_lr: ClassVar[float] = 5e-5

    def trainable(self, groups: ParamGroups) -> set[str]:
        """Names of the parameters that train from the first step."""
        raise NotImplementedError

    def prepare(self, model: nn.Module, groups: ParamGroups) -> nn.Module:
        trainable = self.trainable(groups)
        for name, param in model.named_parameters():
            param.requires_grad_(name in trainable)
        if not trainable:
            raise ConfigError(f"strategy '{self.name}' leaves no parameter to train")
        return model

    def optimizer_groups(self, model: nn.Module, groups: ParamGroups, lr: float, weight_decay: float,
                         layer_lr_decay: float | None = None) -> list[dict]:
        """AdamW groups: trainable parameters, no weight decay on biases and norms.

        With ``layer_lr_decay`` F, every contract group gets its own learning rate: the head ``lr``,
        the block below it ``lr * F``, the next ``lr * F**2`` ... down to the embeddings (ULMFiT's
        discriminative fine-tuning; timm's ``--layer-decay``).
        """
        return layerwise_groups(model, groups, lr, weight_decay, layer_lr_decay, trainable_only=True)

    def callbacks(self, groups: ParamGroups) -> list:
        return []


def layerwise_groups(model: nn.Module, groups: ParamGroups, lr: float, weight_decay: float,
                     layer_lr_decay: float | None, trainable_only: bool) -> list[dict]:
    params = dict(model.named_parameters())
    if layer_lr_decay is None:
        named = [(n, p) for n, p in params.items() if p.requires_grad or not trainable_only]
        return decay_split(named, lr, weight_decay)
    out = []
    ordered = groups.ordered()  # embeddings, block.0 .. block.N-1, head
    for depth, (group_name, names) in enumerate(reversed(ordered)):
        named = [(n, params[n]) for n in names if params[n].requires_grad or not trainable_only]
        for group in decay_split(named, lr * layer_lr_decay**depth, weight_decay):
            group["name"] = group_name
            out.append(group)
    return out


def decay_split(named: list, lr: float, weight_decay: float) -> list[dict]:
    decay = [p for n, p in named if not any(k in n for k in NO_DECAY) and p.ndim > 1]
    no_decay = [p for n, p in named if any(k in n for k in NO_DECAY) or p.ndim <= 1]
    out = []
    if decay:
        out.append({"params": decay, "lr": lr, "weight_decay": weight_decay})
    if no_decay:
        out.append({"params": no_decay, "lr": lr, "weight_decay": 0.0})
    return out


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
    every K epochs (default 1). Every group sits in the optimizer from the start, at its own LR when a
    layer-wise decay is set; a frozen group has no gradient, so AdamW leaves it untouched until a
    callback unfreezes it."""

    def trainable(self, groups):
        return set(groups.head)

    def optimizer_groups(self, model, groups, lr, weight_decay, layer_lr_decay=None):
        return layerwise_groups(model, groups, lr, weight_decay, layer_lr_decay, trainable_only=False)

    def callbacks(self, groups):
        from transformers import TrainerCallback

        every = int(self.arg or 1)
        top_down = [names for _, names in reversed(groups.ordered())]  # head, block N-1, ..., embeddings

        class UnfreezeCallback(TrainerCallback):
            def on_epoch_begin(self, args, state, control, model=None, **kwargs):
                unfrozen = 1 + int((state.epoch or 0) + 1e-6) // every
                params = dict(model.named_parameters())
                for depth, names in enumerate(top_down):
                    for name in names:
                        if name in params:
                            params[name].requires_grad_(depth < unfrozen)

        return [UnfreezeCallback()]


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
register("gradual", Gradual, "gradual[:K] — unfreeze one more group from the top every K epochs (ULMFiT)",
         _int_arg("gradual", False))


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
