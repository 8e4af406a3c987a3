"""A strategy written entirely in this file — registered with the decorator, with its own plan of verbs — trains
through `tl train --strategy NAME`, runs as a `tl study` arm and appears in the report, with no other file changed.

Its fit: a converged probe on cached features, then one epoch of the top block and the head only."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from conftest import make_sentences
from transferlearn.cli import app
from transferlearn.strategies import REGISTRY, Strategy, register

NAME = "probe-then-top-block"


@register(NAME, "a converged probe, then one epoch of the top block and the head (written in a test)")
class ProbeThenTopBlock(Strategy):
    head_lr_multiplier = 1.0  # the head starts probed
    needs_feature_cache = True
    relative_cost = 1
    default_lr = 1e-3

    def trainable(self, groups):
        return set(groups.blocks[-1]) | set(groups.head)

    def plan(self, planner):
        planner.decide("epochs", 1.0, "the top block fine-tunes for one epoch after the probe")

    def fit(self, session):
        probed = session.probe(final=False)
        fitted = session.finetune(self)
        fitted.facts["probe_before_top_block"] = probed.facts["probe"]["validation_score"]
        return fitted


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path / "cache"))
    yield


def _tl(*args: str):
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_a_strategy_from_a_test_file_trains_reports_and_moves_only_what_it_names(tmp_path, sentiment_folder,
                                                                                 tiny_text_model):
    assert REGISTRY[NAME] is ProbeThenTopBlock
    model, out = tiny_text_model("bert"), tmp_path / "run"
    _tl("train", "--data", str(sentiment_folder), "--model", str(model), "--strategy", NAME, "--output", str(out),
        "--set", "baseline=false", "--no-progress")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["strategy"] == NAME
    assert 0.0 < metrics["train"]["probe_before_top_block"] <= 1.0  # the fact its own fit recorded
    assert metrics["train"]["epochs"] == pytest.approx(1.0)  # its one epoch, not the config's three
    plan = json.loads((out / "plan.json").read_text())
    assert plan["updates"]["epochs"] == 1.0
    assert any(d.startswith("epochs: 1 (the top block fine-tunes") for d in plan["decisions"]), plan["decisions"]
    assert NAME in (out / "report.html").read_text()
    # only the top block and the head moved: the embeddings and the lower block are the pretrained weights
    before = load_file(str(model / "model.safetensors"))  # the backbone alone (AutoModel), names without "bert."
    after = {k.removeprefix("bert."): v for k, v in load_file(str(out / "model" / "model.safetensors")).items()}
    moved = {name for name in before if not torch.equal(before[name], after[name])}
    assert any(name.startswith("encoder.layer.1.") for name in moved), sorted(moved)
    assert not any(name.startswith(("embeddings.", "encoder.layer.0.")) for name in moved), sorted(moved)


def test_the_strategy_runs_as_a_study_arm(tmp_path, tiny_text_model):
    data = tmp_path / "data"
    data.mkdir()
    for split, n, seed in (("train", 80, 0), ("test", 30, 2)):
        lines = ["text,label"] + [f"{t},{lab}" for t, lab in make_sentences(n, seed)]
        (data / f"{split}.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "study"
    _tl("study", "--data", str(data), "--model", str(tiny_text_model("bert")), "--arms", f"linear-probe,{NAME}",
        "--fractions", "1", "--seeds", "1", "--output", str(out), "--set", "baseline=false")
    record = json.loads((out / "study.json").read_text())
    runs = [r for r in record["runs"] if r["arm"] == NAME]
    assert len(runs) == 1 and runs[0]["test"]["accuracy"] is not None, runs
    assert runs[0]["steps"] == 3  # one epoch of 72 rows at batch 32: its own plan, not the config's epochs
    assert (out / runs[0]["run"] / "report.html").exists()
    assert json.loads((out / runs[0]["run"] / "metrics.json").read_text())["strategy"] == NAME
    assert NAME in (out / "study.html").read_text()
