"""Inputs decoded once, then read from a memory-mapped array every epoch: pictures and clips.

Decoding a JPEG and resizing it, or decoding a clip and resampling it, costs more than the augmentation that
follows, and it was paid on every row of every epoch. Here each input is decoded once into
``$TL_CACHE_DIR/decoded/<key>/values.npy``, and every later access augments from that copy:

- a picture goes through the evaluation transform's resize (short side to ``size / crop_pct``) and is cropped to
  that square, a little above the training crop. Evaluation from the cache is bit-identical to evaluation without
  it; training crops are taken from the square instead of the whole picture;
- a clip is decoded to mono float32 at the model's rate and cropped to ``max_duration``: bit-identical to decoding.

The array is filled as rows are first read, so the first epoch pays the decode and the second reads memory. A
length per row, written after the row's values (0 = not yet decoded), says which rows are done: a run killed
mid-epoch leaves a half-filled entry that the next run completes. The key covers each row's identity (path, size
and mtime, or its bytes' SHA-256) and every setting of the decode, so a changed file or a new image size is a new
entry, never a stale read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torchvision.transforms.v2 import functional as F

from ..io import cache_root, stable_identity
from .audio import read_audio
from .augment import _interpolation, open_image

log = logging.getLogger(__name__)

LAYOUT_VERSION = 1  # bump when what an entry holds changes
MAX_ENTRY_BYTES = 16 * 2**30  # beyond this, or half the free disk, inputs are decoded each time as before


class DecodedRows:
    """``rows`` (``{"bytes", "path"}`` dicts) decoded by ``decode`` into arrays of at most ``shape`` (a shorter
    first axis is allowed: clips), stored on first access and read from then on."""

    def __init__(self, rows: list[dict], shape: tuple[int, ...], dtype, decode: Callable[[dict], np.ndarray],
                 settings: dict, root: Path | None = None):
        self.rows, self.shape, self.dtype, self.decode = rows, tuple(shape), np.dtype(dtype), decode
        self.slots = {self._identity(row): i for i, row in enumerate(rows)}
        key = hashlib.sha256(json.dumps({"version": LAYOUT_VERSION, "shape": self.shape, "dtype": self.dtype.str,
                                         **settings, "rows": [stable_identity(r) for r in rows]},
                                        default=str).encode()).hexdigest()
        self.folder = (root or cache_root("decoded")) / key[:32]
        self.values, self.lengths = self._open()
        self.hits = self.misses = 0

    @staticmethod
    def _identity(row: dict) -> str:
        return json.dumps(stable_identity(row), sort_keys=True, default=str)

    def _open(self):
        values, lengths = self.folder / "values.npy", self.folder / "lengths.npy"
        if not (values.exists() and lengths.exists()):
            # created whole in a temporary folder and renamed: two runs starting together agree on one entry
            tmp = self.folder.with_name(f".{self.folder.name}.{os.getpid()}.tmp")
            tmp.mkdir(parents=True, exist_ok=True)
            np.lib.format.open_memmap(tmp / "values.npy", mode="w+", dtype=self.dtype,
                                      shape=(len(self.rows), *self.shape)).flush()
            np.lib.format.open_memmap(tmp / "lengths.npy", mode="w+", dtype=np.int64, shape=(len(self.rows),)).flush()
            try:
                os.rename(tmp, self.folder)
            except OSError:  # another process won the race: use its entry
                shutil.rmtree(tmp, ignore_errors=True)
        return np.lib.format.open_memmap(values, mode="r+"), np.lib.format.open_memmap(lengths, mode="r+")

    def __call__(self, row: dict) -> np.ndarray:
        i = self.slots[self._identity(row)]
        length = int(self.lengths[i])
        if length:
            self.hits += 1
            return np.array(self.values[i, :length])
        self.misses += 1
        value = np.asarray(self.decode(row), dtype=self.dtype)
        self.values[i, : len(value)] = value
        self.lengths[i] = len(value)  # after the values: a length never points at a row not yet written
        return value

    @property
    def complete(self) -> bool:
        return bool(self.lengths.all())


def fits_on_disk(rows: int, shape: tuple[int, ...], itemsize: int, root: Path | None = None) -> tuple[bool, str]:
    """Whether an entry fits: under MAX_ENTRY_BYTES and half the free space of the cache's disk."""
    need = rows * int(np.prod(shape)) * itemsize
    probe = root or cache_root("decoded")
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if need > MAX_ENTRY_BYTES or need > free / 2:
        return False, (f"decoded-input cache skipped: {rows:,} rows need {need / 2**30:.1f} GiB "
                       f"({free / 2**30:.1f} GiB free in {probe}); inputs are decoded every epoch")
    return True, ""


# -------------------------------------------------------------------------------- pictures


def cached_side(size: int, crop_pct: float) -> int:
    """The square a picture is stored at: the evaluation resize target, a little above the training crop."""
    return int(round(size / crop_pct))


class _Square:
    """The evaluation transform's resize, then the ``side`` square whose centre ``size`` crop is exactly the
    evaluation's centre crop (a plain centre crop of the square can sit a pixel off when side - size is odd)."""

    def __init__(self, size: int, crop_pct: float, interpolation: str):

        self.size, self.side, self.interpolation = size, cached_side(size, crop_pct), _interpolation(interpolation)

    def __call__(self, row: dict) -> np.ndarray:

        image = F.resize(F.to_image(open_image(row)), [self.side], interpolation=self.interpolation, antialias=True)
        height, width = image.shape[-2:]
        inner = int(round((self.side - self.size) / 2.0))
        top = min(max(int(round((height - self.size) / 2.0)) - inner, 0), height - self.side)
        left = min(max(int(round((width - self.size) / 2.0)) - inner, 0), width - self.side)
        return F.crop(image, top, left, self.side, self.side).permute(1, 2, 0).numpy()  # HWC: rows on axis 0


class DecodedImages(DecodedRows):
    """Pictures as ``side`` x ``side`` RGB uint8 squares; calling it gives a (3, side, side) uint8 tensor."""

    def __init__(self, rows: list[dict], size: int, crop_pct: float, interpolation: str, root: Path | None = None):
        square = _Square(size, crop_pct, interpolation)
        self.side = square.side
        super().__init__(rows, (square.side, square.side, 3), np.uint8, square,
                         {"kind": "image", "size": size, "interpolation": interpolation}, root)

    def __call__(self, row: dict):

        return torch.from_numpy(super().__call__(row)).permute(2, 0, 1)

    @staticmethod
    def shape_for(size: int, crop_pct: float) -> tuple[int, ...]:
        side = cached_side(size, crop_pct)
        return side, side, 3


# -------------------------------------------------------------------------------- clips


class DecodedClips(DecodedRows):
    """Clips as mono float32 at ``sampling_rate``, cropped to ``max_seconds`` (shorter clips keep their length)."""

    def __init__(self, rows: list[dict], sampling_rate: int, max_seconds: float, root: Path | None = None):

        super().__init__(rows, (int(max_seconds * sampling_rate),), np.float32,
                         lambda row: read_audio(row, sampling_rate, max_seconds),
                         {"kind": "audio", "sampling_rate": sampling_rate, "max_seconds": max_seconds}, root)


def open_decoded(rows: list[dict], shape: tuple[int, ...], itemsize: int, build: Callable[[], DecodedRows]):
    """``build()`` when the entry fits on disk, else None (said at INFO: decoding every epoch still works)."""
    fits, why = fits_on_disk(len(rows), shape, itemsize)
    if not fits:
        log.info(why)
        return None
    return build()
