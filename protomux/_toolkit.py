"""The project's private Trio toolkit: the small patterns every Trio adapter here repeats.

Private to this project (no stability promise to users), and kept in ``protomux`` because it
is the lowest layer: every package above it (``hypercore``, ``corestore``, ``hyperbee``,
``hyperswarm``) may import it; it imports nothing of the project.

- :class:`BackgroundNursery`: a nursery an object opens in ``__aenter__`` and leaves in
  ``__aexit__``.
- :class:`AsyncResource`: ``__aenter__``/``__aexit__`` written once over a
  :class:`BackgroundNursery`; subclasses fill in :meth:`AsyncResource._open` and
  :meth:`AsyncResource._exit`.
- :class:`FifoLock`: a cheap first-come first-served lock; :class:`ConflictDetector`: raise
  ``trio.BusyResourceError`` when two tasks use one operation at once.
- :class:`ParkedTask`: one task waiting for a value (or error) that another task or a
  callback hands it, without an ``Event`` per wait.
- :class:`ChangeNotifier`: "something changed" for any number of waiters (set the event and
  replace it).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import outcome
import trio
from trio.lowlevel import Abort, Task, current_task, reschedule, wait_task_rescheduled

__all__ = [
    "AsyncResource",
    "BackgroundNursery",
    "ChangeNotifier",
    "ConflictDetector",
    "FifoLock",
    "ParkedTask",
]

T = TypeVar("T")


# --- nurseries and resources ------------------------------------------------------------------


class BackgroundNursery:
    """A nursery owned by an object for the span of its ``async with`` block.

    Trio's nurseries are context managers of the task that opens them; an object whose
    ``__aenter__``/``__aexit__`` must run background tasks (a mux's reader and writer, a
    stream's timers, what ``replicate()`` starts) opens one in ``__aenter__`` and leaves it in
    ``__aexit__``. ``await bg.open()`` in ``__aenter__``, ``await bg.close()`` in
    ``__aexit__`` (the same task must do both); :attr:`nursery` is the open nursery or
    ``None``. Leaving cancels what still runs and does not hand the body's exception to the
    nursery, so the body's exception propagates as it is instead of inside an
    ``ExceptionGroup``; errors of the background tasks still propagate.
    """

    __slots__ = ("_manager", "nursery")

    def __init__(self) -> None:
        self._manager: AbstractAsyncContextManager[trio.Nursery] | None = None
        self.nursery: trio.Nursery | None = None

    async def open(self) -> trio.Nursery:
        if self._manager is not None:
            raise RuntimeError("the background nursery is already open")
        manager = trio.open_nursery()
        self.nursery = await manager.__aenter__()
        self._manager = manager
        return self.nursery

    async def close(self) -> None:
        """Cancel what still runs and leave the nursery (nothing to do if not open)."""
        manager, nursery = self._manager, self.nursery
        self._manager = self.nursery = None
        if manager is None or nursery is None:
            return
        nursery.cancel_scope.cancel()
        await manager.__aexit__(None, None, None)


class AsyncResource(trio.abc.AsyncResource):
    """A resource used as ``async with obj:`` that runs its background tasks in a nursery of
    its own (a :class:`BackgroundNursery`), open for the span of the block.

    Entering opens the nursery and awaits :meth:`_open` with it (start the tasks there; a
    handshake or a ``ready()`` may run first). If ``_open`` raises, the nursery is left and
    the error propagates (``_open`` cleans up what it started). Leaving awaits
    :meth:`_exit` with the body's exception (default: :meth:`aclose`) and then leaves the
    nursery, cancelling what still runs there, whatever ``_exit`` did.

    Subclasses write :meth:`aclose`, which must close at once and be safe to call again (the
    second call only checkpoints, or waits for the first to finish). A subclass whose block
    needs a check before anything opens (entered twice?) overrides ``__aenter__`` and calls
    ``super().__aenter__()``. ``self._background.nursery`` is the nursery while the block
    runs (``None`` otherwise).
    """

    #: Set on the instance when first needed (see :attr:`_background`).
    _background_nursery: BackgroundNursery | None = None

    @property
    def _background(self) -> BackgroundNursery:
        """The nursery of the ``async with`` block (``.nursery`` is ``None`` outside it)."""
        bg = self._background_nursery
        if bg is None:
            bg = self._background_nursery = BackgroundNursery()
        return bg

    async def __aenter__(self) -> Self:
        bg = self._background
        nursery = await bg.open()
        try:
            await self._open(nursery)
        except BaseException:
            await bg.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._exit(exc)
        finally:
            bg = self._background_nursery
            if bg is not None:
                await bg.close()

    async def _open(self, nursery: trio.Nursery) -> None:
        """Start the resource's background tasks in ``nursery`` (entering the block)."""

    async def _exit(self, exc: BaseException | None) -> None:
        """Close on leaving the block; ``exc`` is the body's exception, if any."""
        await self.aclose()


# --- locks ------------------------------------------------------------------------------------


class ConflictDetector:
    """``with detector:`` raises :class:`trio.BusyResourceError` (with ``message``) when
    another task is inside the same detector, as trio's streams do for ``send_all`` and
    ``receive_some``."""

    __slots__ = ("_held", "_message")

    def __init__(self, message: str) -> None:
        self._message = message
        self._held = False

    @property
    def held(self) -> bool:
        """A task is inside (check without entering)."""
        return self._held

    def __enter__(self) -> None:
        if self._held:
            raise trio.BusyResourceError(self._message)
        self._held = True

    def __exit__(self, *exc: object) -> None:
        self._held = False


class FifoLock:
    """A first-come first-served lock without owner tracking (cheaper than ``trio.Lock``,
    which costs about as much as the rest of a small send). ``acquire`` does not checkpoint
    when the lock is free; callers checkpoint through the I/O they do under it. ``release``
    hands the lock straight to the task that waited longest."""

    __slots__ = ("_held", "_lot")

    def __init__(self) -> None:
        self._held = False
        self._lot = trio.lowlevel.ParkingLot()

    @property
    def held(self) -> bool:
        return self._held

    def acquire_nowait(self) -> None:
        if self._held:
            raise trio.WouldBlock
        self._held = True

    async def acquire(self) -> None:
        if self._held:
            await self._lot.park()  # release() hands the lock over
        else:
            self._held = True

    def release(self) -> None:
        if self._lot:
            self._lot.unpark()
        else:
            self._held = False

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()


# --- waiting for another task -----------------------------------------------------------------


class ParkedTask(Generic[T]):
    """At most one task parked until another task (or a sync callback) wakes it.

    ``await parked.park()`` suspends the current task until ``parked.wake(result)``, and
    returns ``result.unwrap()`` (``None`` for a plain ``wake()``); cancelling the parked task
    unparks it. ``wake`` does nothing (returns False) when no task is parked: keep the value
    somewhere the task looks before parking (a queue, a flag, a subclass's slot). Reusable:
    a writer task parks each time its queue runs empty. Cheaper than a ``trio.Event`` per
    wait.
    """

    __slots__ = ("_task",)

    def __init__(self) -> None:
        self._task: Task | None = None

    @property
    def parked(self) -> bool:
        return self._task is not None

    async def park(self) -> T:
        if self._task is not None:
            raise RuntimeError("another task is already parked here")
        self._task = current_task()

        def abort(_: Any) -> Abort:
            self._task = None
            return Abort.SUCCEEDED

        result: T = await wait_task_rescheduled(abort)
        return result

    def wake(self, result: outcome.Outcome[T] | None = None) -> bool:
        """Resume the parked task with ``result`` (default: ``None``); False if none is."""
        task = self._task
        if task is None:
            return False
        self._task = None
        if result is None:
            reschedule(task)
        else:
            reschedule(task, result)
        return True


class ChangeNotifier:
    """Wakes every task waiting for "something changed".

    :meth:`notify` sets the current event and replaces it with a fresh one, so waiters that
    arrive afterwards wait for the next change. To wait without missing a change that
    happens between checking a condition and waiting, take :attr:`event` first::

        while not ready():
            changed = notifier.event
            if ready():
                break
            await changed.wait()

    (A plain ``await notifier.wait()`` waits for the next change.)
    """

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = trio.Event()

    @property
    def event(self) -> trio.Event:
        """The event the next :meth:`notify` sets."""
        return self._event

    def notify(self) -> None:
        self._event.set()
        self._event = trio.Event()

    async def wait(self) -> None:
        """Wait for the next :meth:`notify`."""
        await self._event.wait()

    async def wait_until(self, ready: Callable[[], bool]) -> None:
        """Return once ``ready()`` holds, checking it after each :meth:`notify`. A checkpoint
        even when it already holds, as every Trio wait is."""
        if ready():
            await trio.lowlevel.checkpoint()
            return
        while not ready():
            await self._event.wait()
