"""Data-quality checks on one pass of frozen-backbone features: likely label errors (confident learning, cleanlab),
exact and near duplicates within and across splits, class imbalance, and outliers far from every class centre.
Pure functions on arrays, so each is tested on data whose answer is known."""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np


def label_issues(labels: np.ndarray, probabilities: np.ndarray) -> list[dict]:
    """Rows whose given label confident learning doubts (``cleanlab.filter.find_label_issues``), most doubtful
    first, with the label the out-of-fold model suggests."""
    from cleanlab.filter import find_label_issues

    # n_jobs=1: cleanlab's default forks a multiprocessing pool, and forking a process that holds torch's (or any
    # library's) threads can deadlock the child; it hung a test run here. One process is fast enough at audit sizes.
    ranked = find_label_issues(labels, probabilities, return_indices_ranked_by="self_confidence", n_jobs=1)
    return [{"row": int(i), "given": int(labels[i]), "suggested": int(probabilities[i].argmax()),
             "p_given": float(probabilities[i, labels[i]]), "p_suggested": float(probabilities[i].max())}
            for i in ranked]


def label_quality_ranking(labels: np.ndarray, probabilities: np.ndarray, n: int) -> list[dict]:
    """Every row ranked by cleanlab's label quality score (self-confidence), worst first: the order in which to
    review labels beyond what ``label_issues`` is confident about."""
    from cleanlab.rank import get_label_quality_scores

    scores = get_label_quality_scores(labels, probabilities, method="self_confidence")
    order = np.argsort(scores, kind="stable")[:n]
    return [{"row": int(i), "quality": float(scores[i]), "suggested": int(probabilities[i].argmax())} for i in order]


def content_hash(item) -> str:
    """A row's content: the text itself (whitespace-trimmed), or the bytes of its file / inline picture or clip."""
    if isinstance(item, dict):
        if item.get("bytes") is not None:
            data = item["bytes"]
        else:
            with open(item["path"], "rb") as f:
                data = f.read()
    else:
        data = str(item).strip().encode()
    return hashlib.sha256(data).hexdigest()


def exact_duplicates(hashes: list[str], splits: list[str]) -> list[dict]:
    """Groups of rows with identical content; ``across`` when the group spans more than one split."""
    groups = defaultdict(list)
    for row, digest in enumerate(hashes):
        groups[digest].append(row)
    found = []
    for rows in groups.values():
        if len(rows) > 1:
            in_splits = sorted({splits[r] for r in rows})
            found.append({"rows": rows, "splits": in_splits, "across": len(in_splits) > 1})
    return sorted(found, key=lambda g: (not g["across"], -len(g["rows"])))


def near_duplicates(features: np.ndarray, splits: list[str], threshold: float, exclude: set[tuple[int, int]],
                    block: int = 2048, limit: int = 5000) -> list[dict]:
    """Pairs of rows whose features' cosine similarity is at least ``threshold`` (exact duplicates excluded),
    found in blocks so memory stays at block x rows. The features are centred first: pooled backbone features share
    a large common direction (all Whisper clips of digits sit above 0.98 raw cosine), which says nothing about two
    rows being copies of each other."""
    centred = features - features.mean(axis=0, keepdims=True)
    unit = centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-12)
    unit = unit.astype(np.float32)
    pairs = []
    for start in range(0, len(unit), block):
        similarity = unit[start:start + block] @ unit.T
        rows, cols = np.nonzero(similarity >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            a = start + r
            if c <= a or (a, c) in exclude:
                continue
            pairs.append({"rows": [a, c], "cosine": float(similarity[r, c]), "splits": [splits[a], splits[c]],
                          "across": splits[a] != splits[c]})
            if len(pairs) >= limit:
                return sorted(pairs, key=lambda p: (not p["across"], -p["cosine"]))
    return sorted(pairs, key=lambda p: (not p["across"], -p["cosine"]))


def class_balance(labels_by_split: dict[str, np.ndarray], names: list[str]) -> dict:
    counts = {split: np.bincount(labels, minlength=len(names)).tolist() for split, labels in labels_by_split.items()}
    train = np.asarray(counts.get("train") or next(iter(counts.values())))
    ratio = float(train.max() / max(train.min(), 1))
    return {"counts": {split: dict(zip(names, c, strict=True)) for split, c in counts.items()}, "max_over_min": ratio,
            "warning": (f"the largest training class has {ratio:.1f}x the rows of the smallest: macro-F1 will suffer "
                        "on the rare classes; try --class-weights balanced") if ratio >= 3 else None}


def outliers(features: np.ndarray, labels: np.ndarray, n: int = 20) -> list[dict]:
    """The rows farthest (cosine distance) from every class centre: neither their class nor any other."""
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    centres = np.stack([unit[labels == c].mean(0) for c in np.unique(labels)])
    centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    nearest = 1.0 - (unit @ centres.T).max(1)
    order = np.argsort(-nearest)[:n]
    return [{"row": int(i), "distance": float(nearest[i])} for i in order]
