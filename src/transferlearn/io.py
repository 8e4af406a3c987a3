"""Atomic file writes: a crash or a full disk never leaves a half-written file behind."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .failpoints import failpoint


def cache_root(kind: str = "") -> Path:
    """``$TL_CACHE_DIR/<kind>`` (default ``~/.cache/transferlearn``): converted offline models, cached features,
    decoded pictures. One place, so one variable moves all of them."""
    root = Path(os.environ.get("TL_CACHE_DIR", Path.home() / ".cache" / "transferlearn")).expanduser()
    return root / kind if kind else root


def stable_identity(value):
    """JSON-able identity of a stored input: a file referenced by path counts with its size and mtime, inline bytes
    by their SHA-256, anything else as it is. Cache keys (features, decoded pictures) are built from it."""
    import hashlib

    if isinstance(value, dict) and value.get("path") and value.get("bytes") is None:
        try:
            stat = os.stat(value["path"])
            return {"path": value["path"], "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        except OSError:
            return {"path": value["path"]}
    if isinstance(value, dict) and value.get("bytes") is not None:
        return {"sha256": hashlib.sha256(value["bytes"]).hexdigest()}
    return value


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it, so it is put straight back
    os.umask(mask)
    return mask


# mkstemp creates 0600 files; a run folder's files get the modes the user's umask gives any new file (0644 at 022)
FILE_MODE = 0o666 & ~_umask()


def apply_file_mode(folder: str | os.PathLike) -> None:
    """Give every file under ``folder`` the umask's mode: libraries that write through their own temporary files
    (safetensors via transformers, the Trainer's checkpoints) leave them 0600."""
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.chmod(path, FILE_MODE)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            failpoint(f"write:{path.name}")  # tests kill the process here: the file is half-way, not replaced
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays show up in metrics; keep them readable.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one line; a line is small enough that the append is atomic in practice."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False, default=_json_default) + "\n")
