"""Fixtures: tiny random models built from configs and saved locally, synthetic data, shared data."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach the Hub
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

POSITIVE = ["good", "great", "excellent", "lovely", "superb", "happy", "bagus", "enak"]
NEGATIVE = ["bad", "awful", "terrible", "poor", "horrible", "sad", "buruk", "jelek"]
FILLER = ["the", "food", "place", "was", "service", "very", "and", "staff", "room", "price", "it", "really"]


def shared_data(name: str) -> Path:
    """A dataset folder from ../shared/data; skipped when absent unless TL_REQUIRE_SHARED_DATA=1."""
    path = SHARED_DATA / name
    if not path.exists():
        if os.environ.get("TL_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"{path} is missing and TL_REQUIRE_SHARED_DATA=1")
        pytest.skip(f"{path} not present")
    return path


def make_sentences(n: int, seed: int = 0, labels=("negative", "positive")) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        cue = POSITIVE if label == labels[-1] else NEGATIVE
        words = rng.sample(FILLER, 5) + rng.sample(cue, 2)
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


@pytest.fixture(scope="session")
def sentiment_folder(tmp_path_factory) -> Path:
    """train.csv / valid.csv / test.csv with a learnable two-class task."""
    folder = tmp_path_factory.mktemp("sentiment")
    for split, n, seed in (("train", 96, 0), ("valid", 32, 1), ("test", 32, 2)):
        lines = ["text,label"] + [f"{t},{lab}" for t, lab in make_sentences(n, seed)]
        (folder / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return folder


def _word_tokenizer(special: dict[str, str], template: tuple[str, str]):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {}
    for tok in list(special.values()) + sorted(set(POSITIVE + NEGATIVE + FILLER)):
        vocab.setdefault(tok, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token=special["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    start, end = template
    tok.post_processor = processors.TemplateProcessing(
        single=f"{start} $A {end}", pair=f"{start} $A {end} $B {end}",
        special_tokens=[(start, vocab[start]), (end, vocab[end])],
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, **special), len(vocab)


TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=64)


def build_tiny_text_model(arch: str, folder: Path) -> Path:
    """Save a tiny random ``arch`` (bert | roberta | xlm-roberta) model + tokenizer into ``folder``."""
    from transformers import AutoModel, BertConfig, RobertaConfig, XLMRobertaConfig

    if arch == "bert":
        special = dict(unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
                       mask_token="[MASK]")
        tokenizer, vocab_size = _word_tokenizer(special, ("[CLS]", "[SEP]"))
        config = BertConfig(vocab_size=vocab_size, pad_token_id=tokenizer.pad_token_id, **TINY)
    else:
        special = dict(bos_token="<s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                       cls_token="<s>", sep_token="</s>", mask_token="<mask>")
        tokenizer, vocab_size = _word_tokenizer(special, ("<s>", "</s>"))
        cls = RobertaConfig if arch == "roberta" else XLMRobertaConfig
        config = cls(vocab_size=vocab_size, pad_token_id=tokenizer.pad_token_id,
                     **{**TINY, "max_position_embeddings": 66})
    import torch

    torch.manual_seed(0)  # the same tiny "pretrained" weights in every test session
    model = AutoModel.from_config(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_text_model(tmp_path_factory):
    cache: dict[str, Path] = {}

    def get(arch: str = "bert") -> Path:
        if arch not in cache:
            cache[arch] = build_tiny_text_model(arch, tmp_path_factory.mktemp(f"tiny-{arch}"))
        return cache[arch]

    return get


@pytest.fixture(scope="session")
def trained_tiny_run(tmp_path_factory, sentiment_folder, tiny_text_model):
    """One finished tiny-BERT run, shared by the tests that only read a run folder."""
    from transferlearn import finetune, load_config

    out = tmp_path_factory.mktemp("runs") / "tiny-bert"
    config = load_config(data=str(sentiment_folder), model=str(tiny_text_model("bert")), epochs=6, lr=1e-2, warmup_ratio=0.0,
                         batch_size=16, output=str(out), progress=False, logging_steps=2, seed=1,
                         early_stopping_patience=0)
    return finetune(config)
