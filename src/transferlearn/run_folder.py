"""A run folder's life around training, beside :mod:`transferlearn.layout` (which names its paths): preparing it
without clobbering anything, the resume checks, trimming a killed process's history, the free-space check, and
cleaning up after a failed start. Nothing here trains."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from pathlib import Path

from .config import TrainConfig, fields_where, load_config
from .errors import ConfigError
from .io import atomic_write_bytes, atomic_write_text
from .layout import RunLayout, SetAside, complete_checkpoints

log = logging.getLogger(__name__)


def last_checkpoint(layout: RunLayout) -> str | None:
    """The newest complete checkpoint; one cut off while it was written is skipped (and said so)."""
    if not layout.checkpoints.is_dir():
        return None
    complete, incomplete = complete_checkpoints(layout.checkpoints)
    newer = [p for p in incomplete if not complete or int(p.name.split("-")[-1]) > int(complete[-1].name.split("-")[-1])]
    if newer:
        log.warning("--resume: %s is incomplete (cut off while being written): skipped%s", ", ".join(p.name for p in newer),
                    f"; resuming from {complete[-1].name}" if complete else "")
    return str(complete[-1]) if complete else None


def check_resume(config: TrainConfig, layout: RunLayout) -> None:
    """--resume continues the run its checkpoints come from: a changed training setting is refused, named. What may
    change is marked on the config's fields (``resume_may_change``)."""
    if not layout.config.exists() or config.resume_with_changes:
        return
    saved = load_config(layout.config).model_dump()
    asked = config.model_dump()
    may_change = fields_where("resume")
    changed = [f"{k}: {saved[k]!r} -> {asked[k]!r}" for k in saved if k not in may_change
               and saved.get(k) != asked.get(k)]
    if changed:
        raise ConfigError(f"--resume: {'; '.join(changed)} differ from {layout.config}, which the checkpoints were "
                          "trained with. Drop the changed flags to continue the same run, pass "
                          "--resume-with-changes to continue anyway, or start a new run in another --output.")


def trim_history(layout: RunLayout, checkpoint: str) -> None:
    """A resumed run logs again from its checkpoint's step: drop what the killed process logged after it."""
    if not layout.history.exists():
        return
    step = int(Path(checkpoint).name.split("-")[-1])
    lines = [line for line in layout.history.read_text(encoding="utf-8").splitlines() if line.strip()]
    # records after the checkpoint's step go, and so does the closing summary of a process that had finished training
    # (killed while writing model/ or the report): the resumed process writes its own
    kept = [line for line in lines if json.loads(line).get("step", 0) <= step and "train_runtime" not in json.loads(line)]
    if len(kept) != len(lines):
        atomic_write_text(layout.history, "".join(line + "\n" for line in kept))


def prepare_run_dir(layout: RunLayout, *, overwrite: bool, resume: bool, force: bool = False) -> SetAside | None:
    """Never clobber an earlier run by accident: an existing run folder needs --overwrite or --resume, and a
    folder that is not a run but holds names a run writes (``model/``, ``report.html``, ...) needs --force.
    What is replaced is only set aside (returned): the caller deletes it once the new run has succeeded."""
    if layout.root.exists() and not layout.root.is_dir():
        raise ConfigError(f"--output {layout.root} is a file, not a folder")
    present = layout.owned_present() if layout.root.exists() else []
    if present and not layout.is_run() and not force:
        raise ConfigError(f"--output {layout.root} is not a run folder (no config.yaml) but holds "
                          f"{', '.join(p.name for p in present)}, which a run would write over. Choose a new or "
                          "empty folder, or pass --force to replace them.")
    existing = layout.markers() if present else []
    if existing and layout.is_run() and not (overwrite or resume):
        raise ConfigError(f"{layout.root} already holds a run ({', '.join(existing)}). Use --resume to continue it, "
                          "--overwrite to replace it, or another --output.")
    try:  # a read-only or full disk fails now, with a clear message, not after the first epoch
        layout.root.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(layout.root / ".tl-write-check", b"ok")
        (layout.root / ".tl-write-check").unlink()
    except OSError as exc:
        raise ConfigError(f"--output {layout.root} cannot be written to ({exc.strerror or exc}). Choose a folder "
                          "on a writable disk with free space.") from None
    if present and (overwrite or force) and not resume:
        return layout.set_aside()
    return None


def prepare_folder(config: TrainConfig, layout: RunLayout) -> SetAside | None:
    """:func:`prepare_run_dir` for ``config``, then the half-written files of a killed process go (never read)."""
    replaced = prepare_run_dir(layout, overwrite=config.overwrite, resume=config.resume, force=config.force)
    for leftover in layout.temporaries():
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    return replaced


def checkpoint_folders(layout: RunLayout) -> tuple[Path, ...]:
    """Every folder a run writes checkpoints into: its own, a preliminary probe's and auto's candidates'."""
    return layout.checkpoints, layout.probe / "checkpoints", layout.auto / "checkpoints"


def has_checkpoints(layout: RunLayout) -> bool:
    return any(complete_checkpoints(folder)[0] for folder in checkpoint_folders(layout) if folder.is_dir())


def remove_checkpoints(layout: RunLayout) -> None:
    for folder in checkpoint_folders(layout):
        shutil.rmtree(folder, ignore_errors=True)


def remove_failed_start(layout: RunLayout, fresh: bool) -> None:
    """A new run that failed before its first checkpoint leaves nothing behind (only what the layout owns)."""
    layout.clear()
    if fresh:
        with contextlib.suppress(OSError):
            layout.root.rmdir()  # only if empty: nothing of the user's is removed


def check_free_space(layout: RunLayout, parameters: int | None, config: TrainConfig) -> None:
    """Refuse to start when the disk cannot hold the final model and the checkpoints (weights + AdamW's two
    moments, fp32) the run keeps: better now than a full disk after an hour of training."""
    if not parameters:
        return
    kept = (config.save_total_limit or 2) + 1  # the Trainer may write the next before removing the oldest
    needed = parameters * 4 * (1 + 3 * kept)
    free = shutil.disk_usage(layout.root).free
    if free < needed:
        raise ConfigError(f"--output {layout.root}: the disk has {free / 2**20:.0f} MiB free, and this run needs about "
                          f"{needed / 2**20:.0f} MiB ({parameters:,} parameters: the model plus {kept} checkpoints). "
                          "Free some space, write to another disk, or lower --save-total-limit.")
