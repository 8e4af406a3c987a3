"""The backbone contract: every classifier's parameters split into embeddings, blocks 0..N-1 and head.

Strategies (freeze, gradual unfreezing, layer-wise learning rates, ...) are written once against this
contract, so they apply unchanged to text, image and audio models. Like timm's ``group_matcher``,
the split is derived from the module tree:

* blocks — the largest ``nn.ModuleList`` of repeated layers inside the backbone (``encoder.layer`` in
  BERT and ViT, ``encoder.layers`` in Wav2Vec2 and Whisper, ``blocks`` in timm models);
* embeddings — backbone parameters registered before the blocks (token/patch/feature embeddings);
* head — parameters outside the backbone (the classifier), the backbone's pooling layer (BERT's
  ``pooler`` feeds only the classifier), and any parameter the pretrained checkpoint did not provide
  (a freshly initialised layer must train, or it stays random);
* backbone parameters registered after the blocks (final norm, pretrained pooler) join the last block.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from timm.models import group_parameters
from torch import nn


@dataclass
class ParamGroups:
    embeddings: list[str]
    blocks: list[list[str]]
    head: list[str]
    always_frozen: list[str] = field(default_factory=list)  # never trained by any strategy (a CNN feature encoder)

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def ordered(self) -> list[tuple[str, list[str]]]:
        """Groups from the input side to the output side."""
        return [("embeddings", self.embeddings)] + [(f"block.{i}", b) for i, b in enumerate(self.blocks)] + [
            ("head", self.head)
        ]

    def backbone(self) -> list[str]:
        return self.embeddings + [n for block in self.blocks for n in block]


def _backbone_module(model: nn.Module) -> tuple[str, nn.Module]:
    prefix = getattr(model, "base_model_prefix", "")
    if prefix and hasattr(model, prefix):
        return prefix + ".", getattr(model, prefix)
    return "", model  # timm models and plain modules: the model is its own backbone


def _find_blocks(module: nn.Module) -> str | None:
    best, best_size = None, 0
    for name, child in module.named_modules():
        if isinstance(child, nn.ModuleList) and len(child) >= 1:
            size = sum(p.numel() for p in child.parameters())
            if size > best_size:
                best, best_size = name, size
    return best


HEAD_MODULES = ("pooler",)


def param_groups(model: nn.Module, new_parameters: set[str] | None = None, head_names: tuple[str, ...] = ()) -> ParamGroups:
    """Split ``model``'s parameters by the rules in the module docstring.

    ``new_parameters`` are names the checkpoint did not provide; ``head_names`` are extra module name
    prefixes that belong to the head even inside the backbone (used by timm models, where the
    classifier sits in the model itself).
    """
    new_parameters = new_parameters or set()
    prefix, backbone = _backbone_module(model)
    if hasattr(backbone, "group_matcher"):  # timm: its own stem / blocks grouping (what --layer-decay uses)
        return _timm_groups(model, prefix, backbone, new_parameters, head_names)
    blocks_name = _find_blocks(backbone)
    blocks_prefix = f"{prefix}{blocks_name}." if blocks_name else None
    n_blocks = len(backbone.get_submodule(blocks_name)) if blocks_name else 0

    embeddings: list[str] = []
    blocks: list[list[str]] = [[] for _ in range(n_blocks)]
    after: list[str] = []
    head: list[str] = []
    seen_blocks = False
    head_prefixes = tuple(head_names) + tuple(f"{prefix}{m}." for m in HEAD_MODULES)
    for name, _ in model.named_parameters():
        in_backbone = name.startswith(prefix) if prefix else True
        if name in new_parameters or not in_backbone or name.startswith(head_prefixes):
            head.append(name)
        elif blocks_prefix and name.startswith(blocks_prefix):
            seen_blocks = True
            index = int(name[len(blocks_prefix):].split(".", 1)[0])
            blocks[index].append(name)
        elif seen_blocks:
            after.append(name)
        else:
            embeddings.append(name)
    if blocks:
        blocks[-1].extend(after)
    else:
        embeddings.extend(after)
    return ParamGroups(embeddings=embeddings, blocks=blocks, head=head)


def _timm_groups(model, prefix: str, backbone, new_parameters: set[str], head_names: tuple[str, ...]) -> ParamGroups:

    head_prefixes = tuple(head_names)
    head = [n for n, _ in model.named_parameters()
            if n in new_parameters or not n.startswith(prefix) or n.startswith(head_prefixes)]
    taken = set(head)
    grouped = group_parameters(backbone, backbone.group_matcher(coarse=False))
    ordered = [[prefix + n for n in names if prefix + n not in taken] for _, names in sorted(grouped.items())]
    ordered = [names for names in ordered if names]
    return ParamGroups(embeddings=ordered[0], blocks=ordered[1:], head=head)
