"""What every strategy is: which parameters train, in which optimizer groups, with which callbacks, and how it fits
itself with a training session's verbs (``fit``)."""

from __future__ import annotations

import weakref
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
    # the rate of a cached-probe step that starts a fine-tune (LP-FT): a head alone on frozen features
    probe_lr: ClassVar[float] = 1e-3
    # a new head trains at lr x this beside a pretrained body (fastai trains the head at the base rate and the body
    # lower); 1 where the head trains alone or starts probed
    head_lr_multiplier: ClassVar[float] = 1.0
    # What other stages need to know about a strategy, asked instead of its name:
    # its result is a head trained on cached backbone features (no backbone step; fp32; no augmentation)
    uses_cached_features: ClassVar[bool] = False
    # it trains a head on cached backbone features at some stage (a probe first, or only): a stream cannot feed it
    needs_feature_cache: ClassVar[bool] = False
    # a fine-tune gets the modality's augmentation preset unless asked otherwise (not where inputs are cached)
    augments_by_default: ClassVar[bool] = True
    # it tries several candidates and keeps the best (auto): it plans them, and its learning rate is a fine-tune's
    searches: ClassVar[bool] = False
    # relative cost, for ordering a study's arms: 0 a probe on cached features ... 4 training from scratch
    relative_cost: ClassVar[int] = 3
    # where cached features cannot stand for the training inputs (augmentation on): the strategy that runs instead
    fallback: ClassVar[str | None] = None

    @property
    def spec(self) -> str:
        """``NAME[:ARG]``, as ``--strategy`` takes it."""
        return f"{self.name}:{self.arg}" if self.arg else self.name

    def plan(self, planner) -> None:
        """Decide before training what this strategy will do, with the planner's verbs (``decide``, ``time_step``,
        ``fine_tune_epochs``, ``plan_candidates``, ...); recorded in ``plan.json``. By default a fine-tune gets at
        least ``min_steps`` optimizer steps when its epochs were not asked for."""
        if self.fine_tunes:
            planner.fine_tune_epochs()

    def fit(self, session):
        """Train with ``session``'s verbs and return the ``Fitted`` result (fastai's ``fine_tune``: a few verbs on a
        learner). By default: one fine-tune of :meth:`trainable`, resumable, whose best epoch is the result."""
        return session.finetune(self)

    @property
    def fine_tunes(self) -> bool:
        """Whether its result is one fine-tune through the backbone (min_steps and the epochs rule apply to it)."""
        return not self.uses_cached_features and not self.searches

    @classmethod
    def parse_arg(cls, name: str, arg: str | None) -> str | None:
        """Check the ``NAME:ARG`` argument; by default a strategy takes none."""
        if arg is not None:
            raise ConfigError(f"strategy '{name}' takes no argument (got '{name}:{arg}')")
        return None

    def trainable(self, groups: ParamGroups) -> set[str]:
        """Names of the parameters that train from the first step."""
        raise NotImplementedError

    def check(self, groups: ParamGroups) -> None:
        """Refuse a spec this model cannot take (``freeze:999`` on 12 blocks) as soon as the model is loaded,
        before any data is encoded or trained."""
        try:
            self.trainable(groups)
        except NotImplementedError:  # a strategy without trainable parameters of its own checks what it trains itself
            pass

    def prepare(self, model: nn.Module, groups: ParamGroups) -> nn.Module:
        trainable = self.trainable(groups) - set(groups.always_frozen)
        for name, param in model.named_parameters():
            param.requires_grad_(name in trainable)
        if not trainable:
            raise ConfigError(f"strategy '{self.name}' leaves no parameter to train")
        keep_frozen_modules_in_eval(model)
        return model

    def optimizer_groups(self, model: nn.Module, groups: ParamGroups, lr: float, weight_decay: float,
                         layer_lr_decay: float | None = None, head_lr_multiplier: float = 1.0) -> list[dict]:
        """AdamW groups: trainable parameters, no weight decay on biases and norms; the head at
        ``lr * head_lr_multiplier``.

        With ``layer_lr_decay`` F, every contract group gets its own learning rate: the head ``lr``,
        the block below it ``lr * F``, the next ``lr * F**2`` ... down to the embeddings (ULMFiT's
        discriminative fine-tuning; timm's ``--layer-decay``).
        """
        return layerwise_groups(model, groups, lr, weight_decay, layer_lr_decay, trainable_only=True,
                                head_lr_multiplier=head_lr_multiplier)

    def callbacks(self, groups: ParamGroups) -> list:
        return []

    def finalize(self, model: nn.Module, adapter_dir) -> nn.Module:
        """The model to save once training ends (LoRA writes its adapter to ``adapter_dir`` and merges it)."""
        return model

    def release(self, model: nn.Module) -> None:
        """Undo what ``prepare`` installed that outlives training (the eval-mode hook on frozen modules)."""
        remove_eval_policy(model)


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


class EvalPolicy:
    """Frozen parts run in eval mode while the rest trains: BatchNorm keeps its pretrained statistics (the Keras
    ``trainable`` vs ``training`` trap) and dropout stays off, so a frozen backbone computes exactly the features
    a linear probe caches; with ``batchnorm`` every BatchNorm layer keeps its statistics. A forward pre-hook
    rather than a callback, because the Trainer calls ``model.train()`` before every step and gradual unfreezing
    changes the frozen set. Installed on the model by ``prepare`` and removed by ``Strategy.release``."""

    def __init__(self, model: nn.Module):
        self.batchnorm = False
        self.handle = model.register_forward_pre_hook(self)

    def __call__(self, model: nn.Module, args) -> None:
        if not model.training:
            return
        for module in frozen_modules(model):
            module.eval()
        if self.batchnorm:
            for module in model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()


_POLICIES: "weakref.WeakKeyDictionary[nn.Module, EvalPolicy]" = weakref.WeakKeyDictionary()


def keep_frozen_modules_in_eval(model: nn.Module) -> EvalPolicy:
    """The model's eval policy, installed once."""
    if model not in _POLICIES:
        _POLICIES[model] = EvalPolicy(model)
    return _POLICIES[model]


def remove_eval_policy(model: nn.Module) -> None:
    policy = _POLICIES.pop(model, None)
    if policy is not None:
        policy.handle.remove()


def freeze_batchnorm_statistics(model: nn.Module, config) -> bool:
    """BatchNorm layers normalise with their pretrained running statistics (eval mode) while their affine
    weights still train — the Keras fine-tuning advice. Returns whether it applies (``config.frozen_batchnorm``;
    by default on for pretrained weights, off from scratch, where there are no statistics worth keeping)."""
    frozen = (not config.from_scratch) if config.frozen_batchnorm is None else config.frozen_batchnorm
    has_batchnorm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    policy = keep_frozen_modules_in_eval(model)
    policy.batchnorm = bool(frozen and has_batchnorm)
    return policy.batchnorm


def layerwise_groups(model: nn.Module, groups: ParamGroups, lr: float, weight_decay: float,
                     layer_lr_decay: float | None, trainable_only: bool, head_lr_multiplier: float = 1.0) -> list[dict]:
    params = dict(model.named_parameters())
    head = set(groups.head)
    if layer_lr_decay is None:
        named = [(n, p) for n, p in params.items() if p.requires_grad or not trainable_only]
        if head_lr_multiplier == 1.0:
            return decay_split(named, lr, weight_decay)
        body_groups = decay_split([(n, p) for n, p in named if n not in head], lr, weight_decay)
        head_groups = decay_split([(n, p) for n, p in named if n in head], lr * head_lr_multiplier, weight_decay)
        for group in head_groups:
            group["name"] = "head"
        return body_groups + head_groups
    out = []
    ordered = groups.ordered()  # embeddings, block.0 .. block.N-1, head
    for depth, (group_name, names) in enumerate(reversed(ordered)):
        named = [(n, params[n]) for n in names if params[n].requires_grad or not trainable_only]
        scale = head_lr_multiplier if group_name == "head" else 1.0
        for group in decay_split(named, lr * scale * layer_lr_decay**depth, weight_decay):
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
