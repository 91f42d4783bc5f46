"""The private Trio toolkit (protomux._toolkit)."""

from __future__ import annotations

import outcome
import pytest
import trio
import trio.testing

from protomux._toolkit import (
    AsyncResource,
    ChangeNotifier,
    ConflictDetector,
    FifoLock,
    ParkedTask,
)


class _Resource(AsyncResource):
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.closes = 0
        self.exits: list[BaseException | None] = []
        self.started = trio.Event()

    async def _open(self, nursery: trio.Nursery) -> None:
        if self.fail:
            raise KeyError("open")
        nursery.start_soon(self._task)

    async def _task(self) -> None:
        self.started.set()
        await trio.sleep_forever()

    async def _exit(self, exc: BaseException | None) -> None:
        self.exits.append(exc)
        await self.aclose()

    async def aclose(self) -> None:
        self.closes += 1
        await trio.lowlevel.checkpoint()


async def test_async_resource_runs_its_tasks_for_the_block() -> None:
    r = _Resource()
    async with r as entered:
        assert entered is r
        await r.started.wait()
        assert r._background.nursery is not None
    assert r.exits == [None] and r.closes == 1 and r._background.nursery is None
    await r.aclose()
    assert r.closes == 2
    with pytest.raises(ValueError):
        async with _Resource() as r2:
            raise ValueError("body")  # propagates as it is, not in a group
    assert isinstance(r2.exits[0], ValueError)


async def test_async_resource_open_failure_leaves_the_nursery() -> None:
    r = _Resource(fail=True)
    with pytest.raises(KeyError):
        async with r:
            pass
    assert r._background.nursery is None and r.exits == []


async def test_fifo_lock_serves_in_order() -> None:
    lock = FifoLock()
    order: list[int] = []

    async def take(i: int) -> None:
        async with lock:
            order.append(i)
            await trio.sleep(0.01)

    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(take, i)
            await trio.testing.wait_all_tasks_blocked()
    assert order == [0, 1, 2, 3, 4] and not lock.held
    lock.acquire_nowait()
    with pytest.raises(trio.WouldBlock):
        lock.acquire_nowait()
    lock.release()


def test_conflict_detector() -> None:
    d = ConflictDetector("busy!")
    with d:
        assert d.held
        with pytest.raises(trio.BusyResourceError, match="busy!"), d:
            pass
    assert not d.held


async def test_parked_task() -> None:
    p: ParkedTask[int] = ParkedTask()
    assert not p.wake(outcome.Value(1))
    got: list[int] = []

    async def waiter() -> None:
        got.append(await p.park())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert p.parked
        with pytest.raises(RuntimeError):
            await p.park()
        assert p.wake(outcome.Value(7))
    assert got == [7] and not p.parked
    with trio.move_on_after(0.01):
        await p.park()
    assert not p.parked  # cancelling unparks


async def test_change_notifier() -> None:
    n = ChangeNotifier()
    first = n.event
    woke = 0

    async def waiter() -> None:
        nonlocal woke
        await n.wait()
        woke += 1

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        n.notify()
    assert woke == 3 and first.is_set() and not n.event.is_set()


async def test_change_notifier_wait_until_checks_after_each_change() -> None:
    n = ChangeNotifier()
    state = {"value": 0}
    with trio.CancelScope() as scope:  # ready at once: still a checkpoint
        scope.cancel()
        await n.wait_until(lambda: True)
    assert scope.cancelled_caught
    async with trio.open_nursery() as nursery:
        done = trio.Event()

        async def waiter() -> None:
            await n.wait_until(lambda: state["value"] >= 2)
            done.set()

        nursery.start_soon(waiter)
        for value in (1, 2):
            await trio.testing.wait_all_tasks_blocked()
            assert not done.is_set()
            state["value"] = value
            n.notify()
        with trio.fail_after(5):
            await done.wait()
