"""One dht-rpc node as a sans-IO state machine (JS dht-rpc ``index.js``, the ``DHT`` class).

:class:`DHTCore` holds the routing table, the node set, the NAT sampler and the request
layer; it answers the internal commands (PING, PING_NAT, FIND_NODE, DOWN_HINT, DELAYED_PING),
bootstraps, checks whether it is firewalled, turns from ephemeral into persistent after the
same uptime rules as JS, pings old nodes and refreshes the table every tick (5 s).

It never touches a socket or a clock: datagrams come in through :meth:`DHTCore.on_message`,
leave through the :class:`~hyperswarm.dht_rpc.io.Transport` it was given, and time is a
:class:`~hyperswarm.dht_rpc.timers.TimerQueue` whose owner advances it. The Trio node
(:class:`hyperswarm.dht_rpc.DHT`) and the simulator both drive this same class.

What JS does asynchronously (the bootstrap walk, the firewall test) is written as callbacks.
Bootstrap node names are resolved by the owner: the core takes IP addresses.
"""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from protomux.encoding import Address

from .errors import UNKNOWN_COMMAND, DHTError, NodeDestroyedError
from .health import NetworkHealth
from .io import (
    CLIENT,
    IO,
    MAX_WINDOW,
    SERVER,
    IncomingRequest,
    OutgoingRequest,
    Peer,
    Reply,
    Session,
    Transport,
)
from .nat import NatSampler
from .nodes import NodeSet
from .peer import node_id
from .query import Commit, Query
from .table import RoutingTable
from .timers import Timer, TimerQueue

__all__ = [
    "DELAYED_PING",
    "DOWN_HINT",
    "FIND_NODE",
    "PING",
    "PING_NAT",
    "DHTCore",
    "DHTStats",
    "NodeInfo",
]

PING = 0
PING_NAT = 1
FIND_NODE = 2
DOWN_HINT = 3
DELAYED_PING = 4

TICK_INTERVAL = 5000.0
SLEEPING_INTERVAL = 3 * TICK_INTERVAL
STABLE_TICKS = 240
MORE_STABLE_TICKS = 3 * STABLE_TICKS
REFRESH_TICKS = 60
RECENT_NODE = 12
OLD_NODE = 360
DEFAULT_CONCURRENCY = 10
MAX_PING_DELAY = 10_000
MAX_CHECKS = 10


@dataclass(eq=False, slots=True)
class NodeInfo:
    """A node of the routing table (JS dht-rpc's node object)."""

    id: bytes
    host: str
    port: int
    token: bytes | None = None
    to: Address | None = None  # our address as this node saw it
    sampled: int = 0
    added: int = 0
    pinged: int = 0
    seen: int = 0
    down_hints: int = 0


@dataclass(slots=True)
class DHTStats:
    queries_active: int = 0
    queries_total: int = 0
    commands_tx: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])
    commands_rx: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])


def _random_offset(rng: random.Random, n: int) -> int:
    return n - int(rng.random() * 0.5 * n)


class DHTCore:
    """One node. Call :meth:`bind` with the two local ports, then :meth:`start`.

    ``bootstrap`` is a list of ``(ip, port)``; ``ephemeral``: True or False fixes the mode,
    None (the default) is JS's adaptive mode. ``on_request(req)`` handles the non-internal
    commands and returns False for a command it does not know (the node then answers
    UNKNOWN_COMMAND). The ``on_*`` event attributes are plain callbacks.
    """

    def __init__(
        self,
        transport: Transport,
        timers: TimerQueue,
        *,
        bootstrap: Sequence[tuple[str, int]] = (),
        rng: random.Random | None = None,
        ephemeral: bool | None = None,
        firewalled: bool = True,
        adaptive: bool = True,
        quick_firewall: bool = True,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_window: int = MAX_WINDOW,
        max_ping_delay: int = MAX_PING_DELAY,
        send_down_hints: bool = True,
        down_hints_rate_limit: int = 50,
        filter_node: Callable[[Peer], bool] | None = None,
        nodes: Sequence[tuple[str, int]] = (),
        id: bytes | None = None,
    ) -> None:
        self.rng = rng if rng is not None else random.SystemRandom()
        self.timers = timers
        self.bootstrap_nodes: list[tuple[str, int]] = list(bootstrap)
        self.table = RoutingTable(
            id if id is not None else self.rng.randbytes(32), on_full_row=self._on_full_row
        )
        self.nodes: NodeSet[NodeInfo] = NodeSet()
        self.io = IO(
            self.table,
            transport,
            timers,
            rng=self.rng,
            max_window=max_window,
            firewalled=firewalled,
            on_request=self._on_request,
            on_response=self._on_response,
            on_timeout=self._on_timeout,
        )
        self.stats = DHTStats()
        self.concurrency = concurrency
        self.max_ping_delay = max_ping_delay
        self.bootstrapped = False
        self.ephemeral = True
        self.firewalled = self.io.firewalled
        self.adaptive = ephemeral is None and adaptive
        self.destroyed = False
        self.suspended = False
        self.filter_node = filter_node
        self.server_port = 0
        self.client_port = 0

        self.on_request: Callable[[IncomingRequest], bool] = lambda req: False
        self.on_ready: Callable[[], None] = _noop
        self.on_persistent: Callable[[], None] = _noop
        self.on_ephemeral: Callable[[], None] = _noop
        self.on_nat_update: Callable[[str | None, int], None] = lambda host, port: None
        self.on_add_node: Callable[[NodeInfo], None] = lambda node: None
        self.on_remove_node: Callable[[NodeInfo], None] = lambda node: None
        self.on_wakeup: Callable[[], None] = _noop

        self._nat = NatSampler()
        self._quick_firewall = quick_firewall
        self._force_persistent = ephemeral is False
        self._repinging = 0
        self._checks = 0
        self._tick = _random_offset(self.rng, 100)
        self._refresh_ticks = _random_offset(self.rng, REFRESH_TICKS)
        self._stable_ticks = STABLE_TICKS if self.adaptive else 0
        self._tick_timer: Timer | None = None
        self._last_tick = timers.now()
        self._last_host: str | None = None
        self._none_persistent_samples: list[tuple[str, int]] = []
        self._send_down_hints = send_down_hints
        self._down_hints_rate_limit = down_hints_rate_limit
        self._down_hints_sent = 0
        self.on_network_update: Callable[[], None] = _noop
        self.health = NetworkHealth(lambda _online, _degraded: self.on_network_update())
        self._pending_timers: set[Timer] = set()
        self._server_watchers: list[set[str]] = []
        self._boot_first = False
        self._boot_test_nat = False
        self._boot_round = 0
        self._started = False

        for host, port in reversed(list(nodes)):
            self.add_node(host, port)

    @classmethod
    def bootstrapper(
        cls, transport: Transport, timers: TimerQueue, host: str, port: int, **opts: Any
    ) -> DHTCore:
        """A first node of a network: persistent, not firewalled, its address known."""
        opts.setdefault("ephemeral", False)
        opts.setdefault("firewalled", False)
        opts.setdefault("bootstrap", ())
        core = cls(transport, timers, **opts)
        core.add_nat_sample(host, port)
        return core

    def add_nat_sample(self, host: str, port: int) -> None:
        """Our address as someone saw it (a bootstrapper knows its own)."""
        self._nat.add(host, port)

    # --- properties -------------------------------------------------------------------------

    @property
    def id(self) -> bytes | None:
        return None if self.ephemeral else self.table.id

    @property
    def host(self) -> str | None:
        return self._nat.host

    @property
    def port(self) -> int:
        return self._nat.port

    @property
    def randomized(self) -> bool:
        return self._nat.host is not None and self._nat.port == 0

    @property
    def socket(self) -> int:
        return CLIENT if self.firewalled else SERVER

    def remote_address(self) -> Address | None:
        """Our public address, once we know it and are reachable on it."""
        host, port = self._nat.host, self._nat.port
        if host is None or not port or self.firewalled or port != self.server_port:
            return None
        return Address(host, port)

    def bootstrap_addresses(self) -> list[tuple[str, int]]:
        return list(self.bootstrap_nodes)

    # --- lifecycle --------------------------------------------------------------------------

    def bind(self, server_port: int, client_port: int) -> None:
        """The local ports of the two sockets (the owner has bound them)."""
        self.server_port = server_port
        self.client_port = client_port

    def start(self) -> None:
        """Start ticking and bootstrap (JS does this on construction and bind)."""
        if self._started:
            return
        self._started = True
        self._last_tick = self.timers.now()
        self._tick_timer = self.timers.call_later(TICK_INTERVAL, self._on_tick)
        self.io.start()
        self._bootstrap()

    def destroy(self) -> None:
        if self.destroyed:
            return
        self.destroyed = True
        if self._tick_timer is not None:
            self._tick_timer.cancel()
        for timer in self._pending_timers:
            timer.cancel()
        self._pending_timers.clear()
        self.io.destroy()

    def suspend(self) -> None:
        if self.suspended or self.destroyed:
            return
        self.suspended = True
        if self._tick_timer is not None:
            self._tick_timer.cancel()
            self._tick_timer = None
        self.io.suspend()

    def resume(self) -> None:
        if not self.suspended or self.destroyed:
            return
        self.suspended = False
        self._tick_timer = self.timers.call_later(TICK_INTERVAL, self._on_tick)
        self._on_wakeup()
        self.io.resume()
        self.refresh()

    # --- datagrams --------------------------------------------------------------------------

    def on_message(self, socket: int, data: bytes, host: str, port: int) -> None:
        """A datagram from ``host:port`` on ``socket`` (:data:`SERVER` or :data:`CLIENT`)."""
        if socket == SERVER:
            for hosts in self._server_watchers:
                hosts.add(host)
        self.io.on_message(socket, data, host, port)

    # --- public operations ------------------------------------------------------------------

    def add_node(self, host: str, port: int) -> None:
        self._add_node(NodeInfo(node_id(host, port), host, port, added=self._tick))

    def to_array(self, limit: int | None = None) -> list[Address]:
        """The nodes we know, most recently seen first."""
        if limit == 0:
            return []
        return [Address(n.host, n.port) for n in self.nodes.to_array(limit=limit, reverse=True)]

    def session(self) -> Session:
        return Session(self.io)

    def find_node(self, target: bytes, **opts: Any) -> Query:
        if self.destroyed:
            raise NodeDestroyedError()
        self._refresh_ticks = REFRESH_TICKS
        return Query(self, target, True, FIND_NODE, None, **opts)

    def query(
        self,
        target: bytes,
        command: int,
        value: bytes | None = None,
        *,
        commit: Commit | bool | None = None,
        **opts: Any,
    ) -> Query:
        """An iterative query for an application command; call ``start()`` on it."""
        if self.destroyed:
            raise NodeDestroyedError()
        self._refresh_ticks = REFRESH_TICKS
        return Query(self, target, False, command, value, commit=commit, **opts)

    def create_request(
        self,
        to: Peer,
        token: bytes | None,
        internal: bool,
        command: int,
        target: bytes | None,
        value: bytes | None,
        session: Session | None = None,
        ttl: int = 0,
    ) -> OutgoingRequest | None:
        if internal and command == DOWN_HINT and not self._send_down_hints:
            return None
        req = self.io.create_request(to, token, internal, command, target, value, session, ttl)
        if req is not None and internal and command < len(self.stats.commands_tx):
            self.stats.commands_tx[command] += 1
        return req

    def request(
        self,
        *,
        command: int,
        to: Peer | Address | tuple[str, int],
        token: bytes | None = None,
        target: bytes | None = None,
        value: bytes | None = None,
        internal: bool = False,
        on_response: Callable[[Reply, OutgoingRequest], None],
        on_error: Callable[[DHTError, OutgoingRequest], None],
        session: Session | None = None,
        ttl: int = 0,
        retry: bool = True,
        socket: int | None = None,
        timeout: float = 0.0,
    ) -> OutgoingRequest:
        """Send one request to ``to``; exactly one of the callbacks will run.

        Raises :class:`NodeDestroyedError` once the node is destroyed."""
        peer = to if isinstance(to, Peer) else Peer(to[0], to[1])
        req = self.create_request(
            Peer(peer.host, peer.port), token, internal, command, target, value, session, ttl
        )
        if req is None:
            raise NodeDestroyedError()
        if socket is not None:
            req.socket = socket
        if not retry:
            req.retries = 0
        if timeout:
            req.timeout = timeout
        req.on_response = on_response
        req.on_error = on_error
        req.send()
        return req

    def ping(
        self,
        to: Address | tuple[str, int],
        *,
        on_response: Callable[[Reply, OutgoingRequest], None],
        on_error: Callable[[DHTError, OutgoingRequest], None],
        size: int = 0,
        **opts: Any,
    ) -> OutgoingRequest:
        value = bytes(size) if size > 0 else None
        return self.request(
            command=PING,
            internal=True,
            to=to,
            value=value,
            on_response=on_response,
            on_error=on_error,
            **opts,
        )

    def delayed_ping(
        self,
        to: Address | tuple[str, int],
        delay_ms: int,
        *,
        on_response: Callable[[Reply, OutgoingRequest], None],
        on_error: Callable[[DHTError, OutgoingRequest], None],
    ) -> OutgoingRequest:
        if delay_ms > self.max_ping_delay:
            raise ValueError(f"Delay exceeds max delay: {self.max_ping_delay}ms")
        return self.request(
            command=DELAYED_PING,
            internal=True,
            to=to,
            value=struct.pack("<I", delay_ms),
            timeout=delay_ms + 1000,
            on_response=on_response,
            on_error=on_error,
        )

    def refresh(self) -> None:
        node = self.table.random(self.rng)
        self._background_query(node.id if node is not None else self.table.id).start()

    def send_down_hint(self, to: Peer, down: Address, session: Session | None) -> None:
        """Tell ``to`` that ``down`` did not answer us (rate limited per tick, as JS)."""
        limit = self._down_hints_rate_limit
        if limit != -1 and self._down_hints_sent >= limit:
            return
        self._down_hints_sent += 1
        value = _ipv4_bytes(down.host, down.port)
        if value is None:
            return
        req = self.create_request(
            Peer(to.host, to.port, to.id), None, True, DOWN_HINT, None, value, session
        )
        if req is not None:
            req.send()

    # --- bootstrap --------------------------------------------------------------------------

    def _bootstrap(self) -> None:
        self._boot_first = self.firewalled and self._quick_firewall and not self._force_persistent
        self._boot_test_nat = False
        self._boot_round = 0
        self._boot_query()

    def _boot_query(self) -> None:
        q = self._background_query(self.table.id)
        on_data = q.on_data

        def ondata(reply: Any) -> None:
            on_data(reply)
            self._boot_on_data(reply)

        q.on_data = ondata
        q.on_close = lambda _err: self._boot_after_query()
        q.start()

    def _boot_on_data(self, reply: Reply) -> None:
        # JS's quick NAT heuristic: one PING_NAT answered during the bootstrap walk means
        # the firewall test is worth running now rather than after the stable period.
        if not self._boot_first:
            return
        self._boot_first = False

        def answered(_r: Reply, _q: OutgoingRequest) -> None:
            self._boot_test_nat = True

        req = self.create_request(
            reply.from_, None, True, PING_NAT, None, struct.pack("<H", self.server_port)
        )
        if req is not None:
            req.on_response = answered
            req.send()

    def _boot_after_query(self) -> None:
        if self.destroyed:
            return
        if self.bootstrapped or (not self._boot_test_nat and not self._force_persistent):
            self._boot_done()
            return
        self._update_network_state(not self._force_persistent, self._boot_next)

    def _boot_next(self, ok: bool) -> None:
        self._boot_round += 1
        if not ok or self._boot_round >= 2 or self.destroyed:
            self._boot_done()
            return
        self._boot_query()

    def _boot_done(self) -> None:
        if self.bootstrapped:
            return
        self.bootstrapped = True
        self.on_ready()

    def _background_query(self, target: bytes) -> Query:
        self._refresh_ticks = REFRESH_TICKS
        background = min(self.concurrency, max(2, self.concurrency // 8))
        q = Query(self, target, True, FIND_NODE, None, concurrency=background)

        def ondata(_reply: Any) -> None:
            # yield to other traffic
            q.concurrency = self.concurrency if len(self.io.inflight) < 3 else background

        q.on_data = ondata
        return q

    # --- network state ----------------------------------------------------------------------

    def _update_network_state(self, only_firewall: bool, done: Callable[[bool], None]) -> None:
        if not self.ephemeral or (only_firewall and not self.firewalled):
            done(False)
            return
        host, port = self._nat.host, self._nat.port
        if not only_firewall:
            self._stable_ticks = MORE_STABLE_TICKS
            self._last_host = host
        if host is None or port == 0:
            done(False)
            return
        sampler = NatSampler() if self.firewalled else self._nat

        def checked(firewalled: bool) -> None:
            done(self._finish_network_state(only_firewall, host, port, sampler, firewalled))

        if self.firewalled:
            self._check_if_firewalled(sampler, checked)
        else:
            checked(False)

    def _finish_network_state(
        self, only_firewall: bool, host: str, port: int, sampler: NatSampler, firewalled: bool
    ) -> bool:
        if firewalled or self.destroyed:
            return False
        self.firewalled = self.io.firewalled = False
        if not self.ephemeral or host != self._nat.host or port != self._nat.port:
            return False
        if sampler.host != host or sampler.port == 0:
            return False
        nid = node_id(sampler.host, sampler.port)
        if not only_firewall:
            self.ephemeral = self.io.ephemeral = False
        if sampler is not self._nat:
            prev = (self._nat.host, self._nat.port)
            self._none_persistent_samples = []
            self._nat = sampler
            if prev != (sampler.host, sampler.port):
                self.on_nat_update(sampler.host, sampler.port)
        if self.table.id != nid:
            old = self.table.to_array()
            self.table = self.io.table = RoutingTable(nid, on_full_row=self._on_full_row)
            for node in old:
                if node.id == nid:
                    continue
                if not self.table.add(node):
                    self.nodes.remove(node)
            if self.bootstrapped:
                self.refresh()
        if not self.ephemeral:
            self.on_persistent()
        return True

    def _check_if_firewalled(self, sampler: NatSampler, done: Callable[[bool], None]) -> None:
        targets: list[tuple[str, int]] = []
        for node in self.nodes.to_array(limit=5, reverse=True):
            targets.append((node.host, node.port))
        if len(targets) < 5:
            targets.extend(self.bootstrap_addresses())
        if not targets:
            done(True)
            return
        hosts: set[str] = set()
        self._server_watchers.append(hosts)
        value = struct.pack("<H", self.server_port)
        replies: list[Reply] = []
        missing = [len(targets)]

        def finish() -> None:
            if hosts in self._server_watchers:
                self._server_watchers.remove(hosts)
            count = 0
            for res in replies:
                if res.from_.host in hosts:
                    count += 1
                    sampler.add(res.to.host, res.to.port)
            if count < (3 if len(targets) >= 5 else 1):
                done(True)
            elif sampler.host is None or self._nat.host != sampler.host:
                done(True)
            elif sampler.port == 0 or sampler.port != self.server_port:
                done(True)
            else:
                done(False)

        def answered(res: Reply, _req: OutgoingRequest) -> None:
            replies.append(res)
            missing[0] -= 1
            if missing[0] == 0:
                finish()

        def failed(_err: DHTError, _req: OutgoingRequest) -> None:
            missing[0] -= 1
            if missing[0] == 0:
                finish()

        for host, port in targets:
            req = self.create_request(Peer(host, port), None, True, PING_NAT, None, value)
            if req is None:
                finish()
                return
            req.on_response = answered
            req.on_error = failed
            req.send()

    # --- the table ---------------------------------------------------------------------------

    def _nat_add(self, host: str, port: int) -> None:
        prev = (self._nat.host, self._nat.port)
        self._nat.add(host, port)
        if prev != (self._nat.host, self._nat.port):
            self.on_nat_update(self._nat.host, self._nat.port)

    def _sample_bootstrap_maybe(self, from_: Peer, to: Address) -> None:
        if len(self._none_persistent_samples) >= max(1, len(self.bootstrap_nodes)):
            return
        key = (from_.host, from_.port)
        if key in self._none_persistent_samples:
            return
        self._none_persistent_samples.append(key)
        self._nat_add(to.host, to.port)

    def _add_node_from_network(self, sample: bool, from_: Peer, to: Address) -> None:
        if self.filter_node is not None and not self.filter_node(from_):
            return
        if from_.id is None:
            self._sample_bootstrap_maybe(from_, to)
            return
        old = self.table.get(from_.id)
        if old is not None:
            if sample and (old.sampled == 0 or self._tick - old.sampled >= OLD_NODE):
                old.to = to
                old.sampled = self._tick
                self._nat_add(to.host, to.port)
            old.pinged = old.seen = self._tick
            self.nodes.add(old)
            return
        self._add_node(
            NodeInfo(from_.id, from_.host, from_.port, to=to, added=self._tick, seen=self._tick)
        )

    def _add_node(self, node: NodeInfo) -> None:
        if node in self.nodes or node.id == self.table.id:
            return
        node.added = node.pinged = node.seen = self._tick
        if not self.table.add(node):
            return
        self.nodes.add(node)
        if node.to is not None and node.sampled == 0:
            node.sampled = self._tick
            self._nat_add(node.to.host, node.to.port)
        self.on_add_node(node)

    def _remove_node(self, node: NodeInfo) -> None:
        if node not in self.nodes:
            return
        self.table.remove(node.id)
        self.nodes.remove(node)
        self.on_remove_node(node)

    def _on_full_row(self, row: Any, new_node: NodeInfo) -> None:
        if not self.bootstrapped or self._repinging >= 3:
            return
        oldest: NodeInfo | None = None
        for node in row.nodes:
            if node.pinged == self._tick:
                continue
            if (
                oldest is None
                or oldest.pinged > node.pinged
                or (oldest.pinged == node.pinged and oldest.added > node.added)
            ):
                oldest = node
        if oldest is None:
            return
        if self._tick - oldest.pinged < RECENT_NODE and self._tick - oldest.added > OLD_NODE:
            return
        self._reping_and_swap(new_node, oldest)

    def _reping_and_swap(self, new_node: NodeInfo, old_node: NodeInfo) -> None:
        last_seen = old_node.seen
        old_node.pinged = self._tick
        self._repinging += 1

        def swap() -> None:
            self._repinging -= 1
            self._remove_node(old_node)
            self._add_node(new_node)

        def answered(_r: Reply, _q: OutgoingRequest) -> None:
            if old_node.seen <= last_seen:
                swap()
                return
            self._repinging -= 1

        req = self.create_request(Peer(old_node.host, old_node.port), None, True, PING, None, None)
        if req is None:
            self._repinging -= 1
            return
        req.on_response = answered
        req.on_error = lambda _e, _q: swap()
        req.send()

    def _check(self, node: NodeInfo) -> None:
        node.pinged = self._tick
        last_seen = node.seen

        def answered(_r: Reply, _q: OutgoingRequest) -> None:
            self._checks -= 1
            if node.seen <= last_seen:
                self._remove_node(node)

        def failed(_e: DHTError, _q: OutgoingRequest) -> None:
            self._checks -= 1
            self._remove_node(node)

        self._checks += 1
        req = self.create_request(Peer(node.host, node.port), None, True, PING, None, None)
        if req is None:
            self._checks -= 1
            return
        req.on_response = answered
        req.on_error = failed
        req.send()

    # --- requests ----------------------------------------------------------------------------

    def _on_request(self, req: IncomingRequest, external: bool) -> None:
        if req.from_.id is not None:
            self._add_node_from_network(not external, req.from_, req.to)
        if req.internal:
            command = req.command
            if command < len(self.stats.commands_rx):
                self.stats.commands_rx[command] += 1
            if command == PING:
                req.send_reply(0, None, False, False)
                return
            if command == DELAYED_PING:
                self._on_delayed_ping(req)
                return
            if command == PING_NAT:
                if req.value is None or len(req.value) < 2:
                    return
                (port,) = struct.unpack_from("<H", req.value)
                if port == 0:
                    return
                req.send_reply(0, None, False, False, to=Address(req.from_.host, port))
                return
            if command == FIND_NODE:
                if req.target is None:
                    return
                req.send_reply(0, None, False, True)
                return
            if command == DOWN_HINT:
                if req.value is None or len(req.value) < 6:
                    return
                if self._checks < MAX_CHECKS:
                    node = self.table.get(_hash6(req.value[:6]))
                    if node is not None and (node.pinged < self._tick or node.down_hints == 0):
                        node.down_hints += 1
                        self._check(node)
                req.send_reply(0, None, False, False)
                return
            req.send_reply(UNKNOWN_COMMAND, None, False, req.target is not None)
            return
        if self.on_request(req) is False:
            req.send_reply(UNKNOWN_COMMAND, None, False, req.target is not None)

    def _on_delayed_ping(self, req: IncomingRequest) -> None:
        if req.value is None or len(req.value) < 4:
            return
        (delay,) = struct.unpack_from("<I", req.value)
        if delay > self.max_ping_delay:
            return
        timer: Timer | None = None

        def fire() -> None:
            if timer is not None:
                self._pending_timers.discard(timer)
            if not self.destroyed:
                req.send_reply(0, None, False, False)

        timer = self.timers.call_later(delay, fire)
        self._pending_timers.add(timer)

    def _on_response(self, reply: Reply, external: bool) -> None:
        self._add_node_from_network(not external, reply.from_, reply.to)

    def _on_timeout(self, req: OutgoingRequest) -> None:
        if req.to.id is None:
            return
        node = self.table.get(req.to.id)
        if node is not None:
            self._remove_node(node)

    # --- ticks -------------------------------------------------------------------------------

    def _on_wakeup(self) -> None:
        self._tick += 2 * OLD_NODE
        self._tick += 8 - (self._tick & 7) - 2
        self._stable_ticks = MORE_STABLE_TICKS
        self._refresh_ticks = 1
        self._last_host = None
        self.health.reset()
        if self.adaptive and not self.ephemeral:
            self.ephemeral = self.io.ephemeral = True
            self.on_ephemeral()
        self.on_wakeup()

    def _on_tick(self) -> None:
        if self.destroyed or self.suspended:
            return
        self._tick_timer = self.timers.call_later(TICK_INTERVAL, self._on_tick)
        now = self.timers.now()
        if now - self._last_tick > SLEEPING_INTERVAL:
            self._on_wakeup()
        else:
            self._tick += 1
        self._last_tick = now
        if not self.bootstrapped:
            return
        if self.adaptive and self.ephemeral:
            self._stable_ticks -= 1
            if self._stable_ticks <= 0:
                if self._last_host == self._nat.host:
                    self._stable_ticks = MORE_STABLE_TICKS
                else:
                    self._update_network_state(False, _ignore_bool)
        if (self._tick & 7) == 0:
            self._ping_some()
        if (self._tick & 63) == 0 and len(self.nodes) < self.table.k:
            self.refresh()
        else:
            self._refresh_ticks -= 1
            if self._refresh_ticks <= 0:
                self.refresh()
        self._down_hints_sent = 0
        self.health.update(self.io.stats.responses, self.io.stats.timeouts)

    def _ping_some(self) -> None:
        cnt = 3 if len(self.io.inflight) > 2 else 5
        oldest = self.nodes.oldest
        if oldest is None:
            self.refresh()
            return
        if self._tick - oldest.pinged < RECENT_NODE:
            cnt = 2
        # JS walks from the oldest node and stops at the first one pinged this tick
        for node in self.nodes.from_oldest(cnt):
            if self._tick == node.pinged:
                break
            self._check(node)


def _noop() -> None:
    pass


def _ignore_bool(_ok: bool) -> None:
    pass


def _hash6(addr: bytes) -> bytes:
    return hashlib.blake2b(addr, digest_size=32).digest()


def _ipv4_bytes(host: str, port: int) -> bytes | None:
    parts = host.split(".")
    if len(parts) != 4:
        return None
    try:
        return bytes(int(p) for p in parts) + struct.pack("<H", port)
    except ValueError:
        return None
