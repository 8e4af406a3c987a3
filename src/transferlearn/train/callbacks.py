"""Trainer callbacks: they record and flip flags; the Hugging Face Trainer owns the loop."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from .. import distributed
from ..errors import RunInterrupted
from ..failpoints import failpoint
from ..io import append_jsonl, apply_file_mode
from ..layout import complete_checkpoints


class HistoryCallback(TrainerCallback):
    """Appends every log event (loss, learning rate, validation metrics) to ``history.jsonl``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.start = time.time()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        now = time.time()  # wall_time as TensorBoard's events carry it: runs and studies line up on one clock
        record = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4),
                  "time_s": round(now - self.start, 2), "wall_time": round(now, 3)}
        record.update({k: v for k, v in logs.items() if isinstance(v, (int, float))})
        append_jsonl(self.path, record)


class TrainingClock(TrainerCallback, ExportableState):
    """Training seconds summed over every process of a run. Its state is saved in each checkpoint's
    ``trainer_state.json`` (with the early-stopping state), so a resumed run adds to what came before."""

    def __init__(self, seconds_before: float = 0.0):
        self.seconds_before = float(seconds_before)
        self._start = time.time()
        self._step = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = time.time()

    def on_step_end(self, args, state, control, **kwargs):
        self._step = state.global_step

    @property
    def seconds(self) -> float:
        return self.seconds_before + (time.time() - self._start)

    def state(self) -> dict:
        # the Trainer asks for this while it writes a checkpoint: weights and optimizer are on disk, the state is not
        failpoint(f"checkpoint-{self._step}")
        return {"args": {"seconds_before": self.seconds}, "attributes": {}}


def raise_if_interrupted(trainer, resumable: bool = True) -> None:
    """After ``trainer.train()``: a SIGINT / SIGTERM that stopped it becomes RunInterrupted, naming the checkpoint
    to resume from. Every trainer of a run calls this, so auto's next candidate does not start. ``resumable``:
    False for the trainers ``--resume`` does not continue (auto's candidates, the probe, the LR finder)."""

    stop = next((c for c in trainer.callback_handler.callbacks if isinstance(c, StopOnSignal)), None)
    if stop is None or stop.received is None:
        return
    complete, _ = complete_checkpoints(Path(trainer.args.output_dir))
    if resumable and complete:
        where = f"{complete[-1].name} is saved in {complete[-1].parent}; continue with the same command plus --resume"
    elif resumable:
        where = "no checkpoint was saved yet"
    else:
        where = "this stage does not resume: run the same command again"
    raise RunInterrupted(f"stopped by {stop.received} at step {trainer.state.global_step}: {where}", stop.received,
                         resumable=resumable and bool(complete))


class CheckpointFileMode(TrainerCallback):
    """Each checkpoint's files get the user's umask (the Trainer's own writes leave some 0600)."""

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and folder.is_dir():
            apply_file_mode(folder)


class StopOnSignal(TrainerCallback):
    """SIGINT (Ctrl-C) or SIGTERM during training: the current step finishes, a checkpoint is saved and training
    stops, so ``--resume`` continues from exactly there. A second signal stops at once (KeyboardInterrupt)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received: str | None = None
        self.step: int | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame):
        if self.received is not None:  # asked twice: do not wait for the step
            self._restore()
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def _restore(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def on_train_begin(self, args, state, control, **kwargs):
        if threading.current_thread() is threading.main_thread():  # signal handlers can only be set there
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}

    def on_step_end(self, args, state, control, **kwargs):
        if distributed.any_rank(self.received is not None):  # every rank stops at the same step
            self.received = self.received or "SIGTERM"
            self.step = state.global_step
            control.should_save = True
            control.should_training_stop = True

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.received is not None:  # stopped mid-epoch: no epoch-end evaluation, and no second save that would
            control.should_evaluate = False  # overwrite the checkpoint with the random state after that evaluation
            control.should_save = False

    def on_train_end(self, args, state, control, **kwargs):
        self._restore()


class Deadline(TrainerCallback):
    """Stops training once the clock passes ``deadline`` (seconds since the epoch): the time budget is a bound, not
    an estimate. The Trainer then loads the best checkpoint so far, as after early stopping."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.hit = False

    def on_step_end(self, args, state, control, **kwargs):
        if distributed.any_rank(time.time() >= self.deadline):  # rank clocks differ: all stop when one is late
            self.hit = True
            control.should_training_stop = True
