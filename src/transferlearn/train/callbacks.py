"""Trainer callbacks: they record and flip flags; the Hugging Face Trainer owns the loop."""

from __future__ import annotations

import time
from pathlib import Path

from transformers import TrainerCallback

from ..io import append_jsonl


class HistoryCallback(TrainerCallback):
    """Appends every log event (loss, learning rate, validation metrics) to ``history.jsonl``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.start = time.time()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        record = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4),
                  "time_s": round(time.time() - self.start, 2)}
        record.update({k: v for k, v in logs.items() if isinstance(v, (int, float))})
        append_jsonl(self.path, record)
