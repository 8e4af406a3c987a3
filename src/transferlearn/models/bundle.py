"""What every modality's model loader returns (:class:`ModelBundle`), and the one Hugging Face loader they share:
config with the run's labels, the processor, the weights with a record of which tensors are new."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn
from transformers import AutoConfig

from ..errors import ModelError
from .contract import ParamGroups
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


def load_error(name: str, exc: Exception, what: str = "model") -> ModelError:
    return ModelError(
        f"cannot load {what} '{name}': {exc}\n"
        "It is not an existing folder; loading it from the Hugging Face Hub failed (offline?). "
        "Use a local folder or an offline zoo model (`tl models` lists them)."
    )


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


def hf_config_and_processor(source: str, name: str, label_names: list[str], processor_class, *,
                            trust_remote_code: bool, backbone_dropout: float | None, what: str = "model"):
    """The model config carrying the run's labels (and dropout), and its processor."""

    id2label = dict(enumerate(label_names))
    if trust_remote_code:
        log.warning("trust_remote_code is on: %s may run Python code shipped with it", name)
    try:
        config = AutoConfig.from_pretrained(source, num_labels=len(label_names), id2label=id2label,
                                            label2id={v: k for k, v in id2label.items()},
                                            trust_remote_code=trust_remote_code)
        processor = processor_class.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise load_error(name, exc, what) from None
    if backbone_dropout is not None:
        set_backbone_dropout(config, backbone_dropout)
    return config, processor


def hf_weights(auto_class, source: str, name: str, config, *, from_scratch: bool, trust_remote_code: bool,
               resize_head: bool = False, what: str = "model") -> tuple[nn.Module, set[str]]:
    """The model from its pretrained weights (or random ones) and the names of tensors the checkpoint lacked
    (``resize_head``: a checkpoint's own classifier of another size is replaced, and counted as new)."""
    if from_scratch:
        return auto_class.from_config(config, trust_remote_code=trust_remote_code), set()
    kwargs = {"ignore_mismatched_sizes": True} if resize_head else {}
    try:
        model, loading = auto_class.from_pretrained(source, config=config, output_loading_info=True,
                                                    trust_remote_code=trust_remote_code, **kwargs)
    except (OSError, ValueError) as exc:
        raise load_error(name, exc, what) from None
    new = set(loading.get("missing_keys", [])) | {k for k, *_ in loading.get("mismatched_keys", [])}
    return model, new
