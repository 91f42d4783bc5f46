"""Bounds for tests of hostile input: peak memory (tracemalloc) and the event loop's
responsiveness (a task that must keep running), never wall-clock throughput."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import trio


@dataclass
class LoopWatch:
    """The largest time the event loop left a 10 ms sleeper waiting past its wake-up."""

    longest_stall: float = 0.0


@asynccontextmanager
async def loop_watch(tick: float = 0.01) -> AsyncIterator[LoopWatch]:
    """Run a task that sleeps ``tick`` in a loop while the block runs; ``longest_stall`` is
    the largest delay of one of its wake-ups (how long the loop was frozen)."""
    watch = LoopWatch()

    async def sleeper() -> None:
        while True:
            before = trio.current_time()
            await trio.sleep(tick)
            watch.longest_stall = max(watch.longest_stall, trio.current_time() - before - tick)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sleeper)
        try:
            yield watch
        finally:
            nursery.cancel_scope.cancel()


@dataclass
class Memory:
    peak: int = 0


@contextmanager
def peak_memory() -> Iterator[Memory]:
    """The peak of memory allocated (by Python) inside the block, above what it started at."""
    mem = Memory()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        yield mem
        _, peak = tracemalloc.get_traced_memory()
        mem.peak = peak - base
    finally:
        tracemalloc.stop()
