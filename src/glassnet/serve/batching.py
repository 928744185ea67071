"""Dynamic micro-batching: requests that arrive within a few milliseconds share one forward pass.

Each request puts its examples (a tensor ``n x ...``) on a bounded queue and awaits a future. One
collector task takes the first waiting request, then keeps taking requests until the batch holds
``max_batch`` examples or ``max_wait_ms`` has passed since the first arrived, and runs the whole
batch on a single worker thread (the model's forward pass releases the GIL, so the event loop goes
on parsing requests meanwhile). Examples of different shapes never share a pass: the batch is split
by shape. The outputs are cut back into per-request slices.

Waiting only pays when company comes: a pass waits ``max_wait_ms`` only after a pass that joined
several requests (traffic is concurrent); otherwise it takes what is queued at once. And a lone
request for a fast model (its last pass took under ``INLINE_S``) runs on the event loop itself,
sparing two thread hand-offs: one client at a time gets the latency of a plain endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch

INLINE_S = 0.002  # a pass this fast may run on the event loop when it serves a single request


class QueueFull(Exception):
    """The batcher's queue is at its bound: the server is overloaded (answered with 503)."""


@dataclass
class _Request:
    inputs: torch.Tensor
    future: asyncio.Future[Any]
    arrived: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Batch the examples of concurrent requests into one call of ``forward``.

    Args:
        forward: ``inputs (N x ...) -> per-example results``, a sequence (or tensor) of length N;
            it runs on one worker thread.
        max_batch: at most this many examples per forward pass (a larger request runs alone).
        max_wait_ms: how long the first request of a batch waits for company.
        queue_size: requests waiting at most; one more is refused with ``QueueFull``.
        observe: called with each batch's example count (for metrics), or None.
    """

    def __init__(
        self,
        forward: Callable[[torch.Tensor], Any],
        max_batch: int = 64,
        max_wait_ms: float = 5.0,
        queue_size: int = 1024,
        observe: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch < 1 or max_wait_ms < 0 or queue_size < 1:
            raise ValueError("max_batch and queue_size must be >= 1 and max_wait_ms >= 0")
        self.forward, self.max_batch, self.max_wait = forward, max_batch, max_wait_ms / 1000
        self.queue_size, self.observe = queue_size, observe
        self._queue: asyncio.Queue[_Request] | None = None
        self._task: asyncio.Task[None] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="glassnet-forward")
        self._carry: _Request | None = None  # taken from the queue but left for the next pass (it did not fit)
        self._busy = False  # a batch is being collected or computed
        self._company = False  # the last pass joined several requests: waiting for others pays
        self._last_s = float("inf")  # how long the last forward pass took
        self.batches = 0

    @property
    def waiting(self) -> int:
        """Requests queued and not yet in a forward pass."""
        return 0 if self._queue is None else self._queue.qsize()

    def start(self) -> None:
        """Start the collector on the running event loop."""
        self._queue = asyncio.Queue(maxsize=self.queue_size)
        self._task = asyncio.get_running_loop().create_task(self._collect())

    async def stop(self) -> None:
        """Answer every request already queued or in a pass, then stop the collector and the worker thread."""
        if self._queue is not None:
            while not self._queue.empty() or self._busy or self._carry is not None:
                await asyncio.sleep(0.001)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._pool.shutdown(wait=True)

    async def submit(self, inputs: torch.Tensor, timeout: float | None = None) -> Any:
        """The results for ``inputs`` (``n x ...``), computed in a shared forward pass.

        Raises:
            QueueFull: ``queue_size`` requests are waiting already.
            TimeoutError: no answer within ``timeout`` seconds (the request leaves the batch it is in).
        """
        if self._queue is None:
            raise RuntimeError("the batcher has not been started")
        loop = asyncio.get_running_loop()
        request = _Request(inputs, loop.create_future())
        try:
            self._queue.put_nowait(request)
        except asyncio.QueueFull:
            raise QueueFull(f"{self.queue_size} requests are waiting already") from None
        # a timer on the future itself: cheaper than asyncio.wait_for, which wraps every request in a task
        timer = None if timeout is None else loop.call_later(timeout, _expire, request.future)
        try:
            return await request.future
        finally:
            if timer is not None:
                timer.cancel()

    async def _collect(self) -> None:
        assert self._queue is not None
        while True:
            if self._carry is None:
                first = await self._queue.get()
            else:
                first, self._carry = self._carry, None
            self._busy = True
            try:
                await self._pass(first)
            finally:
                self._busy = False

    async def _pass(self, first: _Request) -> None:
        """Gather requests after ``first`` until ``max_batch`` examples or ``max_wait``, then compute them."""
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        batch, count = [first], len(first.inputs)
        deadline = first.arrived + (self.max_wait if self._company else 0.0)
        while count < self.max_batch:
            left = deadline - time.perf_counter()
            try:
                request = self._queue.get_nowait() if left <= 0 else await asyncio.wait_for(self._queue.get(), left)
            except (asyncio.QueueEmpty, TimeoutError):
                break
            if count + len(request.inputs) > self.max_batch:
                self._carry = request  # it starts the next pass
                break
            batch.append(request)
            count += len(request.inputs)
        self._company = len(batch) > 1
        live = [r for r in batch if not r.future.done()]  # a timed-out caller has gone
        inline = len(live) == 1 and self._last_s < INLINE_S
        for group in _by_shape(live):
            try:
                if inline:
                    results = self._run([r.inputs for r in group])
                else:
                    results = await loop.run_in_executor(self._pool, self._run, [r.inputs for r in group])
            except Exception as exc:  # the requests learn what failed; the server goes on
                for request in group:
                    if not request.future.done():
                        request.future.set_exception(exc)
                continue
            for request, result in zip(group, results, strict=True):
                if not request.future.done():
                    request.future.set_result(result)

    def _run(self, inputs: list[torch.Tensor]) -> list[Any]:
        """One forward pass over the joined inputs, cut back into one slice per request."""
        joined = inputs[0] if len(inputs) == 1 else torch.cat(inputs)
        if self.observe is not None:
            self.observe(len(joined))
        self.batches += 1
        started = time.perf_counter()
        results = self.forward(joined)
        self._last_s = time.perf_counter() - started
        slices, start = [], 0
        for part in inputs:
            slices.append(results[start : start + len(part)])
            start += len(part)
        return slices


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


def _by_shape(requests: list[_Request]) -> list[list[_Request]]:
    """Requests grouped by the shape and type of one example (only equal ones can be joined)."""
    groups: dict[tuple[Any, ...], list[_Request]] = {}
    for request in requests:
        groups.setdefault((tuple(request.inputs.shape[1:]), request.inputs.dtype), []).append(request)
    return list(groups.values())
