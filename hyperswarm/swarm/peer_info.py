"""What the swarm knows of one remote peer (JS ``hyperswarm/lib/peer-info.js``), and the queue
of peers waiting to be dialled (highest priority first, shuffled within a priority, as JS
``shuffled-priority-queue``)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from protomux.encoding import Address

__all__ = [
    "HIGH_PRIORITY",
    "LOW_PRIORITY",
    "MIN_CONNECTION_TIME",
    "NORMAL_PRIORITY",
    "VERY_HIGH_PRIORITY",
    "VERY_LOW_PRIORITY",
    "PeerInfo",
    "PeerQueue",
]

#: A connection that lasted this long (seconds) resets the peer's attempts.
MIN_CONNECTION_TIME = 15.0

VERY_LOW_PRIORITY = 0
LOW_PRIORITY = 1
NORMAL_PRIORITY = 2
HIGH_PRIORITY = 3
VERY_HIGH_PRIORITY = 4


class PeerInfo:
    """One remote peer, by public key: how often it was tried, how urgently to dial it
    again, whether it is banned or was asked for explicitly (:meth:`Hyperswarm.join_peer`),
    and the topics it was found on."""

    def __init__(self, public_key: bytes, relay_addresses: Sequence[Address] | None = None):
        self.public_key = bytes(public_key)
        self.relay_addresses: list[Address] | None = (
            list(relay_addresses) if relay_addresses is not None else None
        )
        self.reconnecting = True
        self.proven = False
        self.connected_time: float | None = None
        self.disconnected_time = 0.0
        self.banned = False
        self.tried = False
        self.explicit = False
        self.waiting = False  # in a retry bucket
        self.force_relaying = False
        self.queued = False  # in the dial queue
        self.client = False  # the current connection is one we dialled
        self.topics: list[bytes] = []
        self.attempts = 0
        self.priority = NORMAL_PRIORITY
        self.flush_tick = 0
        self._seen_topics: set[bytes] = set()

    def __repr__(self) -> str:
        return (
            f"PeerInfo({self.public_key.hex()[:16]}..., priority={self.priority}, "
            f"attempts={self.attempts}, banned={self.banned}, explicit={self.explicit})"
        )

    @property
    def server(self) -> bool:
        """The current (or last) connection was made by the peer."""
        return not self.client

    @property
    def prioritized(self) -> bool:
        return self.priority >= NORMAL_PRIORITY

    def _get_priority(self) -> int:
        if (self.tried and not self.proven) or self.attempts > 3:
            return VERY_LOW_PRIORITY
        if self.attempts == 3:
            return LOW_PRIORITY
        if self.attempts == 2:
            return HIGH_PRIORITY
        if self.attempts == 1:
            return VERY_HIGH_PRIORITY
        return NORMAL_PRIORITY

    def connected(self, now: float) -> None:
        self.proven = True
        self.connected_time = now

    def disconnected(self, now: float) -> None:
        self.disconnected_time = now
        if self.connected_time is not None:
            if now - self.connected_time >= MIN_CONNECTION_TIME:
                self.attempts = 0  # it held: retry fast
            self.connected_time = None
        self.attempts += 1

    def deprioritize(self) -> None:
        self.attempts = 3

    def reset(self) -> None:
        self.client = False
        self.proven = False
        self.tried = False
        self.attempts = 0

    def update_priority(self) -> bool:
        """Recompute :attr:`priority`; False if the peer is not to be dialled now."""
        if self.explicit and self.attempts > 3:
            self.deprioritize()
        if self.banned or self.queued or self.attempts > 3:
            return False
        self.priority = self._get_priority()
        return True

    def add_topic(self, topic: bytes) -> None:
        if topic in self._seen_topics:
            return
        self._seen_topics.add(topic)
        self.topics.append(topic)

    def reconnect(self, value: bool) -> None:
        """Whether to dial the peer again after its connection closes."""
        self.reconnecting = bool(value)

    def ban(self, value: bool) -> None:
        self.banned = bool(value)

    def should_gc(self) -> bool:
        return not (self.banned or self.queued or self.explicit or self.waiting)


class PeerQueue:
    """Peers waiting to be dialled: :meth:`shift` takes one of the highest priority, at
    random among equals."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._levels: list[list[PeerInfo]] = [[] for _ in range(VERY_HIGH_PRIORITY + 1)]

    def __len__(self) -> int:
        return sum(len(level) for level in self._levels)

    def add(self, info: PeerInfo) -> None:
        self._levels[info.priority].append(info)

    def shift(self) -> PeerInfo | None:
        for level in reversed(self._levels):
            if level:
                i = self._rng.randrange(len(level))
                level[i], level[-1] = level[-1], level[i]
                return level.pop()
        return None
