"""The built-in baseline of every run: the modality's classical features + the label shape's linear model
(scikit-learn: logistic regression, one per tag or per column, or ridge) on the same split, trained in seconds,
reported beside the transferred model. A run that loses to it says so."""

from __future__ import annotations

import logging
import time
import warnings

from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, MaxAbsScaler

from ..config import TrainConfig
from .setup import Setup

log = logging.getLogger(__name__)

C_SWEEP = (0.1, 1.0, 10.0)  # inverse L2 strength, chosen on validation


def fit_baseline(config: TrainConfig, setup: Setup) -> dict:
    """The modality's classical features and the label shape's linear model (logistic regression, one per tag or
    per column, or ridge), its strength chosen on validation; scored with the same metrics as the run."""
    start = time.time()
    shape = setup.data.shape
    raw = {split: ds.with_format(None) for split, ds in setup.data.splits.items()}
    if shape.per_token:  # a tag per word: the tagger computes each word's features itself (data/word_features.py)
        name = f"word, affix and neighbour features + {shape.baseline_name}"
        features = FunctionTransformer(lambda rows: [list(r) for r in rows])
    else:
        features_name, featurizer = setup.modality.baseline()
        name = f"{features_name} + {shape.baseline_name}"
        features = make_pipeline(featurizer, MaxAbsScaler())  # MaxAbs keeps TF-IDF sparse
    x_train = features.fit_transform(setup.modality.row_inputs(raw["train"]))
    y_train = shape.label_array(raw["train"]["label"])
    encoded = {split: features.transform(setup.modality.row_inputs(ds)) for split, ds in raw.items() if split != "train"}
    labels = {split: shape.label_array(ds["label"]) for split, ds in raw.items()}
    metric = shape.primary_metric if config.metric in ("loss", "auto") else config.metric
    weights = "balanced" if config.class_weights == "balanced" else None
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a tag train never shows: sklearn predicts it constant
        for c in C_SWEEP:
            model = shape.baseline_model(c, weights).fit(x_train, y_train)
            score = shape.score(metric, labels["validation"], shape.baseline_logits(model, encoded["validation"]))
            if best is None or score > best[0]:
                best = (score, c, model)
        _, c, model = best
        out = {"name": name, "C": c, "metric": metric, "seconds": None}
        for split, x in encoded.items():
            logits = shape.baseline_logits(model, x)
            part, scores = shape.part_scores(shape.metrics(labels[split], logits))  # per class / tag / column / type
            out[split] = {**shape.summary(labels[split], logits), "parts": {"what": part, "scores": scores}}
    out["seconds"] = round(time.time() - start, 2)
    return out


def compare_with_baseline(metrics: dict) -> str | None:
    """The loud line for a run that scores below its baseline on its main split, else None."""
    baseline = metrics.get("baseline")
    split = "test" if "test" in metrics else "validation"
    if not baseline or split not in baseline or split not in metrics:
        return None
    metric = baseline.get("metric", "macro_f1")
    ours, theirs = metrics[split].get(metric), baseline[split].get(metric)
    if ours is not None and theirs is not None and ours < theirs:
        return (f"the transferred model scores BELOW its baseline on {split}: {metric} {ours:.4f} vs {theirs:.4f} "
                f"({baseline['name']}). Try more epochs, another strategy, or check the data (tl train --help).")
    return None
