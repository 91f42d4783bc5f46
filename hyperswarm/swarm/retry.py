"""When to dial a peer again after its connection closed or failed (JS
``hyperswarm/lib/retry-timer.js`` and ``bulk-timer.js``).

Four buckets: S (about 1 s), M (5 s), L (15 s) and X (10 min), each with random jitter. A
proven peer (one that connected before) goes to S, M, L for its 1st, 2nd, 3rd attempt; an
unproven one to M, L, L; after that a peer is dropped, unless asked for explicitly (X). Each
bucket hands its peers back in a batch: one tick every 0.66 of its time, a peer waits one to
two ticks."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import trio

from .peer_info import PeerInfo

__all__ = ["BACKOFF_JITTER", "BulkTimer", "RetryTimer", "default_backoffs"]

#: Seconds of random jitter on the backoffs (JS ``BACKOFF_JITTER``, 500 ms).
BACKOFF_JITTER = 0.5

Push = Callable[[list[PeerInfo]], None]


def default_backoffs(rng: random.Random) -> tuple[float, float, float, float]:
    """The S, M, L and X backoffs in seconds, each with its share of jitter as JS draws it."""
    j = BACKOFF_JITTER
    return (
        1.0 + j * rng.random(),
        5.0 + 2 * j * rng.random(),
        15.0 + 4 * j * rng.random(),
        600.0 + 240 * j * rng.random(),
    )


class BulkTimer:
    """Peers added now come back through ``push`` together, one or two ticks later."""

    def __init__(self, time: float, push: Push) -> None:
        self.interval = time * 0.66
        self._push = push
        self._next: list[PeerInfo] = []
        self._pending: list[PeerInfo] = []
        self._started = trio.Event()

    def add(self, info: PeerInfo) -> None:
        self._pending.append(info)
        self._started.set()

    def tick(self) -> None:
        ready, self._next, self._pending = self._next, self._pending, []
        if ready:
            self._push(ready)

    async def run(self) -> None:
        await self._started.wait()
        while True:
            await trio.sleep(self.interval)
            self.tick()


class RetryTimer:
    """The four buckets; :meth:`run` ticks them (in a nursery of the swarm)."""

    def __init__(
        self,
        push: Push,
        *,
        backoffs: Sequence[float] | None = None,
        jitter: float = BACKOFF_JITTER,
        rng: random.Random | None = None,
    ) -> None:
        rng = rng or random.Random()
        self.backoffs = tuple(backoffs) if backoffs is not None else default_backoffs(rng)
        if len(self.backoffs) != 4:
            raise ValueError("backoffs takes four values (S, M, L, X)")
        self.jitter = jitter
        self._s, self._m, self._l, self._x = (
            BulkTimer(b + jitter * rng.random(), push) for b in self.backoffs
        )

    def select(self, info: PeerInfo) -> BulkTimer | None:
        if info.banned or not info.reconnecting:
            return None
        if info.attempts > 3:
            return self._x if info.explicit else None
        if info.attempts == 0:
            return self._s
        if info.proven:
            return (self._s, self._m, self._l)[info.attempts - 1]
        return (self._m, self._l, self._l)[info.attempts - 1]

    def add(self, info: PeerInfo) -> bool:
        """Put ``info`` in its bucket; False if it is not to be retried."""
        timer = self.select(info)
        if timer is None:
            return False
        timer.add(info)
        return True

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            for timer in (self._s, self._m, self._l, self._x):
                nursery.start_soon(timer.run)
