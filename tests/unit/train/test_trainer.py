"""FSDP and DeepSpeed reach the Trainer as its own options; what cannot work is one line before any data is read."""

from __future__ import annotations

import importlib.util
import json

import pytest

from transferlearn.config import load_config
from transferlearn.errors import ConfigError
from transferlearn.train.trainer import engine_options, training_arguments


def test_fsdp_goes_to_the_trainer_and_warns_on_a_cpu(tmp_path, caplog):
    config = load_config(data="-", model="-", device="cpu", fsdp="full_shard auto_wrap")
    with caplog.at_level("WARNING", logger="transferlearn"):
        assert engine_options(config) == {"fsdp": "full_shard auto_wrap"}
    assert "plain DDP" in caplog.text
    inline = load_config(data="-", model="-", device="cpu", fsdp="true", fsdp_config='{"min_num_params": 1000}')
    assert engine_options(inline) == {"fsdp": True, "fsdp_config": {"min_num_params": 1000}}
    args = training_arguments(inline, tmp_path / "checkpoints")
    assert args.fsdp_plugin_args["auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"  # the Trainer read our options


def test_bad_engine_configs_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="fsdp_config: not valid JSON"):
        engine_options(load_config(data="-", model="-", device="cpu", fsdp="true", fsdp_config="{oops"))
    with pytest.raises(ConfigError, match="is not a file"):
        engine_options(load_config(data="-", model="-", device="cpu", fsdp="true", fsdp_config=str(tmp_path / "no.json")))
    ds = tmp_path / "ds.json"
    ds.write_text(json.dumps({"zero_optimization": {"stage": 2}}))
    if importlib.util.find_spec("deepspeed") is None:
        with pytest.raises(ConfigError, match="deepspeed package is not installed"):
            engine_options(load_config(data="-", model="-", deepspeed=str(ds)))
    else:  # pragma: no cover - where deepspeed is installed
        assert engine_options(load_config(data="-", model="-", deepspeed=str(ds))) == {"deepspeed": str(ds)}
