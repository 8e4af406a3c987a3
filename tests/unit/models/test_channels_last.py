"""Convolutional timm backbones train and predict in channels_last (NHWC); the logits equal contiguous ones."""

from __future__ import annotations

import torch

from transferlearn.models.image import is_convolutional, load_image_classifier


def test_a_cnn_is_channels_last_with_the_same_logits(tiny_image_model):
    bundle = load_image_classifier(str(tiny_image_model()), ["blue", "red"])
    model = bundle.model.eval()
    assert is_convolutional(model.model)
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    pixels = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        nhwc = model(pixels).logits
        nchw = model.to(memory_format=torch.contiguous_format)(pixels).logits
    assert torch.allclose(nhwc, nchw, atol=1e-4)


def test_a_vision_transformer_stays_contiguous():
    import timm

    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=2, img_size=32, patch_size=8)
    assert not is_convolutional(vit)  # its one convolution is the patch embedding
