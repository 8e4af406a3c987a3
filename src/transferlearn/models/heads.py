"""Custom classification heads: mean/CLS pooling and an MLP, on any Hugging Face encoder.

The default head is the architecture's own (``AutoModelForSequenceClassification``), which any
``transformers.pipeline`` can load. Mean pooling or an MLP head have no native equivalent, so such a
model is saved as ``model.safetensors`` + ``transferlearn.json`` (+ the encoder's ``config.json`` under
``encoder/``) and loaded by transferlearn (``tl predict``, ``Run.predict``, ``load_pooled_classifier``).
The folder deliberately has no top-level ``config.json``: a plain pipeline then fails loudly instead
of loading a randomly initialised native head.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn
from transformers import AutoConfig, AutoModel
from transformers.modeling_outputs import SequenceClassifierOutput

HEAD_FILE = "transferlearn.json"


def mlp_head(in_features: int, hidden: list[int], num_labels: int, dropout: float) -> nn.Sequential:
    """dropout -> [linear -> GELU -> dropout] per hidden size -> linear (the Keras Dense-stack recipe)."""
    layers: list[nn.Module] = [nn.Dropout(dropout)]
    width = in_features
    for size in hidden:
        layers += [nn.Linear(width, size), nn.GELU(), nn.Dropout(dropout)]
        width = size
    layers.append(nn.Linear(width, num_labels))
    return nn.Sequential(*layers)


class PooledClassifier(nn.Module):
    """encoder -> pooling (cls | mean over the attention mask) -> head."""

    base_model_prefix = "backbone"  # the backbone contract finds the encoder here

    def __init__(self, backbone: nn.Module, num_labels: int, pooling: str = "mean", hidden: list[int] | None = None,
                 dropout: float = 0.1):
        super().__init__()
        if getattr(backbone, "pooler", None) is not None:
            backbone.pooler = None  # BERT-style poolers are unused here; unused parameters upset DDP
        self.backbone = backbone
        self.config = backbone.config  # the Trainer reads model.config
        self.pooling = pooling
        self.hidden = list(hidden or [])
        self.dropout = dropout
        self.head = mlp_head(backbone.config.hidden_size, self.hidden, num_labels, dropout)

    def pool(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if self.pooling == "cls" or attention_mask is None:
            return hidden_states[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden_states.dtype)
        return (hidden_states * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        hidden_states = self.backbone(**inputs).last_hidden_state
        logits = self.head(self.pool(hidden_states, attention_mask))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def head_spec(self) -> dict:
        return {"architecture": "PooledClassifier", "pooling": self.pooling, "hidden": self.hidden,
                "dropout": self.dropout, "id2label": {str(k): v for k, v in self.config.id2label.items()}}

    def save_metadata(self, folder: str | Path) -> None:
        """What, beside the weights the Trainer saves, rebuilds this model: encoder config + head spec."""
        folder = Path(folder)
        self.backbone.config.save_pretrained(folder / "encoder")
        (folder / HEAD_FILE).write_text(json.dumps(self.head_spec(), indent=2))


def is_pooled_folder(folder: str | Path) -> bool:
    return (Path(folder) / HEAD_FILE).exists()


def load_pooled_classifier(folder: str | Path) -> PooledClassifier:

    folder = Path(folder)
    spec = json.loads((folder / HEAD_FILE).read_text())
    config = AutoConfig.from_pretrained(folder / "encoder")
    model = PooledClassifier(AutoModel.from_config(config), len(spec["id2label"]), spec["pooling"], spec["hidden"],
                             spec["dropout"])
    model.load_state_dict(load_file(folder / "model.safetensors"))
    return model.eval()
