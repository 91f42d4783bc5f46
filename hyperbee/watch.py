"""Watching a bee (JS ``hyperbee/index.js`` ``Watcher`` and ``EntryWatcher``).

Both wake on the core's ``append`` and ``truncate`` events, so writes that arrive by
replication are reported like local ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from hypercore.errors import HypercoreError
from protomux._toolkit import AsyncResource, ChangeNotifier

from .codecs import Encodings, Entry
from .errors import HyperbeeError

if TYPE_CHECKING:
    from .bee import Hyperbee

__all__ = ["EntryWatcher", "Watcher"]


class Watcher(trio.abc.AsyncResource):
    """Yields ``(current, previous)`` snapshots each time an entry in the range changes."""

    def __init__(self, bee: Hyperbee, bounds: dict[str, Any], *, eager: bool = False) -> None:
        self.bee = bee
        self._bounds = bounds
        self._eager = eager
        self.current: Hyperbee | None = None
        self.previous: Hyperbee | None = None
        self._changed = trio.Event()
        self._closed = False
        self._lock = trio.Lock()

    def _notify(self, truncated: bool) -> None:
        self._changed.set()

    async def __aenter__(self) -> Watcher:
        bee = self.bee
        self.current = bee.checkout(1) if self._eager else bee.snapshot()
        bee._root._watchers.append(self)
        return self

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._changed.set()
        watchers = self.bee._root._watchers
        if self in watchers:
            watchers.remove(self)
        for snap in (self.current, self.previous):
            if snap is not None:
                await snap.aclose()
        self.current = self.previous = None

    def __aiter__(self) -> Watcher:
        return self

    def _moved(self) -> bool:
        cur = self.current
        assert cur is not None
        return cur.version < self.bee.version or cur.core.fork != self.bee.core.fork

    async def __anext__(self) -> tuple[Hyperbee, Hyperbee]:
        async with self._lock:
            while True:
                while not self._closed and not self._moved():
                    self._changed = trio.Event()
                    await self._changed.wait()
                if self._closed:
                    raise StopAsyncIteration
                if self.previous is not None:
                    await self.previous.aclose()
                self.previous = self.current
                self.current = self.bee.snapshot()
                cur, prev = self.current, self.previous
                assert prev is not None
                if cur.core.fork != prev.core.fork:
                    return cur, prev
                async for _ in cur.diff(prev, **self._bounds):
                    return cur, prev


class EntryWatcher(AsyncResource):
    """Keeps :attr:`node` (the entry of one key, or None) current; iterating yields each new
    value of it."""

    def __init__(self, bee: Hyperbee, key: Any, encoding: Encodings) -> None:
        self.bee = bee
        self.key = key
        self._encoding = encoding
        self.node: Entry | None = None
        self.error: BaseException | None = None
        self._changed = trio.Event()
        self._force = False
        self._updates = 0
        self._delivered = 0
        self._updated = ChangeNotifier()
        self._closed = False

    def _notify(self, truncated: bool) -> None:
        if truncated:
            self._force = True
        self._changed.set()

    async def _get(self) -> Entry | None:
        from .batch import Batch

        bee = self.bee
        return await Batch(bee, bee.core, encoding=self._encoding).get(self.key)

    async def _open(self, nursery: trio.Nursery) -> None:
        self.node = await self._get()
        self.bee._root._entry_watchers.append(self)
        nursery.start_soon(self._run)

    async def _run(self) -> None:
        while not self._closed:
            await self._changed.wait()
            self._changed = trio.Event()
            force, self._force = self._force, False
            try:
                node = await self._get()
            except (HyperbeeError, HypercoreError) as e:
                if self.bee.core.closed:
                    return
                if getattr(e, "code", None) == "SNAPSHOT_NOT_AVAILABLE":
                    continue
                self.error = e
                self._wake()
                return
            old = self.node
            if force or (None if node is None else node.seq) != (None if old is None else old.seq):
                self.node = node
                self._wake()

    def _wake(self) -> None:
        self._updates += 1
        self._updated.notify()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._changed.set()
        self._wake()
        watchers = self.bee._root._entry_watchers
        if self in watchers:
            watchers.remove(self)
        await self._background.close()

    def __aiter__(self) -> EntryWatcher:
        return self

    async def __anext__(self) -> Entry | None:
        while self._updates == self._delivered:
            await self._updated.wait()
        self._delivered = self._updates
        if self.error is not None:
            raise self.error
        if self._closed:
            raise StopAsyncIteration
        return self.node
