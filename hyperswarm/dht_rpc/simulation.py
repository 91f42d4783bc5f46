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

Nodes can sit behind NATs (:class:`SimNat`): ``net.add_node(nat=net.nat("consistent"))``.
A NAT rewrites what its hosts send to its public address and a port: ``consistent`` keeps one
port per socket whatever the destination (endpoint-independent mapping; the socket's own
port when it is free, as Linux masquerade), ``random`` takes a new random port for every
destination. It lets in only what comes from an address and port one of its sockets sent to
(address-and-port-dependent filtering; ``filtering="address"`` or ``"endpoint"`` loosen it),
and forgets a flow ``timeout`` ms after its last datagram either way (a socket's mapping goes
with its last flow). Datagrams sent with a small time to live (at most :data:`LOW_TTL`) open
their sender's NAT and die before the far side. Hosts may open more sockets
(:meth:`Network.open_socket`) beside the DHT's two.

Nothing here opens a socket: the addresses (``10.x.y.z``, ``172.16.x.y`` behind NATs,
``20.x.y.z`` of the NATs) exist only inside the simulation.
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

__all__ = ["LOW_TTL", "NAT_KINDS", "LookupResult", "Network", "SimNat", "SimNode", "SimSocket"]

SERVER_PORT = 49737
CLIENT_PORT = 49738
#: Datagrams with a time to live this small (but not 0, the default) die past their NAT.
LOW_TTL = 5
NAT_KINDS = ("consistent", "random")
FILTERINGS = ("address-port", "address", "endpoint")


class _Mapping:
    """One socket's public port on a NAT, and the remote endpoints it may hear from (each
    with the time of its flow's last datagram)."""

    __slots__ = ("flows", "inside", "port")

    def __init__(self, inside: tuple[str, int], port: int) -> None:
        self.inside = inside
        self.port = port
        self.flows: dict[tuple[str, int], float] = {}


class SimNat:
    """A NAT of the simulation (see the module docstring)."""

    def __init__(
        self,
        public_host: str,
        kind: str,
        *,
        timeout: float = 30_000.0,
        filtering: str = "address-port",
        rng: random.Random,
    ) -> None:
        if kind not in NAT_KINDS:
            raise ValueError(f"kind is one of {NAT_KINDS}: {kind!r}")
        if filtering not in FILTERINGS:
            raise ValueError(f"filtering is one of {FILTERINGS}: {filtering!r}")
        self.public_host = public_host
        self.kind = kind
        self.timeout = timeout
        self.filtering = filtering
        self.rng = rng
        self.hosts: list[str] = []
        self._out: dict[tuple[Any, ...], _Mapping] = {}
        self._by_port: dict[int, _Mapping] = {}
        #: Datagrams let out, let in, and dropped at the door.
        self.sent = 0
        self.admitted = 0
        self.filtered = 0

    def _alive(self, mapping: _Mapping, now: float) -> bool:
        flows = mapping.flows
        for remote in [r for r, t in flows.items() if now - t > self.timeout]:
            del flows[remote]
        if flows:
            return True
        self._by_port.pop(mapping.port, None)
        for key in [k for k, m in self._out.items() if m is mapping]:
            del self._out[key]
        return False

    def _free_port(self, wanted: int | None) -> int:
        if wanted is not None and wanted not in self._by_port:
            return wanted
        for _ in range(1000):
            port = self.rng.randrange(1024, 65536)
            if port not in self._by_port:
                return port
        raise RuntimeError("the NAT is out of ports")

    def outbound(self, host: str, port: int, to_host: str, to_port: int, now: float) -> int:
        """The public port a datagram from ``host:port`` to ``to_host:to_port`` leaves on."""
        key: tuple[Any, ...] = (
            (host, port) if self.kind == "consistent" else (host, port, to_host, to_port)
        )
        mapping = self._out.get(key)
        if mapping is not None and not self._alive(mapping, now):
            mapping = None
        if mapping is None:
            wanted = port if self.kind == "consistent" else None
            mapping = _Mapping((host, port), self._free_port(wanted))
            self._out[key] = mapping
            self._by_port[mapping.port] = mapping
        mapping.flows[(to_host, to_port)] = now
        self.sent += 1
        return mapping.port

    def inbound(
        self, from_host: str, from_port: int, port: int, now: float
    ) -> tuple[str, int] | None:
        """Where a datagram from ``from_host:from_port`` to public ``port`` goes (None: it
        is dropped: no such mapping, or not from an endpoint the socket talks to)."""
        mapping = self._by_port.get(port)
        if mapping is None or not self._alive(mapping, now):
            self.filtered += 1
            return None
        remote = (from_host, from_port)
        if remote in mapping.flows:
            mapping.flows[remote] = now  # (a reply keeps the flow alive)
        elif self.filtering == "address-port" or (
            self.filtering == "address" and all(h != from_host for h, _ in mapping.flows)
        ):
            self.filtered += 1
            return None
        self.admitted += 1
        return mapping.inside

    def mapped_port(self, host: str, port: int, now: float) -> int | None:
        """The public port of a consistent NAT's socket ``host:port``, if it has one now."""
        mapping = self._out.get((host, port))
        if mapping is None or not self._alive(mapping, now):
            return None
        return mapping.port


class SimSocket:
    """An extra UDP socket of a simulated host (a punch socket, say): ``send`` datagrams,
    ``on_datagram(data, host, port)`` for what arrives."""

    def __init__(
        self, net: Network, host: str, port: int, on_datagram: Callable[[bytes, str, int], None]
    ) -> None:
        self.net = net
        self.host = host
        self.port = port
        self.on_datagram = on_datagram
        self.closed = False

    def send(self, data: bytes, host: str, port: int, *, ttl: int = 0) -> None:
        if not self.closed:
            self.net._send(self.host, self.port, data, host, port, ttl)

    def close(self) -> None:
        self.closed = True
        self.net._sockets.pop((self.host, self.port), None)


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
    filtered: int = 0  # dropped by a NAT
    expired: int = 0  # low time to live


class _Transport:
    __slots__ = ("host", "net")

    def __init__(self, net: Network, host: str) -> None:
        self.net = net
        self.host = host

    def send(self, socket: int, data: bytes, host: str, port: int, ttl: int) -> None:
        self.net._send(
            self.host, SERVER_PORT if socket == SERVER else CLIENT_PORT, data, host, port, ttl
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
        self._next_nat = 1
        self._next_private = 1
        self.nats: dict[str, SimNat] = {}  # by public host
        self.behind: dict[str, SimNat] = {}  # private host -> its NAT
        self._sockets: dict[tuple[str, int], SimSocket] = {}
        self._ports: dict[str, int] = {}

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

    def nat(
        self, kind: str, *, timeout: float = 30_000.0, filtering: str = "address-port"
    ) -> SimNat:
        """A new NAT at a public address of its own (see :class:`SimNat`)."""
        i = self._next_nat
        self._next_nat += 1
        host = f"20.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        nat = SimNat(
            host,
            kind,
            timeout=timeout,
            filtering=filtering,
            rng=random.Random(self.rng.getrandbits(64)),
        )
        self.nats[host] = nat
        return nat

    def private_host(self, nat: SimNat) -> str:
        """A new host address behind ``nat``."""
        i = self._next_private
        self._next_private += 1
        host = f"172.{16 + ((i >> 16) & 15)}.{(i >> 8) & 255}.{i & 255}"
        self.behind[host] = nat
        nat.hosts.append(host)
        return host

    def open_socket(self, host: str, on_datagram: Callable[[bytes, str, int], None]) -> SimSocket:
        """Another UDP socket on ``host`` (a node's host, or one made by
        :meth:`private_host`), at the host's next free port from 50000."""
        port = self._ports.get(host, 50_000)
        self._ports[host] = port + 1
        sock = SimSocket(self, host, port, on_datagram)
        self._sockets[(host, port)] = sock
        return sock

    def add_node(self, *, nat: SimNat | None = None, **options: Any) -> SimNode:
        """A node that joins through the bootstrap nodes (behind ``nat`` if given). By
        default it becomes persistent as soon as its firewall check passes (JS
        ``ephemeral: false``); pass ``ephemeral=None`` for JS's adaptive mode."""
        host = self._host() if nat is None else self.private_host(nat)
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

    def _send(
        self, src: str, src_port: int, data: bytes, host: str, port: int, ttl: int = 0
    ) -> None:
        self.stats.sent += 1
        nat = self.behind.get(src)
        if nat is not None:
            src_port = nat.outbound(src, src_port, host, port, self.timers.now())
            src = nat.public_host
        if 0 < ttl <= LOW_TTL:
            self.stats.expired += 1  # (it opened our NAT; it dies before the far side)
            return
        if self.loss and self.rng.random() < self.loss:
            self.stats.lost += 1
            return
        lo, hi = self.latency
        delay = lo + (hi - lo) * self.rng.random()
        self.timers.call_later(delay, lambda: self._deliver(src, src_port, data, host, port))

    def _deliver(self, src: str, src_port: int, data: bytes, host: str, port: int) -> None:
        nat = self.nats.get(host)
        if nat is not None:
            inside = nat.inbound(src, src_port, port, self.timers.now())
            if inside is None:
                self.stats.filtered += 1
                return
            host, port = inside
        sock = self._sockets.get((host, port))
        if sock is not None:
            self.stats.delivered += 1
            sock.on_datagram(data, src, src_port)
            return
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
