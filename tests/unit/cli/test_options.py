"""tl train's options are generated from TrainConfig: one option per field, choices from Literal types, bool
flag pairs, the field's description as help; lr-find shares them; today's flag names keep working."""

from __future__ import annotations

import pytest
import typer

from transferlearn.cli import app
from transferlearn.cli.options import option_name
from transferlearn.config import TrainConfig


def _command(name: str):
    return typer.main.get_command(app).commands[name]


def _options(command) -> dict:
    return {opt: param for param in command.params if getattr(param, "param_type_name", "") == "option"
            for opt in param.opts}


@pytest.mark.parametrize("command, excluded", [("train", ()), ("lr-find", ("output",))])
def test_every_config_field_is_one_option(command, excluded):
    options = _options(_command(command))
    for name, field in TrainConfig.model_fields.items():
        if name in excluded:
            continue
        option = options.get(option_name(name))
        assert option is not None, f"TrainConfig.{name} has no {option_name(name)} on tl {command}"
        assert option.name == name and option.help == (field.description or "")


def test_option_types_follow_the_config():
    options = _options(_command("train"))
    def annotation(flag):
        return options[flag].type_descriptor.annotation

    assert [m.value for m in annotation("--metric")] == [
        "auto", "macro_f1", "accuracy", "weighted_f1", "mean_average_precision", "micro_f1", "subset_accuracy",
        "mean_macro_f1", "flat_macro_f1", "mean_accuracy", "r2", "spearman", "entity_f1",
        "entity_macro_f1", "token_accuracy", "loss"]
    assert [m.value for m in annotation("--problem")] == [
        "auto", "single-label", "multi-label", "multi-output", "regression", "token-tags"]
    assert [m.value for m in annotation("--head")] == ["linear", "mlp", "keras"]  # the help no longer drifts
    assert options["--from-scratch"].secondary_opts == ["--no-from-scratch"] and annotation("--from-scratch") is bool
    assert annotation("--epochs") is float and annotation("--batch-size") is int and annotation("--lr") is str
    train_options = {o for p in _command("train").params for o in getattr(p, "opts", [])}
    generated = {option_name(n) for n in TrainConfig.model_fields}
    assert train_options - generated == {"--config", "-c", "--set", "--verbose", "-v"}


def test_flags_reach_the_config(monkeypatch, tmp_path):
    seen = {}
    from transferlearn import api

    def finetune(cfg, plan=None):
        seen["cfg"] = cfg
        raise SystemExit(0)

    monkeypatch.setattr(api, "finetune", finetune)
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["train", "--data", "d.csv", "--model", "m", "--from-scratch", "--resume",
                                      "--overwrite", "--head", "mlp", "--head-hidden", "[64, 32]", "--metric", "accuracy",
                                      "--lr", "1e-3", "--report-to", "tensorboard,mlflow", "--no-progress",
                                      "--set", "eval_steps=5"])
    assert result.exit_code == 0, result.output
    cfg = seen["cfg"]
    assert cfg.from_scratch and cfg.resume and cfg.overwrite and cfg.head == "mlp" and cfg.head_hidden == [64, 32]
    assert cfg.metric == "accuracy" and cfg.lr == 1e-3 and cfg.report_to == ["tensorboard", "mlflow"]
    assert cfg.progress is False and cfg.eval_steps == 5


def test_a_bad_choice_is_refused():
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["train", "--data", "d", "--model", "m", "--metric", "speed"])
    assert result.exit_code == 2 and "speed" in result.output
