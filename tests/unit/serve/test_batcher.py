"""The micro-batcher: an idle model takes a request at once, alone; what queues while it is busy becomes the next
batch; a full queue refuses; one request's bad input fails only that request."""

from __future__ import annotations

import asyncio
import threading

import pytest

from transferlearn.serve.batcher import MicroBatcher, QueueFull


class SlowModel:
    """Records each batch; blocks inside a batch until released, so a test controls what arrives meanwhile."""

    def __init__(self):
        self.batches: list[list] = []
        self.gate = threading.Event()
        self.gate.set()
        self.running = threading.Event()

    def __call__(self, items):
        self.batches.append(list(items))
        self.running.set()
        self.gate.wait(5)
        if any(item == "bad" for item in items):
            raise ValueError("bad input")
        return [f"out:{item}" for item in items]


def run(coro):
    return asyncio.run(coro)


def test_an_idle_batcher_runs_a_request_at_once_alone():
    async def go():
        model = SlowModel()
        batcher = MicroBatcher(model, max_batch=8)
        batcher.start()
        result = await batcher.submit(["a", "b"])
        await batcher.stop()
        return model.batches, result

    batches, result = run(go())
    assert batches == [["a", "b"]] and result == ["out:a", "out:b"]


def test_requests_that_arrive_while_busy_form_the_next_batch_up_to_max_batch():
    async def go():
        model = SlowModel()
        model.gate.clear()
        seen = []
        batcher = MicroBatcher(model, max_batch=4, on_batch=lambda size, waits: seen.append((size, len(waits))))
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(["x"]))
        await asyncio.get_running_loop().run_in_executor(None, model.running.wait, 5)
        later = [asyncio.ensure_future(batcher.submit([f"r{i}"])) for i in range(6)]
        await asyncio.sleep(0.05)
        assert batcher.depth == 6  # queued while the model works
        model.gate.set()
        results = await asyncio.gather(first, *later)
        await batcher.stop()
        return model.batches, results, seen

    batches, results, seen = run(go())
    assert batches == [["x"], ["r0", "r1", "r2", "r3"], ["r4", "r5"]]
    assert results == [["out:x"]] + [[f"out:r{i}"] for i in range(6)]  # each request gets its own results back
    assert seen == [(1, 1), (4, 4), (2, 2)]


def test_a_full_queue_refuses_instead_of_waiting():
    async def go():
        model = SlowModel()
        model.gate.clear()
        batcher = MicroBatcher(model, max_batch=4, max_queue=3)
        batcher.start()
        running = asyncio.ensure_future(batcher.submit(["x"]))
        await asyncio.get_running_loop().run_in_executor(None, model.running.wait, 5)
        queued = asyncio.ensure_future(batcher.submit(["a", "b", "c"]))
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFull, match="3 items are queued"):
            await batcher.submit(["d"])
        model.gate.set()
        await asyncio.gather(running, queued)
        await batcher.stop()

    run(go())


def test_a_bad_input_fails_only_its_own_request():
    async def go():
        model = SlowModel()
        model.gate.clear()
        batcher = MicroBatcher(model, max_batch=8)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(["x"]))
        await asyncio.get_running_loop().run_in_executor(None, model.running.wait, 5)
        good = asyncio.ensure_future(batcher.submit(["ok"]))
        bad = asyncio.ensure_future(batcher.submit(["bad"]))
        await asyncio.sleep(0.01)
        model.gate.set()
        await first
        assert await good == ["out:ok"]
        with pytest.raises(ValueError, match="bad input"):
            await bad
        await batcher.stop()
        return model.batches

    assert run(go())[1:] == [["ok", "bad"], ["ok"], ["bad"]]  # the mixed batch failed, then each ran alone
