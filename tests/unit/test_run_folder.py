"""Intent vs plan, disk hygiene, and --lr auto with --strategy auto."""

from __future__ import annotations

import json

import yaml

from transferlearn import finetune, load_config


def _common(sentiment_folder, tiny_text_model, out, **kw):
    return dict(data=str(sentiment_folder), model=str(tiny_text_model("bert")), epochs=1, batch_size=32,
                output=str(out), progress=False, early_stopping_patience=0, **kw)


def test_finished_run_drops_checkpoints_unless_kept(tmp_path, sentiment_folder, tiny_text_model):
    dropped = finetune(load_config(**_common(sentiment_folder, tiny_text_model, tmp_path / "a")))
    assert not (dropped.path / "checkpoints").exists() and (dropped.path / "model" / "model.safetensors").exists()
    kept = finetune(load_config(**_common(sentiment_folder, tiny_text_model, tmp_path / "b"), strategy="full",
                                keep_checkpoints=True))
    assert list((kept.path / "checkpoints").glob("checkpoint-*"))


def test_config_stays_the_intent_and_the_plan_records_decisions(tmp_path, sentiment_folder, tiny_text_model):
    run = finetune(load_config(**_common(sentiment_folder, tiny_text_model, tmp_path / "run"), strategy="auto"))
    intent = yaml.safe_load((run.path / "config.yaml").read_text())
    plan = json.loads((run.path / "plan.json").read_text())
    assert intent["strategy"] == "auto" and intent["task"] == "auto" and intent["lr"] is None
    assert plan["task"] == "text" and plan["strategy"] == "auto" and plan["lr"] > 0 and plan["group_by_length"]
    assert [c["strategy"] for c in plan["candidates"]] == ["freeze:1", "full"] and plan["budget_s"] == 900.0
    assert any(d.startswith("auto: about") for d in plan["decisions"])
    assert run.config.strategy == plan["strategy"] and run.config.lr == plan["lr"]  # Run reads the resolved config
    assert run.modality.name == "text"


def test_lr_auto_with_strategy_auto_trains(tmp_path, sentiment_folder, tiny_text_model):
    run = finetune(load_config(**_common(sentiment_folder, tiny_text_model, tmp_path / "run"), strategy="auto",
                               lr="auto"))
    plan = json.loads((run.path / "plan.json").read_text())
    finder = json.loads((run.path / "lr_find" / "lr_find.json").read_text())
    assert plan["lr"] == finder["suggestion"] and finder["strategy"] == "full"  # swept on auto's full candidate
    assert {c["lr"] for c in plan["candidates"]} == {plan["lr"]}
    assert run.metrics["test"]["num_samples"] == 32


def test_lr_finder_leaves_the_pretrained_weights(tmp_path, sentiment_folder, tiny_text_model):
    import torch

    from transferlearn.train.lr_find import lr_find_on
    from transferlearn.train.setup import Setup

    config = load_config(**_common(sentiment_folder, tiny_text_model, tmp_path / "run"), strategy="full")
    setup = Setup.build(config)
    before = {k: v.clone() for k, v in setup.bundle.model.state_dict().items()}
    lr_find_on(setup, config, tmp_path / "lrf", num_steps=8, end_lr=1.0)
    after = setup.bundle.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not setup.bundle.model._forward_pre_hooks  # the strategy removed its eval-mode hook


def test_reproducing_a_run_applies_its_plan(tmp_path, sentiment_folder, tiny_text_model):
    from typer.testing import CliRunner

    from transferlearn.cli import app

    first = finetune(load_config(**_common(sentiment_folder, tiny_text_model, tmp_path / "first"), strategy="auto"))
    result = CliRunner().invoke(app, ["train", "-c", str(first.path / "config.yaml"), "--output",
                                      str(tmp_path / "again")])
    assert result.exit_code == 0, result.output
    again = json.loads((tmp_path / "again" / "plan.json").read_text())
    assert again == json.loads((first.path / "plan.json").read_text())  # the same decisions, not re-derived
    first_auto = json.loads((first.path / "auto.json").read_text())
    again_auto = json.loads((tmp_path / "again" / "auto.json").read_text())
    assert again_auto["winner"] == first_auto["winner"]
    assert [c.get("validation") for c in again_auto["candidates"]] == [c.get("validation") for c in first_auto["candidates"]]


def test_every_run_file_gets_the_users_umask(trained_tiny_run):
    """config.yaml, metrics.json, report.html (atomic writes) and the weights (safetensors) alike: 0644 at umask 022."""
    import os
    import stat

    mask = os.umask(0)
    os.umask(mask)
    modes = {str(p.relative_to(trained_tiny_run.path)): stat.S_IMODE(p.stat().st_mode)
             for p in trained_tiny_run.path.rglob("*") if p.is_file()}
    assert {"config.yaml", "metrics.json", "report.html", "model/model.safetensors"} <= set(modes)
    assert set(modes.values()) == {0o666 & ~mask}, modes


def test_the_final_predictions_are_kept_in_row_order(trained_tiny_run):
    """predictions/<split>.npz holds what metrics.json was computed from: the same accuracy, row by row."""
    import numpy as np

    for split in ("validation", "test"):
        logits, labels = trained_tiny_run.predictions(split)
        rows = trained_tiny_run.metrics[split]
        assert logits.dtype == np.float32 and logits.shape == (len(labels), len(trained_tiny_run.label_names))
        assert np.isclose((logits.argmax(1) == labels).mean(), rows["accuracy"])
        predicted = trained_tiny_run.predict(trained_tiny_run.modality.load_data(trained_tiny_run.config)
                                             .splits[split]["text"][:5])
        assert [p["label"] for p in predicted] == [trained_tiny_run.label_names[i] for i in logits[:5].argmax(1)]
