"""Text classifiers through ``AutoModelForSequenceClassification`` (Hub id, local folder or offline zoo)."""

from __future__ import annotations

import logging
from pathlib import Path

from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

from .bundle import ModelBundle, hf_config_and_processor, hf_weights, resolve_model
from .contract import param_groups
from .heads import is_pooled_folder, load_pooled_classifier

log = logging.getLogger(__name__)


def _set_head_dropout(config, dropout: float) -> None:
    # Architectures name their head dropout differently; set the ones this config knows.
    for attr in ("classifier_dropout", "seq_classif_dropout", "final_dropout", "classifier_dropout_prob"):
        if hasattr(config, attr):
            setattr(config, attr, dropout)


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
    per_token: bool = False,
) -> ModelBundle:
    """The architecture's own classification head by default (loads anywhere); ``pooling`` cls/mean or
    ``head='mlp'`` build a :class:`~transferlearn.models.heads.PooledClassifier` instead. ``per_token``: a token
    classifier (a tag per sub-token), the architecture's own."""

    source = resolve_model(name)
    config, tokenizer = hf_config_and_processor(source, name, label_names, AutoTokenizer,
                                                trust_remote_code=trust_remote_code, backbone_dropout=backbone_dropout)
    _set_head_dropout(config, head_dropout)
    if tokenizer.pad_token is None:  # GPT-style tokenizers: pad with EOS so batches can be padded
        tokenizer.pad_token = tokenizer.eos_token
    if config.pad_token_id is None:
        config.pad_token_id = tokenizer.pad_token_id

    custom_head = pooling != "default" or head == "mlp"
    if per_token and custom_head:
        from ..errors import ConfigError

        raise ConfigError("--pooling / --head mlp build a head over one pooled vector; token tagging tags every word "
                          "with the architecture's own token head. Drop them.")
    kind = AutoModel if custom_head else AutoModelForTokenClassification if per_token else \
        AutoModelForSequenceClassification
    model, new = hf_weights(kind, source, name, config, from_scratch=from_scratch, trust_remote_code=trust_remote_code)
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
    info = {"from_scratch": from_scratch, "newly_initialised": sorted(new), "per_token": per_token,
            "parameters": sum(p.numel() for p in model.parameters())}
    return ModelBundle(model, tokenizer, groups, source, name, "text", info)


def load_text_model_folder(folder: str | Path):
    """A run's ``model/`` folder: the architecture's own head, or a pooled / MLP head (transferlearn.json)."""

    if is_pooled_folder(folder):
        return load_pooled_classifier(folder)
    architectures = AutoConfig.from_pretrained(folder).architectures or []
    if any(a.endswith("ForTokenClassification") for a in architectures):
        return AutoModelForTokenClassification.from_pretrained(folder).eval()
    return AutoModelForSequenceClassification.from_pretrained(folder).eval()
