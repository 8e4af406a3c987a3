"""The study's numbers: intervals, the paired test, the learning-curve fit, nested subsets."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from transferlearn.data.splits import nested_order
from transferlearn.metrics import metric_of
from transferlearn.study.stats import (
    fit_learning_curve,
    labels_needed,
    labels_needed_interval,
    mean_interval,
    paired_bootstrap,
    power_law,
)


def test_the_fit_recovers_a_known_power_law():
    labels = [10, 30, 100, 300, 1000, 3000]
    scores = [float(power_law(n, 0.91, 0.6, 0.55)) for n in labels]
    curve = fit_learning_curve(labels, scores)
    assert curve["asymptote"] == pytest.approx(0.91, abs=1e-3)
    assert curve["scale"] == pytest.approx(0.6, rel=0.02) and curve["exponent"] == pytest.approx(0.55, rel=0.02)
    target = 0.95 * 0.91
    assert labels_needed(curve, target) == pytest.approx((0.6 / (0.91 - target)) ** (1 / 0.55), rel=0.03)


def test_the_labels_needed_interval_covers_the_truth_with_noisy_seeds():
    rng = np.random.default_rng(0)
    truth = (0.5 / (0.9 - 0.85)) ** (1 / 0.5)  # 100 labels
    points = {n: list(power_law(n, 0.9, 0.5, 0.5) + rng.normal(0, 0.004, 3)) for n in (10, 40, 160, 640)}
    fit = labels_needed_interval(points, 0.85)
    assert fit["low"] <= truth <= fit["high"] and fit["labels"] == pytest.approx(truth, rel=0.3)


def test_too_few_label_counts_give_no_curve():
    assert fit_learning_curve([10, 100], [0.5, 0.7]) is None


def test_two_identical_arms_are_not_significantly_different():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 200)
    predicted = [np.where(rng.random(200) < 0.8, labels, rng.integers(0, 3, 200)) for _ in range(3)]
    result = paired_bootstrap(labels, predicted, [p.copy() for p in predicted],
                              lambda y, p: metric_of("macro_f1", y, p, 3), resamples=500)
    assert result["difference"] == 0 and result["p_value"] == 1.0 and not result["significant"]


def test_a_clearly_better_arm_is_significant():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 400)
    good = [np.where(rng.random(400) < 0.95, labels, 1 - labels) for _ in range(3)]
    poor = [np.where(rng.random(400) < 0.6, labels, 1 - labels) for _ in range(3)]
    result = paired_bootstrap(labels, good, poor, lambda y, p: metric_of("accuracy", y, p, 2), resamples=500)
    assert result["significant"] and result["p_value"] < 0.01 and result["low"] > 0.2


def test_the_paired_test_scores_a_label_shape_on_its_outputs():
    from transferlearn.shapes import Regression

    shape = Regression(["score"])
    shape.fit(["1", "2", "3"], "t")
    rng = np.random.default_rng(4)
    labels = rng.normal(0, 1, (300, 1))
    close, far = labels + rng.normal(0, 0.2, labels.shape), labels + rng.normal(0, 1.0, labels.shape)
    result = paired_bootstrap(labels, [close], [far], lambda y, out: shape.score("r2", y, out), resamples=300)
    assert result["significant"] and result["difference"] > 0.5


def test_macro_f1_matches_scikit_learn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(3)
    labels, predicted = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    assert metric_of("macro_f1", labels, predicted, 4) == pytest.approx(f1_score(labels, predicted, average="macro"))


def test_the_mean_interval_is_student_t():
    values = [0.81, 0.84, 0.79]
    result = mean_interval(values)
    low, high = scipy_stats.t.interval(0.95, 2, loc=np.mean(values), scale=scipy_stats.sem(values))
    assert result["low"] == pytest.approx(low) and result["high"] == pytest.approx(high)
    assert mean_interval([0.5])["low"] is None


def test_subsets_of_one_seed_are_nested_and_stratified():
    labels = np.array([0] * 700 + [1] * 250 + [2] * 50)
    order = nested_order(labels, seed=7)
    assert sorted(order.tolist()) == list(range(1000))
    assert set(labels[order[:3]].tolist()) == {0, 1, 2}  # every class from the first rows on
    for n in (10, 100, 300):
        counts = np.bincount(labels[order[:n]], minlength=3)
        assert np.all(np.abs(counts - n * np.array([0.7, 0.25, 0.05])) <= 1.5)
    assert set(order[:10]) <= set(order[:100]) <= set(order[:300])
    assert not np.array_equal(order, nested_order(labels, seed=8))


def test_a_study_estimates_fine_tunes_in_steps_and_leaves_probes_unestimated():
    from transferlearn.study.config import StudyConfig
    from transferlearn.study.runner import Study

    study = Study(StudyConfig(data="d", model="m", arms="full,linear-probe", fractions="0.1,1", seeds=1),
                  {"batch_size": 32, "min_steps": 200})
    assert study.planned_steps(320) == 200  # 10 steps an epoch, raised to min_steps
    assert study.planned_steps(3200) == 300  # 100 steps an epoch, the default 3 epochs
    study.records = {"a": {"arm": "full", "rows": 320, "steps": 200, "wall_s": 60.0},
                     "b": {"arm": "full", "rows": 640, "steps": 220, "wall_s": 64.0},
                     "c": {"arm": "linear-probe", "rows": 320, "steps": 70, "wall_s": 5.0}}
    assert study.estimate("full", 3200) == pytest.approx(20.0 + 0.2 * 300)  # intercept + seconds per step
    assert study.estimate("linear-probe", 3200) is None  # cached features: cheap whatever the rows
    assert study.estimate("scratch", 100) is None
