"""Deploy: ONNX export parity, quantization per modality, bench, package (reloadable, real model card), push."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import yaml

from transferlearn import Run, finetune, load_config
from transferlearn.deploy.export import DeployError, export_onnx, quantize
from transferlearn.deploy.variants import onnx_session as session


@pytest.fixture
def text_run(trained_tiny_run, tmp_path):
    shutil.copytree(trained_tiny_run.path, tmp_path / "run")  # deploy/ is written inside the run
    return Run.load(tmp_path / "run")


@pytest.fixture(scope="module")
def image_runs(image_folder, tiny_image_model, tmp_path_factory):
    out = {}
    for kind in ("timm-efficientnet", "hf-vit"):
        out[kind] = finetune(load_config(
            data=str(image_folder), model=str(tiny_image_model(kind)), strategy="full", head_lr_multiplier=1.0,
            epochs=3, batch_size=16, image_size=32,
            lr=1e-2, output=str(tmp_path_factory.mktemp("deploy") / kind), progress=False,
            early_stopping_patience=0)).path
    return out


def _image_run(image_runs, kind, tmp_path):
    shutil.copytree(image_runs[kind], tmp_path / kind)
    return Run.load(tmp_path / kind)


def test_text_export_matches_pytorch_with_dynamic_axes(text_run):
    info = export_onnx(text_run)
    assert info["validation"]["max_abs_diff"] < 1e-4 and info["validation"]["agreement"] == 1.0
    assert info["inputs"][:2] == ["input_ids", "attention_mask"]
    sess = session(text_run.path / "deploy" / "model.onnx")
    tokenizer = text_run.predictor().processor
    for texts in (["good"], ["good great food", "bad awful room the staff was", "ok"]):  # other batch / length
        batch = tokenizer(texts, padding=True, return_tensors="np")
        logits = sess.run(["logits"], {n: batch[n] for n in info["inputs"]})[0]
        expected = text_run.predict_logits(texts)
        np.testing.assert_allclose(logits, expected, atol=1e-4)


@pytest.mark.parametrize("kind", ["timm-efficientnet", "hf-vit"])
def test_image_export_matches_pytorch(kind, image_runs, tmp_path):
    run = _image_run(image_runs, kind, tmp_path)
    info = export_onnx(run)
    assert info["inputs"] == ["pixel_values"] and info["validation"]["max_abs_diff"] < 1e-3


def test_export_fails_loudly_over_tolerance(text_run):
    with pytest.raises(DeployError, match="differs from PyTorch"):
        export_onnx(text_run, atol=-1.0)  # no difference can pass a negative tolerance
    # and leaves nothing a later stage would pick up
    assert not (text_run.path / "deploy" / "model.onnx").exists()
    assert not list((text_run.path / "deploy").glob("*.tmp"))
    from transferlearn import Run

    assert "onnx-fp32" not in Run.load(text_run.path).variants
    with pytest.raises(Exception, match="no ONNX model yet"):
        Run.load(text_run.path).predict(["good"], onnx=True)


def test_top_k_must_be_positive(text_run):
    from transferlearn import ConfigError

    with pytest.raises(ConfigError, match="--top-k must be at least 1"):
        text_run.predict(["good food"], top_k=-1)
    assert len(text_run.predict(["good food"], top_k=1)[0]["probabilities"]) == 1


def test_quantization_per_modality(text_run, image_runs, tmp_path):
    dynamic = quantize(text_run, "dynamic")
    assert (text_run.path / "deploy" / dynamic["file"]).exists()
    assert dynamic["validation"]["agreement_with_fp32"] >= 0.9
    assert dynamic["validation"]["metric"] == "macro_f1" and 0 <= dynamic["validation"]["score"] <= 1
    assert quantize(text_run, "static", calibration_samples=16)["calibration_samples"] == 16
    assert quantize(text_run, "torch-dynamic")["file"] is None
    image = _image_run(image_runs, "timm-efficientnet", tmp_path)
    static = quantize(image, "static", calibration_samples=16)
    assert static["validation"]["samples"] == 16 and (image.path / "deploy" / "model.int8-static.onnx").exists()
    with pytest.raises(DeployError, match="use --method static"):
        quantize(image, "dynamic")
    with pytest.raises(DeployError, match="only converts Linear layers"):
        quantize(image, "torch-dynamic")
    with pytest.raises(DeployError, match="unknown quantization method"):
        quantize(text_run, "float8")
    variants = json.loads((text_run.path / "deploy" / "variants.json").read_text())
    assert set(variants) == {"onnx-fp32", "onnx-int8-dynamic", "onnx-int8-static", "torch-int8-dynamic"}


def test_bench_package_push_and_onnx_predict(text_run, tmp_path, monkeypatch):
    from transferlearn.deploy.bench import bench
    from transferlearn.deploy.package import package, push

    quantize(text_run, "dynamic")
    report = bench(text_run, batch_sizes=(1, 4), threads=1, max_drop=100.0, budget_s=0.2, min_reps=5)
    assert set(report["variants"]) == {"torch-fp32", "onnx-fp32", "onnx-int8-dynamic"}
    for row in report["variants"].values():
        assert row["latency_ms"]["1"]["p50"] > 0 and row["latency_ms"]["4"]["reps"] >= 1 and row["size_mb"] > 0
    fp32 = report["variants"]["torch-fp32"]
    assert fp32["test_metrics"]["accuracy"] == pytest.approx(text_run.metrics["test"]["accuracy"])
    assert report["metric"] == "macro_f1" and fp32["score"] == pytest.approx(text_run.metrics["test"]["macro_f1"])
    assert report["chosen"]["variant"] in report["variants"] and "isa_flags" in report["machine"]
    for name in ("bench.json", "bench.md", "bench.png"):
        assert (text_run.path / "deploy" / name).stat().st_size > 0

    # onnx prediction agrees with PyTorch
    texts = ["good great lovely", "bad awful terrible", "the food"]
    assert [p["label"] for p in text_run.predict(texts, onnx=True)] == [p["label"] for p in text_run.predict(texts)]

    files = package(text_run, tmp_path / "pkg")
    assert {"README.md", "config.json", "model.safetensors", "onnx/model.onnx", "tokenizer.json"} <= set(files)
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pkl"))]
    card = (tmp_path / "pkg" / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    accuracy = round(text_run.metrics["test"]["accuracy"], 4)
    assert meta["pipeline_tag"] == "text-classification"
    assert meta["model-index"][0]["results"][0]["metrics"][0]["value"] == accuracy
    assert f"{text_run.metrics['test']['macro_f1']:.4f}" in card and "Deployment variants" in card
    from transformers import pipeline

    assert pipeline("text-classification", model=str(tmp_path / "pkg"))("good great")[0]["label"] in ("negative", "positive")
    onnx_sess = session(tmp_path / "pkg" / "onnx" / "model.onnx")
    assert [i.name for i in onnx_sess.get_inputs()][:2] == ["input_ids", "attention_mask"]

    dry = push(text_run, "someone/tiny-sentiment", dry_run=True)
    assert not dry["uploaded"] and sorted(f["path"] for f in dry["files"]) == sorted(files)
    calls = {}

    class FakeApi:
        def __init__(self, token=None):
            calls["token"] = token

        def create_repo(self, repo_id, private, exist_ok):
            calls["repo"] = (repo_id, private)

        def upload_folder(self, folder_path, repo_id, commit_message):
            from pathlib import Path

            calls["files"] = sorted(str(p.relative_to(folder_path)) for p in Path(folder_path).rglob("*") if p.is_file())
            return "https://huggingface.co/someone/tiny-sentiment/commit/abc"

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    result = push(text_run, "someone/tiny-sentiment", private=True)
    assert result["uploaded"] and calls["token"] == "hf_secret_value" and calls["repo"] == ("someone/tiny-sentiment", True)
    assert calls["files"] == sorted(files) and "hf_secret_value" not in json.dumps(result)


def test_bench_times_a_fresh_torch_load(text_run):
    from transferlearn.deploy.bench import _Variant
    from transferlearn.deploy.export import Deployment

    deployment = Deployment(text_run)
    cached = deployment.torch.model
    variant = _Variant("torch-fp32", deployment, ["input_ids", "attention_mask"], threads=1)
    assert variant.model is not cached and not variant.model.training
    fresh = variant.model.state_dict()
    assert all(torch.equal(fresh[k], v) for k, v in cached.state_dict().items())


def test_image_package_reloads_with_timm_and_onnxruntime(image_runs, tmp_path):
    import timm
    import torch

    from transferlearn.data.augment import ImageSpec
    from transferlearn.deploy.package import package
    from transferlearn.models.image import image_batch

    run = _image_run(image_runs, "timm-efficientnet", tmp_path)
    export_onnx(run)
    files = package(run, tmp_path / "pkg")
    assert {"config.json", "model.safetensors", "preprocessing.json", "onnx/model.onnx"} <= set(files)
    model = timm.create_model(f"local-dir:{tmp_path / 'pkg'}", pretrained=True).eval()
    images = sorted(str(p) for p in (run.config.data and __import__("pathlib").Path(run.config.data) / "test").glob("*/*"))[:4]
    batch = image_batch(ImageSpec.load(tmp_path / "pkg"), images)
    with torch.no_grad():
        expected = model(batch["pixel_values"]).numpy()
    got = session(tmp_path / "pkg" / "onnx" / "model.onnx").run(["logits"], {"pixel_values": batch["pixel_values"].numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=1e-3)
    card = (tmp_path / "pkg" / "README.md").read_text()
    assert "library_name: timm" in card and "image-classification" in card


def test_push_needs_a_repo_id(text_run):
    from transferlearn import ConfigError
    from transferlearn.deploy.package import push

    with pytest.raises(ConfigError, match="user/name"):
        push(text_run, "no-slash", dry_run=True)


@pytest.fixture(scope="module")
def audio_runs(audio_folder, tiny_audio_model, tmp_path_factory):
    return {kind: finetune(load_config(
        data=str(audio_folder), model=str(tiny_audio_model(kind)), strategy="full", epochs=1, batch_size=12,
        max_duration=1.0,
        output=str(tmp_path_factory.mktemp("deploy-audio") / kind), progress=False, early_stopping_patience=0)).path
        for kind in ("wav2vec2", "whisper")}


@pytest.mark.parametrize("kind", ["wav2vec2", "whisper"])
def test_audio_export_and_quantization(kind, audio_runs, tmp_path):
    shutil.copytree(audio_runs[kind], tmp_path / kind)
    run = Run.load(tmp_path / kind)
    info = export_onnx(run, samples=8)
    assert info["validation"]["max_abs_diff"] < 1e-3
    assert info["inputs"][0] == ("input_values" if kind == "wav2vec2" else "input_features")
    dynamic = quantize(run, "dynamic")  # MatMul-only for audio (a positional conv weight is no initializer)
    assert dynamic["validation"]["samples"] > 0 and (run.path / "deploy" / "model.int8-dynamic.onnx").exists()
    assert quantize(run, "torch-dynamic")["file"] is None
    clip = sorted(str(p) for p in (__import__("pathlib").Path(run.config.data) / "test").glob("*/*.wav"))[:3]
    assert [p["label"] for p in run.predict(clip, onnx=True)] == [p["label"] for p in run.predict(clip)]
