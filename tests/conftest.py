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


def tree_digest(folder: Path) -> str:
    """A digest of every file under ``folder`` (names and bytes): what "left intact" is checked with."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


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


SHAPE_HEADERS = {"multi-label": "text,tags", "multi-output": "text,praise,tone", "regression": "text,score"}


def make_shape_rows(kind: str, n: int, seed: int = 0) -> list[str]:
    """CSV lines (no header) of a learnable task of label shape ``kind``: praise words and complaint words appear
    independently (all four combinations), and the label says which: tags ``praise|complaint`` (``[]`` for none),
    two label columns (praise yes/no, tone harsh/mild), or a score 1 + 2·praise − complaint with fractions."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        praise, complaint = i % 2 == 0, (i // 2) % 2 == 0
        words = rng.sample(FILLER, 5) + (rng.sample(POSITIVE, 2) if praise else []) + \
            (rng.sample(NEGATIVE, 2) if complaint else [])
        rng.shuffle(words)
        text = " ".join(words)
        if kind == "multi-label":
            tags = [t for t, on in (("praise", praise), ("complaint", complaint)) if on]
            lines.append(f"{text},{'|'.join(tags) or '[]'}")
        elif kind == "multi-output":
            lines.append(f"{text},{'yes' if praise else 'no'},{'harsh' if complaint else 'mild'}")
        else:
            lines.append(f"{text},{1 + 2 * praise - complaint + rng.uniform(0, 0.3):.2f}")
    return lines


def write_shape_folder(folder: Path, kind: str, sizes=(("train", 96), ("valid", 32), ("test", 32))) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for seed, (split, n) in enumerate(sizes):
        (folder / f"{split}.csv").write_text("\n".join([SHAPE_HEADERS[kind], *make_shape_rows(kind, n, seed)]) + "\n")
    return folder


@pytest.fixture(scope="session")
def shape_folder(tmp_path_factory):
    """``shape_folder(kind)``: train / valid / test CSVs of label shape ``kind``, built once per session."""
    built: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in built:
            built[kind] = write_shape_folder(tmp_path_factory.mktemp(kind), kind)
        return built[kind]

    return get


def write_conll_folder(folder: Path, sizes=(("train", 200), ("valid", 40), ("test", 40)), seed: int = 0) -> Path:
    """CoNLL train / valid / test files: filler words with one or two-word names, PER from the positive words and
    LOC from the negative ones (in the tiny models' vocabulary)."""
    rng = random.Random(seed)

    def sentence():
        words = rng.sample(FILLER, 6)
        tags = ["O"] * len(words)
        kind, pool = rng.choice([("PER", POSITIVE), ("LOC", NEGATIVE)])
        entity = rng.sample(pool, rng.choice([1, 2]))
        at = rng.randrange(0, 6)
        words[at:at] = entity
        tags[at:at] = [f"B-{kind}"] + [f"I-{kind}"] * (len(entity) - 1)
        return words, tags

    folder.mkdir(parents=True, exist_ok=True)
    for split, n in sizes:
        blocks = ["\n".join(f"{w}\t{t}" for w, t in zip(*sentence(), strict=True)) for _ in range(n)]
        (folder / f"{split}.conll").write_text("\n\n".join(blocks) + "\n")
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


def _built_once(tmp_path_factory, build, default: str):
    """A getter that builds each tiny model once per test session."""
    cache: dict[str, Path] = {}

    def get(kind: str = default) -> Path:
        if kind not in cache:
            cache[kind] = build(kind, tmp_path_factory.mktemp(f"tiny-{kind}"))
        return cache[kind]

    return get


@pytest.fixture(scope="session")
def tiny_text_model(tmp_path_factory):
    return _built_once(tmp_path_factory, build_tiny_text_model, "bert")


@pytest.fixture(scope="session")
def trained_tiny_run(tmp_path_factory, sentiment_folder, tiny_text_model):
    """One finished tiny-BERT run, shared by the tests that only read a run folder."""
    from transferlearn import finetune, load_config

    out = tmp_path_factory.mktemp("runs") / "tiny-bert"
    config = load_config(data=str(sentiment_folder), model=str(tiny_text_model("bert")), strategy="full", epochs=6,
                         head_lr_multiplier=1.0, lr=1e-2, warmup_ratio=0.0,
                         batch_size=16, output=str(out), progress=False, logging_steps=2, seed=1,
                         early_stopping_patience=0)
    return finetune(config)


# ------------------------------------------------------------------------------------------ images


def make_image(label: str, seed: int, size: int = 40, mode: str = "RGB"):
    """A picture whose class is its dominant colour (red / blue), with noise and a random bright square."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
    pixels[..., 0 if label == "red" else 2] += 120
    x, y = rng.integers(0, size - 10, 2)
    pixels[y : y + 10, x : x + 10] = 255
    image = Image.fromarray(pixels)
    return image.convert(mode) if mode != "RGB" else image


def write_image_folder(root: Path, counts: dict[str, int], seed: int = 0, classes=("blue", "red")) -> Path:
    for split, n in counts.items():
        for i in range(n):
            label = classes[i % len(classes)]
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            make_image(label, seed * 10_000 + hash(split) % 1000 * 100 + i).save(folder / f"{i:03d}.{'jpg' if i % 3 else 'png'}")
    return root


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    """train/val/test class folders (blue, red): 48 / 16 / 16 images, JPEG and PNG."""
    return write_image_folder(tmp_path_factory.mktemp("images"), {"train": 48, "val": 16, "test": 16})


def build_tiny_image_model(kind: str, folder: Path) -> Path:
    """A tiny random vision model saved as a local folder: timm (``test_efficientnet``, ``test_vit``) in
    timm's own folder format, or a transformers ViT with its image processor."""
    import json

    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    if kind.startswith("timm-"):
        import timm

        architecture = {"timm-efficientnet": "test_efficientnet", "timm-vit": "test_vit"}[kind]
        model = timm.create_model(architecture, pretrained=False, num_classes=10)
        cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in model.pretrained_cfg.items()
               if k in ("input_size", "interpolation", "crop_pct", "mean", "std", "classifier", "first_conv")}
        (folder / "config.json").write_text(json.dumps({"architecture": architecture, "num_classes": 10,
                                                        "pretrained_cfg": {**cfg, "num_classes": 10}}))
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
        return folder
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64, num_labels=10)
    ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_image_model(tmp_path_factory):
    return _built_once(tmp_path_factory, build_tiny_image_model, "timm-efficientnet")


# ------------------------------------------------------------------------------------------ audio


def make_tone(label: str, seed: int, rate: int = 8000, seconds: float = 0.6):
    """A clip whose class is its pitch (low 300 Hz / high 1200 Hz), with noise and a random phase."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    freq = {"low": 300.0, "high": 1200.0}[label] * rng.uniform(0.9, 1.1)
    return (0.5 * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6.3)) + 0.05 * rng.standard_normal(len(t))).astype("float32")


def write_audio_folder(root: Path, counts: dict[str, int], rate: int = 8000, speakers=("ann", "bob", "cyd")) -> Path:
    """``<split>/<class>/<class>_<speaker>_<i>.wav`` at ``rate`` Hz, mixed PCM_16 / PCM_24 / FLOAT subtypes."""
    import soundfile as sf

    subtypes = ("PCM_16", "PCM_24", "FLOAT")
    for split, n in counts.items():
        for i in range(n):
            label = ("low", "high")[i % 2]
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            clip = make_tone(label, hash((split, i)) % 10_000, rate)
            sf.write(folder / f"{label}_{speakers[i % len(speakers)]}_{i}.wav", clip, rate, subtype=subtypes[i % 3])
    return root


@pytest.fixture(scope="session")
def audio_folder(tmp_path_factory) -> Path:
    """train/val/test class folders (low, high): 36 / 12 / 12 clips at 8 kHz (resampled to 16 kHz on read)."""
    return write_audio_folder(tmp_path_factory.mktemp("audio"), {"train": 36, "val": 12, "test": 12})


def build_tiny_audio_model(kind: str, folder: Path) -> Path:
    """A tiny random Wav2Vec2 / HuBERT / Whisper (+ its feature extractor) saved as a local folder."""
    import torch
    from transformers import (
        HubertConfig,
        HubertModel,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Model,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperModel,
    )

    torch.manual_seed(0)
    if kind in ("wav2vec2", "hubert"):
        common = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                      conv_dim=(16, 16, 16), conv_stride=(5, 4, 4), conv_kernel=(10, 4, 4), num_conv_pos_embeddings=16,
                      num_conv_pos_embedding_groups=2, feat_extract_norm="layer", do_stable_layer_norm=True)
        config, cls = (Wav2Vec2Config(**common), Wav2Vec2Model) if kind == "wav2vec2" else (HubertConfig(**common), HubertModel)
        cls(config).save_pretrained(folder)
        Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=True, do_normalize=True).save_pretrained(folder)
    else:
        config = WhisperConfig(d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                               decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80,
                               vocab_size=100, max_target_positions=32, pad_token_id=1, bos_token_id=2,
                               eos_token_id=2, decoder_start_token_id=3)
        WhisperModel(config).save_pretrained(folder)
        WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_audio_model(tmp_path_factory):
    return _built_once(tmp_path_factory, build_tiny_audio_model, "wav2vec2")


@pytest.fixture(scope="session")
def trained_image_run(tmp_path_factory, image_folder, tiny_image_model):
    """One finished tiny-image run, for tests that only read a run folder."""
    from transferlearn import finetune, load_config

    return finetune(load_config(data=str(image_folder), model=str(tiny_image_model()), strategy="full", epochs=1,
                                output=str(tmp_path_factory.mktemp("runs") / "tiny-image"), progress=False,
                                baseline=False))


@pytest.fixture(scope="session")
def trained_audio_run(tmp_path_factory, audio_folder, tiny_audio_model):
    from transferlearn import finetune, load_config

    return finetune(load_config(data=str(audio_folder), model=str(tiny_audio_model()), strategy="full", epochs=1,
                                output=str(tmp_path_factory.mktemp("runs") / "tiny-audio"), progress=False,
                                baseline=False, augment="none"))


# ------------------------------------------------------------------------------------------ tl serve


class RunningServer:
    """``tl serve`` in a subprocess on a free loopback port."""

    def __init__(self, path, *flags, env=None):
        import socket
        import subprocess
        import sys

        with socket.socket() as probe:  # a free port: bound and released just before the server binds it
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "transferlearn.cli", "serve", str(path), "--port",
                                      str(self.port), *map(str, flags)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})

    def wait_ready(self, timeout: float = 120.0) -> None:
        import time

        import httpx

        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"tl serve exited {self.proc.returncode}: {self.proc.stderr.read()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("tl serve did not become ready")

    def stop(self) -> int:
        import subprocess

        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def serve_run():
    """``serve_run(path, *flags, env=...)`` -> a ready RunningServer, stopped after the test."""
    started = []

    def start(path, *flags, env=None, ready=True):
        server = RunningServer(path, *flags, env=env)
        started.append(server)
        if ready:
            server.wait_ready()
        return server

    yield start
    for server in started:
        server.stop()


# ------------------------------------------------------------------------------------------ browser


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium driven by Playwright (no browser download; .ci/run installs chromium)."""
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("no chromium on PATH: .ci/run installs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


def open_page(browser, url):
    """(page, console errors, requested URLs) for ``url`` loaded in a fresh 1200 x 900 page."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    problems: list[str] = []
    requests: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url)
    page.wait_for_load_state("load")
    return page, problems, requests


def assert_pictures_drawn(page, min_width: int, min_std: float, name: str = "") -> int:
    """Every <img> decoded (naturalWidth above ``min_width``) and drawn non-blank (its screenshot's grey levels vary
    by more than ``min_std``); returns how many there are."""
    import io

    import numpy as np
    from PIL import Image

    images = page.locator("img")
    for i in range(images.count()):
        image = images.nth(i)
        width, complete = image.evaluate("img => [img.naturalWidth, img.complete]")
        assert complete and width > min_width, f"{name}: picture {i} did not decode"
        image.scroll_into_view_if_needed()
        pixels = np.asarray(Image.open(io.BytesIO(image.screenshot())).convert("L"), dtype=float)
        assert pixels.std() > min_std, f"{name}: picture {i} is blank"
    return images.count()
