"""A frozen BatchNorm computed inside the convolution before it.

A BatchNorm in eval mode is an affine map per channel, ``y = x * s + (beta - mean * s)`` with
``s = gamma / sqrt(var + eps)``, so a convolution followed by it is one convolution with weight ``W * s`` and bias
``(b - mean) * s + beta``. Fine-tuning keeps BatchNorm statistics frozen by default (``frozen_batchnorm``), and
then every BatchNorm is a full pass over its activations, forward and backward, that this removes: on the 2-core
CPU an EfficientNet-Lite0 training step (224 px, batch 16, channels_last) took 0.62 s with the BatchNorms taken out
against 0.92 s with them (``benchmarks/train_throughput.py`` measures the fold itself).

Nothing about the model changes but where the arithmetic happens: ``gamma`` and ``beta`` stay parameters of the
BatchNorm and get the same gradients (they flow through ``s`` and the bias), the state dict keeps its keys, a saved
model is plain timm. Each folded module checks its BatchNorm's mode on every call, so a BatchNorm in train mode
(training from scratch, ``--frozen-batchnorm false``) normalises with batch statistics as before.

torch.ao's ``fuse_conv_bn_eval`` folds for inference only (it bakes ``W * s`` into a new weight, so ``gamma`` and
``beta`` stop training); torch.compile fuses the pass too but stalls ~50 s compiling. Pairs are found with
torch.fx: a convolution whose only consumer is the BatchNorm.
"""

from __future__ import annotations

import logging

import torch
from timm.layers import BatchNormAct2d
from torch import nn

log = logging.getLogger(__name__)


def _frozen(bn: nn.modules.batchnorm._BatchNorm) -> bool:
    return not bn.training and bn.running_var is not None


class FoldedConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` that applies its BatchNorm's eval-mode affine map through its own weight and bias."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn = self._batchnorm[0]  # in a tuple: not registered as a submodule, so the state dict keeps its keys
        if not _frozen(bn):
            return super().forward(x)
        scale = torch.rsqrt(bn.running_var + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight
        bias = -bn.running_mean if self.bias is None else self.bias - bn.running_mean
        bias = bias * scale + (bn.bias if bn.bias is not None else 0.0)
        return self._conv_forward(x, self.weight * scale.reshape(-1, 1, 1, 1), bias)


class FoldedBatchNorm2d(nn.BatchNorm2d):
    """A BatchNorm whose eval-mode map its convolution applies: then the identity."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if _frozen(self) else super().forward(x)


class FoldedBatchNormAct2d(BatchNormAct2d):
    """timm's BatchNorm + activation: only the activation (and its dropout) once the convolution applies the BN."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.drop(x)) if _frozen(self) else super().forward(x)


# exact types only: a subclass (timm's Conv2dSame pads in its own forward) keeps its own forward, unfolded
FOLDED = {nn.Conv2d: FoldedConv2d, nn.BatchNorm2d: FoldedBatchNorm2d, BatchNormAct2d: FoldedBatchNormAct2d}


class _Leaves(torch.fx.Tracer):
    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return isinstance(module, (nn.Conv2d, nn.modules.batchnorm._BatchNorm)) or super().is_leaf_module(
            module, qualified_name)


def conv_batchnorm_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(convolution, BatchNorm) module names where the BatchNorm's input is the convolution's output and nothing
    else reads that output; [] when the model cannot be traced (data-dependent control flow)."""
    try:
        graph = _Leaves().trace(model)
    except Exception as exc:  # noqa: BLE001 — an untraceable model trains unfolded, as before
        log.debug("BatchNorm fold skipped: %s cannot be traced (%s)", type(model).__name__, exc)
        return []
    modules = dict(model.named_modules())
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or type(modules.get(node.target)) not in FOLDED:
            continue
        source = node.args[0] if node.args else None
        if (isinstance(source, torch.fx.Node) and source.op == "call_module" and len(source.users) == 1
                and type(modules.get(source.target)) is nn.Conv2d
                and modules[source.target].out_channels == modules[node.target].num_features):
            pairs.append((source.target, node.target))
    return pairs


def fold_frozen_batchnorm(model: nn.Module) -> int:
    """Make each convolution + BatchNorm pair of ``model`` compute the BatchNorm in the convolution while the
    BatchNorm is in eval mode (in place, by class: parameters, names and state dict unchanged). Returns the number of
    pairs folded."""
    modules = dict(model.named_modules())
    pairs = conv_batchnorm_pairs(model)
    for conv_name, bn_name in pairs:
        conv, bn = modules[conv_name], modules[bn_name]
        conv.__class__ = FoldedConv2d
        conv._batchnorm = (bn,)
        bn.__class__ = FOLDED[type(bn)]
    if pairs:
        log.debug("folded %d frozen BatchNorms into their convolutions", len(pairs))
    return len(pairs)


def unfold_batchnorm(model: nn.Module) -> int:
    """Undo :func:`fold_frozen_batchnorm` (each module back to its own class); the number of convolutions unfolded."""
    plain = {folded: original for original, folded in FOLDED.items()}
    count = 0
    for module in model.modules():
        if type(module) in plain:
            count += type(module) is FoldedConv2d
            module.__class__ = plain[type(module)]
            module.__dict__.pop("_batchnorm", None)
    return count
