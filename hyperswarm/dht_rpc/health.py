"""How the network looks from one node (JS dht-rpc ``lib/health.js``), sans-IO.

Each tick the node hands in its running totals of replies and timeouts. Over a window of the
last four ticks: no reply in a tick that saw traffic is an offline tick (two in a row: the node
is offline); more than half of the requests timing out is a degraded tick (four in a row:
degraded; four healthy ticks clear it). A cold window (fewer than four ticks) or an idle tick
(fewer than four requests settled) changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["NetworkHealth"]

MAX_HEALTH_WINDOW = 4
OFFLINE_THRESHOLD = 2
IDLE_THRESHOLD = 4
DEGRADED_TIMEOUT_RATE_THRESHOLD = 0.5


@dataclass(slots=True)
class _Sample:
    responses: int
    timeouts: int
    offline: bool | None = None
    degraded: bool | None = None


class NetworkHealth:
    """``on_change(online, degraded)`` runs when the state changes (JS ``network-update``)."""

    def __init__(self, on_change: Callable[[bool, bool], None] | None = None) -> None:
        self.on_change = on_change
        self.online = True
        self.degraded = False
        self._window: list[_Sample | None] = [None] * MAX_HEALTH_WINDOW
        self._count = 0
        self._head = -1
        self._offline_ticks = 0
        self._degraded_ticks = 0
        self._healthy_ticks = 0

    def _at(self, i: int) -> _Sample | None:
        return self._window[i % MAX_HEALTH_WINDOW]

    @property
    def cold(self) -> bool:
        return self._count < MAX_HEALTH_WINDOW

    @property
    def responses(self) -> int:
        newest, previous = self._at(self._head), self._at(self._head - 1)
        if newest is None or previous is None:
            return 0
        return newest.responses - previous.responses

    @property
    def timeouts(self) -> int:
        newest, previous = self._at(self._head), self._at(self._head - 1)
        if newest is None or previous is None:
            return 0
        return newest.timeouts - previous.timeouts

    @property
    def timeouts_rate(self) -> float:
        timeouts = self.timeouts
        if timeouts == 0:
            return 0.0
        return timeouts / (self.responses + timeouts)

    @property
    def idle(self) -> bool:
        return self.responses + self.timeouts < IDLE_THRESHOLD

    def reset(self) -> None:
        self._window = [None] * MAX_HEALTH_WINDOW
        self._count = 0
        self._head = -1
        self._offline_ticks = self._degraded_ticks = self._healthy_ticks = 0
        self._set(True, False)

    def update(self, responses: int, timeouts: int) -> None:
        """One tick, with the node's running totals of replies and timeouts."""
        tail = (self._head + 1) % MAX_HEALTH_WINDOW
        oldest = self._window[tail]
        if oldest is not None:
            if oldest.degraded is True:
                self._degraded_ticks -= 1
            elif oldest.degraded is False:
                self._healthy_ticks -= 1
        self._head = tail
        newest = self._window[tail] = _Sample(responses, timeouts)
        self._count = min(self._count + 1, MAX_HEALTH_WINDOW)
        if self.cold or self.idle:
            return
        newest.offline = self.responses == 0
        newest.degraded = (
            not newest.offline and self.timeouts_rate > DEGRADED_TIMEOUT_RATE_THRESHOLD
        )
        if newest.offline:
            self._offline_ticks += 1
        else:
            self._offline_ticks = 0
            if newest.degraded:
                self._degraded_ticks += 1
            else:
                self._healthy_ticks += 1
        online = self.online
        if not newest.offline:
            online = True
        elif self._offline_ticks >= OFFLINE_THRESHOLD:
            online = False
        degraded = self.degraded
        if not online or self._healthy_ticks == MAX_HEALTH_WINDOW:
            degraded = False
        elif self._degraded_ticks == MAX_HEALTH_WINDOW:
            degraded = True
        if online and not degraded:
            self._set(True, False)
        elif degraded:
            self._set(True, True)
        else:
            self._set(False, False)

    def _set(self, online: bool, degraded: bool) -> None:
        if (online, degraded) == (self.online, self.degraded):
            return
        self.online, self.degraded = online, degraded
        if self.on_change is not None:
            self.on_change(online, degraded)
