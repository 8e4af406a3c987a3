"""The typed configuration: YAML + flags, clear errors naming the key, reproducible runs."""

from __future__ import annotations

import pytest
import yaml

from transferlearn import ConfigError, load_config
from transferlearn.config import save_config


def test_yaml_then_flags_override(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data: a.csv\nmodel: bert-base-uncased\nepochs: 5\nbatch-size: 8\nreport_to: tensorboard\n")
    config = load_config(path, epochs=2, lr=None)
    assert config.epochs == 2 and config.batch_size == 8 and config.model == "bert-base-uncased"
    assert config.report_to == ["tensorboard"] and config.lr is None


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data: a.csv\nmodel: m\nepochz: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'epochz'"):
        load_config(path)


def test_invalid_value_is_named():
    with pytest.raises(ConfigError, match=r"key 'batch_size'.*greater than 0"):
        load_config(data="a", model="m", batch_size=0)
    with pytest.raises(ConfigError, match=r"key 'report_to.0': Input should be 'none'"):
        load_config(data="a", model="m", report_to="slack")
    with pytest.raises(ConfigError, match=r"missing required key 'model'"):
        load_config(data="a")


def test_strategy_names_are_checked():
    assert load_config(data="a", model="m", strategy="freeze:4").strategy == "freeze:4"
    with pytest.raises(ConfigError, match="unknown strategy 'melt'"):
        load_config(data="a", model="m", strategy="melt")
    with pytest.raises(ConfigError, match="needs a number"):
        load_config(data="a", model="m", strategy="freeze")
    with pytest.raises(ConfigError, match="takes no argument"):
        load_config(data="a", model="m", strategy="full:3")


def test_bad_yaml_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(tmp_path / "list.yaml")


def test_saved_config_round_trips(tmp_path):
    config = load_config(data="d", model="m", strategy="freeze:2", epochs=1.5, report_to="tensorboard,wandb")
    save_config(config, tmp_path / "config.yaml")
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["report_to"] == ["tensorboard", "wandb"]
    assert load_config(tmp_path / "config.yaml") == config


# --- the config in groups; what a field declares about itself -------------------------------------------------------

def test_keys_load_flat_or_under_their_group(tmp_path):
    from transferlearn.config import GROUPS, fields_by_group

    path = tmp_path / "grouped.yaml"
    path.write_text("data: {data: a.csv, val_split: 0.2}\nmodel: {model: m, max_length: 64}\n"
                    "optimisation: {lr: 0.0003, epochs: 2}\nruntime:\n  precision: fp32\nmetric: accuracy\n")
    config = load_config(path, **{"optimisation.batch_size": 8})
    assert (config.data, config.val_split, config.model, config.max_length) == ("a.csv", 0.2, "m", 64)
    assert (config.lr, config.epochs, config.batch_size, config.precision, config.metric) == (3e-4, 2, 8, "fp32",
                                                                                              "accuracy")
    groups = fields_by_group()
    assert tuple(groups) == GROUPS and all(groups.values())
    assert sorted(k for keys in groups.values() for k in keys) == sorted(type(config).model_fields)  # each key once


def test_a_key_under_the_wrong_group_or_an_unknown_group_is_named():
    with pytest.raises(ConfigError, match=r"'runtime.lr': lr belongs to the optimisation group"):
        load_config(data="a", model="m", **{"runtime.lr": 1e-3})
    with pytest.raises(ConfigError, match=r"'training.lr': 'training' is not a config group"):
        load_config(data="a", model="m", **{"training.lr": 1e-3})


def test_what_resume_may_change_and_what_replans_are_declared_on_the_fields():
    from transferlearn.config import fields_where

    # what --resume may change is where and how the run reports, never what it trains
    assert {"epochs", "report_to", "progress", "output", "keep_checkpoints", "time_budget"} <= fields_where("resume")
    assert not {"lr", "batch_size", "strategy", "model", "data", "seed", "max_length"} & fields_where("resume")
    assert fields_where("replans") == {"strategy", "lr", "epochs", "task", "data", "model", "label_column", "problem"}
    assert fields_where("sweep", False) == {"data", "model", "output", "seed"}


def test_every_trainer_fact_names_the_training_argument_the_field_feeds(tmp_path):
    """Change a field that declares ``trainer=X`` and the TrainingArguments field X changes with it."""
    from transformers import TrainingArguments

    from transferlearn.config import TrainConfig
    from transferlearn.train.trainer import training_arguments

    changed = {"epochs": 7.0, "max_steps": 11, "batch_size": 3, "eval_batch_size": 5, "gradient_accumulation_steps": 2,
               "lr": 0.0123, "weight_decay": 0.2, "warmup_ratio": 0.3, "scheduler": "cosine", "label_smoothing": 0.1,
               "max_grad_norm": 0.5, "eval_steps": 9, "save_total_limit": 4, "metric": "accuracy", "logging_steps": 3,
               "report_to": ["tensorboard"], "seed": 7, "progress": False, "num_workers": 1, "device": "cpu",
               "precision": "bf16", "compile": True}
    declared = {name: field.json_schema_extra["trainer"] for name, field in TrainConfig.model_fields.items()
                if field.json_schema_extra["trainer"]}
    assert set(declared) - {"fsdp", "fsdp_config", "deepspeed"} == set(changed)
    assert set(declared.values()) <= set(TrainingArguments.__dataclass_fields__)
    base = load_config(data="a", model="m", lr=1e-3, device="cpu", precision="fp32")
    before = training_arguments(base, tmp_path)
    for name, value in changed.items():
        after = training_arguments(base.model_copy(update={name: value}), tmp_path)
        target = declared[name]
        if name != "device":  # the CPU is already the device here: use_cpu stays True
            assert getattr(after, target) != getattr(before, target), name
