"""Thousands of dht-rpc nodes in one process, on a simulated network and a virtual clock.

Every node is a real :class:`~hyperswarm.dht_rpc.core.DHTCore` (the same code the Trio node
runs); only the sockets and the clock are simulated. Datagrams are encoded and decoded as on a
real network, delayed by a random latency, and lost with probability ``loss``. Nodes can be
killed (churn): datagrams to a dead node vanish.

    net = Network(seed=1, loss=0.05)
    net.bootstrap_node()
    for _ in range(2000):
        net.add_node()
        net.run(50)            # 50 ms of virtual time
    net.run(60_000)
    result = net.lookup(random_target)

Nothing here opens a socket: the addresses (``10.x.y.z``) exist only inside the simulation.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .core import DHTCore
from .io import CLIENT, SERVER, Reply
from .peer import node_id
from .query import Query
from .timers import TimerQueue

__all__ = ["LookupResult", "Network", "SimNode"]

SERVER_PORT = 49737
CLIENT_PORT = 49738


@dataclass(slots=True)
class SimNode:
    """One simulated node: its core, its address and whether it is alive."""

    core: DHTCore
    host: str
    alive: bool = True

    @property
    def id(self) -> bytes:
        return node_id(self.host, SERVER_PORT)


@dataclass(slots=True)
class LookupResult:
    """How one lookup went: the ids of the closest nodes that answered (closest first)
    against the ids of the ``k`` live nodes truly closest to the target."""

    found: list[bytes]
    expected: list[bytes]
    messages: int
    hops: int
    replies: int
    error: BaseException | None = None

    @property
    def exact(self) -> bool:
        """The closest node that answered is the closest live node."""
        return self.error is None and bool(self.found) and self.found[:1] == self.expected[:1]

    @property
    def overlap(self) -> int:
        """How many of the true closest nodes answered (a record announced to the ``k``
        closest nodes is found through any of them)."""
        return len(set(self.found) & set(self.expected))

    @property
    def success(self) -> bool:
        """At least half of the true closest nodes answered: a record announced to the
        closest nodes would be found (the stricter :attr:`exact` is reported beside it)."""
        return self.error is None and 2 * self.overlap >= len(self.expected) > 0


@dataclass(slots=True)
class _Stats:
    sent: int = 0
    delivered: int = 0
    lost: int = 0
    dead: int = 0


class _Transport:
    __slots__ = ("host", "net")

    def __init__(self, net: Network, host: str) -> None:
        self.net = net
        self.host = host

    def send(self, socket: int, data: bytes, host: str, port: int, ttl: int) -> None:
        self.net._send(
            self.host, SERVER_PORT if socket == SERVER else CLIENT_PORT, data, host, port
        )


class Network:
    """A simulated network. ``latency`` is a (min, max) one-way delay in ms."""

    def __init__(
        self,
        *,
        seed: int = 0,
        loss: float = 0.0,
        latency: tuple[float, float] = (5.0, 40.0),
        node_options: dict[str, Any] | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.loss = loss
        self.latency = latency
        self.timers = TimerQueue()
        self.nodes: list[SimNode] = []
        self.by_host: dict[str, SimNode] = {}
        self.bootstrap: list[tuple[str, int]] = []
        self.stats = _Stats()
        self._node_options = dict(node_options or {})
        self._next = 1

    # --- building ---------------------------------------------------------------------------

    def _host(self) -> str:
        i = self._next
        self._next += 1
        return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"

    def bootstrap_node(self) -> SimNode:
        """A bootstrapper (persistent from the start); later nodes bootstrap off all of them."""
        host = self._host()
        core = DHTCore.bootstrapper(
            _Transport(self, host),
            self.timers,
            host,
            SERVER_PORT,
            bootstrap=list(self.bootstrap),
            rng=random.Random(self.rng.getrandbits(64)),
        )
        node = self._register(core, host)
        self.bootstrap.append((host, SERVER_PORT))
        return node

    def add_node(self, **options: Any) -> SimNode:
        """A node that joins through the bootstrap nodes. By default it becomes persistent as
        soon as its firewall check passes (JS ``ephemeral: false``); pass ``ephemeral=None``
        for JS's adaptive mode."""
        host = self._host()
        opts = {"ephemeral": False, **self._node_options, **options}
        core = DHTCore(
            _Transport(self, host),
            self.timers,
            bootstrap=list(self.bootstrap),
            rng=random.Random(self.rng.getrandbits(64)),
            **opts,
        )
        return self._register(core, host)

    def _register(self, core: DHTCore, host: str) -> SimNode:
        node = SimNode(core, host)
        self.nodes.append(node)
        self.by_host[host] = node
        core.bind(SERVER_PORT, CLIENT_PORT)
        core.start()
        return node

    def kill(self, node: SimNode) -> None:
        """The node vanishes without a word: datagrams to it are lost."""
        node.alive = False
        node.core.destroy()

    # --- the wire ---------------------------------------------------------------------------

    def _send(self, src: str, src_port: int, data: bytes, host: str, port: int) -> None:
        self.stats.sent += 1
        if self.loss and self.rng.random() < self.loss:
            self.stats.lost += 1
            return
        lo, hi = self.latency
        delay = lo + (hi - lo) * self.rng.random()
        self.timers.call_later(delay, lambda: self._deliver(src, src_port, data, host, port))

    def _deliver(self, src: str, src_port: int, data: bytes, host: str, port: int) -> None:
        node = self.by_host.get(host)
        if node is None or not node.alive:
            self.stats.dead += 1
            return
        if port == SERVER_PORT:
            socket = SERVER
        elif port == CLIENT_PORT:
            socket = CLIENT
        else:
            self.stats.dead += 1
            return
        self.stats.delivered += 1
        node.core.on_message(socket, data, src, src_port)

    # --- time -------------------------------------------------------------------------------

    @property
    def now(self) -> float:
        return self.timers.now()

    def run(self, duration: float) -> None:
        """Let ``duration`` ms of virtual time pass."""
        self.timers.advance(self.timers.now() + duration)

    def run_until(self, done: Callable[[], bool], limit: float, step: float = 100.0) -> bool:
        """Run in steps until ``done()`` or ``limit`` ms have passed; whether it was done."""
        end = self.timers.now() + limit
        while not done():
            if self.timers.now() >= end:
                return False
            self.run(step)
        return True

    # --- measuring --------------------------------------------------------------------------

    def alive(self) -> list[SimNode]:
        return [n for n in self.nodes if n.alive]

    def closest_alive(
        self, target: bytes, k: int = 20, *, exclude: SimNode | None = None
    ) -> list[bytes]:
        """The ids of the ``k`` live persistent nodes closest to ``target`` (but ``exclude``),
        closest first."""
        t = int.from_bytes(target, "big")
        ranked = sorted(
            (t ^ int.from_bytes(n.core.table.id, "big"), n.core.table.id)
            for n in self.nodes
            if n is not exclude and n.alive and not n.core.ephemeral
        )
        return [nid for _, nid in ranked[:k]]

    def lookup(self, source: SimNode, target: bytes, *, limit: float = 60_000.0) -> LookupResult:
        """A FIND_NODE query from ``source`` toward ``target``, run to its end."""
        return self.lookups([(source, target)], limit=limit)[0]

    def lookups(
        self, pairs: list[tuple[SimNode, bytes]], *, limit: float = 60_000.0
    ) -> list[LookupResult]:
        """FIND_NODE queries run at the same time, one per ``(source, target)``, each to its
        end (or ``limit`` ms). A node never asks itself, so ``source`` is left out of what
        each one should find."""
        runs: list[tuple[Query, dict[str, Any], list[Reply], list[bytes]]] = []
        for source, target in pairs:
            query: Query = source.core.find_node(target)
            state: dict[str, Any] = {"closed": False, "error": None}
            replies: list[Reply] = []
            query.on_data = replies.append
            query.on_close = _closer(state)
            runs.append((query, state, replies, self.closest_alive(target, exclude=source)))
        for query, *_ in runs:
            query.start()
        self.run_until(lambda: all(state["closed"] for _, state, _, _ in runs), limit, step=50.0)
        results = []
        for query, state, replies, expected in runs:
            if not state["closed"]:
                query.destroy(TimeoutError("the lookup did not end in time"))
            found = [r.from_.id for r in query.closest_replies if r.from_.id is not None]
            results.append(
                LookupResult(
                    found=found,
                    expected=expected,
                    messages=query.visits,
                    hops=query.hops,
                    replies=len(replies),
                    error=state["error"],
                )
            )
        return results


def _closer(state: dict[str, Any]) -> Callable[[BaseException | None], None]:
    def closed(error: BaseException | None) -> None:
        state["closed"] = True
        state["error"] = error

    return closed


@dataclass(slots=True)
class Summary:
    """Aggregates of many lookups."""

    results: list[LookupResult] = field(default_factory=list)

    @property
    def success_rate(self) -> float:
        return sum(r.success for r in self.results) / max(1, len(self.results))

    @property
    def exact_rate(self) -> float:
        return sum(r.exact for r in self.results) / max(1, len(self.results))

    @property
    def mean_overlap(self) -> float:
        return sum(r.overlap for r in self.results) / max(1, len(self.results))

    @property
    def mean_messages(self) -> float:
        return sum(r.messages for r in self.results) / max(1, len(self.results))

    @property
    def mean_hops(self) -> float:
        return sum(r.hops for r in self.results) / max(1, len(self.results))
