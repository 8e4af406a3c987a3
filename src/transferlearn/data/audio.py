"""Audio classification data: class folders, flat folders labelled by a file-name regex, CSV/JSONL lists,
Speech-Commands-style split lists, and Hugging Face datasets; group-aware splits (e.g. by speaker).

Rows are ``audio`` = ``{"bytes", "path"}`` + integer ``label`` (+ ``group`` when asked). Every file is read
once before training with soundfile (WAV/FLAC/OGG, any bit depth, any channel count), so an unreadable,
empty or truncated file stops the run with its name, or is skipped and reported with ``--on-bad-rows
skip``. Decoding for training mixes to mono and resamples with soxr (:func:`read_audio`).
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import datasets
import numpy as np
import soundfile as sf
import soxr
import torch

from ..errors import DataError
from ..shapes import LabelShape
from .labels import resolve_labels
from .screen import screen_files
from .splits import LabelledData, finalise_splits, label_tensor, split_of_name, stratified_indices
from .tables import TABLE_SUFFIXES
from .text import has_split_tables

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au"}
AUDIO_COLUMN_NAMES = ("audio", "path", "file", "filename", "filepath", "wav")
SPLIT_LISTS = {"validation": "validation_list.txt", "test": "testing_list.txt"}


def is_audio_file(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_SUFFIXES


def read_audio(audio: dict | str | Path, sampling_rate: int, max_seconds: float | None = None) -> np.ndarray:
    """Mono float32 at ``sampling_rate`` (soundfile decodes; soxr resamples), cropped to ``max_seconds``."""

    if isinstance(audio, dict):
        source = io.BytesIO(audio["bytes"]) if audio.get("bytes") is not None else audio["path"]
    elif isinstance(audio, (bytes, bytearray)):
        source = io.BytesIO(audio)
    else:
        source = str(audio)
    samples, rate = sf.read(source, dtype="float32", always_2d=True)
    samples = samples.mean(axis=1)  # stereo / multichannel -> mono
    if rate != sampling_rate:
        samples = soxr.resample(samples, rate, sampling_rate).astype(np.float32)
    if max_seconds:
        samples = samples[: int(max_seconds * sampling_rate)]
    return samples


def check_audio(row: dict) -> tuple[str | None, str | None]:
    """(problem, note) for one clip: a problem makes it unusable; a note flags what may surprise."""

    try:
        if row.get("bytes") is None:
            file = Path(row["path"])
            if not file.exists():
                return "file not found", None
            if file.stat().st_size == 0:
                return "empty file (0 bytes)", None
            source = str(file)
        else:
            source = io.BytesIO(row["bytes"])
        samples, rate = sf.read(source, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as exc:
        return f"unreadable or unsupported audio ({exc})", None
    if len(samples) == 0:
        return "zero-length clip (no samples)", None
    if not np.any(samples):
        return None, "silent clip (all samples are zero)"
    if len(samples) / rate > 60:
        return None, f"long clip ({len(samples) / rate:.0f} s): cropped to max_duration"
    return None, None


def check_clips(rows: list[dict], labels: list[str], groups: list, split: str, on_bad_rows: str, notes: list[str]):
    keep = screen_files(rows, check_audio, split=split, on_bad_rows=on_bad_rows, notes=notes, noun="audio file",
                        noted="flagged")
    return [rows[i] for i in keep], [labels[i] for i in keep], [groups[i] for i in keep]


def clip_seconds(rows: list[dict], limit: int = 5000) -> list[float]:
    """Durations of (up to ``limit``, evenly spread) clips, from their headers where they are files."""

    step = max(1, len(rows) // limit)
    out = []
    for row in rows[::step]:
        try:
            info = sf.info(row["path"] if row.get("bytes") is None else io.BytesIO(row["bytes"]))
        except (sf.LibsndfileError, RuntimeError, ValueError, OSError):
            continue
        out.append(info.frames / info.samplerate)
    return out


def collate_features(rows: list[dict]) -> dict:
    """Stack fixed-size audio features (every clip is cropped / padded to the same length) and the labels."""

    batch = {k: torch.stack([torch.as_tensor(r[k]) for r in rows]) for k in rows[0] if k not in ("label", "labels")}
    batch["labels"] = label_tensor([r["label"] for r in rows])
    return batch


def _regex(pattern: str | None, what: str):
    if pattern is None:
        return None
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise DataError(f"--{what}-from-filename '{pattern}' is not a valid regular expression: {exc}") from None
    if compiled.groups < 1:
        raise DataError(f"--{what}-from-filename '{pattern}' needs a capture group, e.g. '^(\\d+)_'")
    return compiled


def _from_name(regex, file: Path, what: str) -> str:
    match = regex.search(file.name)
    if match is None:
        raise DataError(f"{file}: the file name does not match --{what}-from-filename '{regex.pattern}'")
    return match.group(1)


def _files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.rglob("*") if f.is_file() and is_audio_file(f) and not f.name.startswith("."))


def load_audio_data(source: str, *, audio_column: str | None = None, label_column: str | None = None,
                    label_from_filename: str | None = None, group_from_filename: str | None = None,
                    val_split: float = 0.1, seed: int = 42, max_train_samples: int | None = None,
                    sample_seed: int | None = None,
                    max_eval_samples: int | None = None, on_bad_rows: str = "error", data_config: str | None = None,
                    shape: LabelShape | None = None, problem: str = "auto", regression_loss: str = "mse",
                    carve_validation: bool = True) -> LabelledData:
    path = Path(source).expanduser()
    label_re, group_re = _regex(label_from_filename, "label"), _regex(group_from_filename, "group")
    notes: list[str] = []
    splits: dict[str, tuple[list, list, list]] = {}
    label_cols = ["label"]

    def add(split: str, file: Path, label: str) -> None:
        rows, labels, groups = splits.setdefault(split, ([], [], []))
        rows.append({"bytes": None, "path": str(file)})
        labels.append(label)
        groups.append(_from_name(group_re, file, "group") if group_re else None)

    tables_only = path.is_dir() and (has_split_tables(path) or (
        not _files(path) and any(p.suffix.lower() in TABLE_SUFFIXES for p in path.iterdir())))
    if tables_only:  # a folder of train.csv / valid.csv / test.csv lists
        from .images import _table_split
        from .text import find_split_files

        for split, file in find_split_files(path).items():
            rows, labels, found = _table_split(file, audio_column, label_column)
            label_cols = found["label"].split(",")
            for row, label in zip(rows, labels, strict=True):
                add(split, Path(row["path"]), label)
    elif path.is_dir():
        lists = {s: path / name for s, name in SPLIT_LISTS.items() if (path / name).exists()}
        listed = {}
        for split, file in lists.items():
            for line in file.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    listed[line.strip()] = split
        root = path / "audio" if (path / "audio").is_dir() and not label_re else path
        for file in _files(root):
            relative = file.relative_to(root).as_posix()
            if label_re:
                label = _from_name(label_re, file, "label")
            elif file.parent != root:
                label = file.relative_to(root).parts[-2]
            else:
                raise DataError(f"{file}: no class folder and no --label-from-filename to read its label from")
            split = listed.get(relative)
            parts = file.relative_to(root).parts
            if split is None and len(parts) > 2 and split_of_name(parts[0]):
                split = split_of_name(parts[0])
            add(split or "train", file, label)
        if lists:
            notes.append(f"split lists: {', '.join(f.name for f in lists.values())}")
    elif path.is_file():
        from .images import _table_split

        rows, labels, found = _table_split(path, audio_column, label_column)
        label_cols = found["label"].split(",")
        for row, label in zip(rows, labels, strict=True):
            add("train", Path(row["path"]), label)
    elif source.startswith((".", "/", "~")):
        raise DataError(f"{source}: no such file or folder")
    else:
        splits = _hub_audio(source, data_config)
    if shape is None and ("train" not in splits or not splits["train"][0]):
        raise DataError(f"{source}: no training audio files found (suffixes: {', '.join(sorted(AUDIO_SUFFIXES))})")
    if not splits:
        raise DataError(f"{source}: no audio files found (suffixes: {', '.join(sorted(AUDIO_SUFFIXES))})")
    for split, (rows, labels, groups) in list(splits.items()):
        splits[split] = check_clips(rows, labels, groups, split, on_bad_rows, notes)

    if group_re and carve_validation and "validation" not in splits:
        _group_split(splits, "validation", val_split, seed, notes)
    shape, encoded = resolve_labels({split: labels for split, (_, labels, _) in splits.items()}, shape,
                                    where={split: f"{source} [{split}]" for split in splits},
                                    on_bad_rows=on_bad_rows, notes=notes, columns=label_cols, problem=problem,
                                    regression_loss=regression_loss)
    columns_by_split = {}
    for split, (kept, values) in encoded.items():
        rows, _, groups = splits[split]
        columns_by_split[split] = {"audio": [rows[i] for i in kept], "label": values}
        if group_re:
            columns_by_split[split]["group"] = [groups[i] for i in kept]
    return finalise_splits(columns_by_split, shape, source=str(source),
                           columns={"audio": "audio", "label": ",".join(label_cols)}, notes=notes, val_split=val_split,
                           seed=seed, max_train_samples=max_train_samples, sample_seed=sample_seed,
                           max_eval_samples=max_eval_samples, carve_validation=carve_validation)


def _group_split(splits: dict, name: str, fraction: float, seed: int, notes: list[str]) -> None:
    """Move whole groups (speakers) out of train, so none sits on both sides."""
    rows, labels, groups = splits["train"]
    unique = sorted(set(groups))
    if len(unique) < 2:
        raise DataError(f"--group-from-filename found {len(unique)} group(s): a group-aware split needs at least 2")
    rng = np.random.default_rng(seed)
    held = set(rng.permutation(unique)[: max(1, int(round(len(unique) * fraction)))].tolist())
    keep = [i for i, g in enumerate(groups) if g not in held]
    out = [i for i, g in enumerate(groups) if g in held]
    splits["train"] = ([rows[i] for i in keep], [labels[i] for i in keep], [groups[i] for i in keep])
    splits[name] = ([rows[i] for i in out], [labels[i] for i in out], [groups[i] for i in out])
    notes.append(f"group-aware {name} split: groups {', '.join(sorted(held))} held out ({len(out)} clips)")


def _hub_audio(name: str, config_name: str | None) -> dict:
    """``datasets.load_dataset`` (online users): Audio(decode=False) — decoding would need torchcodec."""

    try:
        loaded = datasets.load_dataset(name, config_name)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot load '{name}' as a local path or a Hugging Face dataset: {exc}") from None
    out = {}
    for split_name, ds in loaded.items():
        audio_col = next((c for c, f in ds.features.items() if isinstance(f, datasets.Audio)), None)
        label_col = next((c for c, f in ds.features.items() if isinstance(f, datasets.ClassLabel)), None)
        if audio_col is None or label_col is None:
            raise DataError(f"{name}: split '{split_name}' needs an Audio and a ClassLabel column")
        ds = ds.cast_column(audio_col, datasets.Audio(decode=False))
        names = ds.features[label_col].names
        out[split_of_name(split_name) or split_name] = (
            [{"bytes": r["bytes"], "path": r["path"]} for r in ds[audio_col]], [names[i] for i in ds[label_col]],
            [None] * len(ds))
    return out


__all__ = ["load_audio_data", "read_audio", "stratified_indices"]
