"""``lora[:r]`` — PEFT LoRA adapters on every linear layer of the backbone's blocks, plus a trainable head.

Targets come from the backbone contract (the ``nn.Linear`` modules inside the blocks), so the same
strategy applies to text, image and audio models without per-architecture module lists. The run saves
both forms: ``model/`` holds the merged weights (loads with plain transformers, no peft needed) and
``adapter/`` the PEFT adapter with the head (``PeftModel.from_pretrained(base, run/adapter)``).
"""

from __future__ import annotations

import logging

from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn

from ..errors import ConfigError
from ..models.contract import ParamGroups
from .base import Strategy, decay_split, keep_frozen_modules_in_eval
from .registry import int_arg

log = logging.getLogger(__name__)


def _module_of(parameter_name: str) -> str:
    return parameter_name.rsplit(".", 1)[0]


class LoRA(Strategy):
    relative_cost = 1
    # LoRA's low-rank updates start at zero and want a larger step than full fine-tuning
    # (the LoRA paper and PEFT examples use 1e-4 .. 1e-3).
    default_lr = 5e-4

    @property
    def rank(self) -> int:
        rank = int(self.arg or 8)
        if rank < 1:
            raise ConfigError("strategy 'lora:0': the rank must be at least 1")
        return rank

    def targets(self, model: nn.Module, groups: ParamGroups) -> list[str]:
        block_modules = {_module_of(n) for block in groups.blocks for n in block}
        return sorted(name for name, module in model.named_modules()
                      if isinstance(module, nn.Linear) and name in block_modules)

    def trainable(self, groups):
        return set(groups.head)

    def prepare(self, model: nn.Module, groups: ParamGroups) -> nn.Module:

        targets = self.targets(model, groups)
        if not targets:
            raise ConfigError(f"strategy '{self.name}': the backbone's blocks have no linear layers to adapt")
        head_modules = sorted({_module_of(n) for n in groups.head})
        config = LoraConfig(r=self.rank, lora_alpha=2 * self.rank, lora_dropout=0.1, target_modules=targets,
                            modules_to_save=head_modules, bias="none")
        peft_model = get_peft_model(model, config)
        trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
        log.info("LoRA r=%d on %d linear layers; %d trainable parameters (%.2f%%)", self.rank, len(targets),
                 trainable, 100 * trainable / sum(p.numel() for p in peft_model.parameters()))
        keep_frozen_modules_in_eval(peft_model)
        return peft_model

    def optimizer_groups(self, model, groups, lr, weight_decay, layer_lr_decay=None, head_lr_multiplier=1.0):
        if layer_lr_decay is not None:
            log.warning("layer_lr_decay is ignored by the lora strategy (only adapters and the head train)")
        return decay_split([(n, p) for n, p in model.named_parameters() if p.requires_grad], lr, weight_decay)

    @classmethod
    def parse_arg(cls, name, arg):

        arg = int_arg(name, arg, required=False)
        if arg is not None and int(arg) < 1:
            raise ConfigError(f"strategy 'lora:{arg}': the rank must be at least 1")
        return arg

    def finalize(self, model: nn.Module, adapter_dir) -> nn.Module:

        if not isinstance(model, PeftModel):
            return model
        model.save_pretrained(str(adapter_dir))
        return model.merge_and_unload()
