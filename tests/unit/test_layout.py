"""The run layout owns every path of a run folder: --overwrite clears all of it and nothing else."""

from __future__ import annotations

import inspect

import pytest

from transferlearn import ConfigError, finetune, load_config
from transferlearn.layout import RunLayout
from transferlearn.run_folder import prepare_run_dir


def _path_properties(layout: RunLayout) -> dict:
    return {name: getattr(layout, name) for name, value in inspect.getmembers(type(layout))
            if isinstance(value, property)}


def test_every_top_level_path_is_owned(tmp_path):
    layout = RunLayout(tmp_path / "run")
    owned = set(layout.owned())
    properties = _path_properties(layout)
    # the paths a run writes are properties: were they to become methods or attributes, this test would check nothing
    assert {"config", "plan", "metrics", "report", "model", "checkpoints", "auto", "deploy"} <= set(properties)
    for name, path in properties.items():
        top = layout.root / path.relative_to(layout.root).parts[0]
        assert top in owned, f"RunLayout.{name} ({path}) is not under an owned entry"


def test_overwrite_clears_every_owned_entry_and_keeps_other_files(tmp_path):
    layout = RunLayout(tmp_path / "run")
    layout.root.mkdir()
    for path in layout.owned():
        if path.suffix:  # a file
            path.write_text("old")
        else:
            (path / "nested").mkdir(parents=True)
            (path / "nested" / "old.bin").write_bytes(b"old")
    (layout.root / "my-notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="already holds a run"):
        prepare_run_dir(layout, overwrite=False, resume=False)
    prepare_run_dir(layout, overwrite=True, resume=False)
    assert sorted(p.name for p in layout.root.iterdir()) == ["my-notes.txt"]


def test_overwrite_of_a_run_with_deploy_adapter_and_auto_leaves_none(tmp_path, sentiment_folder, tiny_text_model):
    out = tmp_path / "run"
    common = dict(data=str(sentiment_folder), model=str(tiny_text_model("bert")), epochs=1, batch_size=32,
                  output=str(out), progress=False, early_stopping_patience=0, feature_cache="run")
    first = finetune(load_config(**common, strategy="auto"))
    assert (out / "auto.json").exists() and (out / "auto").is_dir()
    from transferlearn.deploy.export import export_onnx

    export_onnx(first, samples=8)
    (out / "adapter").mkdir()
    (out / "adapter" / "adapter_model.safetensors").write_bytes(b"old adapter")
    (out / "augmentation.png").write_bytes(b"old grid")
    second = finetune(load_config(**common, strategy="full", overwrite=True))
    for stale in ("deploy", "adapter", "auto.json", "auto", "augmentation.png", "features"):
        assert not (out / stale).exists(), stale
    assert second.metrics["strategy"] == "full" and (out / "model").is_dir()


def test_overwrite_with_bad_data_leaves_the_old_run_intact(tmp_path, trained_tiny_run):
    import shutil

    from transferlearn import DataError

    run_dir = tmp_path / "run"
    shutil.copytree(trained_tiny_run.path, run_dir)
    before = {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    with pytest.raises(DataError, match="typo.csv"):
        finetune(load_config(data=str(tmp_path / "typo.csv"), model=str(trained_tiny_run.config.model),
                             output=str(run_dir), overwrite=True, progress=False))
    after = {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert after == before  # every file back, byte for byte
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # nothing left beside it either


def test_a_folder_that_is_not_a_run_is_refused(tmp_path, sentiment_folder, tiny_text_model):
    folder = tmp_path / "mine"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "important.txt").write_text("keep me")
    common = dict(data=str(sentiment_folder), model=str(tiny_text_model("bert")), strategy="full", epochs=1,
                  output=str(folder), progress=False)
    for extra in ({}, {"overwrite": True}):
        with pytest.raises(ConfigError, match="not a run folder.*--force"):
            finetune(load_config(**common, **extra))
    assert (folder / "model" / "important.txt").read_text() == "keep me"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")  # names a run never writes: fine
    run = finetune(load_config(**{**common, "output": str(tmp_path / "other")}))
    assert (run.path / "notes.txt").read_text() == "mine" and (run.path / "model").is_dir()
