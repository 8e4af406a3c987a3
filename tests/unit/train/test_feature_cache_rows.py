"""Cached features sit at their own row, whatever order the length-sorted batches computed them in, for one
process and for every shard count a launcher could give (rank r computes every N-th batch, rank 0 joins)."""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import pytest
import torch

from transferlearn.train.feature_cache import _compute, _publish


class RowFeature:
    """A feature split whose features name the row: (first token id, length), so a misplaced row is visible."""

    kind = "test"

    def features(self, batch):
        ids, mask = batch["input_ids"], batch["attention_mask"]
        return torch.stack([ids[:, 0].float(), mask.sum(1).float()], dim=1)


def _collate(rows):
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.tensor([r["input_ids"] + [0] * (width - len(r["input_ids"])) for r in rows])
    mask = torch.tensor([[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"])) for r in rows])
    return {"input_ids": ids, "attention_mask": mask}


@pytest.mark.parametrize("shards", [1, 2, 3])
def test_every_row_gets_its_own_features(tmp_path: Path, shards):
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 30, size=41)  # varied lengths: the batches' order is far from the rows'
    dataset = datasets.Dataset.from_dict({"input_ids": [[i + 1] * int(n) for i, n in enumerate(lengths)]})
    tmp = tmp_path / "entry.tmp"
    tmp.mkdir()
    for rank in range(shards):
        rows = _compute(RowFeature(), dataset, _collate, torch.device("cpu"), 4, tmp / f"part-{rank}.npy", "t",
                        False, (rank, shards))
        np.save(tmp / f"part-{rank}-rows.npy", rows)
    meta = _publish(tmp, tmp_path / "entry", len(dataset), shards, {"x": 1}, "k", 0.0)
    features = np.load(tmp_path / "entry" / "features.npy")
    assert meta["rows"] == 41 and features.shape == (41, 2)
    np.testing.assert_array_equal(features[:, 0], np.arange(1, 42))  # row i holds row i's first token
    np.testing.assert_array_equal(features[:, 1], lengths)
    assert not list((tmp_path / "entry").glob("part-*"))
