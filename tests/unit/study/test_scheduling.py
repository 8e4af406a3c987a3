"""What a study starts next when several runs may be in flight (the Ray backend): the study's order, a free slot,
and every arm's first run alone before that arm fans out."""

from __future__ import annotations

import pytest

from transferlearn.errors import ConfigError
from transferlearn.study.config import StudyConfig, SweepConfig
from transferlearn.study.runner import Study
from transferlearn.study.sweep import Sweep


def _study(tmp_path) -> Study:
    config = StudyConfig(data="d", model="m", arms=["linear-probe", "full"], fractions=[0.5, 1.0], seeds=2,
                         output=str(tmp_path))
    return Study(config)


def test_the_next_run_waits_for_its_arms_first_run_and_a_free_slot(tmp_path):
    study = _study(tmp_path)
    waiting = [(i, arm, f, s) for i, (arm, f, s) in enumerate(study.planned(), 1)]
    assert [w[1] for w in waiting[:2]] == ["linear-probe", "full"]  # cheapest arm first
    running = {}
    first = study._next_run(waiting, running, slots=3)
    assert first[1] == "linear-probe"
    waiting.remove(first)
    running["a"] = first[1:]
    second = study._next_run(waiting, running, slots=3)
    assert second[1] == "full"  # the next probe run waits: the probe arm's first run is still in flight
    waiting.remove(second)
    running["b"] = second[1:]
    assert study._next_run(waiting, running, slots=3) is None  # both arms are on their first run
    study.records["a"] = {"arm": "linear-probe"}
    del running["a"]
    assert study._next_run(waiting, running, slots=3)[1] == "linear-probe"  # measured once: the arm fans out
    running["c"], running["d"] = ("linear-probe", 1.0, 42), ("linear-probe", 1.0, 43)
    assert study._next_run(waiting, running, slots=3) is None  # every slot taken


def test_a_sweep_refuses_the_ray_backend_in_one_line(tmp_path):
    sweep = Sweep(SweepConfig(data="d", model="m", space="lr=1e-5:1e-3:log", backend="ray", output=str(tmp_path)))
    with pytest.raises(ConfigError, match="use tl study for Ray"):
        sweep.run(report=lambda line: None)
