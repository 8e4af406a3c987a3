"""Audio classifiers through ``AutoModelForAudioClassification`` (Wav2Vec2, HuBERT, WavLM, Whisper encoder,
AST) by Hub id, local folder or the offline zoo, behind the backbone contract.

The CNN feature encoder of Wav2Vec2-style models is frozen by default (``--set freeze_feature_encoder=false``
trains it), as in the Wav2Vec2 fine-tuning recipe. Whisper's encoder expects a 30 s window; clips are
short, so its position table is truncated to ``max_duration`` (3 s -> 150 positions; measured 32x faster
per step with pooled features at cosine 0.97) and the feature extractor pads to the same length.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

from ..data.audio import read_audio
from ..errors import DataError
from .bundle import ModelBundle, hf_config_and_processor, hf_weights, resolve_model
from .contract import param_groups

log = logging.getLogger(__name__)

SPEC_FILE = "audio_preprocessing.json"
HEAD_NAMES = ("projector.", "classifier.", "layer_weights")


class AudioProcessing:
    """The feature extractor plus the clip length and rate every input is brought to."""

    def __init__(self, feature_extractor, max_seconds: float):
        self.feature_extractor = feature_extractor
        self.max_seconds = max_seconds
        self.sampling_rate = int(feature_extractor.sampling_rate)

    def __call__(self, arrays: list[np.ndarray]) -> dict:
        fe = self.feature_extractor
        if type(fe).__name__ == "WhisperFeatureExtractor":  # pads / crops to its (truncated) window itself
            out = fe(arrays, sampling_rate=self.sampling_rate, return_tensors="pt")
            return {"input_features": out["input_features"]}
        n = int(self.max_seconds * self.sampling_rate)
        kwargs = {"return_attention_mask": True} if "attention_mask" in fe.model_input_names else {}
        out = fe(arrays, sampling_rate=self.sampling_rate, max_length=n, truncation=True, padding="max_length",
                 return_tensors="pt", **kwargs)
        return {k: out[k] for k in ("input_values", "attention_mask", "input_features") if k in out}

    def save_pretrained(self, folder: str | Path) -> None:
        self.feature_extractor.save_pretrained(folder)
        (Path(folder) / SPEC_FILE).write_text(json.dumps({"max_seconds": self.max_seconds,
                                                          "sampling_rate": self.sampling_rate}))

    @classmethod
    def load(cls, folder: str | Path) -> "AudioProcessing":

        spec = json.loads((Path(folder) / SPEC_FILE).read_text())
        return cls(AutoFeatureExtractor.from_pretrained(folder), spec["max_seconds"])


def truncate_whisper(model: nn.Module, feature_extractor, max_seconds: float) -> None:
    """Keep Whisper's first positions only: 50 per second after its two convolutions (stride 1 and 2)."""
    positions = int(math.ceil(max_seconds)) * 50  # whole seconds: the feature extractor's window is in seconds
    encoder = model.encoder
    if positions >= encoder.embed_positions.weight.shape[0]:
        return
    old = encoder.embed_positions
    new = nn.Embedding(positions, old.weight.shape[1])
    new.weight.data.copy_(old.weight.data[:positions])
    new.weight.requires_grad_(old.weight.requires_grad)
    encoder.embed_positions = new
    model.config.max_source_positions = positions
    encoder.max_source_positions = positions
    feature_extractor.chunk_length = positions // 50
    feature_extractor.n_samples = feature_extractor.chunk_length * feature_extractor.sampling_rate
    feature_extractor.nb_max_frames = feature_extractor.n_samples // feature_extractor.hop_length


def load_audio_classifier(name: str, label_names: list[str], *, from_scratch: bool = False, head_dropout: float = 0.1,
                          backbone_dropout: float | None = None, max_seconds: float = 3.0,
                          freeze_feature_encoder: bool = True, trust_remote_code: bool = False) -> ModelBundle:

    source = resolve_model(name)
    config, feature_extractor = hf_config_and_processor(source, name, label_names, AutoFeatureExtractor,
                                                        trust_remote_code=trust_remote_code,
                                                        backbone_dropout=backbone_dropout, what="audio model")
    if hasattr(config, "final_dropout"):
        config.final_dropout = head_dropout
    model, new = hf_weights(AutoModelForAudioClassification, source, name, config, from_scratch=from_scratch,
                            trust_remote_code=trust_remote_code, resize_head=True, what="audio model")
    if config.model_type == "whisper":
        truncate_whisper(model, feature_extractor, max_seconds)
    processing = AudioProcessing(feature_extractor, max_seconds)
    groups = param_groups(model, new_parameters=new, head_names=HEAD_NAMES)
    if freeze_feature_encoder:
        groups.always_frozen = [n for n in groups.backbone() if ".feature_extractor." in n]
    info = {"from_scratch": from_scratch, "newly_initialised": sorted(new), "sampling_rate": processing.sampling_rate,
            "max_seconds": max_seconds, "parameters": sum(p.numel() for p in model.parameters())}
    return ModelBundle(model, processing, groups, source, name, "audio", info)


@torch.no_grad()
def audio_batch(processing: AudioProcessing, clips: list) -> dict:

    arrays = []
    for clip in clips:
        try:
            arrays.append(read_audio(clip, processing.sampling_rate, processing.max_seconds))
        except Exception as exc:  # noqa: BLE001 — soundfile raises several types; name the file
            name = clip if isinstance(clip, (str, Path)) else "an input clip"
            raise DataError(f"{name}: cannot read this audio ({exc})") from None
    return processing(arrays)


def load_audio_model_folder(folder: str | Path):

    return AutoModelForAudioClassification.from_pretrained(folder).eval(), AudioProcessing.load(folder)
