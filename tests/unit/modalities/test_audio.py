"""Audio: folders, file-name labels, split lists, group-aware splits, bad files, tiny Wav2Vec2/HuBERT/Whisper."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import make_tone, write_audio_folder
from transferlearn import DataError, finetune, load_config
from transferlearn.data.audio import load_audio_data, read_audio
from transferlearn.models.audio import load_audio_classifier


def test_class_folders_and_8khz_to_16khz(audio_folder):
    data = load_audio_data(str(audio_folder))
    assert data.label_names == ["high", "low"]
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 36, "validation": 12, "test": 12}
    row = data.splits["train"][0]["audio"]
    assert sf.info(row["path"]).samplerate == 8000
    samples = read_audio(row, 16000)
    assert samples.dtype == np.float32 and len(samples) == 2 * sf.info(row["path"]).frames  # resampled x2
    assert len(read_audio(row, 16000, max_seconds=0.25)) == 4000


def test_stereo_and_encodings(tmp_path):
    left = make_tone("low", 0)
    sf.write(tmp_path / "stereo.wav", np.stack([left, -left], axis=1), 8000, subtype="PCM_24")
    assert np.abs(read_audio(tmp_path / "stereo.wav", 8000)).max() < 1e-3  # mixed to mono: the channels cancel
    sf.write(tmp_path / "u8.wav", left, 8000, subtype="PCM_U8")
    sf.write(tmp_path / "f.flac", left, 8000)
    for name in ("u8.wav", "f.flac"):
        assert np.corrcoef(read_audio(tmp_path / name, 8000), left)[0, 1] > 0.99


def test_labels_and_groups_from_file_names(tmp_path):
    root = tmp_path / "recordings"
    root.mkdir()
    for i in range(24):
        digit, speaker = i % 2, ("ann", "bob", "cyd", "dan")[i % 4]
        sf.write(root / f"{digit}_{speaker}_{i}.wav", make_tone(("low", "high")[digit], i), 8000)
    data = load_audio_data(str(root), label_from_filename=r"^(\d+)_", group_from_filename=r"^\d+_([a-z]+)_",
                           val_split=0.25, seed=0)
    assert data.label_names == ["0", "1"]
    train_groups, val_groups = set(data.splits["train"]["group"]), set(data.splits["validation"]["group"])
    assert val_groups and not train_groups & val_groups  # no speaker on both sides
    assert any("group-aware" in n for n in data.notes)
    with pytest.raises(DataError, match="does not match --label-from-filename"):
        load_audio_data(str(root), label_from_filename=r"^speaker(\d)")
    with pytest.raises(DataError, match="needs a capture group"):
        load_audio_data(str(root), label_from_filename=r"^\d+_")


def test_speech_commands_split_lists(tmp_path):
    audio = tmp_path / "audio"
    for word in ("yes", "no"):
        (audio / word).mkdir(parents=True)
        for i in range(6):
            sf.write(audio / word / f"spk{i}_nohash_0.wav", make_tone(("low", "high")[word == "yes"], i), 16000)
    (tmp_path / "validation_list.txt").write_text("yes/spk0_nohash_0.wav\nno/spk0_nohash_0.wav\n")
    (tmp_path / "testing_list.txt").write_text("yes/spk1_nohash_0.wav\nno/spk1_nohash_0.wav\n")
    data = load_audio_data(str(tmp_path))
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 8, "validation": 2, "test": 2}
    assert all("spk1_" in r["path"] for r in data.splits["test"]["audio"])


@pytest.fixture
def messy_audio(tmp_path):
    root = write_audio_folder(tmp_path / "data", {"train": 12, "val": 4})
    bad = root / "train" / "low"
    (bad / "empty.wav").write_bytes(b"")
    (bad / "text.wav").write_text("not audio at all")
    good = (root / "train" / "high" / "high_bob_1.wav").read_bytes()
    (bad / "cut.wav").write_bytes(good[:30])  # truncated inside the header
    sf.write(bad / "zero_len.wav", np.zeros(0, dtype="float32"), 8000)
    sf.write(bad / "silent.wav", np.zeros(4000, dtype="float32"), 8000)
    return root


def test_bad_audio_stops_before_training_with_names(messy_audio):
    with pytest.raises(DataError) as err:
        load_audio_data(str(messy_audio))
    message = str(err.value)
    assert "4 unusable audio file(s) in the train split" in message
    for name, why in (("empty.wav", "empty file"), ("text.wav", "unreadable"), ("cut.wav", "unreadable"),
                      ("zero_len.wav", "zero-length")):
        assert f"{name}: {why}" in message


def test_bad_audio_skipped_and_silence_flagged(messy_audio):
    data = load_audio_data(str(messy_audio), on_bad_rows="skip")
    notes = " | ".join(data.notes)
    assert "skipped 4 unusable audio file(s)" in notes and "silent.wav: silent clip" in notes
    assert sum(len(s) for s in data.splits.values()) == 12 + 4 + 1  # the silent clip stays


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert", "whisper"])
def test_contract_and_feature_encoder(kind, tiny_audio_model):
    bundle = load_audio_classifier(str(tiny_audio_model(kind)), ["a", "b", "c"], max_seconds=1.0)
    groups = bundle.groups
    names = [n for _, g in groups.ordered() for n in g]
    assert sorted(names) == sorted(n for n, _ in bundle.model.named_parameters())
    assert groups.num_blocks == 2 and {n.split(".")[0] for n in groups.head} >= {"projector", "classifier"}
    if kind == "whisper":
        assert bundle.model.config.max_source_positions == 50  # 1 s -> 50 positions, not 1500
        assert bundle.processor.feature_extractor.n_samples == 16000
        assert not groups.always_frozen
    else:
        assert groups.always_frozen and all(".feature_extractor." in n for n in groups.always_frozen)
        from transferlearn.strategies import parse_strategy

        model = parse_strategy("full").prepare(bundle.model, groups)
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        assert not trainable & set(groups.always_frozen) and set(groups.blocks[0]) <= trainable


def _train(data, model, out, **kw):
    base = dict(data=str(data), model=str(model), strategy="full", head_lr_multiplier=1.0,
                epochs=6, batch_size=12, max_duration=1.0, lr=1e-2, output=str(out),
                progress=False, early_stopping_patience=0, logging_steps=50, warmup_ratio=0.0)
    return finetune(load_config(**{**base, **kw}))


@pytest.mark.parametrize("kind, kw", [("wav2vec2", {}), ("hubert", {}), ("whisper", {"lr": 2e-3, "epochs": 10})])
def test_train_save_reload_predict(kind, kw, audio_folder, tiny_audio_model, tmp_path):
    run = _train(audio_folder, tiny_audio_model(kind), tmp_path / "run", **kw)
    assert run.metrics["modality"] == "audio" and run.config.task == "audio"
    assert run.metrics["test"]["accuracy"] >= 0.8  # two pitches: chance is 0.5
    clips = sorted(str(p) for p in (audio_folder / "test").glob("*/*.wav"))
    predicted = [p["label"] for p in run.predict(clips)]
    truth = [c.split("/")[-2] for c in clips]
    assert np.mean([a == b for a, b in zip(predicted, truth, strict=True)]) == pytest.approx(run.metrics["test"]["accuracy"])
    from transformers import pipeline

    classify = pipeline("audio-classification", model=str(run.model_dir))
    samples = read_audio(clips[0], 16000)
    top = classify({"raw": samples, "sampling_rate": 16000})[0]["label"]
    assert top == predicted[0]


def test_linear_probe_on_audio_caches_features(audio_folder, tiny_audio_model, tmp_path):
    run = _train(audio_folder, tiny_audio_model("wav2vec2"), tmp_path / "run", strategy="linear-probe", lr=0.1,
                 epochs=20, feature_cache="run")
    assert run.config.augment == "auto" and set(run.metrics["train"]["feature_cache"]) == {"train", "validation", "test"}
    assert run.metrics["test"]["accuracy"] >= 0.75


def test_augmented_audio_training_and_cli_predict(audio_folder, tiny_audio_model, tmp_path):
    run = _train(audio_folder, tiny_audio_model("hubert"), tmp_path / "run", augment="strong", epochs=2)
    assert run.config.augment == "strong" and len(run.history) > 0
    clip = str(sorted((audio_folder / "test" / "high").glob("*.wav"))[0])
    proc = subprocess.run([sys.executable, "-m", "transferlearn.cli", "predict", str(run.path), clip, "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["label"] in ("high", "low") and set(result["probabilities"]) == {"high", "low"}
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    proc = subprocess.run([sys.executable, "-m", "transferlearn.cli", "predict", str(run.path), "missing.wav"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "'missing.wav': not a file. This is an audio model" in proc.stderr


def test_long_clip_is_flagged_and_cropped(tmp_path):
    root = write_audio_folder(tmp_path / "data", {"train": 8})
    sf.write(root / "train" / "low" / "long.wav", np.tile(make_tone("low", 0, rate=8000, seconds=1.0), 61), 8000)
    data = load_audio_data(str(root))
    assert any("long.wav: long clip (61 s)" in note for note in data.notes)
    assert len(read_audio(str(root / "train" / "low" / "long.wav"), 16000, max_seconds=3.0)) == 48000


def test_hub_dataset_path_reads_undecoded_audio(tmp_path, monkeypatch):
    """The online route (e.g. PolyAI/minds14): Audio(decode=False) bytes, ClassLabel names."""
    import io

    import datasets

    def clip(label, i):
        buffer = io.BytesIO()
        sf.write(buffer, make_tone(label, i), 8000, format="WAV")
        return {"bytes": buffer.getvalue(), "path": None}

    features = datasets.Features({"audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
                                  "intent_class": datasets.ClassLabel(names=["high", "low"])})
    rows = {"audio": [clip(("low", "high")[i % 2], i) for i in range(10)], "intent_class": [1 - i % 2 for i in range(10)]}
    # cast at the Arrow level: encoding through datasets.Audio would need torchcodec, which is not installed
    train = datasets.Dataset.from_dict(rows, features=features).cast_column("audio", datasets.Audio(decode=False))
    fake = datasets.DatasetDict({"train": train})
    calls = {}
    monkeypatch.setattr(datasets, "load_dataset", lambda name, config=None: calls.setdefault("name", name) and fake)
    data = load_audio_data("PolyAI/minds14", data_config="en-US")
    assert calls["name"] == "PolyAI/minds14" and data.label_names == ["high", "low"]
    assert len(read_audio(data.splits["train"][0]["audio"], 16000)) == 2 * 4800
