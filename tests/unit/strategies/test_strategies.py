"""The backbone contract and what each strategy freezes, checked on tiny random models."""

from __future__ import annotations

import pytest
import torch

from transferlearn import ConfigError
from transferlearn.models.text import load_text_classifier
from transferlearn.strategies import parse_strategy


@pytest.fixture(scope="module")
def bundle(tiny_text_model):
    return load_text_classifier(str(tiny_text_model("bert")), ["a", "b", "c"])


def test_param_groups_cover_every_parameter_once(bundle):
    groups = bundle.groups
    names = [n for _, group in groups.ordered() for n in group]
    assert sorted(names) == sorted(n for n, _ in bundle.model.named_parameters())
    assert len(set(names)) == len(names)
    assert groups.num_blocks == 2
    assert all(n.startswith("bert.embeddings.") for n in groups.embeddings)
    assert all(n.startswith("bert.encoder.layer.1.") for n in groups.blocks[1])
    # the classifier and the (freshly initialised) pooler belong to the head
    assert {"classifier.weight", "classifier.bias", "bert.pooler.dense.weight"} <= set(groups.head)


@pytest.mark.parametrize("arch", ["roberta", "xlm-roberta"])
def test_groups_for_roberta_family(arch, tiny_text_model):
    groups = load_text_classifier(str(tiny_text_model(arch)), ["a", "b"]).groups
    assert groups.num_blocks == 2 and groups.embeddings
    assert all(n.startswith("classifier.") for n in groups.head)


def _train_one_step(model, strategy, groups):
    model = strategy.prepare(model, groups)
    optimizer = torch.optim.AdamW(strategy.optimizer_groups(model, groups, 1e-2, 0.01))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    batch = {"input_ids": torch.randint(5, 20, (4, 7)), "attention_mask": torch.ones(4, 7, dtype=torch.long),
             "labels": torch.tensor([0, 1, 2, 0])}
    model.train()
    model(**batch).loss.backward()
    optimizer.step()
    return {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}


@pytest.mark.parametrize("spec, trains", [
    ("full", lambda g: set(g.backbone()) | set(g.head)),
    ("freeze-backbone", lambda g: set(g.head)),
    ("freeze:1", lambda g: set(g.blocks[1]) | set(g.head)),
    ("freeze:0", lambda g: {n for b in g.blocks for n in b} | set(g.head)),
])
def test_strategy_freezes_and_updates(spec, trains, tiny_text_model):
    bundle = load_text_classifier(str(tiny_text_model("bert")), ["a", "b", "c"])
    groups = bundle.groups
    expected = trains(groups)
    changed = _train_one_step(bundle.model, parse_strategy(spec), groups)
    requires_grad = {n for n, p in bundle.model.named_parameters() if p.requires_grad}
    assert requires_grad == expected
    # frozen parameters never move; trainable ones do (token-type/position rows unused by the batch aside)
    assert changed <= expected
    assert {n for n in expected if "embeddings" not in n} <= changed


def test_freeze_more_blocks_than_exist(tiny_text_model):
    bundle = load_text_classifier(str(tiny_text_model("bert")), ["a", "b"])
    with pytest.raises(ConfigError, match="only 2 blocks"):
        parse_strategy("freeze:5").prepare(bundle.model, bundle.groups)


def test_no_weight_decay_on_bias_and_norms(bundle):
    strategy = parse_strategy("full")
    model = strategy.prepare(bundle.model, bundle.groups)
    groups = strategy.optimizer_groups(model, bundle.groups, 1e-3, 0.05)
    by_decay = {g["weight_decay"]: {id(p) for p in g["params"]} for g in groups}
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.endswith("bias") or "LayerNorm" in p for p in (names[i] for i in by_decay[0.0]))
    assert all(names[i].endswith("weight") and "LayerNorm" not in names[i] for i in by_decay[0.05])


def test_discriminative_learning_rates_per_group(tiny_text_model):
    bundle = load_text_classifier(str(tiny_text_model("bert")), ["a", "b"])
    strategy = parse_strategy("discriminative:0.5")
    model = strategy.prepare(bundle.model, bundle.groups)
    groups = strategy.optimizer_groups(model, bundle.groups, 1e-3, 0.01)
    lrs = {g["name"]: g["lr"] for g in groups}
    assert lrs == pytest.approx({"head": 1e-3, "block.1": 5e-4, "block.0": 2.5e-4, "embeddings": 1.25e-4})
    in_groups = sum(len(g["params"]) for g in groups)
    assert in_groups == len(list(model.parameters()))
    default = parse_strategy("discriminative").optimizer_groups(model, bundle.groups, 1e-3, 0.01)
    assert {g["name"]: g["lr"] for g in default}["block.1"] == pytest.approx(1e-3 / 2.6)
    with pytest.raises(ConfigError, match=r"must be in \(0, 1\]"):
        parse_strategy("discriminative:2")


def test_gradual_unfreezing_trains_groups_top_down(tmp_path, sentiment_folder, tiny_text_model):
    from transformers import AutoModel

    from transferlearn import finetune, load_config

    source = tiny_text_model("bert")
    pretrained = AutoModel.from_pretrained(source)
    run = finetune(load_config(data=str(sentiment_folder), model=str(source), strategy="gradual:1", epochs=3,
                               lr=1e-2, layer_lr_decay=0.5, output=str(tmp_path / "gradual"), progress=False,
                               early_stopping_patience=0, keep_checkpoints=True))
    # the last checkpoint (model/ holds the best epoch, which may come before every group unfroze)
    last = max((run.path / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert last.name == "checkpoint-9"  # 3 epochs x 3 steps
    trained = AutoModel.from_pretrained(last)
    same = lambda name: torch.equal(pretrained.state_dict()[name], trained.state_dict()[name])  # noqa: E731
    # epoch 0: head; epoch 1: + block 1; epoch 2: + block 0; the embeddings never unfroze
    assert same("embeddings.word_embeddings.weight") and same("embeddings.LayerNorm.weight")
    assert not same("encoder.layer.0.attention.self.query.weight")
    assert not same("encoder.layer.1.output.dense.weight")


def test_lr_finder_valley_and_steepest_on_a_known_curve():
    import numpy as np

    from transferlearn.train.lr_find import steepest, valley

    lrs = np.logspace(-6, 0, 61)
    x = np.log10(lrs)
    losses = 1.0 - 0.8 / (1 + np.exp(-3 * (x + 3))) + np.where(x > -1, (x + 1) ** 2 * 5, 0)  # drop at 1e-3, blow-up
    assert 5e-4 < steepest(lrs, losses) < 2e-3
    # two-thirds into the longest descending stretch (here it starts at the first point), before the minimum
    start, end = 0, int(np.argmin(losses))
    assert valley(lrs, losses) == pytest.approx(lrs[start + int((end - start) / 3) + int((end - start) / 6)])
    assert valley(lrs, losses) < lrs[end]


def test_lr_find_command_writes_plot_and_suggestion(tmp_path, sentiment_folder, tiny_text_model):
    import json

    from typer.testing import CliRunner

    from transferlearn.cli import app

    out = tmp_path / "lrf"
    result = CliRunner().invoke(app, ["lr-find", "--data", str(sentiment_folder), "--model",
                                      str(tiny_text_model("bert")), "--output", str(out), "--num-steps", "40",
                                      "--batch-size", "16", "--end-lr", "100", "--set", "progress=false"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "lr_find.json").read_text())
    assert (out / "lr_find.png").read_bytes()[:4] == b"\x89PNG"
    assert 5 <= record["steps"] <= 40 and record["lrs"] == sorted(record["lrs"])
    assert 1e-7 <= record["suggestion"] <= 100 and "suggested learning rate" in result.stdout


def test_lr_auto_runs_the_finder_and_records_the_rate(tmp_path, sentiment_folder, tiny_text_model):
    from transferlearn import finetune, load_config

    run = finetune(load_config(data=str(sentiment_folder), model=str(tiny_text_model("bert")), lr="auto", epochs=1,
                               output=str(tmp_path / "auto"), progress=False))
    found = __import__("json").loads((run.path / "lr_find" / "lr_find.json").read_text())
    assert run.config.lr == pytest.approx(found["suggestion"]) and isinstance(run.config.lr, float)
    assert "<figcaption>LR finder (--lr auto)</figcaption>" in (run.path / "report.html").read_text()
    assert load_config(data="d", model="m", lr="3e-5").lr == 3e-5
    with pytest.raises(ConfigError, match="key 'lr"):
        load_config(data="d", model="m", lr="fast")


@pytest.mark.parametrize("spec, epoch, groups", [
    ("gradual", 0.0, 1), ("gradual", 0.99, 1), ("gradual", 1.0, 2), ("gradual", 3.5, 4),
    ("gradual:0.25", 0.5, 3), ("gradual:0.5,1,2", 0.6, 2), ("gradual:0.5,1,2", 1.0, 3), ("gradual:0.5,1,2", 9.0, 4),
])
def test_gradual_schedule(spec, epoch, groups):
    assert parse_strategy(spec).unfrozen_groups(epoch, num_groups=6) == min(groups, 6)


@pytest.mark.parametrize("spec", ["gradual:x", "gradual:0", "gradual:1,-2"])
def test_gradual_bad_schedule(spec):
    with pytest.raises(ConfigError, match="gradual"):
        parse_strategy(spec)


def test_lr_find_batches_group_lengths_in_random_order():
    import numpy as np

    from transferlearn.train.sampling import length_bucketed_order

    rng = np.random.default_rng(0)
    lengths = list(rng.integers(5, 120, size=1000))
    order = length_bucketed_order(lengths, batch_size=32, seed=1, group=5)
    assert sorted(order) == list(range(1000))  # every row once
    batches = [[lengths[i] for i in order[s : s + 32]] for s in range(0, 1000, 32)]
    # within a batch lengths are close (one sorted group of 160 rows split in 5)...
    random_spread = np.mean([np.ptp(rng.choice(lengths, 32)) for _ in range(30)])
    assert np.mean([np.ptp(b) for b in batches]) < 0.5 * random_spread
    # ...but batch lengths do not fall steadily as the sweep goes on (the Trainer's sampler goes longest first)
    means = [np.mean(b) for b in batches[:-1]]
    assert abs(np.corrcoef(np.arange(len(means)), means)[0, 1]) < 0.4
    assert len(batches[-1]) == 1000 % 32


def test_lr_find_defaults_to_fewer_steps_on_cpu(tmp_path, sentiment_folder, tiny_text_model):
    from transferlearn import load_config
    from transferlearn.train.lr_find import lr_find

    config = load_config(data=str(sentiment_folder), model=str(tiny_text_model("bert")), device="cpu",
                         batch_size=4, progress=False)
    record = lr_find(config, tmp_path / "lrf", end_lr=1e4)  # past divergence for sure
    assert 5 <= record["steps"] <= 50
    step_ratio = record["lrs"][1] / record["lrs"][0]
    assert step_ratio == pytest.approx((1e4 / 1e-7) ** (1 / 49), rel=1e-6)  # the 50-step schedule


def test_length_bucketed_sampler_reshuffles_each_epoch_and_repeats_on_resume():
    from transferlearn.train.sampling import LengthBucketedSampler

    lengths = [i % 97 for i in range(700)]
    sampler = LengthBucketedSampler(lengths, batch_size=16, seed=3, group=4)
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert sorted(first) == sorted(second) == list(range(700)) and first != second
    sampler.set_epoch(0)
    assert list(sampler) == first  # a resumed run replays the epoch it stopped in


def test_text_training_draws_length_bucketed_batches_in_random_order(tmp_path, sentiment_folder, tiny_text_model):
    # The Trainer's group_by_length yields each group's batches longest first; ours must not trend within an
    # epoch (train/sampling.py: on SmSA the class mix follows sentence length, and a head chases the drift)
    import numpy as np

    from transferlearn import load_config
    from transferlearn.modalities import detect_modality
    from transferlearn.strategies import parse_strategy
    from transferlearn.train.sampling import LengthBucketedSampler
    from transferlearn.train.trainer import make_trainer, training_arguments

    rows = (sentiment_folder / "train.csv").read_text().splitlines()[1:]
    folder = tmp_path / "data"
    folder.mkdir()
    for split, n in (("train", 400), ("valid", 20), ("test", 20)):
        lines = ["text,label"]  # sentences of 1 to 8 copies of a short one: lengths from ~5 to ~60 tokens
        for i in range(n):
            text, label = rows[i % len(rows)].rsplit(",", 1)
            lines.append(f"{' '.join([text] * (1 + i % 8))},{label}")
        (folder / f"{split}.csv").write_text("\n".join(lines) + "\n")
    config = load_config(data=str(folder), model=str(tiny_text_model("bert")), batch_size=8, device="cpu", lr=1e-3,
                         output=str(tmp_path / "run"), progress=False)
    modality = detect_modality(config)
    data = modality.load_data(config)
    bundle = modality.load_model(config, data.shape)
    train = modality.encode(bundle, data.splits["train"], config, train=True)
    valid = modality.encode(bundle, data.splits["validation"], config)
    model = parse_strategy("full").prepare(bundle.model, bundle.groups)
    trainer = make_trainer(config, model, training_arguments(config, tmp_path / "run"), train, valid,
                           collator=modality.collator(bundle, config), processor=bundle.processor,
                           param_groups=[{"params": list(model.parameters())}], shape=data.shape,
                           history=tmp_path / "history.jsonl", lengths_of=modality.encoded_lengths)
    loader = trainer.get_train_dataloader()
    assert isinstance(trainer.length_sampler, LengthBucketedSampler)
    widths = [b["input_ids"].shape[1] for b in loader]
    assert len(widths) == 50
    # padded to similar lengths: far less spread within a batch than 8 random rows would have...
    lengths = np.array(trainer.length_sampler.lengths)
    order = list(trainer.length_sampler)
    spread = np.mean([np.ptp(lengths[order[i : i + 8]]) for i in range(0, 400, 8)])
    assert spread < 0.5 * np.mean([np.ptp(np.random.default_rng(i).choice(lengths, 8)) for i in range(50)])
    # ...and the batches come in random order. The Trainer's sampler goes longest first within each group:
    # 92 % of its steps are no wider than the one before on these rows; random order gives 49-61 %
    widths = np.array(widths)
    assert np.mean(widths[1:] <= widths[:-1]) < 0.75
