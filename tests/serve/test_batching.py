"""The micro-batcher of `glassnet serve` on its own: pure asyncio, a fake forward pass, no HTTP.

Requests that arrive within ``max_wait_ms`` share one call of ``forward``; each caller gets back the
slice of the results for its own examples; ``max_batch`` bounds a pass; examples of different shapes
never share one; a failing pass fails only the requests in it; a full queue refuses at once; ``stop``
answers what was already queued.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import torch

from glassnet.serve.batching import MicroBatcher, QueueFull

ANSWER_S = 5.0  # no batcher test may hang: every await of an answer is bounded


class FakeForward:
    """Records each batch it is called with; answers each example's first value times ten (a float),
    so that a caller can tell its answers from anyone else's."""

    def __init__(self, delay_s: float = 0.0, fail_when: Callable[[torch.Tensor], bool] | None = None) -> None:
        self.calls: list[torch.Tensor] = []
        self.delay_s, self.fail_when = delay_s, fail_when
        self.gate: threading.Event | None = None
        self.lock = threading.Lock()

    def __call__(self, inputs: torch.Tensor) -> list[float]:
        with self.lock:
            self.calls.append(inputs.clone())
        if self.gate is not None:
            assert self.gate.wait(ANSWER_S), "the test never opened the gate of the fake forward"
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail_when is not None and self.fail_when(inputs):
            raise ValueError(f"fake forward refuses a batch of {len(inputs)}")
        return [float(v) * 10 for v in inputs.reshape(len(inputs), -1)[:, 0]]

    @property
    def sizes(self) -> list[int]:
        return [len(c) for c in self.calls]


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 30))


def examples(*values: float, width: int = 3) -> torch.Tensor:
    """One example per value, each ``width`` numbers starting with it."""
    return torch.tensor([[v] + [0.0] * (width - 1) for v in values])


async def started(forward: FakeForward, **options: Any) -> MicroBatcher:
    batcher = MicroBatcher(forward, **options)
    batcher.start()
    return batcher


def test_concurrent_submits_within_max_wait_share_one_forward_pass():
    async def scenario() -> None:
        forward = FakeForward()
        batcher = await started(forward, max_batch=64, max_wait_ms=100)
        answers = await asyncio.wait_for(asyncio.gather(*(batcher.submit(examples(i)) for i in range(10))), ANSWER_S)
        assert forward.sizes == [10]
        assert batcher.batches == 1
        assert answers == [[i * 10.0] for i in range(10)]
        await batcher.stop()

    run(scenario())


def test_each_caller_gets_the_answers_for_its_own_examples():
    async def scenario() -> None:
        forward = FakeForward()
        batcher = await started(forward, max_batch=64, max_wait_ms=50)
        requests = [examples(1, 2, 3), examples(4), examples(5, 6), examples(7, 8, 9, 10)]
        answers = await asyncio.wait_for(asyncio.gather(*(batcher.submit(r) for r in requests)), ANSWER_S)
        assert answers == [[10.0, 20.0, 30.0], [40.0], [50.0, 60.0], [70.0, 80.0, 90.0, 100.0]]
        assert sum(forward.sizes) == 10 and len(forward.calls) < len(requests)
        await batcher.stop()

    run(scenario())


def test_one_request_answers_at_once_after_max_wait():
    async def scenario() -> None:
        forward = FakeForward()
        batcher = await started(forward, max_batch=64, max_wait_ms=20)
        begun = time.perf_counter()
        assert await asyncio.wait_for(batcher.submit(examples(3)), ANSWER_S) == [30.0]
        assert time.perf_counter() - begun < 2.0
        await batcher.stop()

    run(scenario())


def test_max_batch_bounds_every_forward_pass_of_single_examples():
    async def scenario() -> None:
        forward = FakeForward()
        batcher = await started(forward, max_batch=4, max_wait_ms=100)
        answers = await asyncio.wait_for(asyncio.gather(*(batcher.submit(examples(i)) for i in range(10))), ANSWER_S)
        assert answers == [[i * 10.0] for i in range(10)]
        assert max(forward.sizes) <= 4 and sum(forward.sizes) == 10
        assert len(forward.calls) >= 3
        await batcher.stop()

    run(scenario())


def test_max_batch_bounds_a_pass_joined_from_requests_of_several_examples():
    """Two requests of 3 examples under max_batch 4 must not be joined into a pass of 6."""

    async def scenario() -> None:
        forward = FakeForward()
        batcher = await started(forward, max_batch=4, max_wait_ms=100)
        requests = [examples(3 * i + 1, 3 * i + 2, 3 * i + 3) for i in range(4)]
        answers = await asyncio.wait_for(asyncio.gather(*(batcher.submit(r) for r in requests)), ANSWER_S)
        assert answers == [[(3 * i + k) * 10.0 for k in (1, 2, 3)] for i in range(4)]
        assert max(forward.sizes) <= 4, f"forward passes of {forward.sizes} examples with max_batch 4"
        await batcher.stop()

    run(scenario())


def test_a_request_larger_than_max_batch_runs_alone():
    async def scenario() -> None:
        forward = FakeForward()
        batcher = await started(forward, max_batch=4, max_wait_ms=50)
        big = examples(*range(10))
        answers = await asyncio.wait_for(asyncio.gather(batcher.submit(big), batcher.submit(examples(99))), ANSWER_S)
        assert answers == [[i * 10.0 for i in range(10)], [990.0]]
        assert sorted(forward.sizes) == [1, 10]
        await batcher.stop()

    run(scenario())


def test_examples_of_different_shapes_or_types_never_share_a_pass():
    async def scenario() -> None:
        forward = FakeForward()
        batcher = await started(forward, max_batch=64, max_wait_ms=100)
        requests = [
            examples(1, width=3),
            examples(2, width=5),
            examples(3, width=3),
            examples(4, width=5),
            examples(5, width=3).to(torch.int64),
        ]
        answers = await asyncio.wait_for(asyncio.gather(*(batcher.submit(r) for r in requests)), ANSWER_S)
        assert answers == [[10.0], [20.0], [30.0], [40.0], [50.0]]
        kinds = sorted((tuple(c.shape), c.dtype == torch.int64) for c in forward.calls)
        assert kinds == [((1, 3), True), ((2, 3), False), ((2, 5), False)]
        await batcher.stop()

    run(scenario())


def test_a_failing_forward_fails_only_its_own_batch_and_the_batcher_goes_on():
    async def scenario() -> None:
        forward = FakeForward(fail_when=lambda x: bool((x < 0).any()))
        batcher = await started(forward, max_batch=64, max_wait_ms=50)
        # one window: the 3-wide group holds a negative value (fails), the 5-wide group does not
        bad = batcher.submit(examples(-1, width=3))
        also_bad = batcher.submit(examples(2, width=3))
        good = batcher.submit(examples(3, width=5))
        outcomes = await asyncio.wait_for(asyncio.gather(bad, also_bad, good, return_exceptions=True), ANSWER_S)
        assert isinstance(outcomes[0], ValueError) and isinstance(outcomes[1], ValueError)
        assert outcomes[2] == [30.0]
        # later requests are served as before
        later = await asyncio.wait_for(asyncio.gather(*(batcher.submit(examples(i)) for i in range(4))), ANSWER_S)
        assert later == [[i * 10.0] for i in range(4)]
        with pytest.raises(ValueError, match="fake forward refuses"):
            await asyncio.wait_for(batcher.submit(examples(-5)), ANSWER_S)
        assert await asyncio.wait_for(batcher.submit(examples(7)), ANSWER_S) == [70.0]
        await batcher.stop()

    run(scenario())


def test_a_full_queue_refuses_at_once_with_queue_full():
    async def scenario() -> None:
        forward = FakeForward()
        forward.gate = threading.Event()
        batcher = await started(forward, max_batch=1, max_wait_ms=0, queue_size=2)
        first = asyncio.ensure_future(batcher.submit(examples(1)))
        while not forward.calls:  # the first request is in the (blocked) forward pass
            await asyncio.sleep(0.001)
        queued = [asyncio.ensure_future(batcher.submit(examples(v))) for v in (2, 3)]
        await asyncio.sleep(0.01)
        assert batcher.waiting == 2
        with pytest.raises(QueueFull):
            await batcher.submit(examples(4))
        forward.gate.set()
        answers = await asyncio.wait_for(asyncio.gather(first, *queued), ANSWER_S)
        assert answers == [[10.0], [20.0], [30.0]]
        await batcher.stop()

    run(scenario())


def test_stop_answers_the_requests_already_queued():
    async def scenario() -> None:
        forward = FakeForward(delay_s=0.05)
        batcher = await started(forward, max_batch=2, max_wait_ms=20)
        tasks = [asyncio.ensure_future(batcher.submit(examples(i))) for i in range(6)]
        await asyncio.sleep(0)  # every request is on the queue
        await asyncio.wait_for(batcher.stop(), ANSWER_S)
        done, pending = await asyncio.wait(tasks, timeout=ANSWER_S)
        assert not pending, f"{len(pending)} of 6 queued requests never got an answer after stop()"
        assert [t.result() for t in tasks] == [[i * 10.0] for i in range(6)]

    run(scenario())


def test_a_caller_that_gave_up_does_not_stop_the_others():
    async def scenario() -> None:
        forward = FakeForward()
        batcher = await started(forward, max_batch=64, max_wait_ms=50)
        gone = asyncio.ensure_future(batcher.submit(examples(1)))
        kept = asyncio.ensure_future(batcher.submit(examples(2)))
        await asyncio.sleep(0)
        gone.cancel()
        assert await asyncio.wait_for(kept, ANSWER_S) == [20.0]
        assert await asyncio.wait_for(batcher.submit(examples(3)), ANSWER_S) == [30.0]
        await batcher.stop()

    run(scenario())


def test_observe_sees_every_pass_size_and_settings_are_checked():
    async def scenario() -> None:
        seen: list[int] = []
        batcher = MicroBatcher(FakeForward(), max_batch=8, max_wait_ms=50, observe=seen.append)
        with pytest.raises(RuntimeError, match="not been started"):
            await batcher.submit(examples(1))
        batcher.start()
        await asyncio.wait_for(asyncio.gather(*(batcher.submit(examples(i)) for i in range(5))), ANSWER_S)
        assert sum(seen) == 5 and len(seen) == batcher.batches
        await batcher.stop()

    run(scenario())
    for bad in ({"max_batch": 0}, {"queue_size": 0}, {"max_wait_ms": -1}):
        with pytest.raises(ValueError):
            MicroBatcher(FakeForward(), **bad)
