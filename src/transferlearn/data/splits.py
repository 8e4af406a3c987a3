"""The loaded-data bundle every modality returns, and seeded stratified splitting / subsampling."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field

import numpy as np

from ..shapes.base import LabelShape, label_order  # noqa: F401 — loaders import label_order from here

log = logging.getLogger(__name__)

_SPLIT_WORDS = {
    "train": "train", "training": "train",
    "valid": "validation", "validation": "validation", "val": "validation", "dev": "validation",
    "test": "test", "testing": "test", "eval": "test",
}
_SPLIT_RE = re.compile(r"^(%s)(?:$|[._\-])" % "|".join(sorted(_SPLIT_WORDS, key=len, reverse=True)), re.I)


def split_of_name(name: str) -> str | None:
    """``train_preprocess`` -> train, ``dev`` -> validation, ``readme`` -> None."""
    match = _SPLIT_RE.match(name)
    return _SPLIT_WORDS[match.group(1).lower()] if match else None


def label_tensor(values: list):
    """A batch's labels as a tensor: class indices (long), or rows of them (long) or of floats (multi-hot tags,
    standardised numbers)."""
    import torch

    first = values[0] if len(values) else 0
    if isinstance(first, (list, tuple)) or getattr(first, "ndim", 0) == 1:
        rows = [list(v) for v in values]
        integer = all(isinstance(x, (int, np.integer)) for x in rows[0])
        return torch.tensor(rows, dtype=torch.long if integer else torch.float32)
    return torch.tensor([int(v) for v in values], dtype=torch.long)


@dataclass
class LabelledData:
    """Splits as Hugging Face ``datasets.Dataset`` objects with a ``label`` column in the shape's encoding (an
    integer class, a multi-hot row, a class per column, standardised numbers)."""

    splits: dict  # split name -> datasets.Dataset
    shape: LabelShape
    source: str
    columns: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # with --max-train-samples: the whole training split and the positions of the subsample's rows in it (what
    # a study's probes take their cached features from, so every fraction and seed shares one extraction)
    train_pool: object = None
    train_rows: np.ndarray | None = None
    # streamed splits (an IterableDataset, no length): their class counts, from the pass that read them once
    stream_counts: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def label_names(self) -> list[str]:
        """The head's outputs: the classes of a single-label run, the tags, ``column=class``, the targets."""
        return self.shape.output_names

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def is_streamed(self, split: str) -> bool:
        return split in self.stream_counts

    def rows(self, split: str) -> int:
        return int(self.stream_counts[split].sum()) if self.is_streamed(split) else len(self.splits[split])

    def labels(self, split: str) -> np.ndarray:
        """A split's label column as an array (rows x outputs for the shapes with several values a row)."""
        return self.shape.label_array(self.splits[split].with_format(None)["label"])

    def class_counts(self, split: str) -> np.ndarray:
        if self.is_streamed(split):
            return self.stream_counts[split]
        return np.bincount(self.labels(split).astype(np.int64), minlength=self.num_labels)

    def summary(self) -> dict:
        counts = {}
        for split in self.splits:
            if self.is_streamed(split):
                per_class = dict(zip(self.label_names, self.class_counts(split).tolist(), strict=True))
                counts[split] = {"rows": self.rows(split), "per_class": per_class, "streamed": True}
            else:
                counts[split] = {"rows": self.rows(split), **self.shape.counts(self.labels(split))}
        return {"source": self.source, "columns": self.columns, "labels": self.label_names,
                "label_shape": self.shape.state(), "splits": counts, "notes": self.notes}

    def fingerprint(self) -> str:
        digest = hashlib.sha256(json.dumps(self.label_names).encode())
        for split in sorted(self.splits):
            digest.update(split.encode())
            digest.update(str(self.splits[split]._fingerprint).encode())
        return digest.hexdigest()[:16]


def stratified_indices(labels: np.ndarray, size: float | int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split row indices into (taken, rest), keeping class proportions when every class has 2+ rows."""
    taken, rest, _ = split_indices(labels, size, seed)
    return taken, rest


def nested_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """A seeded order of the rows in which every prefix keeps the class proportions, and the first rows hold one
    example of each class. Subsamples are prefixes, so for one seed they are nested: 1 % lies inside 10 %."""
    rng = np.random.default_rng(seed)
    ranks = np.empty(len(labels))
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        ranks[members] = np.arange(len(members)) / len(members)  # how far into its class a row is
    return np.lexsort((rng.random(len(labels)), ranks))  # ties between classes broken at random


def split_indices(labels: np.ndarray, size: float | int, seed: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """(taken, rest, stratified): stratified when the classes allow it, else a plain seeded split (and said so)."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(labels))
    counts = np.bincount(labels)
    stratified = counts[counts > 0].min() >= 2
    if not stratified:
        log.warning("a class has a single example: splitting without stratification")
    try:
        taken, rest = train_test_split(indices, train_size=size, random_state=seed,
                                       stratify=labels if stratified else None)
    except ValueError:  # too few rows per class for the requested size
        taken, rest = train_test_split(indices, train_size=size, random_state=seed, stratify=None)
        stratified = False
    return np.sort(taken), np.sort(rest), stratified


def finalise_splits(
    columns_by_split: dict[str, dict[str, list]],
    shape: LabelShape,
    *,
    source: str,
    columns: dict[str, str],
    notes: list[str],
    val_split: float,
    seed: int,
    max_train_samples: int | None,
    max_eval_samples: int | None,
    carve_validation: bool = True,
    sample_seed: int | None = None,
) -> LabelledData:
    """Carve a validation split from train when there is none (``seed``), subsample (``sample_seed``, default
    ``seed``), and build Datasets. Splits and subsamples keep the proportions of the shape's strata (classes, or
    the first target's quintiles) where it has them."""
    import datasets

    splits = {name: datasets.Dataset.from_dict(cols) for name, cols in columns_by_split.items()}
    features = next(iter(splits.values())).features.copy()
    features["label"] = shape.dataset_feature()
    splits = {name: ds.cast(features) for name, ds in splits.items()}

    def strata(dataset) -> np.ndarray:
        labels = shape.label_array(dataset.with_format(None)["label"])
        grouped = shape.strata(labels)
        return np.zeros(len(labels), dtype=np.int64) if grouped is None else grouped

    if "validation" not in splits and carve_validation:
        train_idx, val_idx, stratified = split_indices(strata(splits["train"]), 1.0 - val_split, seed)
        splits["validation"] = splits["train"].select(val_idx)
        splits["train"] = splits["train"].select(train_idx)
        how = "stratified" if stratified else "not stratified: too few rows per class"
        notes.append(f"no validation split: held out {len(val_idx)} training rows ({how}, seed {seed})")
    if carve_validation and "train" in splits:  # training data (evaluation data may hold any classes)
        labels = shape.label_array(splits["train"].with_format(None)["label"])
        held = " after holding out a validation split" if "validation" not in columns_by_split else ""
        shape.check_train(labels, source, held)
    pool, taken = None, None
    if max_train_samples and max_train_samples < len(splits["train"]):
        pool = splits["train"]
        taken = np.sort(nested_order(strata(pool), seed if sample_seed is None else sample_seed)[:max_train_samples])
        splits["train"] = pool.select(taken)
    if max_eval_samples:
        for name in ("validation", "test"):
            if name in splits and max_eval_samples < len(splits[name]):
                chosen, _ = stratified_indices(strata(splits[name]), max_eval_samples, seed)
                splits[name] = splits[name].select(chosen)
    for note in notes:
        log.info(note)
    return LabelledData(splits=splits, shape=shape, source=source, columns=columns, notes=notes,
                        train_pool=pool, train_rows=taken)
