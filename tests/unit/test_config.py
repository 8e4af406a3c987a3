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
