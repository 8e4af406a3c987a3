"""The engine conducts: a config.yaml and plan.json written before strategies planned and fitted themselves still
load, reproduce their run (the plan reused as it is) and resume; callbacks passed to ``finetune`` reach every trainer
the run builds; the report is the layer above's to write (``finish``)."""

from __future__ import annotations

import json

from transformers import TrainerCallback
from typer.testing import CliRunner

from transferlearn import finetune, load_config
from transferlearn.cli import app
from transferlearn.config import Plan
from transferlearn.train.engine import finetune as engine_finetune

# written by `tl train` (strategy auto) at commit 4a8e7d7, before this change: flat keys, plan updates as a dict
OLD_CONFIG = """data: {data}
model: {model}
task: auto
text_column: null
image_column: null
audio_column: null
label_from_filename: null
group_from_filename: null
label_column: null
data_config: null
val_split: 0.1
max_train_samples: null
max_eval_samples: null
streaming: false
max_steps: null
on_bad_rows: error
strategy: auto
from_scratch: false
head: linear
head_hidden:
- 256
head_dropout: 0.1
backbone_dropout: null
frozen_batchnorm: null
pooling: default
max_length: 128
image_size: null
augment: auto
max_duration: 3.0
freeze_feature_encoder: true
background_noise_dir: null
mixup: 0.0
cutmix: 0.0
trust_remote_code: false
epochs: 3.0
min_steps: 200
time_budget: null
head_lr_multiplier: null
probe_solver: lbfgs
baseline: true
batch_size: 32
eval_batch_size: null
gradient_accumulation_steps: 1
lr: null
weight_decay: 0.01
warmup_ratio: 0.1
layer_lr_decay: null
scheduler: linear
label_smoothing: 0.0
class_weights: none
max_grad_norm: 1.0
seed: 42
split_seed: null
group_by_length: true
metric: macro_f1
early_stopping_patience: 3
early_stopping_threshold: 0.0
eval_steps: null
logging_steps: 10
save_total_limit: 2
resume: false
resume_with_changes: false
keep_checkpoints: false
calibrate: false
features_from_full_train: false
decoded_cache: true
feature_cache: null
output: {output}
overwrite: false
force: false
report_to:
- none
num_workers: 0
threads: null
compile: false
device: auto
fsdp: null
fsdp_config: null
deepspeed: null
precision: auto
progress: false
"""
OLD_PLAN = {"task": "text", "strategy": "auto", "lr": 5e-05, "group_by_length": True,
            "updates": {"max_length": 64, "precision": "fp32"},
            "candidates": [{"name": "freeze-half", "strategy": "freeze:1", "epochs": 1.0, "lr": 5e-05, "estimated_s": 1.7,
                            "epoch_s": 1.0, "wanted_epochs": 1.0},
                           {"name": "full", "strategy": "full", "epochs": 1.0, "lr": 5e-05, "estimated_s": 1.1,
                            "epoch_s": 1.1, "wanted_epochs": 1.0}],
            "budget_s": 900.0, "estimate_s": 79.0, "reserve_s": 15.0,
            "decisions": ["modality: text (detected from the data)", "max_length: 64 (the model accepts 64 tokens)"]}


def _old_run_folder(tmp_path, data, model):
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.yaml").write_text(OLD_CONFIG.format(data=data, model=model, output=old))
    (old / "plan.json").write_text(json.dumps(OLD_PLAN, indent=2))
    return old


def test_an_old_config_and_plan_load_and_reproduce_the_run(tmp_path, sentiment_folder, tiny_text_model):
    old = _old_run_folder(tmp_path, sentiment_folder, tiny_text_model("bert"))
    config = load_config(old / "config.yaml")
    assert config.strategy == "auto" and config.max_length == 128
    plan = Plan.load(old / "plan.json")
    assert plan.decided() == {"max_length": 64, "precision": "fp32"} and [c.name for c in plan.candidates] == [
        "freeze-half", "full"]
    out = tmp_path / "again"
    result = CliRunner().invoke(app, ["train", "-c", str(old / "config.yaml"), "--output", str(out),
                                      "--set", "baseline=false"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "plan.json").read_text()) == OLD_PLAN  # reused as it is, not re-derived
    auto = json.loads((out / "auto.json").read_text())
    assert [c["name"] for c in auto["candidates"]] == ["linear-probe", "freeze-half", "full"]
    assert all(c["epochs"] == 1.0 for c in auto["candidates"][1:])
    assert (out / "report.html").exists() and not (out / "checkpoints").exists()


def test_callbacks_reach_every_trainer_and_finish_runs_before_the_checkpoints_go(tmp_path, sentiment_folder,
                                                                                tiny_text_model):
    started, finished = [], []

    class Seen(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            started.append(args.output_dir)

    def finish(run):
        finished.append(sorted(p.name for p in run.path.iterdir()))

    config = load_config(data=str(sentiment_folder), model=str(tiny_text_model("bert")), strategy="probe-then-finetune:1",
                         epochs=1, output=str(tmp_path / "run"), progress=False, baseline=False)
    run = engine_finetune(config, callbacks=(Seen(),), finish=(finish,))
    # the AdamW probe and the fine-tune: both trainers the run built got the callback
    assert len(started) == 2 and any("probe" in d for d in started)
    assert finished and "checkpoints" in finished[0] and "metrics.json" in finished[0]  # before the checkpoints go
    assert not (run.path / "checkpoints").exists()
    assert not (run.path / "report.html").exists()  # the engine writes no report: the layer above does
    assert (finetune(config.model_copy(update={"output": str(tmp_path / "api")})).path / "report.html").exists()
