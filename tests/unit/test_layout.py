"""The run layout owns every path of a run folder: --overwrite clears all of it and nothing else."""

from __future__ import annotations

import inspect

import pytest

from transferlearn import ConfigError, finetune, load_config
from transferlearn.layout import RunLayout
from transferlearn.train.engine import prepare_run_dir


def _path_properties(layout: RunLayout) -> dict:
    return {name: getattr(layout, name) for name, value in inspect.getmembers(type(layout))
            if isinstance(value, property)}


def test_every_top_level_path_is_owned(tmp_path):
    layout = RunLayout(tmp_path / "run")
    owned = set(layout.owned())
    for name, path in _path_properties(layout).items():
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
