"""The decoded-picture cache: filled on the first epoch, read on the second, keyed by the files and the size."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from transferlearn.data.augment import ImageSpec, eval_transform, open_image, train_transform
from transferlearn.data.decoded_cache import DecodedImages, cached_side


def _pictures(folder, sizes) -> list[dict]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for i, (width, height) in enumerate(sizes):
        path = folder / f"{i}.{'png' if i % 2 else 'jpg'}"
        Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)
        rows.append({"bytes": None, "path": str(path)})
    return rows


SIZES = [(41, 57), (60, 33), (32, 32), (97, 80), (20, 31), (300, 200)]  # odd sides, both orientations, tiny, large


def test_the_second_epoch_reads_what_the_first_decoded(tmp_path):
    rows = _pictures(tmp_path / "img", SIZES)
    first = DecodedImages(rows, 32, 0.875, "bicubic", root=tmp_path / "cache")
    epoch_one = [first(r) for r in rows]
    assert (first.hits, first.misses) == (0, len(rows)) and first.complete
    second = DecodedImages(rows, 32, 0.875, "bicubic", root=tmp_path / "cache")  # the next epoch, or the next run
    epoch_two = [second(r) for r in rows]
    assert (second.hits, second.misses) == (len(rows), 0)
    assert second.folder == first.folder
    side = cached_side(32, 0.875)
    for a, b in zip(epoch_one, epoch_two, strict=True):
        assert a.dtype == torch.uint8 and a.shape == (3, side, side) and torch.equal(a, b)


@pytest.mark.parametrize("size,crop_pct", [(32, 0.875), (64, 0.875), (24, 0.95), (48, 1.0)])
def test_evaluation_from_the_cache_is_identical_to_decoding(tmp_path, size, crop_pct):
    rows = _pictures(tmp_path / "img", SIZES)
    spec = ImageSpec(size=size, crop_pct=crop_pct)
    transform = eval_transform(spec)
    cache = DecodedImages(rows, size, crop_pct, spec.interpolation, root=tmp_path / "cache")
    for row in rows:
        assert torch.equal(transform(open_image(row)), transform(cache(row))), row["path"]
        assert torch.equal(transform(open_image(row)), transform(cache(row)))  # and once more, from the array


def test_augmented_training_inputs_come_from_the_cache(tmp_path):
    rows = _pictures(tmp_path / "img", SIZES)
    spec = ImageSpec(size=32)
    cache = DecodedImages(rows, 32, spec.crop_pct, spec.interpolation, root=tmp_path / "cache")
    transform = train_transform(spec, "light")
    for row in rows:
        pixels = transform(cache(row))
        assert pixels.shape == (3, 32, 32) and pixels.dtype == torch.float32 and torch.isfinite(pixels).all()


def test_a_new_image_size_or_a_changed_file_is_a_new_entry(tmp_path):
    rows = _pictures(tmp_path / "img", SIZES)
    at_32 = DecodedImages(rows, 32, 0.875, "bicubic", root=tmp_path / "cache")
    [at_32(r) for r in rows]
    at_48 = DecodedImages(rows, 48, 0.875, "bicubic", root=tmp_path / "cache")
    assert at_48.folder != at_32.folder
    [at_48(r) for r in rows]
    assert (at_48.hits, at_48.misses) == (0, len(rows))

    Image.new("RGB", (41, 57), (255, 0, 0)).save(rows[0]["path"])
    os.utime(rows[0]["path"], ns=(1, 1))  # a different mtime even on a coarse-clock file system
    changed = DecodedImages(rows, 32, 0.875, "bicubic", root=tmp_path / "cache")
    assert changed.folder != at_32.folder
    assert (changed(rows[0])[0] > 200).all()  # the new red picture, not the old noise


def test_a_half_filled_entry_is_completed_by_the_next_run(tmp_path):
    rows = _pictures(tmp_path / "img", SIZES)
    killed = DecodedImages(rows, 32, 0.875, "bicubic", root=tmp_path / "cache")
    [killed(r) for r in rows[:3]]  # a run stopped after three rows
    assert not killed.complete
    resumed = DecodedImages(rows, 32, 0.875, "bicubic", root=tmp_path / "cache")
    [resumed(r) for r in rows]
    assert (resumed.hits, resumed.misses) == (3, len(rows) - 3) and resumed.complete


def test_inline_bytes_rows_are_cached_by_content(tmp_path):
    import io

    buffer = io.BytesIO()
    Image.fromarray(np.full((28, 28), 77, dtype=np.uint8)).save(buffer, "PNG")
    rows = [{"bytes": buffer.getvalue(), "path": None}, {"bytes": buffer.getvalue(), "path": None}]
    cache = DecodedImages(rows, 32, 0.875, "bicubic", root=tmp_path / "cache")
    assert torch.equal(cache(rows[0]), cache(rows[1]))
    assert cache.misses == 1 and cache.hits == 1  # identical content: one slot


def test_the_image_modality_reads_from_the_cache_on_the_second_epoch(tmp_path, monkeypatch, image_folder,
                                                                     tiny_image_model):
    from transferlearn import load_config
    from transferlearn.modalities import modality_of

    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path / "cache"))
    config = load_config(data=str(image_folder), model=str(tiny_image_model()), task="image")
    image = modality_of("image")
    data = image.load_data(config)
    bundle = image.load_model(config, data.shape)
    train = image.encode(bundle, data.splits["train"], config, train=True)
    cache = train.decoded_cache
    assert cache is not None and str(cache.folder).startswith(str(tmp_path / "cache" / "decoded"))
    [train[i] for i in range(len(train))]  # epoch 1
    assert (cache.hits, cache.misses) == (0, len(train))
    [train[i] for i in range(len(train))]  # epoch 2
    assert (cache.hits, cache.misses) == (len(train), len(train))

    off = image.encode(bundle, data.splits["train"], config.model_copy(update={"decoded_cache": False}), train=True)
    assert off.decoded_cache is None and off[0]["pixel_values"].shape == train[0]["pixel_values"].shape


def test_clips_are_cached_exactly_and_cropped(tmp_path):
    import soundfile as sf

    from transferlearn.data.audio import read_audio
    from transferlearn.data.decoded_cache import DecodedClips

    rng = np.random.default_rng(1)
    rows = []
    for i, seconds in enumerate((0.3, 1.0, 2.5)):  # shorter than, equal to and longer than max_seconds
        path = tmp_path / f"{i}.wav"
        sf.write(path, rng.uniform(-0.5, 0.5, int(8000 * seconds)).astype(np.float32), 8000)
        rows.append({"bytes": None, "path": str(path)})
    first = DecodedClips(rows, 16000, 1.0, root=tmp_path / "cache")
    decoded = [first(r) for r in rows]
    second = DecodedClips(rows, 16000, 1.0, root=tmp_path / "cache")
    for row, clip in zip(rows, decoded, strict=True):
        expected = read_audio(row, 16000, 1.0)
        assert np.array_equal(clip, expected) and np.array_equal(second(row), expected)
    assert [len(c) for c in decoded] == [4800, 16000, 16000]
    assert (second.hits, second.misses) == (3, 0)
    assert DecodedClips(rows, 16000, 2.0, root=tmp_path / "cache").folder != first.folder  # a new max_duration


def test_the_audio_modality_reads_from_the_cache_on_the_second_epoch(tmp_path, monkeypatch, audio_folder,
                                                                     tiny_audio_model):
    from transferlearn import load_config
    from transferlearn.modalities import modality_of

    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path / "cache"))
    config = load_config(data=str(audio_folder), model=str(tiny_audio_model()), task="audio", max_duration=1.0)
    audio = modality_of("audio")
    data = audio.load_data(config)
    bundle = audio.load_model(config, data.shape)
    train = audio.encode(bundle, data.splits["train"], config, train=False)
    uncached = audio.encode(bundle, data.splits["train"], config.model_copy(update={"decoded_cache": False}))
    cache = train.decoded_cache
    epoch_one = [train[i] for i in range(len(train))]
    epoch_two = [train[i] for i in range(len(train))]
    assert (cache.hits, cache.misses) == (len(train), len(train))
    key = next(k for k in epoch_one[0] if k != "label")
    for i in range(len(train)):
        assert np.array_equal(np.asarray(epoch_two[i][key]), np.asarray(uncached[i][key]))
