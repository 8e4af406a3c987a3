"""Adaptive micro-batching that adds no latency at low load (Triton's dynamic batcher without a delay).

One worker thread runs the model. A request that finds it idle runs at once, alone. Requests that arrive while a
batch is running wait in a bounded queue and all go into the next batch (up to ``max_batch`` items), so under load
the batches grow by themselves and nobody ever waits for a batch to fill. Past ``max_queue`` queued items a request
is refused (the server answers 503 with Retry-After) instead of waiting without bound.
"""

from __future__ import annotations

import asyncio
import collections
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable


class QueueFull(Exception):
    """More items are queued than ``max_queue``: refuse now rather than answer late."""


@dataclass
class _Pending:
    items: list
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """``await batcher.submit(items)`` -> one result per item, computed by ``run_batch(all items of a batch)``.

    ``on_batch(size, waits)`` is told each batch's size and its requests' queue waits (for the metrics)."""

    def __init__(self, run_batch: Callable[[list], list], *, max_batch: int = 32, max_queue: int = 256,
                 on_batch: Callable[[int, list[float]], None] | None = None):
        self.run_batch, self.max_batch, self.max_queue = run_batch, max_batch, max_queue
        self.on_batch = on_batch or (lambda size, waits: None)
        self._queue: collections.deque[_Pending] = collections.deque()
        self._queued_items = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tl-model")
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None

    @property
    def depth(self) -> int:
        """Items waiting (not counting the batch that is running)."""
        return self._queued_items

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)

    async def submit(self, items: list) -> list:
        if self._queued_items + len(items) > self.max_queue:
            raise QueueFull(f"{self._queued_items} items are queued (limit {self.max_queue})")
        pending = _Pending(list(items), asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        self._queued_items += len(items)
        self._wakeup.set()
        try:
            return await pending.future
        except asyncio.CancelledError:  # the client gave up (timeout, disconnect): its items need not run
            if pending in self._queue:
                self._queue.remove(pending)
                self._queued_items -= len(pending.items)
            raise

    def _next_batch(self) -> list[_Pending]:
        """Everything queued, oldest first, up to max_batch items (a bigger request goes alone: the model
        splits it into its own batches)."""
        batch, size = [], 0
        while self._queue and (not batch or size + len(self._queue[0].items) <= self.max_batch):
            pending = self._queue.popleft()
            self._queued_items -= len(pending.items)
            batch.append(pending)
            size += len(pending.items)
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch = [p for p in self._next_batch() if not p.future.done()]
                if not batch:
                    continue
                items = [item for p in batch for item in p.items]
                now = time.perf_counter()
                self.on_batch(len(items), [now - p.enqueued for p in batch])
                try:
                    results = await loop.run_in_executor(self._executor, self.run_batch, items)
                except Exception as exc:  # noqa: BLE001 — the worker lives on
                    if len(batch) == 1:
                        batch[0].future.done() or batch[0].future.set_exception(exc)
                        continue
                    # one request's bad input must not fail the others it was batched with: each runs alone
                    for p in batch:
                        try:
                            result = await loop.run_in_executor(self._executor, self.run_batch, p.items)
                        except Exception as alone:  # noqa: BLE001
                            p.future.done() or p.future.set_exception(alone)
                        else:
                            p.future.done() or p.future.set_result(result)
                    continue
                start = 0
                for p in batch:
                    if not p.future.done():
                        p.future.set_result(results[start : start + len(p.items)])
                    start += len(p.items)
