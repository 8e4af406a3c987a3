"""Real pretrained vision backbone on real photos: offline EfficientNet-Lite0 on hymenoptera (ants vs bees)."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import shared_data


@pytest.mark.shared_data
def test_efficientnet_lite0_is_the_real_imagenet_model():
    """The converted weights recognise a bee as ImageNet's 'bee' (class 309) — random weights would not."""
    import timm

    from transferlearn.data.augment import ImageSpec
    from transferlearn.models.image import image_batch
    from transferlearn.models.zoo import resolve_offline

    folder = resolve_offline("offline:efficientnet-lite0")
    model = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    bees = sorted((shared_data("hymenoptera") / "val" / "bees").glob("*.jpg"))[:8]
    spec = ImageSpec(size=224, mean=[0.5] * 3, std=[0.5] * 3)
    with torch.no_grad():
        top5 = model(image_batch(spec, bees)["pixel_values"]).topk(5, dim=-1).indices
    assert sum(309 in row for row in top5.tolist()) >= 6  # 309 = bee


@pytest.mark.shared_data
@pytest.mark.slow
def test_cached_linear_probe_on_a_hymenoptera_slice(tmp_path):
    from test_cli import _tl

    data = shared_data("hymenoptera")
    out = tmp_path / "hymenoptera"
    proc = _tl("train", "--data", data, "--model", "offline:efficientnet-lite0", "--strategy", "linear-probe",
               "--max-train-samples", 60, "--epochs", 15, "--output", out, "--feature-cache", "run",
               "--set", "progress=false")
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"]["num_samples"] == 60 and metrics["validation"]["num_samples"] == 153
    assert set(metrics["train"]["feature_cache"]) == {"train", "validation"}
    # two balanced classes: chance is 0.5; frozen ImageNet features separate ants from bees
    assert metrics["validation"]["accuracy"] >= 0.85, metrics["validation"]
    assert "imageNotFound.gif" not in json.dumps(metrics)  # converted GIF reported in data.json instead
    assert any("imageNotFound.gif" in note for note in json.loads((out / "data.json").read_text())["notes"])
