"""tl compare names exactly the config keys that differ; tl runs lists every finished run under a folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from transferlearn import finetune, load_config
from transferlearn.report.compare import differing_keys, expand, find_runs


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, sentiment_folder, tiny_text_model):
    root = tmp_path_factory.mktemp("compare")
    common = dict(data=str(sentiment_folder), model=str(tiny_text_model("bert")), strategy="full", epochs=2,
                  batch_size=16, progress=False, early_stopping_patience=0, baseline=False, warmup_ratio=0.0)
    a = finetune(load_config(**common, lr=1e-3, seed=1, output=str(root / "a")))
    b = finetune(load_config(**common, lr=5e-3, seed=2, output=str(root / "nested" / "b")))
    return root, a, b


def test_exactly_the_differing_keys_are_listed(two_runs):
    _, a, b = two_runs
    assert differing_keys([a, b]) == {"lr": [0.001, 0.005], "seed": [1, 2]}
    assert differing_keys([a, a]) == {}


def test_compare_prints_and_writes_a_page(two_runs, tmp_path):
    root, a, b = two_runs
    page = tmp_path / "cmp.html"
    result = subprocess.run([sys.executable, "-m", "transferlearn.cli", "compare", str(a.path), str(b.path), "-o",
                             str(page), "--json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["differing"] == {"lr": [0.001, 0.005], "seed": [1, 2]}
    assert [r["macro_f1"] for r in shown["runs"]] == [a.metrics["test"]["macro_f1"], b.metrics["test"]["macro_f1"]]
    text = page.read_text()
    assert text.count("data:image/png;base64,") == 3 and "Per-class F1 (test)" in text and "http" not in text


def test_a_folder_of_runs_expands_and_a_single_run_is_refused(two_runs, tmp_path):
    root, a, b = two_runs
    assert [r.path for r in expand([root])] == [a.path, b.path]
    (tmp_path / "solo").mkdir()
    shutil.copytree(a.path, tmp_path / "solo" / "a")
    result = subprocess.run([sys.executable, "-m", "transferlearn.cli", "compare", str(tmp_path / "solo")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "needs 2 or more finished runs; found 1" in result.stderr


def test_runs_lists_every_finished_run_sorted(two_runs):
    root, a, b = two_runs
    (root / "not-a-run").mkdir(exist_ok=True)
    assert find_runs(root) == [a.path, b.path]
    result = subprocess.run([sys.executable, "-m", "transferlearn.cli", "runs", str(root), "--sort", "train_s",
                             "--json"], capture_output=True, text=True, timeout=300)
    rows = json.loads(result.stdout)
    assert {r["path"] for r in rows} == {str(a.path), str(b.path)}
    assert rows[0]["train_s"] >= rows[1]["train_s"]
    bad = subprocess.run([sys.executable, "-m", "transferlearn.cli", "runs", str(root), "--sort", "nope"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--sort nope: not a column" in bad.stderr
