"""Image classification data: class folders, CSV/JSONL lists, MNIST-style IDX files, Hugging Face datasets.

Every source becomes the same rows: ``image`` = ``{"bytes": ..., "path": ...}`` (one of them set) and an
integer ``label``. Files are checked once before training (opened and fully decoded), so a corrupt,
truncated, empty or unreadable file stops the run up front with its name, or with
``--on-bad-rows skip`` is dropped, counted and reported; training never meets it mid-epoch.
"""

from __future__ import annotations

import gzip
import io
import logging
import re
import struct
from pathlib import Path

import datasets
import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from ..shapes import LabelShape
from .labels import label_columns, raw_label, resolve_labels
from .screen import screen_files
from .splits import LabelledData, finalise_splits, split_of_name
from .tables import TABLE_SUFFIXES, read_table
from .text import LABEL_COLUMN_NAMES, find_split_files, has_split_tables

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
IDX_IMAGES = re.compile(r"^(?P<prefix>.+?)[-_.]images[-_.]idx3[-_.]ubyte(\.gz)?$")
IMAGE_COLUMN_NAMES = ("image", "img", "image_path", "path", "file", "filename", "filepath")


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def is_class_folder_tree(folder: Path) -> bool:
    """A folder of class sub-folders holding images (directly, or under train/val/test folders)."""
    subdirs = _visible_dirs(folder)
    if not subdirs:
        return False
    if all(split_of_name(d.name) for d in subdirs):
        subdirs = [c for d in subdirs for c in _visible_dirs(d)]
    return any(is_image_file(f) for d in subdirs for f in d.iterdir() if f.is_file())


def find_idx_files(folder: Path) -> dict[str, tuple[Path, Path]]:
    """``{split: (images, labels)}`` for ``train-images-idx3-ubyte.gz`` / ``t10k-...`` style pairs."""
    pairs: dict[str, tuple[Path, Path]] = {}
    for images in sorted(folder.iterdir()):
        match = IDX_IMAGES.match(images.name)
        if not match:
            continue
        prefix = match.group("prefix")
        labels = [p for p in folder.iterdir() if p.name.startswith(prefix) and "labels" in p.name and "idx1" in p.name]
        if not labels:
            raise DataError(f"{images}: no matching labels file ({prefix}-labels-idx1-ubyte[.gz]) beside it")
        split = "test" if prefix.lower().startswith(("t10k", "test")) else split_of_name(prefix) or "train"
        if split in pairs:
            raise DataError(f"{folder}: two IDX image files for the {split} split")
        pairs[split] = (images, labels[0])
    return pairs


def read_idx(path: Path) -> np.ndarray:
    """An IDX array (the MNIST format: magic, dimensions, big-endian sizes, raw uint8 data)."""
    raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 8:
        raise DataError(f"{path}: too short for an IDX file ({len(raw)} bytes)")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    expected = int(np.prod(shape))
    if data.size != expected:
        raise DataError(f"{path}: the header promises {shape} = {expected} values but the file holds {data.size} "
                        "(truncated or padded)")
    return data.reshape(shape)


def _png(array: np.ndarray) -> bytes:

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _idx_split(images: Path, labels: Path) -> tuple[list[dict], list[str]]:
    pixels, targets = read_idx(images), read_idx(labels)
    if len(pixels) != len(targets):
        raise DataError(f"{images} holds {len(pixels)} images but {labels} holds {len(targets)} labels")
    return [{"bytes": _png(img), "path": None} for img in pixels], [str(int(t)) for t in targets]


# -------------------------------------------------------------------------------- checking files


WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")  # 16-bit / 32-bit grayscale: scaled, not clipped


def check_image(row: dict) -> tuple[str | None, str | None]:
    """(problem, note) for one image: a problem makes it unusable; a note says what was converted."""

    path = row.get("path")
    try:
        if row.get("bytes") is None:
            file = Path(path)
            if not file.exists():
                return "file not found", None
            if file.stat().st_size == 0:
                return "empty file (0 bytes)", None
            source = file
        else:
            source = io.BytesIO(row["bytes"])
        with Image.open(source) as image:
            image.load()  # full decode: truncated files fail here, not mid-epoch
            note = None
            if getattr(image, "n_frames", 1) > 1:
                note = f"{image.format} with {image.n_frames} frames: the first frame is used"
            elif image.mode in WIDE_MODES:
                note = f"{image.mode} ({'16-bit' if image.mode.startswith('I') else 'float'}) image scaled to 8 bits"
            elif image.mode not in ("RGB", "L"):
                note = f"{image.mode} image converted to RGB"
            if min(image.size) < 1:
                return "image has no pixels", None
    except UnidentifiedImageError:
        return "not an image format Pillow can read", None
    except Image.DecompressionBombError as exc:  # not an OSError: Pillow's guard against decompression bombs
        return (f"too large to decode safely ({exc}); downscale it, or drop it with --on-bad-rows skip"), None
    except (OSError, SyntaxError, ValueError) as exc:
        return f"corrupt or truncated image ({exc})", None
    return None, note


def check_images(rows: list[dict], labels: list[str], split: str, on_bad_rows: str, notes: list[str]):
    """Drop or refuse bad images (``on_bad_rows``); note conversions (CMYK, palette, animated GIF)."""
    keep = screen_files(rows, check_image, split=split, on_bad_rows=on_bad_rows, notes=notes, noun="image",
                        noted="converted")
    return [rows[i] for i in keep], [labels[i] for i in keep]


# -------------------------------------------------------------------------------- sources


def _class_folders(folder: Path, split: str, notes: list[str]) -> tuple[list[dict], list[str]]:
    rows, labels, ignored = [], [], 0
    classes = _visible_dirs(folder)
    if not classes:
        raise DataError(f"{folder}: no class sub-folders (expected {folder}/<class>/<image files>)")
    for class_dir in classes:
        files = sorted(f for f in class_dir.rglob("*") if f.is_file() and not f.name.startswith("."))
        images = [f for f in files if is_image_file(f)]
        ignored += len(files) - len(images)
        if not images:
            if split == "train":
                raise DataError(f"class folder {class_dir} holds no image files: a class needs training examples "
                                "(remove the folder or add images)")
            notes.append(f"{split}: class folder {class_dir} is empty")
            log.warning(notes[-1])
        rows += [{"bytes": None, "path": str(f)} for f in images]
        labels += [class_dir.name] * len(images)
    if ignored:
        notes.append(f"{split}: ignored {ignored} non-image file(s) in {folder} (suffixes: "
                     f"{', '.join(sorted(IMAGE_SUFFIXES))})")
    return rows, labels


def _table_split(path: Path, image_column: str | None, label_column: str | None) -> tuple[list[dict], list[str], dict]:

    table = read_table(path)
    lowered = {c.lower(): c for c in table.columns}
    image_col = image_column or next((lowered[n] for n in IMAGE_COLUMN_NAMES + ("audio", "wav") if n in lowered), None)
    if image_col is None or image_col not in table.columns:
        raise DataError(f"{path}: no image path column (looked for {image_column or ', '.join(IMAGE_COLUMN_NAMES)}; "
                        f"columns: {', '.join(table.columns)}); set --set image_column=NAME")

    label_cols = label_columns(label_column) or [next((lowered[n] for n in LABEL_COLUMN_NAMES if n in lowered), None)]
    absent = next((c for c in label_cols if c is None or c not in table.columns), "")
    if absent != "":
        raise DataError(f"{path}: no label column{f' {absent!r}' if absent else ''} (columns: "
                        f"{', '.join(table.columns)}); set --label-column")
    rows, labels = [], []
    for index, row in enumerate(table.rows):
        label, image = raw_label(row, label_cols), str(row.get(image_col) or "").strip()
        if label == "" or not image:
            raise DataError(f"{table.where(index)}: empty {'label' if label == '' else 'image path'}")
        file = Path(image)
        rows.append({"bytes": None, "path": str(file if file.is_absolute() else path.parent / file)})
        labels.append(label)
    return rows, labels, {"image": image_col, "label": ",".join(label_cols)}


def _hub_splits(name: str, config_name: str | None) -> tuple[dict, dict]:
    """``datasets.load_dataset`` (online users); images kept undecoded and read with Pillow."""

    try:
        loaded = datasets.load_dataset(name, config_name)
    except Exception as exc:  # noqa: BLE001 — offline, unknown id, gated: one clear message
        raise DataError(f"cannot load '{name}' as a local path or a Hugging Face dataset: {exc}") from None
    out, columns = {}, {}
    for split_name, ds in loaded.items():
        split = split_of_name(split_name) or split_name
        image_col = next((c for c, f in ds.features.items() if isinstance(f, datasets.Image)), None)
        label_col = next((c for c, f in ds.features.items() if isinstance(f, datasets.ClassLabel)), None)
        if image_col is None or label_col is None:
            raise DataError(f"{name}: split '{split_name}' needs an Image and a ClassLabel column "
                            f"(features: {', '.join(ds.features)})")
        ds = ds.cast_column(image_col, datasets.Image(decode=False))
        names = ds.features[label_col].names
        out[split] = ([{"bytes": r["bytes"], "path": r["path"]} for r in ds[image_col]],
                      [names[i] for i in ds[label_col]])
        columns = {"image": image_col, "label": label_col}
    return out, columns


def load_image_data(source: str, *, image_column: str | None = None, label_column: str | None = None,
                    val_split: float = 0.1, seed: int = 42, max_train_samples: int | None = None,
                    sample_seed: int | None = None,
                    max_eval_samples: int | None = None, on_bad_rows: str = "error", data_config: str | None = None,
                    shape: LabelShape | None = None, problem: str = "auto", regression_loss: str = "mse",
                    carve_validation: bool = True) -> LabelledData:

    path = Path(source).expanduser()
    notes: list[str] = []
    columns = {"image": "image", "label": "label"}
    splits: dict[str, tuple[list[dict], list[str]]] = {}
    if path.is_dir() and find_idx_files(path):
        for split, (images, labels) in find_idx_files(path).items():
            splits[split] = _idx_split(images, labels)
        columns = {"image": "IDX images", "label": "IDX labels"}
    elif path.is_dir() and is_class_folder_tree(path) and not has_split_tables(path):
        subdirs = _visible_dirs(path)
        if all(split_of_name(d.name) for d in subdirs):
            for d in subdirs:
                splits[split_of_name(d.name)] = _class_folders(d, split_of_name(d.name), notes)
            if "train" not in splits and carve_validation:
                raise DataError(f"{path}: split folders ({', '.join(d.name for d in subdirs)}) but no train/ folder")
        else:
            splits["train"] = _class_folders(path, "train", notes)
    elif path.is_dir():
        for split, file in find_split_files(path).items():
            rows, labels, columns = _table_split(file, image_column, label_column)
            splits[split] = (rows, labels)
    elif path.is_file() and path.suffix.lower() in TABLE_SUFFIXES:
        rows, labels, columns = _table_split(path, image_column, label_column)
        splits["train"] = (rows, labels)
    elif path.exists():
        raise DataError(f"{path}: expected a folder of class folders, IDX files, or a CSV/JSONL list of images")
    elif source.startswith((".", "/", "~")):
        raise DataError(f"{source}: no such file or folder")
    else:
        splits, columns = _hub_splits(source, data_config)

    if columns["image"] != "IDX images":  # IDX pixels were just encoded by us; everything else is checked
        for split, (rows, labels) in list(splits.items()):
            splits[split] = check_images(rows, labels, split, on_bad_rows, notes)
    if shape is None and ("train" not in splits or not splits["train"][0]):
        raise DataError(f"{source}: no training images found")
    if not any(rows for rows, _ in splits.values()):
        raise DataError(f"{source}: no images found")
    shape, encoded = resolve_labels({split: labels for split, (_, labels) in splits.items()}, shape,
                                    where={split: f"{source} [{split}]" for split in splits},
                                    on_bad_rows=on_bad_rows, notes=notes, columns=columns["label"].split(","),
                                    problem=problem, regression_loss=regression_loss)
    columns_by_split = {split: {"image": [splits[split][0][i] for i in kept], "label": values}
                        for split, (kept, values) in encoded.items()}
    return finalise_splits(columns_by_split, shape, source=str(source), columns=columns, notes=notes,
                           val_split=val_split, seed=seed, max_train_samples=max_train_samples,
                           sample_seed=sample_seed,
                           max_eval_samples=max_eval_samples, carve_validation=carve_validation)


def median_short_side(rows: list[dict], limit: int = 200) -> int:
    """The median short side in pixels of up to ``limit`` evenly spread images (read from their headers)."""

    step = max(1, len(rows) // limit)
    sides = []
    for row in rows[::step]:
        try:
            with Image.open(row["path"] if row.get("bytes") is None else io.BytesIO(row["bytes"])) as image:
                sides.append(min(image.size))
        except (OSError, ValueError):
            continue
    return int(np.median(sides)) if sides else 0
