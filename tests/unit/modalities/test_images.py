"""Images: data sources and bad files, timm and transformers backbones, strategies, save/reload, predict."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import make_image, write_image_folder
from transferlearn import ConfigError, DataError, finetune, load_config
from transferlearn.data.images import load_image_data
from transferlearn.models.image import load_image_classifier
from transferlearn.strategies import parse_strategy

# ------------------------------------------------------------------------------------------ data


def test_split_folders(image_folder):
    data = load_image_data(str(image_folder))
    assert data.label_names == ["blue", "red"]
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 48, "validation": 16, "test": 16}
    row = data.splits["train"][0]
    assert row["image"]["path"].endswith((".jpg", ".png")) and row["label"] in (0, 1)


def test_one_folder_is_split_with_a_seed(tmp_path):
    root = write_image_folder(tmp_path / "data", {"all": 40})
    data = load_image_data(str(root / "all"), val_split=0.25, seed=3)
    assert len(data.splits["train"]) == 30 and len(data.splits["validation"]) == 10
    assert load_image_data(str(root / "all"), val_split=0.25, seed=3).splits["validation"]["image"] == \
        data.splits["validation"]["image"]


def test_csv_list_with_relative_paths(tmp_path):
    (tmp_path / "img").mkdir()
    lines = ["file,label"]
    for i in range(12):
        label = ("blue", "red")[i % 2]
        make_image(label, i).save(tmp_path / "img" / f"{i}.png")
        lines.append(f"img/{i}.png,{label}")
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    data = load_image_data(str(tmp_path / "train.csv"))
    assert sum(len(s) for s in data.splits.values()) == 12
    assert data.columns == {"image": "file", "label": "label"}
    # the folder itself: its train.csv list wins over the img/ sub-folder (not a class named "img")
    data = load_image_data(str(tmp_path))
    assert sum(len(s) for s in data.splits.values()) == 12 and data.label_names == ["blue", "red"]


def test_a_csv_of_tag_sets_over_pictures(tmp_path):
    (tmp_path / "img").mkdir()
    lines = ["image,tags"]
    for i in range(24):
        tags = [("blue", "red")[i % 2]] + (["square"] if i % 3 == 0 else [])
        make_image(tags[0], i).save(tmp_path / "img" / f"{i}.png")
        lines.append(f"img/{i}.png,{'|'.join(tags)}")
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    data = load_image_data(str(tmp_path))
    assert data.shape.name == "multi-label" and data.label_names == ["blue", "red", "square"]
    assert np.asarray(data.splits["train"].with_format(None)["label"]).shape[1] == 3


def _write_idx(path, array: np.ndarray, truncate: int = 0):
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    with gzip.open(path, "wb") as f:
        f.write(raw[: len(raw) - truncate] if truncate else raw)


def test_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (20, 28, 28)))
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(20) % 3)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 255, (6, 28, 28)))
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(6) % 3)
    data = load_image_data(str(tmp_path))
    assert data.label_names == ["0", "1", "2"] and len(data.splits["test"]) == 6
    from transferlearn.data.augment import open_image

    assert open_image(data.splits["test"][0]["image"]).size == (28, 28)  # grayscale -> RGB on open
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 255, (6, 28, 28)), truncate=100)
    with pytest.raises(DataError, match="t10k-images.*truncated"):
        load_image_data(str(tmp_path))


@pytest.fixture
def messy_folder(tmp_path):
    root = write_image_folder(tmp_path / "data", {"train": 12, "val": 4})
    bad = root / "train" / "red"
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "notes.jpg").write_text("this is not an image")
    good = (root / "train" / "blue" / "000.png").read_bytes()
    (bad / "truncated.png").write_bytes(good[: len(good) // 2])
    make_image("red", 1).convert("CMYK").save(bad / "cmyk.jpg")
    frames = [make_image("red", i) for i in range(3)]
    frames[0].save(bad / "anim.gif", save_all=True, append_images=frames[1:])
    (bad / "readme.txt").write_text("ignored")
    return root


def test_bad_images_stop_before_training_with_their_names(messy_folder):
    with pytest.raises(DataError) as err:
        load_image_data(str(messy_folder))
    message = str(err.value)
    assert "3 unusable image(s) in the train split" in message
    assert "empty.jpg: empty file (0 bytes)" in message
    assert "notes.jpg: not an image format" in message
    assert "truncated.png: corrupt or truncated" in message
    assert "--on-bad-rows skip" in message


def test_bad_images_skipped_and_reported(messy_folder):
    data = load_image_data(str(messy_folder), on_bad_rows="skip")
    assert len(data.splits["train"]) + len(data.splits["validation"]) - 4 == 12 + 2  # + CMYK + GIF
    notes = " | ".join(data.notes)
    assert "skipped 3 unusable image(s)" in notes and "empty.jpg" in notes
    assert "cmyk.jpg: CMYK image converted to RGB" in notes and "anim.gif: GIF with 3 frames" in notes
    assert "ignored 1 non-image file(s)" in notes


def test_empty_train_class_and_unseen_class(tmp_path):
    root = write_image_folder(tmp_path / "a", {"train": 8, "val": 4})
    (root / "train" / "green").mkdir()
    with pytest.raises(DataError, match="class folder .*green holds no image files"):
        load_image_data(str(root))
    root = write_image_folder(tmp_path / "b", {"train": 8, "val": 4})
    (root / "val" / "green").mkdir()
    make_image("red", 0).save(root / "val" / "green" / "x.png")
    with pytest.raises(DataError, match=r"\[validation\]: row \d+: label 'green' is not among the training labels \(blue, red\)"):
        load_image_data(str(root))


# ------------------------------------------------------------------------------------------ models


@pytest.mark.parametrize("kind, blocks", [("timm-efficientnet", None), ("timm-vit", 6), ("hf-vit", 2)])
def test_contract_groups(kind, blocks, tiny_image_model):
    bundle = load_image_classifier(str(tiny_image_model(kind)), ["a", "b", "c"], image_size=32)
    groups = bundle.groups
    names = [n for _, g in groups.ordered() for n in g]
    assert sorted(names) == sorted(n for n, _ in bundle.model.named_parameters()) and len(set(names)) == len(names)
    assert groups.embeddings and groups.num_blocks >= 2
    if blocks:
        assert groups.num_blocks in (blocks, blocks + 1)  # + the final norm group in timm
    head_shapes = {tuple(p.shape) for n, p in bundle.model.named_parameters() if n in set(groups.head)}
    assert any(3 in shape for shape in head_shapes)  # the new 3-class classifier


def _step(bundle, spec):
    strategy = parse_strategy(spec)
    model = strategy.prepare(bundle.model, bundle.groups)
    optimizer = torch.optim.AdamW(strategy.optimizer_groups(model, bundle.groups, 1e-2, 0.0))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    model.train()
    model(pixel_values=torch.randn(4, 3, 32, 32), labels=torch.tensor([0, 1, 2, 0])).loss.backward()
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    moved_buffers = {n for n, b in model.named_buffers() if b.is_floating_point() and not torch.equal(buffers[n], b)}
    return model, changed, moved_buffers


@pytest.mark.parametrize("kind", ["timm-efficientnet", "hf-vit"])
@pytest.mark.parametrize("spec", ["freeze-backbone", "freeze:1", "full"])
def test_strategies_on_image_backbones(kind, spec, tiny_image_model):
    bundle = load_image_classifier(str(tiny_image_model(kind)), ["a", "b", "c"], image_size=32)
    g = bundle.groups
    expected = {"freeze-backbone": set(g.head), "freeze:1": {n for b in g.blocks[1:] for n in b} | set(g.head),
                "full": set(g.backbone()) | set(g.head)}[spec]
    model, changed, moved_buffers = _step(bundle, spec)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == expected
    assert changed <= expected and set(g.head) <= changed
    if kind == "timm-efficientnet" and spec != "full":
        # frozen BatchNorm layers keep their running statistics (they run in eval mode)
        frozen_bn = {n.rsplit(".", 1)[0] for n in g.embeddings if "bn" in n}
        assert frozen_bn and not {b for b in moved_buffers if b.rsplit(".", 1)[0] in frozen_bn}
        assert moved_buffers or spec == "freeze-backbone"


def _train(data, model, out, **kw):
    base = dict(data=str(data), model=str(model), strategy="full", head_lr_multiplier=1.0,
                epochs=4, batch_size=16, image_size=32, lr=1e-2, output=str(out),
                progress=False, early_stopping_patience=0, logging_steps=50, warmup_ratio=0.0)
    return finetune(load_config(**{**base, **kw}))


@pytest.mark.parametrize("kind", ["timm-efficientnet", "timm-vit", "hf-vit"])
def test_train_save_reload_predict(kind, image_folder, tiny_image_model, tmp_path):
    run = _train(image_folder, tiny_image_model(kind), tmp_path / "run", epochs=6)
    assert run.metrics["modality"] == "image" and run.config.task == "image"
    assert run.metrics["test"]["accuracy"] >= 0.8  # two colours: chance is 0.5
    assert (run.model_dir / "preprocessing.json").exists() and (run.model_dir / "model.safetensors").exists()
    images = sorted(str(p) for p in (image_folder / "test").glob("*/*"))
    predicted = [p["label"] for p in run.predict(images)]
    truth = [p.split("/")[-2] for p in images]
    # the reloaded model scores exactly what the run measured on the test split
    assert np.mean([a == b for a, b in zip(predicted, truth, strict=True)]) == pytest.approx(run.metrics["test"]["accuracy"])
    # the saved folder loads without transferlearn and predicts the same
    from transferlearn.data.augment import ImageSpec
    from transferlearn.models.image import image_batch

    batch = image_batch(ImageSpec.load(run.model_dir), images)
    if kind.startswith("timm"):
        import timm
        from PIL import Image
        from timm.data import create_transform, resolve_data_config

        plain = timm.create_model(f"local-dir:{run.model_dir}", pretrained=True).eval()
        logits = plain(batch["pixel_values"])
        assert plain.pretrained_cfg["label_names"] == ["blue", "red"]
        assert plain.pretrained_cfg["input_size"] == [3, 32, 32]  # what it was trained at
        transform = create_transform(**resolve_data_config({}, model=plain))  # timm's own preprocessing
        timm_batch = torch.stack([transform(Image.open(p).convert("RGB")) for p in images])
        agree = (plain(timm_batch).argmax(-1) == logits.argmax(-1)).float().mean().item()
        assert agree >= 0.9  # PIL vs tensor resize differ by a few pixel values
    else:
        from transformers import AutoModelForImageClassification, pipeline

        logits = AutoModelForImageClassification.from_pretrained(run.model_dir).eval()(**batch).logits
        classify = pipeline("image-classification", model=str(run.model_dir))
        assert [classify(p)[0]["label"] for p in images[:4]] == predicted[:4]
    assert [["blue", "red"][i] for i in logits.argmax(-1).tolist()] == predicted


def test_keras_head_linear_probe_and_reload(image_folder, tiny_image_model, tmp_path):
    run = _train(image_folder, tiny_image_model("timm-vit"), tmp_path / "run", strategy="linear-probe", head="keras",
                 epochs=10, feature_cache="run")
    assert run.config.augment == "auto" and "feature_cache" in run.metrics["train"]
    assert run.metrics["test"]["accuracy"] >= 0.8
    state = __import__("safetensors.torch", fromlist=["load_file"]).load_file(run.model_dir / "model.safetensors")
    assert state["head.0.weight"].shape[0] == 128  # Dense(128, relu) -> dropout -> Dense(2)
    assert run.predict([str(image_folder / "test" / "red" / "001.jpg")])[0]["label"] == "red"


def test_linear_probe_decodes_each_image_once(image_folder, tiny_image_model, tmp_path, monkeypatch):
    import transferlearn.data.augment as augment
    import transferlearn.data.decoded_cache as decoded_cache

    opened = []
    real_open = augment.open_image
    counting = lambda image: opened.append(1) or real_open(image)  # noqa: E731
    monkeypatch.setattr(augment, "open_image", counting)  # where the training transform opens pictures
    monkeypatch.setattr(decoded_cache, "open_image", counting)  # and where the decoded-input cache does
    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path / "cache"))  # a cold decoded-input cache: every image decodes
    run = _train(image_folder, tiny_image_model("timm-efficientnet"), tmp_path / "run", strategy="linear-probe", baseline=False,
                 epochs=1, feature_cache="run")
    rows = 48 + 16 + 16
    assert "feature_cache" in run.metrics["train"]
    # the feature pass, plus a 4-image check of the split (reading labels must not decode the images again), plus
    # the report's thumbnails of the 12 highest-loss test images
    assert rows <= len(opened) <= rows + 8 + 12


def test_linear_probe_with_augmentation_falls_back(image_folder, tiny_image_model, tmp_path, caplog):
    run = _train(image_folder, tiny_image_model("timm-efficientnet"), tmp_path / "run", strategy="linear-probe", baseline=False,
                 augment="light", epochs=1)
    assert run.config.strategy == "freeze-backbone" and "feature_cache" not in run.metrics["train"]
    assert "cached features cannot be used" in caplog.text


def test_mixup_cutmix_and_strong_augmentation_train(image_folder, tiny_image_model, tmp_path):
    from transferlearn.data.augment import MixCollator

    collate = MixCollator(2, mixup=0.4, cutmix=1.0)
    rows = [{"pixel_values": torch.rand(3, 8, 8), "label": i % 2, "_train": True} for i in range(4)]
    batch = collate(rows)
    assert batch["labels"].shape == (4, 2) and torch.allclose(batch["labels"].sum(1), torch.ones(4))
    assert collate([{**r, "_train": False} for r in rows])["labels"].dtype == torch.long  # eval batches untouched
    run = _train(image_folder, tiny_image_model("timm-efficientnet"), tmp_path / "run", augment="strong", mixup=0.2,
                 cutmix=1.0, epochs=6, class_weights="balanced")  # soft labels + class weights together
    assert run.metrics["test"]["accuracy"] >= 0.75
    from PIL import Image

    assert Image.open(run.path / "augmentation.png").size[0] > 4 * 32  # a 4x4 grid of training samples
    assert "Augmented training samples" in (run.path / "report.html").read_text()


def test_unknown_timm_name_offline(tmp_path):
    from transferlearn import ModelError

    with pytest.raises(ModelError, match="offline:efficientnet-lite0"):
        load_image_classifier("timm/resnet18.a1_in1k", ["a", "b"])


def test_preview_augment_writes_a_grid(image_folder, tiny_image_model, tmp_path):
    from PIL import Image

    out = tmp_path / "grid.png"
    proc = subprocess.run([sys.executable, "-m", "transferlearn.cli", "preview-augment", "--data", str(image_folder),
                           "--model", str(tiny_image_model("timm-efficientnet")), "--augment", "strong", "-n", "9",
                           "--image-size", "32", "--output", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert Image.open(out).size == (3 * 34 + 2, 3 * 34 + 2)  # 3x3 tiles of 32 px, 2 px padding


def test_image_task_needs_image_data(tmp_path, sentiment_folder, tiny_image_model):
    with pytest.raises((DataError, ConfigError)):
        finetune(load_config(data=str(sentiment_folder), model=str(tiny_image_model()), task="image",
                             output=str(tmp_path / "x"), progress=False))


def test_small_cnn_from_scratch_baseline(image_folder, tmp_path):
    run = _train(image_folder, "small_cnn", tmp_path / "run", from_scratch=True, epochs=5)
    assert run.metrics["test"]["accuracy"] >= 0.8
    groups = load_image_classifier("small_cnn", ["a", "b"], from_scratch=True).groups
    assert groups.num_blocks == 3 and all(n.startswith("model.stem") for n in groups.embeddings)
    images = sorted(str(p) for p in (image_folder / "test").glob("*/*"))[:4]
    assert len(run.predict(images)) == 4
    from transferlearn import ModelError

    with pytest.raises(ModelError, match="no pretrained weights"):
        load_image_classifier("small_cnn", ["a", "b"])


def test_hub_dataset_path_reads_undecoded_images(monkeypatch):
    """The online route (e.g. beans): Image(decode=False) bytes, ClassLabel names."""
    import io

    import datasets

    def png(label, i):
        buffer = io.BytesIO()
        make_image(label, i).save(buffer, format="PNG")
        return {"bytes": buffer.getvalue(), "path": None}

    features = datasets.Features({"image": datasets.Image(decode=False),
                                  "labels": datasets.ClassLabel(names=["blue", "red"])})
    split = lambda n: datasets.Dataset.from_dict(  # noqa: E731
        {"image": [png(("blue", "red")[i % 2], i) for i in range(n)], "labels": [i % 2 for i in range(n)]},
        features=features)
    fake = datasets.DatasetDict({"train": split(12), "validation": split(4), "test": split(4)})
    monkeypatch.setattr(datasets, "load_dataset", lambda name, config=None: fake)
    data = load_image_data("beans")
    assert data.label_names == ["blue", "red"] and {k: len(v) for k, v in data.splits.items()} == {
        "train": 12, "validation": 4, "test": 4}
    from transferlearn.data.augment import open_image

    assert open_image(data.splits["test"][0]["image"]).size == (40, 40)
