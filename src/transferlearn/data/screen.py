"""Checking every media file once before training (images, audio): refuse or drop the unusable ones by name,
and note what was converted or looks odd. Shared by the image and audio loaders."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from ..errors import DataError

log = logging.getLogger(__name__)


def screen_files(rows: list[dict], check: Callable[[dict], tuple[str | None, str | None]], *, split: str,
                 on_bad_rows: str, notes: list[str], noun: str, noted: str) -> list[int]:
    """Indices of the usable rows. ``check(row) -> (problem, note)``; a problem stops the run (``on_bad_rows``
    = error) or drops the row (skip), both naming the file; notes (``noted``: converted, flagged) are reported."""
    with ThreadPoolExecutor(max_workers=4) as pool:  # Pillow and libsndfile decode without holding the GIL
        results = list(pool.map(check, rows))
    where = [row.get("path") or f"{split} row {i + 1}" for i, row in enumerate(rows)]
    flagged = [(w, note) for w, (_, note) in zip(where, results, strict=True) if note]
    if flagged:
        shown = "; ".join(f"{w}: {n}" for w, n in flagged[:3]) + (" ..." if len(flagged) > 3 else "")
        notes.append(f"{split}: {len(flagged)} {noun}(s) {noted}: {shown}")
        log.warning(notes[-1])
    bad = [(w, problem) for w, (problem, _) in zip(where, results, strict=True) if problem]
    if bad:
        listing = "\n".join(f"  {w}: {p}" for w, p in bad[:10]) + (f"\n  ... and {len(bad) - 10} more" if len(bad) > 10 else "")
        if on_bad_rows == "error":
            raise DataError(f"{len(bad)} unusable {noun}(s) in the {split} split:\n{listing}\n"
                            "Fix or remove them, or pass --on-bad-rows skip to train without them.")
        notes.append(f"{split}: skipped {len(bad)} unusable {noun}(s): " + "; ".join(f"{w} ({p})" for w, p in bad[:5]))
        log.warning(notes[-1])
    return [i for i, (problem, _) in enumerate(results) if not problem]
