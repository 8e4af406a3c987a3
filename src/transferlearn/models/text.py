"""Text classifiers through ``AutoModelForSequenceClassification`` (Hub id, local folder or offline zoo)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from ..errors import ModelError
from .contract import ParamGroups, param_groups
from .zoo import is_offline_name, resolve_offline

log = logging.getLogger(__name__)


@dataclass
class ModelBundle:
    """A classifier, the processor that feeds it (tokenizer, image or feature processor) and its groups."""

    model: nn.Module
    processor: object
    groups: ParamGroups
    source: str  # resolved folder or Hub id
    name: str  # as the user wrote it
    modality: str
    info: dict = field(default_factory=dict)


def resolve_model(name: str) -> str:
    """``offline:NAME`` -> converted cache folder; an existing folder -> itself; anything else -> Hub id."""
    if is_offline_name(name):
        return str(resolve_offline(name))
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"{name}: a model must be a folder (config.json + weights), not a file")
        if not (path / "config.json").exists():
            raise ModelError(f"{name}: no config.json in this folder; is it a Hugging Face model folder?")
        return str(path)
    if name.startswith((".", "/", "~")):
        raise ModelError(f"{name}: model folder not found")
    return name


def _load_error(name: str, exc: Exception) -> ModelError:
    return ModelError(
        f"cannot load model '{name}': {exc}\n"
        "It is not an existing folder; loading it from the Hugging Face Hub failed (offline?). "
        "Use a local folder or an offline zoo model (`tl models` lists them)."
    )


def _set_head_dropout(config, dropout: float) -> None:
    # Architectures name their head dropout differently; set the ones this config knows.
    for attr in ("classifier_dropout", "seq_classif_dropout", "final_dropout", "classifier_dropout_prob"):
        if hasattr(config, attr):
            setattr(config, attr, dropout)


BACKBONE_DROPOUT_ATTRS = (
    "hidden_dropout_prob", "attention_probs_dropout_prob",  # BERT, RoBERTa, ViT
    "hidden_dropout", "attention_dropout", "activation_dropout",  # Wav2Vec2, HuBERT, WavLM, Whisper
    "dropout",  # DistilBERT, Whisper
)


def set_backbone_dropout(config, dropout: float) -> list[str]:
    """Set every backbone dropout this config knows; an architecture with none is an error."""
    names = [attr for attr in BACKBONE_DROPOUT_ATTRS if hasattr(config, attr)]
    if not names:
        raise ModelError(f"--backbone-dropout: {type(config).__name__} has no dropout setting transferlearn knows "
                         f"(looked for {', '.join(BACKBONE_DROPOUT_ATTRS)})")
    for attr in names:
        setattr(config, attr, dropout)
    return names


def load_text_classifier(
    name: str,
    label_names: list[str],
    *,
    from_scratch: bool = False,
    head_dropout: float = 0.1,
    backbone_dropout: float | None = None,
    trust_remote_code: bool = False,
    pooling: str = "default",
    head: str = "linear",
    head_hidden: list[int] | None = None,
) -> ModelBundle:
    """The architecture's own classification head by default (loads anywhere); ``pooling`` cls/mean or
    ``head='mlp'`` build a :class:`~transferlearn.models.heads.PooledClassifier` instead."""
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    source = resolve_model(name)
    id2label = dict(enumerate(label_names))
    label2id = {v: k for k, v in id2label.items()}
    try:
        config = AutoConfig.from_pretrained(
            source, num_labels=len(label_names), id2label=id2label, label2id=label2id,
            trust_remote_code=trust_remote_code,
        )
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise _load_error(name, exc) from None
    if backbone_dropout is not None:
        set_backbone_dropout(config, backbone_dropout)
    _set_head_dropout(config, head_dropout)
    if tokenizer.pad_token is None:  # GPT-style tokenizers: pad with EOS so batches can be padded
        tokenizer.pad_token = tokenizer.eos_token
    if config.pad_token_id is None:
        config.pad_token_id = tokenizer.pad_token_id

    custom_head = pooling != "default" or head == "mlp"
    auto_class = AutoModel if custom_head else AutoModelForSequenceClassification
    if from_scratch:
        model = auto_class.from_config(config, trust_remote_code=trust_remote_code)
        new: set[str] = set()
    else:
        try:
            model, loading = auto_class.from_pretrained(
                source, config=config, output_loading_info=True, trust_remote_code=trust_remote_code,
            )
        except (OSError, ValueError) as exc:
            raise _load_error(name, exc) from None
        new = set(loading.get("missing_keys", []))
    if custom_head:
        from .heads import PooledClassifier

        model = PooledClassifier(model, len(label_names), "cls" if pooling == "default" else pooling,
                                 head_hidden if head == "mlp" else [], head_dropout)
        present = {n for n, _ in model.named_parameters()}  # the unused pooler was dropped
        new = {f"backbone.{n}" for n in new} & present
    groups = param_groups(model, new_parameters=new)
    if new:
        log.info("%s: %d parameter tensors are new (the classification head): %s", name, len(new),
                 ", ".join(sorted(new)[:4]) + (" ..." if len(new) > 4 else ""))
    info = {"from_scratch": from_scratch, "newly_initialised": sorted(new),
            "parameters": sum(p.numel() for p in model.parameters())}
    return ModelBundle(model, tokenizer, groups, source, name, "text", info)
