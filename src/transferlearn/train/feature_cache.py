"""Backbone features computed once and memory-mapped from disk, for the linear probe.

A cache entry is keyed by (backbone weights, feature split + preprocessing, data): the SHA-256 of
every frozen tensor, the split's kind and the modality's preprocessing settings, and the exact model
inputs of every row. Change any of them and the key changes, so a stale entry is never read. Entries
are ``.npy`` files opened with ``mmap_mode="r"``: a dataset larger than RAM trains from the page cache.
Each entry is written to a temporary folder and renamed into place (atomic; concurrent runs agree).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from .. import distributed
from ..io import cache_root, stable_identity
from ..models.features import FeatureSplit

log = logging.getLogger(__name__)

INPUT_COLUMNS_EXCLUDED = ("label", "labels")


def default_cache_root() -> Path:
    return cache_root("features")


def weights_fingerprint(model: torch.nn.Module, head: torch.nn.Module) -> str:
    """SHA-256 over every parameter and buffer outside the head (the head trains; features ignore it)."""
    head_ids = {id(t) for t in head.parameters()}
    digest = hashlib.sha256()
    tensors = list(model.named_parameters()) + list(model.named_buffers())
    for name, tensor in sorted(tensors, key=lambda item: item[0]):
        if id(tensor) in head_ids:
            continue
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{data.dtype}:{tuple(data.shape)};".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def data_fingerprint(dataset) -> str:
    """SHA-256 over the stored inputs of every row, in order (labels excluded: features do not use them).
    Read without the dataset's transform, so it names the data, not one random augmentation of it."""
    raw = dataset.with_format(None)
    digest = hashlib.sha256()
    columns = sorted(c for c in raw.column_names if c not in INPUT_COLUMNS_EXCLUDED)
    digest.update(json.dumps(columns).encode())
    for batch in raw.select_columns(columns).iter(batch_size=1024):
        for column in columns:
            digest.update(json.dumps([stable_identity(v) for v in batch[column]], default=str).encode())
    return digest.hexdigest()


class FeaturesDataset(Dataset):
    """Rows of (cached features, label) for the Trainer."""

    def __init__(self, features: np.ndarray, labels: list[int]):
        if len(features) != len(labels):
            raise ValueError(f"{len(features)} feature rows for {len(labels)} labels")
        self.features, self.labels = features, list(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {"features": torch.from_numpy(np.array(self.features[index], dtype=np.float32)),
                "labels": self.labels[index]}


def _batches(dataset, batch_size: int, lengths: list[int] | None = None):
    """Index batches, similar-length rows together when rows have a length (less padding, same result)."""
    order = np.arange(len(dataset))
    if lengths is not None:
        order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


@torch.inference_mode()
def _compute(split: FeatureSplit, dataset, collator, device: torch.device, batch_size: int, path: Path,
             desc: str, progress: bool, shard: tuple[int, int] = (0, 1), lengths: list[int] | None = None) -> np.ndarray:
    """Features of the rows of every ``shard[1]``-th batch from ``shard[0]`` (all of them by default) into ``path``;
    returns those rows' indices, in the file's order. Batches come length-sorted, so the whole set (one shard) is
    written at each row's own position, and a shard in batch order with its indices (``_publish`` places them)."""

    mine = list(_batches(dataset, batch_size, lengths))[shard[0]::shard[1]]
    whole = shard[1] == 1
    rows = np.arange(len(dataset)) if whole else (np.concatenate(mine) if mine else np.zeros(0, dtype=np.int64))
    out, written = None, 0
    bar = tqdm(total=len(rows), desc=desc, unit="rows", disable=not progress)
    for index in mine:
        columns_of_rows = dataset[index.tolist()]
        batch = collator([dict(zip(columns_of_rows, values, strict=True))
                          for values in zip(*columns_of_rows.values(), strict=True)])
        batch.pop("labels", None)
        batch.pop("label", None)
        batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
        features = split.features(batch).float().cpu().numpy()
        if out is None:  # the width is known after the first batch
            out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(len(rows), features.shape[1]))
        if whole:
            out[index] = features
        else:
            out[written : written + len(index)] = features
        written += len(index)
        bar.update(len(index))
    bar.close()
    if out is None:
        np.save(path, np.zeros((0, 0), dtype=np.float32))
    else:
        out.flush()
        del out
    return rows


def cached_features(model: torch.nn.Module, split: FeatureSplit, dataset, collator, *, root: Path,
                    preprocessing: dict, weights_hash: str, device: torch.device, batch_size: int = 64,
                    name: str = "train", progress: bool = True, lengths: list[int] | None = None) -> tuple[np.ndarray, dict]:
    """The features of every row of ``dataset`` (memory-mapped) and the entry's metadata (``hit``). Under
    torchrun, every rank computes every N-th batch of a missing entry and rank 0 joins the shards into it: one
    pass over the rows, shared by N processes."""
    parts = {"weights": weights_hash, "split": split.kind, "preprocessing": preprocessing,
             "data": data_fingerprint(dataset)}
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]
    entry = root / key
    if distributed.agree((entry / "meta.json").exists()):  # rank 0's view: it is the one that writes entries
        meta = json.loads((entry / "meta.json").read_text())
        log.info("feature cache hit (%s, %d rows): %s", name, meta["rows"], entry)
        return np.load(entry / "features.npy", mmap_mode="r"), {**meta, "hit": True, "path": str(entry)}

    tmp = None
    if distributed.is_main():  # one temporary folder, made by rank 0, for every rank's shard
        root.mkdir(parents=True, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{key}-", dir=root)
    tmp = Path(distributed.agree(tmp))
    start = time.time()
    was_training = model.training
    model.eval()
    try:
        shard = (distributed.rank(), distributed.world_size())
        rows = _compute(split, dataset, collator, device, batch_size, tmp / f"part-{shard[0]}.npy",
                        f"caching features ({name})", progress, shard, lengths)
        np.save(tmp / f"part-{shard[0]}-rows.npy", rows)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        model.train(was_training)
    distributed.barrier()  # every shard is on disk
    meta = distributed.on_main(_publish, tmp, entry, len(dataset), shard[1], parts, key, start)
    meta = distributed.agree(meta)
    log.info("feature cache: %s rows of %s computed in %.1f s -> %s", meta["rows"], name, meta["seconds"], entry)
    return np.load(entry / "features.npy", mmap_mode="r"), {**meta, "hit": False, "path": str(entry)}


def _publish(tmp: Path, entry: Path, total: int, shards: int, parts: dict, key: str, start: float) -> dict:
    """The shards joined into ``features.npy`` (one shard: renamed as it is), the metadata, and the folder renamed
    into place (atomic; a concurrent run that wrote the same entry meanwhile wrote identical features)."""
    try:
        if shards == 1:
            os.replace(tmp / "part-0.npy", tmp / "features.npy")
        else:
            pieces = [(np.load(tmp / f"part-{r}-rows.npy"), np.load(tmp / f"part-{r}.npy", mmap_mode="r"))
                      for r in range(shards)]
            width = next((p.shape[1] for _, p in pieces if p.size), 0)
            out = np.lib.format.open_memmap(tmp / "features.npy", mode="w+", dtype=np.float32, shape=(total, width))
            for rows, piece in pieces:
                if len(rows):
                    out[rows] = piece
            out.flush()
            del out, pieces
        for leftover in tmp.glob("part-*"):
            leftover.unlink()
        features = np.load(tmp / "features.npy", mmap_mode="r")
        meta = {"key": key, "parts": parts, "rows": int(features.shape[0]), "dim": int(features.shape[1]),
                "seconds": round(time.time() - start, 2), "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        del features
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        try:
            os.replace(tmp, entry)
        except OSError:  # another run wrote the same entry meanwhile: identical by construction
            shutil.rmtree(tmp, ignore_errors=True)
        return meta
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
