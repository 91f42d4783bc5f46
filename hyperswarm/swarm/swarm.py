"""Hyperswarm for Trio (JS ``hyperswarm`` 4): peers that join a topic find each other on the
DHT and get one encrypted connection per pair.

::

    async def handler(conn: SecretStream, info: PeerInfo) -> None:
        ...  # the connection closes when this returns

    async with Hyperswarm(bootstrap=["127.0.0.1:49737"], on_connection=handler) as swarm:
        discovery = swarm.join(topic)  # announce and look up
        await discovery.flushed()  # the first announce is done
        await swarm.flush()  # and the peers found so far are connected

Connections go to ``on_connection(conn, peer_info)`` (JS's ``connection`` event), each in a
task of the swarm: the connection stays open while the handler runs and is closed when it
returns; the swarm cancels the handler when it drops the connection (a duplicate, the swarm
closing). Without a handler the swarm reads and drops what the peer sends until it closes.

As JS: at most ``max_parallel`` dials at once and ``max_peers`` connections (fewer when
peers were asked for explicitly); a peer that already has a connection is never dialled; when
both peers dial each other the accepting side keeps one connection by the JS rule (the
larger public key is the dialler, unless the older connection already carried bytes both
ways); failed or closed peers are dialled again after the backoffs of :mod:`.retry`; a peer
the firewall refuses is banned; the swarm never dials itself.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import trio

from hypercore.crypto import KeyPair
from protomux.encoding import Address

from ..hyperdht import HyperDHT, HyperDHTError
from ..hyperdht.messages import NoisePayload, Peer
from ..hyperdht.relay_connection import select_relay
from ..hyperdht.server import Server
from ..secret_stream import SecretStream, SecretStreamError
from ..udx import UDXStream
from .discovery import PeerDiscovery, PeerDiscoverySession
from .errors import SwarmDestroyedError, SwarmError
from .peer_info import PeerInfo, PeerQueue
from .retry import RetryTimer

__all__ = ["ConnectionHandler", "Firewall", "Hyperswarm", "SwarmStats"]

MAX_PEERS = 64
MAX_PARALLEL = 3

#: ``firewall(remote_public_key, payload)``: True refuses (and bans) the peer. ``payload`` is
#: the peer's handshake payload for inbound connections, None before a dial (as JS).
Firewall = Callable[[bytes, NoisePayload | None], bool]
#: ``await on_connection(conn, peer_info)`` for each connection.
ConnectionHandler = Callable[[SecretStream, PeerInfo], Awaitable[None]]

_STREAM_ENDED = (SecretStreamError, trio.BrokenResourceError, trio.ClosedResourceError)


@dataclass
class _ClientStats:
    opened: int = 0
    closed: int = 0
    attempted: int = 0


@dataclass
class _ServerStats:
    opened: int = 0
    closed: int = 0


@dataclass
class SwarmStats:
    """Counters as JS ``swarm.stats``."""

    updates: int = 0
    client: _ClientStats = field(default_factory=_ClientStats)
    server: _ServerStats = field(default_factory=_ServerStats)
    banned_peers: int = 0


class _Conn:
    """A connection of the swarm, from its dial (or its acceptance) to its close."""

    def __init__(self, remote_public_key: bytes, *, client: bool) -> None:
        self.remote_public_key = remote_public_key
        self.client = client
        self.stream: SecretStream | None = None
        self.scope = trio.CancelScope()
        self.closed = trio.Event()
        self.dropped = False  # closed by the swarm (duplicate, suspend, destroy)

    def established(self) -> bool:
        """Bytes went both ways (JS ``rawBytesRead > 0 && rawBytesWritten > 0``)."""
        raw = self.stream.transport_stream if self.stream is not None else None
        return isinstance(raw, UDXStream) and raw.bytes_read > 0 and raw.bytes_written > 0

    def send_keep_alive(self) -> None:
        if self.stream is not None:
            try:
                self.stream.send_nowait(b"")
            except (SecretStreamError, trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    def drop(self) -> None:
        self.dropped = True
        self.scope.cancel()


class _Flush:
    def __init__(self, missing: int, tick: int) -> None:
        self.missing = missing
        self.tick = tick
        self.event = trio.Event()
        self.result = True

    def resolve(self, result: bool) -> None:
        self.result = result
        self.event.set()


#: ``relay_through=`` of a swarm: a relay's public key (or a list to pick from, or a
#: function giving either), used when needed; or ``relay_through(force, swarm)`` deciding.
SwarmRelayThrough = bytes | Sequence[bytes] | Callable[..., Any] | None
#: Connect errors after which a peer is dialled through the relay (JS shouldForceRelaying).
_FORCE_RELAYING = frozenset(
    {
        "HOLEPUNCH_ABORTED",
        "HOLEPUNCH_DOUBLE_RANDOMIZED_NATS",
        "CANNOT_HOLEPUNCH",
        "REMOTE_NOT_HOLEPUNCHABLE",
    }
)


def _relay_function(relay_through: SwarmRelayThrough) -> Callable[[bool, Any], bytes | None]:
    """JS ``toRelayFunction``: a function is used as it is; a key (or keys) is used when
    forced or when the swarm's node is behind a random NAT."""
    if callable(relay_through):
        return relay_through

    def relay(force: bool, swarm: Any) -> bytes | None:
        if force or swarm.dht.randomized:
            return select_relay(relay_through)
        return None

    return relay


class Hyperswarm:
    """A swarm: one key pair, one DHT server listening on it, topics joined, connections.

    ``dht``: a running :class:`HyperDHT` to use (yours to close); otherwise the swarm makes
    one from ``bootstrap``, ``host`` and ``port`` and closes it with itself. ``backoffs``
    (four seconds values, S/M/L/X) and ``jitter`` as JS; ``rng`` for tests."""

    def __init__(
        self,
        *,
        key_pair: KeyPair | None = None,
        seed: bytes | None = None,
        bootstrap: Sequence[str | tuple[str, int]] | None = None,
        host: str = "0.0.0.0",
        port: int | None = None,
        max_peers: int = MAX_PEERS,
        max_parallel: int = MAX_PARALLEL,
        max_client_connections: float = math.inf,
        max_server_connections: float = math.inf,
        firewall: Firewall | None = None,
        dht: HyperDHT | None = None,
        on_connection: ConnectionHandler | None = None,
        backoffs: Sequence[float] | None = None,
        jitter: float | None = None,
        rng: random.Random | None = None,
        relay_through: SwarmRelayThrough = None,
    ) -> None:
        self.key_pair = key_pair if key_pair is not None else HyperDHT.key_pair(seed)
        self.rng = rng or random.Random()
        self._own_dht = dht is None
        self._dht_options: dict[str, Any] = {"host": host}
        if port is not None:
            self._dht_options["port"] = port
        if bootstrap is not None:
            self._dht_options["bootstrap"] = list(bootstrap)
        self._dht = dht
        self.max_peers = max_peers
        self.max_parallel = max_parallel
        self.max_client_connections = max_client_connections
        self.max_server_connections = max_server_connections
        self.on_connection = on_connection
        self._firewall = firewall
        #: ``relay_through(force, swarm)`` -> the blind relay's public key, or None (JS's
        #: ``relayThrough``): a key given as such is used when forced (after a punch that
        #: cannot work) or while this node is behind a random NAT.
        self.relay_through: Callable[[bool, Hyperswarm], bytes | None] | None = (
            _relay_function(relay_through) if relay_through is not None else None
        )
        self.destroyed = False
        self.suspended = False
        #: dials in progress
        self.connecting = 0
        #: open connections (both directions), as ``SecretStream`` objects
        self.connections: set[SecretStream] = set()
        #: every peer the swarm knows now, by public key
        self.peers: dict[bytes, PeerInfo] = {}
        self.explicit_peers: set[PeerInfo] = set()
        self.stats = SwarmStats()
        self._server: Server | None = None
        self._listening: trio.Event | None = None
        self._listen_error: BaseException | None = None
        self._discovery: dict[bytes, PeerDiscovery] = {}
        self._timer_options = (backoffs, jitter)
        self._timer = self._new_timer()
        self._timer_scope: trio.CancelScope | None = None
        self._queue = PeerQueue(self.rng)
        self._all: dict[bytes, _Conn] = {}  # by remote key: open and dialling
        self._open: dict[SecretStream, _Conn] = {}
        self._pending_flushes: list[_Flush] = []
        self._flush_tick = 0
        self._draining = False
        self._client_connections = 0
        self._server_connections = 0
        self._stack: AsyncExitStack | None = None
        self._nursery: trio.Nursery | None = None
        self._update = trio.Event()

    def _new_timer(self) -> RetryTimer:
        backoffs, jitter = self._timer_options
        return RetryTimer(
            self._requeue,
            backoffs=backoffs,
            rng=self.rng,
            **({} if jitter is None else {"jitter": jitter}),
        )

    # --- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise SwarmError("the swarm is already running")
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            if self._dht is None:
                self._dht = await stack.enter_async_context(HyperDHT(**self._dht_options))
            self._nursery = await stack.enter_async_context(trio.open_nursery())
            self._server = self.dht.create_server(
                firewall=lambda key, payload, _address: self._handle_firewall(key, payload),
                on_connection=self._on_server_connection,
                relay_through=lambda: self._maybe_relay(False),
            )
            self._start_timer()
        except BaseException as exc:
            await stack.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        await self.destroy()
        return None

    def _start_timer(self) -> None:
        scope = self._timer_scope = trio.CancelScope()
        timer = self._timer

        async def run() -> None:
            with scope:
                await timer.run()

        self.nursery.start_soon(run)

    @property
    def dht(self) -> HyperDHT:
        if self._dht is None:
            raise SwarmError("the swarm is not running (use it as an async context manager)")
        return self._dht

    @property
    def server(self) -> Server:
        if self._server is None:
            raise SwarmError("the swarm is not running (use it as an async context manager)")
        return self._server

    @property
    def nursery(self) -> trio.Nursery:
        if self._nursery is None:
            raise SwarmError("the swarm is not running (use it as an async context manager)")
        return self._nursery

    @property
    def relay_addresses(self) -> list[Address]:
        return self.server.relay_addresses

    @property
    def listening(self) -> bool:
        return self._listening is not None and self._listening.is_set()

    async def listen(self) -> None:
        """Start the swarm's server on its key pair (joining a topic as a server does it)."""
        if self.destroyed:
            raise SwarmDestroyedError("the swarm is destroyed")
        if self._listening is None:
            self._listening = trio.Event()
            try:
                await self.server.listen(self.key_pair)
            except BaseException as exc:
                self._listen_error = exc
                self._listening.set()
                raise
            self._listening.set()
            return
        await self._listening.wait()
        if self._listen_error is not None:
            raise SwarmError("the swarm's server failed to listen") from self._listen_error

    async def destroy(self) -> None:
        """Leave every topic (unannouncing), close the server and every connection, and (if
        the swarm made it) the DHT node. Safe to call twice."""
        if self.destroyed:
            await trio.lowlevel.checkpoint()
            return
        self.destroyed = True
        stack, self._stack = self._stack, None
        try:
            if self._timer_scope is not None:
                self._timer_scope.cancel()
            await self.clear()
            if self._server is not None:
                await self._server.close()
            for flush in self._pending_flushes:
                flush.resolve(False)
            self._pending_flushes.clear()
            for conn in list(self._all.values()):
                conn.drop()
            if self._nursery is not None:
                self._nursery.cancel_scope.cancel()
        finally:
            if stack is not None:
                await stack.aclose()

    async def clear(self) -> None:
        """Leave every topic."""
        discoveries = list(self._discovery.values())
        self._discovery.clear()
        async with trio.open_nursery() as nursery:
            for d in discoveries:
                nursery.start_soon(d.destroy)

    async def suspend(self) -> None:
        """Stop discovery, close every connection and the server (JS ``suspend``); the
        DHT node keeps running. :meth:`resume` undoes it."""
        if self.suspended:
            await trio.lowlevel.checkpoint()
            return
        self.suspended = True
        async with trio.open_nursery() as nursery:
            for d in self._discovery.values():
                nursery.start_soon(d.suspend)
        conns = list(self._all.values())
        for conn in conns:
            conn.drop()
        for conn in conns:
            await conn.closed.wait()
        if self._server is not None:
            await self._server.close()
        if self._timer_scope is not None:
            self._timer_scope.cancel()
        self._timer = self._new_timer()
        self._start_timer()
        self._queue = PeerQueue(self.rng)
        for info in self.peers.values():
            info.queued = False
            info.waiting = False

    async def resume(self) -> None:
        """Listen and discover again after :meth:`suspend`."""
        if not self.suspended:
            await trio.lowlevel.checkpoint()
            return
        was_listening = self._listening is not None
        self._server = self.dht.create_server(
            firewall=lambda key, payload, _address: self._handle_firewall(key, payload),
            on_connection=self._on_server_connection,
            relay_through=lambda: self._maybe_relay(False),
        )
        self._listening = None
        self.suspended = False
        if was_listening:
            await self.listen()
        for d in self._discovery.values():
            d.resume()
        self._attempt_client_connections()

    # --- topics and peers -------------------------------------------------------------------

    def join(
        self, topic: bytes, *, server: bool = True, client: bool = True, limit: float = math.inf
    ) -> PeerDiscoverySession:
        """Announce on ``topic`` (``server``) and/or connect to the peers announced there
        (``client``); ``topic`` is 32 bytes, used as the DHT target as it is."""
        if self.destroyed:
            raise SwarmDestroyedError("the swarm is destroyed")
        topic = _topic(topic)
        discovery = self._discovery.get(topic)
        if discovery is not None and not discovery.destroyed:
            return discovery.session(server=server, client=client, limit=limit)
        wait: trio.Event | None = None
        if discovery is not None:  # a leave still unannouncing: the new one waits for it
            wait = trio.Event()
            old = discovery

            async def finish_old() -> None:
                try:
                    await old.destroy()
                finally:
                    assert wait is not None
                    wait.set()

            self.nursery.start_soon(finish_old)
        discovery = PeerDiscovery(
            self,
            topic,
            limit=limit,
            wait=wait,
            suspended=self.suspended,
            on_peer=lambda peer: self._handle_peer(peer, topic),
        )
        self._discovery[topic] = discovery
        return discovery.session(server=server, client=client, limit=limit)

    async def leave(self, topic: bytes) -> None:
        """Stop announcing and looking up ``topic`` (connections stay)."""
        topic = _topic(topic)
        discovery = self._discovery.get(topic)
        if discovery is None:
            await trio.lowlevel.checkpoint()
            return
        try:
            await discovery.destroy()
        finally:
            if self._discovery.get(topic) is discovery:
                del self._discovery[topic]

    def status(self, topic: bytes) -> PeerDiscovery | None:
        """The discovery of ``topic``, or None if it is not joined."""
        return self._discovery.get(_topic(topic))

    def topics(self) -> Iterator[PeerDiscovery]:
        return iter(list(self._discovery.values()))

    def join_peer(self, public_key: bytes) -> None:
        """Keep a connection to this peer, found by its key alone (retried without end)."""
        info = self._upsert_peer(public_key, None)
        if info is None:
            return
        if info not in self.explicit_peers:
            info.explicit = True
            self.explicit_peers.add(info)
        if public_key in self._all:
            return
        if info.update_priority():
            self._enqueue(info)

    def leave_peer(self, public_key: bytes) -> None:
        info = self.peers.get(bytes(public_key))
        if info is None:
            return
        info.explicit = False
        self.explicit_peers.discard(info)
        self._maybe_delete_peer(info)

    def is_connected(self, public_key: bytes) -> bool:
        """An open connection to this peer exists."""
        conn = self._all.get(bytes(public_key))
        return conn is not None and conn.stream in self._open

    async def flush(self) -> bool:
        """Wait until every topic's current round is done and the peers found so far are
        dialled (connected or failed), or the swarm is at its peer limit. False if the swarm
        was destroyed meanwhile."""
        for d in list(self._discovery.values()):
            await d.flushed()
        if self._flush_all_maybe():
            return True
        pending = len(self._all) - len(self._open)
        if not len(self._queue) and not pending:
            return True
        flush = _Flush(len(self._queue) + pending, self._flush_tick)
        self._flush_tick += 1
        self._pending_flushes.append(flush)
        await flush.event.wait()
        return flush.result

    async def wait_update(self) -> None:
        """Wait for the next change of connections or peers (JS ``update`` event)."""
        await self._update.wait()

    def _emit_update(self) -> None:
        self.stats.updates += 1
        self._update.set()
        self._update = trio.Event()

    # --- dialling ---------------------------------------------------------------------------

    def _enqueue(self, info: PeerInfo) -> None:
        if info.queued:
            return
        info.queued = True
        info.flush_tick = self._flush_tick
        self._queue.add(info)
        self._attempt_client_connections()

    def _requeue(self, batch: list[PeerInfo]) -> None:
        if self.suspended or self.destroyed:
            return
        for info in batch:
            info.waiting = False
            if not info.update_priority() or info.public_key in self._all or info.queued:
                continue
            info.queued = True
            info.flush_tick = self._flush_tick
            self._queue.add(info)
        self._attempt_client_connections()

    def _flush_maybe(self, info: PeerInfo) -> None:
        for flush in list(self._pending_flushes):
            if info.flush_tick > flush.tick:
                continue
            flush.missing -= 1
            if flush.missing > 0:
                continue
            flush.resolve(True)
            self._pending_flushes.remove(flush)

    def _within_max_peers(self) -> bool:
        e = len(self.explicit_peers)
        factor = 1 if e == 0 else 2 if e < 2 else 3 if e < 4 else 4
        return factor * len(self._all) < self.max_peers

    def _flush_all_maybe(self) -> bool:
        if self.connecting > 0 or (
            self._within_max_peers() and self._client_connections < self.max_client_connections
        ):
            return False
        while self._pending_flushes:
            self._pending_flushes.pop().resolve(True)
        return True

    def _should_connect_explicit(self) -> bool:
        return not self.destroyed and not self.suspended and self.connecting < self.max_parallel

    def _should_connect(self) -> bool:
        return (
            self._should_connect_explicit()
            and self._within_max_peers()
            and self._client_connections < self.max_client_connections
        )

    def _should_requeue(self, info: PeerInfo) -> bool:
        if self.suspended or self.destroyed:
            return False
        if info.explicit:
            return True
        return any(topic in self._discovery for topic in info.topics)

    def _attempt_client_connections(self) -> None:
        if self._draining or self.suspended or self._nursery is None:
            return
        self._draining = True
        try:
            now = trio.current_time()
            for info in list(self.explicit_peers):
                if not self._should_connect_explicit():
                    break
                if info.attempts >= 5 or now - info.disconnected_time < info.attempts:
                    continue
                self._connect(info, queued=False)
            while len(self._queue) and self._should_connect():
                head = self._queue.shift()
                assert head is not None
                head.queued = False
                self._connect(head, queued=True)
        finally:
            self._draining = False
        if self.connecting == 0:
            self._flush_all_maybe()

    def _connect(self, info: PeerInfo, *, queued: bool) -> None:
        if (
            info.banned
            or info.public_key in self._all
            or self._handle_firewall(info.public_key, None)
        ):
            if queued:
                self._flush_maybe(info)
            return
        conn = _Conn(info.public_key, client=True)
        self._all[info.public_key] = conn
        self.stats.client.attempted += 1
        self.connecting += 1
        self._client_connections += 1
        self.nursery.start_soon(self._run_client, conn, info, queued)
        self._emit_update()

    async def _run_client(self, conn: _Conn, info: PeerInfo, queued: bool) -> None:
        opened = False
        try:
            with conn.scope:
                try:
                    stream = await self.dht.connect(
                        info.public_key,
                        key_pair=self.key_pair,
                        relay_addresses=info.relay_addresses,
                        relay_through=self._maybe_relay(info.force_relaying),
                    )
                except HyperDHTError as e:
                    if self.relay_through is not None and e.code in _FORCE_RELAYING:
                        info.force_relaying = True  # punching cannot work: relay next time
                        info.attempts = 0  # (and soon)
                    return
                except (SecretStreamError, trio.BrokenResourceError, OSError):
                    return
                conn.stream = stream
                try:
                    async with stream:
                        opened = True
                        self.stats.client.opened += 1
                        self._connect_done()
                        self._open[stream] = conn
                        self.connections.add(stream)
                        info.connected(trio.current_time())
                        info.client = True
                        if queued:
                            self._flush_maybe(info)
                        self._emit_update()
                        await self._handle(stream, info)
                except _STREAM_ENDED:
                    pass
        finally:
            if not opened:
                self._connect_done()
            self.stats.client.closed += 1
            if conn.stream is not None:
                self._open.pop(conn.stream, None)
                self.connections.discard(conn.stream)
            if self._all.get(conn.remote_public_key) is conn:
                del self._all[conn.remote_public_key]
            self._client_connections -= 1
            info.disconnected(trio.current_time())
            info.waiting = self._should_requeue(info) and self._timer.add(info)
            self._maybe_delete_peer(info)
            if not opened and queued:
                self._flush_maybe(info)
            conn.closed.set()
            self._attempt_client_connections()
            self._emit_update()

    def _connect_done(self) -> None:
        self.connecting -= 1
        if self.connecting < self.max_parallel:
            self._attempt_client_connections()
        if self.connecting == 0:
            self._flush_all_maybe()

    async def _handle(self, stream: SecretStream, info: PeerInfo) -> None:
        if self.on_connection is not None:
            await self.on_connection(stream, info)
            return
        async for _ in stream:  # nobody listens: read until the peer closes
            pass

    # --- accepting --------------------------------------------------------------------------

    def _maybe_relay(self, force: bool) -> bytes | None:
        """The relay for this connection, if any (JS ``_maybeRelayConnection``)."""
        if self.relay_through is None:
            return None
        return self.relay_through(force, self)

    def _handle_firewall(self, remote_public_key: bytes, payload: NoisePayload | None) -> bool:
        if remote_public_key == self.key_pair.public_key:
            return True
        info = self.peers.get(remote_public_key)
        if info is not None and info.banned:
            return True
        refused = self._firewall is not None and self._firewall(remote_public_key, payload)
        if refused:
            banned = info if info is not None else self._upsert_peer(remote_public_key, None)
            if banned is not None:
                self._ban_peer(banned)
        return refused

    async def _on_server_connection(self, stream: SecretStream) -> None:
        """A connection the DHT server accepted (in a task of the node, inside the stream's
        ``async with``; returning closes it)."""
        remote = stream.remote_public_key
        while True:
            if self.destroyed or self.suspended:
                return
            existing = self._all.get(remote)
            if existing is None:
                break
            # The JS rule: take the new one if the old one carried bytes both ways (the peer
            # must have lost it), else the one the larger key dialled.
            expected_initiator = stream.public_key > remote
            keep_new = existing.established() or expected_initiator == stream.is_initiator
            if not keep_new:
                existing.send_keep_alive()
                return
            existing.drop()
            await existing.closed.wait()
        if self._server_connections >= self.max_server_connections:
            return
        self.stats.server.opened += 1
        info = self._upsert_peer(remote, None)
        if info is None:
            return
        conn = _Conn(remote, client=False)
        conn.stream = stream
        self._all[remote] = conn
        self._open[stream] = conn
        self.connections.add(stream)
        self._server_connections += 1
        try:
            with conn.scope:
                info.client = False
                self._emit_update()
                try:
                    await self._handle(stream, info)
                except _STREAM_ENDED:
                    pass
        finally:
            self._open.pop(stream, None)
            self.connections.discard(stream)
            if self._all.get(remote) is conn:
                del self._all[remote]
            self._server_connections -= 1
            self.stats.server.closed += 1
            self._maybe_delete_peer(info)
            conn.closed.set()
            self._attempt_client_connections()
            self._emit_update()

    # --- peers ------------------------------------------------------------------------------

    def _upsert_peer(
        self, public_key: bytes, relay_addresses: Sequence[Address] | None
    ) -> PeerInfo | None:
        public_key = bytes(public_key)
        if public_key == self.key_pair.public_key:
            return None
        info = self.peers.get(public_key)
        if info is not None:
            info.relay_addresses = list(relay_addresses) if relay_addresses is not None else None
            return info
        info = self.peers[public_key] = PeerInfo(public_key, relay_addresses)
        return info

    def _maybe_delete_peer(self, info: PeerInfo) -> None:
        if not info.should_gc() or info.public_key in self._all:
            return
        self.peers.pop(info.public_key, None)

    def _handle_peer(self, peer: Peer, topic: bytes) -> None:
        info = self._upsert_peer(peer.public_key, peer.relay_addresses)
        if info is None:
            return
        info.add_topic(topic)
        if peer.public_key in self._all:
            return
        if not info.prioritized or info.server:
            info.reset()
        if info.update_priority():
            self._enqueue(info)

    def _ban_peer(self, info: PeerInfo) -> None:
        info.ban(True)
        self.stats.banned_peers += 1
        self._emit_update()


def _topic(topic: bytes) -> bytes:
    if not isinstance(topic, bytes | bytearray | memoryview) or len(topic) != 32:
        raise ValueError("a topic is 32 bytes")
    return bytes(topic)
