"""A nursery owned by an object for the span of its ``async with`` block.

Trio's nurseries are context managers of the task that opens them; an object whose
``__aenter__``/``__aexit__`` must run background tasks (a mux's reader and writer, a stream's
timers, what ``replicate()`` starts) opens one in ``__aenter__`` and leaves it in
``__aexit__``. :class:`BackgroundNursery` is that pattern, once. Leaving cancels what still
runs and does not hand the body's exception to the nursery, so the body's exception
propagates as it is instead of inside an ``ExceptionGroup``; errors of the background tasks
still propagate.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import trio

__all__ = ["BackgroundNursery"]


class BackgroundNursery:
    """``await bg.open()`` in ``__aenter__``, ``await bg.close()`` in ``__aexit__`` (the same
    task must do both); :attr:`nursery` is the open nursery or ``None``."""

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
