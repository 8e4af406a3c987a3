"""``small_cnn``: a three-block CNN registered as a timm model — the from-scratch baseline of the
"transfer vs scratch" studies (a network sized for the data rather than for ImageNet).

Registered with ``timm.models.register_model`` so it goes through the same loader, backbone contract
(stem / blocks / head via ``group_matcher``), strategies and run folder as any timm model:
``--model small_cnn --from-scratch``. Loading its run folder needs transferlearn imported (timm only
knows the architecture once this module has registered it).
"""

from __future__ import annotations

from timm.models import register_model
from torch import nn


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.MaxPool2d(2))


class SmallCNN(nn.Module):
    def __init__(self, num_classes: int = 10, in_chans: int = 3, widths=(32, 64, 128), drop_rate: float = 0.0,
                 **kwargs):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_chans, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]),
                                  nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*[_block(a, b) for a, b in zip((widths[0],) + tuple(widths[:-1]), widths, strict=True)])
        self.num_features = widths[-1]
        self.drop_rate = drop_rate
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
        self.pretrained_cfg = {"architecture": "small_cnn", "input_size": (3, 32, 32), "interpolation": "bilinear",
                               "crop_pct": 1.0, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
                               "num_classes": num_classes, "first_conv": "stem.0", "classifier": "head"}
        self.default_cfg = self.pretrained_cfg

    def group_matcher(self, coarse: bool = False) -> dict:
        return {"stem": r"^stem", "blocks": r"^blocks\.(\d+)"}

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x):
        return self.blocks(self.stem(x))

    def forward_head(self, x, pre_logits: bool = False):
        x = self.global_pool(x).flatten(1)
        if self.drop_rate > 0:
            x = nn.functional.dropout(x, self.drop_rate, self.training)
        return x if pre_logits else self.head(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


@register_model
def small_cnn(pretrained: bool = False, **kwargs) -> SmallCNN:
    kwargs.pop("pretrained_cfg", None)
    overlay = kwargs.pop("pretrained_cfg_overlay", None) or {}
    kwargs = {k: v for k, v in kwargs.items() if k in ("num_classes", "in_chans", "widths", "drop_rate")}
    model = SmallCNN(**kwargs)
    if pretrained:
        if not overlay.get("file"):  # only a trained run folder has weights for it
            raise ValueError("small_cnn has no pretrained weights: it is the from-scratch baseline (--from-scratch)")
        from safetensors.torch import load_file

        model.load_state_dict(load_file(overlay["file"]))
    return model
