"""auto: never below its own probe on validation; the planner fits candidates to the budget; the probe
converges whatever --epochs says; a new head trains faster than the body; a baseline in every run."""

from __future__ import annotations

import json
import math

import pytest
import torch

from transferlearn import finetune, load_config
from transferlearn.strategies import parse_strategy
from transferlearn.strategies.auto import choose_candidates, choose_winner


def _plan(budget, step_full=1.0, step_half=0.5, n_train=3200, num_labels=4, epochs_asked=None):
    return choose_candidates(n_train=n_train, num_labels=num_labels, num_blocks=12, steps_per_epoch=100,
                             epoch_eval_s=10.0, step_s={"freeze:6": step_half, "full": step_full}, budget_s=budget,
                             lr=5e-5, min_steps=200, epochs_asked=epochs_asked, default_epochs=3.0)


def test_the_planner_fits_candidates_to_the_budget():
    # one epoch: (100 steps x step time + 10 s of validation) x the 1.2 estimate margin
    roomy, _ = _plan(budget=None)
    assert [(c.strategy, c.epochs) for c in roomy] == [("freeze:6", 3.0), ("full", 3.0)]
    assert roomy[0].estimated_s == pytest.approx(3 * 72.0) and roomy[1].estimated_s == pytest.approx(3 * 132.0)
    tighter, notes = _plan(budget=400)  # freeze-half 216 s fits; full would need 396 s of the 184 left
    assert [(c.strategy, c.epochs) for c in tighter] == [("freeze:6", 3.0), ("full", 1.0)]
    assert any("1 epochs instead of 3" in n for n in notes)
    tight, notes = _plan(budget=100)  # not even the cheap one at 3 epochs: 1 epoch of it, then nothing
    assert [(c.strategy, c.epochs) for c in tight] == [("freeze:6", 1.0), ("full", 0.0)]  # full kept as optional
    assert any("full (full) skipped" in n for n in notes) and tight[1].epoch_s == pytest.approx(132.0)
    assert [c.epochs for c in _plan(budget=20)[0]] == [0.0, 0.0]
    assert sum(c.estimated_s for c in tighter) <= 400 and sum(c.estimated_s for c in tight) <= 100


def test_the_budget_is_a_bound_not_an_estimate(sentiment_folder, tiny_text_model, tmp_path):
    import time

    start = time.time()
    # no early stopping: only the deadline can end 400 epochs (~2,400 steps) this soon
    run = finetune(load_config(**_common(sentiment_folder, tiny_text_model, tmp_path / "run"), lr=1e-3, epochs=400,
                               time_budget="6s", early_stopping_patience=0))
    auto = run.metrics["train"]["auto"]
    assert auto["budget_s"] == 6.0
    for candidate in auto["candidates"][1:]:  # every fine-tune was shortened, stopped at the deadline, or skipped
        assert "skipped" in candidate or candidate.get("stopped") or candidate["epochs"] < 400, candidate
    assert auto["seconds"] < 6.0 + 6.0  # the last evaluation after the deadline is all that may run over
    # what follows training (scoring validation and test, the report) is kept out of the candidates' budget
    plan = json.loads((run.path / "plan.json").read_text())
    assert plan["reserve_s"] >= 15.0 and any("scoring and report" in d for d in plan["decisions"])
    assert all("skipped" in c for c in auto["candidates"][1:])  # 6 s minus the reserve leaves no fine-tune any time
    assert time.time() - start < 60


def test_a_candidate_gets_the_epochs_the_measured_pace_allows():
    from transferlearn.strategies.auto import fit_epochs

    full = {"epochs": 0.0, "wanted_epochs": 3.0, "epoch_s": 110.0}
    assert fit_epochs(full, left_s=None, scale=1.0) == 3.0
    assert fit_epochs(full, left_s=120.0, scale=1.0) == 1.0  # skipped at plan time, one epoch fits now
    assert fit_epochs(full, left_s=120.0, scale=0.5) == 2.0  # the others ran twice as fast as estimated
    assert fit_epochs(full, left_s=1000.0, scale=0.5) == 3.0  # never more than wanted
    assert fit_epochs(full, left_s=40.0, scale=1.0) == 0.0


def test_the_planner_gives_small_data_enough_steps_and_tiny_data_none():
    small, _ = _plan(budget=None, n_train=320)  # 100 steps an epoch here: 200 steps need 2 < 3 default epochs
    assert small[0].epochs == 3.0
    few = choose_candidates(n_train=40, num_labels=4, num_blocks=2, steps_per_epoch=2, epoch_eval_s=0.1,
                            step_s={"freeze:1": 0.1, "full": 0.1}, budget_s=None, lr=5e-5, min_steps=200,
                            epochs_asked=None, default_epochs=3.0)
    assert [c.epochs for c in few[0]] == [100.0, 100.0]  # 2 steps an epoch: 100 epochs reach 200 steps
    none, notes = _plan(budget=None, n_train=12, num_labels=4)
    assert none == [] and "too few" in notes[0]


def _common(sentiment_folder, tiny_text_model, out, **kw):
    return dict(data=str(sentiment_folder), model=str(tiny_text_model("bert")), batch_size=16, output=str(out),
                progress=False, feature_cache="run", **kw)


def _tried(*scores):
    """(name, validation, se) in the order they ran, simplest first."""
    return [{"name": name, "validation": v, "validation_loss": 1.0 - v, "validation_se": se} for name, v, se in scores]


def test_the_best_score_wins_and_a_tie_goes_to_the_simpler():
    name, why = choose_winner(_tried(("linear-probe", 0.82, 0.01), ("freeze-half", 0.89, 0.01), ("full", 0.88, 0.01)),
                              "macro_f1")
    assert (name, why) == ("freeze-half", "best validation macro_f1: 0.8900 vs full 0.8800")
    # a perfect score on a small validation split: the simpler of the tied fine-tunes, whatever their losses
    name, why = choose_winner(_tried(("linear-probe", 0.98, 0.02), ("freeze-half", 1.0, 0.0), ("full", 1.0, 0.0)),
                              "accuracy")
    assert name == "freeze-half" and why.endswith("tied, so the simpler one is kept")
    # a lead inside the standard error still wins, and the record says validation barely separates them
    name, why = choose_winner(_tried(("linear-probe", 0.8889, 0.016), ("freeze-half", 0.8896, 0.016),
                                     ("full", 0.89, 0.015)), "macro_f1")
    assert name == "full" and "inside one standard error (0.0150)" in why
    # skipped candidates have no score and never win
    assert choose_winner([*_tried(("linear-probe", 0.7, 0.05)), {"name": "full", "skipped": "budget"}],
                         "accuracy") == ("linear-probe", "best validation accuracy: 0.7000 (the only candidate)")


@pytest.mark.parametrize("seed", range(20))
def test_the_winner_is_never_below_the_probe(seed):
    rng = __import__("random").Random(seed)
    tried = _tried(*[(f"c{i}", round(rng.random(), 1), 0.01) for i in range(4)])  # one decimal: ties are common
    name, _ = choose_winner(tried, "accuracy")
    kept = next(t for t in tried if t["name"] == name)
    assert kept["validation"] == max(t["validation"] for t in tried) >= tried[0]["validation"]
    assert all(t["validation"] < kept["validation"] for t in tried[: tried.index(kept)])  # no simpler one ties it


def test_auto_is_never_below_its_probe(sentiment_folder, tiny_text_model, tmp_path):
    # a learning rate that wrecks every fine-tune: the probe must win, and the saved model is the probe's
    run = finetune(load_config(**_common(sentiment_folder, tiny_text_model, tmp_path / "run"), lr=50.0, epochs=2))
    auto = json.loads((run.path / "auto.json").read_text())
    scores = {c["name"]: c["validation"] for c in auto["candidates"] if "validation" in c}
    assert set(scores) == {"linear-probe", "freeze-half", "full"}
    assert scores[auto["winner"]] >= scores["linear-probe"]
    assert (auto["winner"], auto["why"]) == choose_winner(auto["candidates"], "macro_f1")
    assert run.metrics["validation"]["macro_f1"] >= scores["linear-probe"] - 1e-4  # scores are recorded to 4 places
    assert run.metrics["train"]["auto"]["why"] == auto["why"] and "best validation" in auto["why"]
    assert all(c.get("seconds") is not None for c in auto["candidates"])


def test_auto_keeps_a_fine_tune_that_beats_the_probe(sentiment_folder, tiny_text_model, tmp_path, monkeypatch):
    from transferlearn.train import probe

    # a probe held at ~zero weights: the fine-tunes must beat it (a good probe wins on this tiny task)
    monkeypatch.setattr(probe, "L2_SWEEP", (1e3,))
    run = finetune(load_config(**_common(sentiment_folder, tiny_text_model, tmp_path / "run"), lr=1e-2, epochs=6))
    auto = run.metrics["train"]["auto"]
    kept = next(c for c in auto["candidates"] if c["name"] == auto["winner"])
    probe = auto["candidates"][0]
    assert auto["winner"] != "linear-probe" and kept["validation"] > probe["validation"]
    assert run.metrics["validation"]["macro_f1"] == pytest.approx(kept["validation"], abs=1e-4)


@pytest.mark.parametrize("epochs", [1, 30])
def test_the_probe_converges_whatever_the_epochs(epochs, sentiment_folder, tiny_text_model, tmp_path):
    run = finetune(load_config(**_common(sentiment_folder, tiny_text_model, tmp_path / f"e{epochs}"),
                               strategy="linear-probe", epochs=epochs))
    probe = run.metrics["train"]["probe"]
    assert probe["solver"].startswith("lbfgs") and probe["iterations"] > 5 and probe["l2"] in (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
    assert set(probe["sweep"]) == {"1e-05", "0.0001", "0.001", "0.01", "0.1"}
    # converged: more L-BFGS iterations from the solution do not move the loss
    from transferlearn.train.probe import _lbfgs
    from transferlearn.train.setup import Setup

    config = run.config.model_copy(update={"output": str(tmp_path / "again")})
    setup = Setup.build(config)
    setup.bundle.model.load_state_dict(__import__("safetensors.torch", fromlist=["load_file"]).load_file(
        run.path / "model" / "model.safetensors"), strict=False)
    from transferlearn.layout import RunLayout
    from transferlearn.train.probe import probe_data

    features = probe_data(config, setup, RunLayout(tmp_path / "again"))
    head = features.split.head.eval()
    x = torch.from_numpy(features.datasets["train"].features[:].copy())
    y = torch.tensor(features.datasets["train"].labels)
    before = float(torch.nn.functional.cross_entropy(head(x), y))
    after, _ = _lbfgs(head, x, y, None, probe["l2"], 200, features.shape, rounds=1)
    print("probe train loss", before, "after 200 more L-BFGS iterations", after)
    assert abs(before - probe["train_loss"]) < 1e-3
    # it learned: not the constant head a stalled solver leaves (loss ln 2 on two balanced classes)...
    assert before < 0.6 and probe["validation_score"] > 0.6
    # ...and it is (nearly) converged: more iterations add little to what the fit gained from the start
    assert before - after < 0.2 * (math.log(2) - before)


def test_the_1_and_30_epoch_probes_are_the_same(sentiment_folder, tiny_text_model, tmp_path):
    heads = []
    for epochs in (1, 30):
        run = finetune(load_config(**_common(sentiment_folder, tiny_text_model, tmp_path / f"e{epochs}"),
                                   strategy="linear-probe", epochs=epochs))
        heads.append(run.metrics["validation"])
    assert heads[0] == heads[1]


def test_a_new_head_trains_faster_than_the_body(tiny_text_model):
    from transferlearn.models.text import load_text_classifier

    for spec, multiplier in (("full", 10), ("freeze:1", 10), ("gradual", 10), ("discriminative", 10),
                             ("probe-then-finetune", 1), ("lora", 1), ("linear-probe", 1), ("freeze-backbone", 1)):
        assert parse_strategy(spec).head_lr_multiplier == multiplier, spec
    bundle = load_text_classifier(str(tiny_text_model("bert")), ["a", "b"])
    strategy = parse_strategy("full")
    model = strategy.prepare(bundle.model, bundle.groups)
    groups = strategy.optimizer_groups(model, bundle.groups, 1e-4, 0.01, head_lr_multiplier=10.0)
    head = {id(p) for n, p in model.named_parameters() if n in set(bundle.groups.head)}
    for group in groups:
        is_head = {id(p) for p in group["params"]} <= head
        assert group["lr"] == pytest.approx(1e-3 if is_head else 1e-4)
    assert {g.get("name") for g in groups} >= {"head"}


def test_every_modality_reports_a_baseline(sentiment_folder, image_folder, audio_folder, tiny_text_model,
                                           tiny_image_model, tiny_audio_model, tmp_path):
    runs = {
        "text": dict(data=str(sentiment_folder), model=str(tiny_text_model("bert"))),
        "image": dict(data=str(image_folder), model=str(tiny_image_model("timm-efficientnet")), image_size=32),
        "audio": dict(data=str(audio_folder), model=str(tiny_audio_model("wav2vec2")), max_duration=1.0),
    }
    expected = {"text": "TF-IDF", "image": "pixels", "audio": "MFCC"}
    for kind, args in runs.items():
        run = finetune(load_config(**args, strategy="linear-probe", output=str(tmp_path / kind), progress=False,
                                   feature_cache="run"))
        baseline = json.loads((run.path / "metrics.json").read_text())["baseline"]
        assert expected[kind] in baseline["name"] and baseline["C"] in (0.1, 1.0, 10.0)
        metrics = json.loads((run.path / "metrics.json").read_text())
        for split in ("validation", "test"):  # a real accuracy over the split's rows: a whole number of them right
            right = baseline[split]["accuracy"] * metrics[split]["num_samples"]
            assert right == pytest.approx(round(right), abs=1e-6) and metrics[split]["num_samples"] > 0
        assert baseline["test"]["accuracy"] >= 0.75, kind  # these toy tasks are easy for classical features too
        assert "baseline (" in (run.path / "report.html").read_text()


def test_small_pictures_are_probed_at_a_smaller_size_too(tmp_path, tiny_image_model):
    from conftest import make_image

    for split, n in (("train", 40), ("val", 16), ("test", 16)):
        for i in range(n):
            label = ("blue", "red")[i % 2]
            (tmp_path / "data" / split / label).mkdir(parents=True, exist_ok=True)
            make_image(label, hash((split, i)) % 10_000, size=16).save(tmp_path / "data" / split / label / f"{i}.png")
    run = finetune(load_config(data=str(tmp_path / "data"), model=str(tiny_image_model("timm-efficientnet")),
                               output=str(tmp_path / "run"), progress=False, feature_cache="run", epochs=1))
    plan = json.loads((run.path / "plan.json").read_text())
    note = next(d for d in plan["decisions"] if d.startswith("image_size:"))
    from transferlearn.modalities import IMAGE
    from transferlearn.shapes import SingleLabel

    default = IMAGE.load_model(load_config(data="x", model=str(tiny_image_model("timm-efficientnet"))),
                               SingleLabel.with_classes(["label"], ["blue", "red"])).processor.spec.size
    assert "64 px" in note and f"{default} px" in note  # both sizes were probed
    assert plan["updates"]["image_size"] in (64, default)
    size = json.loads((run.path / "model" / "preprocessing.json").read_text())["size"]
    assert size == plan["updates"]["image_size"]  # the saved model preprocesses at the chosen size
    assert len(run.predict([str(p) for p in sorted((tmp_path / "data" / "test").glob("*/*"))[:3]])) == 3


def test_augmentation_is_a_validated_candidate_for_audio_not_for_text(audio_folder, tiny_audio_model, tmp_path,
                                                                      sentiment_folder, tiny_text_model, monkeypatch):
    from transferlearn.train import probe

    monkeypatch.setattr(probe, "L2_SWEEP", (1e3,))  # a probe held at ~zero weights: a fine-tune must beat it
    audio = finetune(load_config(data=str(audio_folder), model=str(tiny_audio_model("wav2vec2")), max_duration=1.0,
                                 lr=1e-2, epochs=6, batch_size=12, output=str(tmp_path / "audio"), progress=False,
                                 feature_cache="run"))
    tried = audio.metrics["train"]["auto"]["candidates"]
    augmented = [c for c in tried if c.get("augment") == "light"]
    assert audio.metrics["train"]["auto"]["winner"] != "linear-probe"
    assert len(augmented) == 1 and augmented[0]["name"].endswith("+light") and "validation" in augmented[0]
    assert audio.metrics["train"]["auto"]["winner"] == choose_winner(tried, "macro_f1")[0]  # kept if validation agrees
    text = finetune(load_config(**_common(sentiment_folder, tiny_text_model, tmp_path / "text"), lr=1e-3, epochs=2))
    assert not any(c.get("augment") for c in text.metrics["train"]["auto"]["candidates"])  # text has no preset


def test_small_data_evaluates_by_steps_not_every_tiny_epoch():
    from transferlearn.strategies.auto import evaluation_steps

    assert evaluation_steps(4, 50) == 25  # 200 steps: 8 evaluations, not 50
    assert evaluation_steps(3, 67) == 26
    assert evaluation_steps(100, 3) is None  # real epochs: every epoch
    assert evaluation_steps(10, 8) is None  # no more than 8 epochs anyway
    assert evaluation_steps(30, 20) is None  # an epoch of 25+ steps is evaluated as an epoch
