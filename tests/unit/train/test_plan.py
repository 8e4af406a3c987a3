"""The plan decides without changing what it decides on: a size tried on small pictures is tried on a view of the
setup; each strategy plans itself through the planner's verbs, and every decision is recorded with its reason."""

from __future__ import annotations

from conftest import make_image
from transferlearn import load_config
from transferlearn.layout import RunLayout
from transferlearn.strategies import REGISTRY, Strategy, register
from transferlearn.train.plan import Planner, resolve_plan
from transferlearn.train.setup import Setup


def test_input_sizes_are_tried_on_views_and_the_setup_stays_as_it_was(tmp_path, tiny_image_model):
    for split, n in (("train", 24), ("val", 8)):
        for i in range(n):
            label = ("blue", "red")[i % 2]
            (tmp_path / "data" / split / label).mkdir(parents=True, exist_ok=True)
            make_image(label, i, size=16).save(tmp_path / "data" / split / label / f"{i}.png")
    config = load_config(data=str(tmp_path / "data"), model=str(tiny_image_model("timm-efficientnet")), progress=False,
                         feature_cache="run", epochs=1, time_budget="none", precision="fp32")
    setup = Setup.build(config)
    size, encoded, spec = setup.bundle.processor.spec.size, dict(setup.encoded), setup.bundle.processor.spec
    planner = Planner(config, setup, RunLayout(tmp_path / "run"))
    planner.choose_input_size()
    assert "image_size" in planner.updates and any(d.startswith("image_size:") for d in planner.decisions)
    # the setup planned on is untouched: its processor, its size and its encodings
    assert setup.bundle.processor.spec is spec and setup.bundle.processor.spec.size == size
    assert setup.encoded == encoded
    # the planner goes on with a view at the chosen size, sharing the model
    assert planner.setup.bundle.processor.spec.size == planner.updates["image_size"]
    assert planner.setup.bundle.model is setup.bundle.model
    assert setup.for_config(planner.config).bundle.processor.spec.size == planner.updates["image_size"]


@register("plans-a-half-epoch", "a test strategy whose plan decides its own epochs and notes why")
class PlansAHalfEpoch(Strategy):
    def trainable(self, groups):
        return set(groups.head)

    def plan(self, planner):
        planner.decide("epochs", 0.5, f"{planner.steps_per_epoch} steps an epoch are enough here")
        planner.note("a note of the strategy's own")


def test_a_strategy_plans_itself_through_the_planner(tmp_path, sentiment_folder, tiny_text_model):
    assert REGISTRY["plans-a-half-epoch"] is PlansAHalfEpoch
    config = load_config(data=str(sentiment_folder), model=str(tiny_text_model("bert")), strategy="plans-a-half-epoch",
                         progress=False, precision="fp32")
    plan = resolve_plan(config, Setup.build(config), RunLayout(tmp_path / "run"))
    assert plan.decided()["epochs"] == 0.5 and plan.apply(config).epochs == 0.5
    assert any(d.startswith("epochs: 0.5 (") and d.endswith("steps an epoch are enough here)") for d in plan.decisions)
    assert plan.decisions[-1] == "a note of the strategy's own"
    assert (tmp_path / "run" / "plan.json").exists()  # saved once, by the planner
