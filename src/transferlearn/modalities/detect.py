"""``task: auto``: which modality a data source holds."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

from ..config import TrainConfig
from ..errors import ConfigError
from .base import MODALITIES, Modality


def _holds_audio(folder: Path) -> bool:
    """Audio files directly, in class folders, or under ``audio/`` (Speech Commands layout)."""
    from ..data.audio import is_audio_file

    return any(is_audio_file(p) for p in islice(folder.rglob("*"), 2000))


def _is_media_table(path: Path, audio: bool = False) -> bool:
    from ..data.audio import is_audio_file
    from ..data.images import is_image_file
    from ..data.tables import read_table

    is_media = is_audio_file if audio else is_image_file
    try:
        table = read_table(path)
    except Exception:  # noqa: BLE001 — not a readable table: the text loader reports why
        return False
    sample = table.rows[:20]
    return bool(sample) and any(all(is_media(Path(str(row.get(c) or ""))) for row in sample)
                                for c in table.columns)


def detect_modality(config: TrainConfig) -> Modality:
    """Class folders of images, IDX files, or tables listing image files are images; folders of clips or tables
    listing clips are audio; other tables, folders of tables and Hub ids are text."""
    from ..data.images import find_idx_files, is_class_folder_tree
    from ..data.tables import TABLE_SUFFIXES

    if config.task != "auto":
        return MODALITIES[config.task]
    path = Path(config.data)
    if path.is_dir() and (find_idx_files(path) or is_class_folder_tree(path)):
        return MODALITIES["image"]
    if path.is_dir() and _holds_audio(path):
        return MODALITIES["audio"]
    tables = ([path] if path.is_file() else
              sorted(p for p in path.iterdir() if p.suffix.lower() in TABLE_SUFFIXES) if path.is_dir() else [])
    if tables and _is_media_table(tables[0]):
        return MODALITIES["image"]
    if tables and _is_media_table(tables[0], audio=True):
        return MODALITIES["audio"]
    if path.is_dir() and not tables and any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir()):
        raise ConfigError(
            f"{path} holds sub-folders but no train/valid/test tables, no images and no audio files; give a "
            "CSV/TSV/JSONL file, a folder with train.* files, or class folders of images or audio"
        )
    return MODALITIES["text"]
