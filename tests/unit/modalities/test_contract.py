"""The modality contract: no per-modality branch outside the package; evaluate and predict on image and audio
runs score the asked split (not every split merged)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import transferlearn
from transferlearn import finetune, load_config
from transferlearn.cli import app
from transferlearn.modalities import MODALITIES

SRC = Path(transferlearn.__file__).parent


def _lines_matching(pattern: str, outside: tuple[str, ...]) -> list[str]:
    return [f"{p.relative_to(SRC)}:{i}: {line.strip()}" for p in SRC.rglob("*.py")
            if not any(part in p.relative_to(SRC).parts for part in outside)
            for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(pattern, line)]


# a comparison with a modality's name: `modality.name == ...`, `x.modality != "..."`, `task != modality.name`
MODALITY_COMPARISON = r"modality\.name\s*[!=]=|[!=]=\s*\w*\.?modality\.name|\.modality\s*[!=]=\s*[\"']|" \
                      r"modality_of\([\"'](text|image|audio)[\"']\)"


def test_the_guards_catch_what_they_guard_against():
    """Each pattern fires on the line it forbids (a guard that never matches would pass forever)."""
    for line in ('if modality.name == "text":', "if intent.task != modality.name:", 'if run.modality != "image":',
                 'image = modality_of("image")'):
        assert re.search(MODALITY_COMPARISON, line), line
    for line in ('if "input_ids" in batch:', "batch['input_ids']"):
        assert re.search(INPUT_IDS, line), line
    for line in ('if strategy.name == "auto":', 'if spec.split(":")[0] in ("linear-probe", "auto"):',
                 'if parse_strategy(x).name == "linear-probe":'):
        assert re.search(STRATEGY_NAME, line), line


def test_no_modality_name_comparison_outside_the_modalities_package():
    assert _lines_matching(MODALITY_COMPARISON, outside=("modalities",)) == []


INPUT_IDS = r"[\"']input_ids[\"']"


def test_no_token_column_outside_the_text_modality_and_the_models():
    """What a modality's rows hold is the modality's to know: other stages ask it (``encoded_lengths``,
    ``sequence_inputs``) instead of probing for ``input_ids``."""
    offenders = [line for line in _lines_matching(INPUT_IDS, outside=("models",))
                 if not line.startswith("modalities/text.py")]
    assert offenders == []


STRATEGY_NAME = r"strateg\w*(\([^)]*\))?\.name\s*(==|!=|in\b)|in \([\"'](linear-probe|auto)[\"']"


def test_no_strategy_name_comparison_outside_the_strategies_package():
    """What other stages need to know about a strategy is an attribute (uses_cached_features, searches,
    relative_cost, ...), never its name."""
    assert _lines_matching(STRATEGY_NAME, outside=("strategies",)) == []


def test_every_modality_answers_the_whole_contract():
    assert set(MODALITIES) == {"text", "image", "audio"}
    for name, modality in MODALITIES.items():
        assert modality.name == name  # registered under its own name: detect_modality and the config agree
        assert modality.row_column and modality.pipeline_tag.endswith("-classification") and modality.onnx_inputs
        assert set(modality.sequence_inputs) <= set(modality.onnx_inputs)


@pytest.fixture(scope="module")
def media_runs(image_folder, audio_folder, tiny_image_model, tiny_audio_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("media-runs")
    image = finetune(load_config(data=str(image_folder), model=str(tiny_image_model("timm-efficientnet")), epochs=2,
                                 batch_size=16, image_size=32, lr=1e-2, output=str(root / "image"), progress=False,
                                 early_stopping_patience=0))
    audio = finetune(load_config(data=str(audio_folder), model=str(tiny_audio_model("wav2vec2")), epochs=1,
                                 batch_size=12, max_duration=1.0, output=str(root / "audio"), progress=False,
                                 early_stopping_patience=0))
    return {"image": image, "audio": audio}


@pytest.mark.parametrize("kind", ["image", "audio"])
def test_evaluate_scores_the_asked_split(kind, media_runs):
    run = media_runs[kind]
    runner = CliRunner()
    for split, expected in (("test", run.metrics["test"]), ("validation", run.metrics["validation"])):
        result = runner.invoke(app, ["evaluate", str(run.path), "--split", split, "--json"])
        assert result.exit_code == 0, result.output
        got = json.loads(result.stdout)
        assert got["split"] == split and got["num_samples"] == expected["num_samples"] == 12 + 4 * (kind == "image")
        assert got["accuracy"] == pytest.approx(expected["accuracy"]) and got["confusion_matrix"] == expected[
            "confusion_matrix"]


@pytest.mark.parametrize("kind", ["image", "audio"])
def test_evaluate_on_other_data_keeps_its_splits(kind, media_runs, tmp_path):
    run = media_runs[kind]
    data = Path(run.config.data)
    other = tmp_path / "other"
    shutil.copytree(data / "test", other / "test")
    shutil.copytree(data / "val", other / "val")
    result = CliRunner().invoke(app, ["evaluate", str(run.path), "--data", str(other), "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert got["split"] == "test" and got["num_samples"] == run.metrics["test"]["num_samples"]  # not test + val
    assert got["accuracy"] == pytest.approx(run.metrics["test"]["accuracy"])


@pytest.mark.parametrize("kind", ["image", "audio"])
def test_predict_files_matches_the_python_api(kind, media_runs):
    run = media_runs[kind]
    files = sorted(str(p) for p in (Path(run.config.data) / "test").glob("*/*"))[:4]
    result = CliRunner().invoke(app, ["predict", str(run.path), *files, "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.strip().splitlines()]
    expected = run.predict(files)
    assert [x["input"] for x in lines] == files
    assert [x["label"] for x in lines] == [e["label"] for e in expected]
    for line, e in zip(lines, expected, strict=True):
        assert line["score"] == pytest.approx(e["score"], abs=1e-6)
