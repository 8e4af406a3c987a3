"""What every strategy is: which parameters train, in which optimizer groups, with which callbacks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

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
    # Strategies that train the head on cached backbone features first (linear-probe, probe-then-finetune);
    # after the probe, either the whole network goes on training (LP-FT) or the probed head is the result.
    cached_probe: ClassVar[bool] = False
    finetune_after_probe: ClassVar[bool] = True
    probe_lr: ClassVar[float] = 1e-3

    def trainable(self, groups: ParamGroups) -> set[str]:
        """Names of the parameters that train from the first step."""
        raise NotImplementedError

    def prepare(self, model: nn.Module, groups: ParamGroups) -> nn.Module:
        trainable = self.trainable(groups) - set(groups.always_frozen)
        for name, param in model.named_parameters():
            param.requires_grad_(name in trainable)
        if not trainable:
            raise ConfigError(f"strategy '{self.name}' leaves no parameter to train")
        keep_frozen_modules_in_eval(model)
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

    def finalize(self, model: nn.Module, run_dir) -> nn.Module:
        """The model to save once training ends (LoRA merges its adapters here)."""
        return model


def frozen_modules(model: nn.Module) -> list[nn.Module]:
    """The largest sub-modules whose every parameter is frozen."""
    out = []

    def visit(module: nn.Module) -> None:
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            out.append(module)
            return
        for child in module.children():
            visit(child)

    visit(model)
    return out


def _eval_frozen(model: nn.Module, args) -> None:
    if model.training:
        for module in frozen_modules(model):
            module.eval()
        if getattr(model, "_tl_frozen_batchnorm", False):
            for module in model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()


def freeze_batchnorm_statistics(model: nn.Module, config) -> bool:
    """BatchNorm layers normalise with their pretrained running statistics (eval mode) while their affine
    weights still train — the Keras fine-tuning advice. Returns whether it applies (``config.frozen_batchnorm``;
    by default on for pretrained weights, off from scratch, where there are no statistics worth keeping)."""
    frozen = (not config.from_scratch) if config.frozen_batchnorm is None else config.frozen_batchnorm
    has_batchnorm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    model._tl_frozen_batchnorm = frozen and has_batchnorm
    keep_frozen_modules_in_eval(model)
    return model._tl_frozen_batchnorm


def keep_frozen_modules_in_eval(model: nn.Module) -> None:
    """Frozen parts run in eval mode while the rest trains: BatchNorm keeps its pretrained statistics
    (the Keras ``trainable`` vs ``training`` trap) and dropout stays off, so a frozen backbone computes
    exactly the features a linear probe caches. A forward pre-hook rather than a callback, because the
    Trainer calls ``model.train()`` before every step and gradual unfreezing changes the frozen set."""
    if not getattr(model, "_tl_frozen_eval_hook", False):
        model.register_forward_pre_hook(_eval_frozen)
        model._tl_frozen_eval_hook = True


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
