"""A frozen BatchNorm computed inside its convolution: same logits, same gradients, same state dict; a BatchNorm in
train mode normalises with batch statistics as before."""

from __future__ import annotations

import copy

import pytest
import timm
import torch

from transferlearn.models.batchnorm_fold import (
    FoldedConv2d,
    conv_batchnorm_pairs,
    fold_frozen_batchnorm,
    unfold_batchnorm,
)
from transferlearn.shapes import SingleLabel


def _pair(name: str):
    """(folded, plain) copies of one randomly initialised timm CNN with non-trivial BatchNorm statistics."""
    torch.manual_seed(0)
    plain = timm.create_model(name, pretrained=False, num_classes=3)
    for bn in (m for m in plain.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    folded = copy.deepcopy(plain)
    return folded, plain


def _frozen_train(model):
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()  # what frozen_batchnorm does while fine-tuning
    return model


@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet18"])
def test_the_fold_gives_the_same_logits_and_gradients(name):
    folded, plain = _pair(name)
    count = fold_frozen_batchnorm(folded)
    batchnorms = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in plain.modules())
    assert count == batchnorms > 10  # every BatchNorm of these follows a convolution
    assert list(folded.state_dict()) == list(plain.state_dict())  # a saved model is plain timm
    pixels = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(folded.eval()(pixels), plain.eval()(pixels), atol=1e-4)
    labels = torch.tensor([0, 2])
    for model in (folded, plain):
        _frozen_train(model)
        torch.nn.functional.cross_entropy(model(pixels), labels).backward()
    grads = {n: p.grad for n, p in plain.named_parameters()}
    for n, p in folded.named_parameters():  # BatchNorm gamma and beta train through the fold
        assert p.grad is not None and torch.allclose(p.grad, grads[n], rtol=1e-3, atol=1e-5), n


def test_a_batchnorm_in_train_mode_is_not_folded():
    folded, plain = _pair("resnet18")
    fold_frozen_batchnorm(folded)
    pixels = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    out_folded, out_plain = folded.train()(pixels), plain.train()(pixels)
    assert torch.allclose(out_folded, out_plain, atol=1e-4)  # batch statistics, not the running ones
    assert torch.equal(folded.bn1.running_mean, plain.bn1.running_mean)  # and the running statistics moved
    assert not torch.equal(folded.bn1.running_mean, _pair("resnet18")[1].bn1.running_mean)


def test_a_copy_of_a_folded_model_folds_its_own_batchnorms():
    folded, _ = _pair("resnet18")
    fold_frozen_batchnorm(folded)
    twin = copy.deepcopy(folded)
    assert isinstance(twin.conv1, FoldedConv2d) and twin.conv1._batchnorm[0] is twin.bn1
    pixels = torch.randn(1, 3, 32, 32)
    before = folded.eval()(pixels)
    with torch.no_grad():
        twin.bn1.weight.mul_(3.0)
    assert torch.equal(folded(pixels), before) and not torch.allclose(twin.eval()(pixels), before)
    assert unfold_batchnorm(twin) == 20 and type(twin.conv1) is torch.nn.Conv2d and type(twin.bn1) is torch.nn.BatchNorm2d


def test_an_output_read_elsewhere_or_an_untraceable_model_is_left_alone():
    class Branching(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y  # the convolution's output is read twice: the BN cannot live inside it

    class Untraceable(Branching):
        def forward(self, x):
            return self.bn(self.conv(x)) if x.sum() > 0 else x

    assert conv_batchnorm_pairs(Branching()) == [] and fold_frozen_batchnorm(Untraceable()) == 0


def test_a_loaded_cnn_is_folded(tiny_image_model):
    from transferlearn.models.image import load_image_classifier

    model = load_image_classifier(str(tiny_image_model()), ["blue", "red"]).model
    assert any(isinstance(m, FoldedConv2d) for m in model.modules())


def test_a_compiled_run_trains_unfolded(tmp_path):
    # inductor fuses the BatchNorm pass itself, and compiles the folded form slower
    from transferlearn import load_config
    from transferlearn.train.trainer import make_trainer, training_arguments

    folded, _ = _pair("resnet18")
    fold_frozen_batchnorm(folded)
    for compile_, expected in ((False, True), (True, False)):
        config = load_config(data="d", model="m", compile=compile_, lr=1e-3)
        rows = [{"pixel_values": torch.zeros(3, 32, 32), "labels": 0}]
        make_trainer(config, folded, training_arguments(config, tmp_path), rows, rows, collator=None, processor=None,
                     param_groups=[{"params": list(folded.parameters())}],
                     shape=SingleLabel.with_classes(["label"], ["a", "b", "c"]))
        assert any(isinstance(m, FoldedConv2d) for m in folded.modules()) is expected
