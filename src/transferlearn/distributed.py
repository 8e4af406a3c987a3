"""One run on many processes (``torchrun``, ``accelerate launch``): which process this is, and the few agreements
the engine needs on top of the Trainer's own DDP.

The Hugging Face Trainer (through Accelerate) already shards batches, averages gradients and gathers evaluation
predictions. What it does not know about are the engine's own decisions and files, so:

- only rank 0 writes the run folder (:func:`on_main` runs a step there and hands its error, if any, to every rank
  so none waits on a process that failed);
- a decision taken from a clock or a measurement (the time budget, ``auto``'s candidates, the LR finder's
  suggestion, a received signal) is rank 0's, sent to every rank (:func:`agree`, :func:`any_rank`), so no rank
  trains a step the others skip;
- what all ranks need once (a feature-cache entry) is computed in shards, one per rank, and joined by rank 0
  (train/feature_cache.py).

Every function is a no-op in a single process, so the engine calls them unconditionally.
"""

from __future__ import annotations

import os


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_distributed() -> bool:
    return world_size() > 1


def is_main() -> bool:
    return rank() == 0


def init(cpu: bool) -> None:
    """The process group, set up as the Trainer's arguments would (Accelerate's PartialState: gloo on CPU, NCCL on
    GPU), so the engine can agree on things before its first Trainer exists. Idempotent."""
    if is_distributed():
        from accelerate import PartialState

        PartialState(cpu=cpu)


def _group_ready() -> bool:
    if not is_distributed():
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def barrier() -> None:
    if _group_ready():
        import torch.distributed as dist

        dist.barrier()


def agree(value):
    """Rank 0's ``value`` on every rank (any picklable object)."""
    if not _group_ready():
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on at least one (a deadline or a signal seen by any process)."""
    if not _group_ready():
        return flag
    import torch
    import torch.distributed as dist

    device = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"
    value = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def on_main(step, *args, **kwargs):
    """``step(*args, **kwargs)`` on rank 0 only; its result there (None elsewhere). An error raised by it is raised
    on every rank, so the others stop with the same message instead of waiting for a rank that is gone."""
    if not _group_ready():
        return step(*args, **kwargs)
    result, error = None, None
    if is_main():
        try:
            result = step(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 — handed to every rank, then raised
            error = exc
    error = agree(error)
    if error is not None:
        raise error
    return result
