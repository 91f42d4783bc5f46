"""The HyperDHT node (JS hyperdht ``index.js``, without connections): announce, lookup and
find records, mutable and immutable values, and relaying other peers' connection attempts.

``async with HyperDHT(bootstrap=[...]) as dht:`` runs a dht-rpc node (:class:`DHT`) whose
non-internal commands are HyperDHT's: PEER_HANDSHAKE and PEER_HOLEPUNCH are routed by every
node; the storage commands are served once the node is persistent.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hypercore import crypto
from hypercore.crypto import KeyPair
from protomux.encoding import Address

from ..dht_rpc.dht import DHT, BootstrapEntry, QueryIterator
from ..dht_rpc.errors import DHTError
from ..dht_rpc.io import IncomingRequest, OutgoingRequest, Peer, Reply
from ..dht_rpc.query import Query
from ..secret_stream import SecretStream
from ..udx import UDXStream
from ..udx.socket import Firewall
from . import messages as m
from .connect import connect
from .constants import BOOTSTRAP_NODES, COMMANDS, DEFAULT_PORT
from .errors import HyperDHTDecodeError, NodeDestroyedError
from .persistent import (
    Persistent,
    PersistentLimits,
    sign_announce,
    sign_mutable,
    sign_unannounce,
    verify_mutable,
)
from .relay_connection import RelayThrough
from .router import Router
from .server import ConnectionHandler, HolepunchVeto, Server
from .server import Firewall as ServerFirewall

__all__ = [
    "FindPeerReply",
    "HyperDHT",
    "ImmutableGetResult",
    "ImmutablePutResult",
    "LookupReply",
    "MutableGetResult",
    "MutablePutResult",
]

GC_INTERVAL = 5000.0
MAX_LOOKUP_PEERS = 20
#: Servers whose relay addresses are remembered for reconnecting.
RELAY_ADDRESSES_CACHE = 512
#: Milliseconds between two punches against random NATs (JS ``randomPunchInterval``).
RANDOM_PUNCH_INTERVAL = 20_000.0

Done = Callable[[BaseException | None], None]


@dataclass(frozen=True, slots=True)
class LookupReply:
    """One node's answer to a lookup: the peers announced on the topic there."""

    token: bytes | None
    from_: Peer
    to: Address
    peers: tuple[m.Peer, ...]
    bump: int


@dataclass(frozen=True, slots=True)
class FindPeerReply:
    token: bytes | None
    from_: Peer
    to: Address
    peer: m.Peer


@dataclass(frozen=True, slots=True)
class ImmutableGetResult:
    token: bytes | None
    from_: Peer
    to: Address
    value: bytes


@dataclass(frozen=True, slots=True)
class ImmutablePutResult:
    hash: bytes
    closest_nodes: list[Peer]


@dataclass(frozen=True, slots=True)
class MutableGetResult:
    token: bytes | None
    from_: Peer
    to: Address
    seq: int
    value: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class MutablePutResult:
    public_key: bytes
    closest_nodes: list[Peer]
    seq: int
    signature: bytes


#: The :class:`Persistent` method that serves each record command.
_PERSISTENT_HANDLERS: dict[int, str] = {
    COMMANDS.FIND_PEER: "on_find_peer",
    COMMANDS.LOOKUP: "on_lookup",
    COMMANDS.ANNOUNCE: "on_announce",
    COMMANDS.UNANNOUNCE: "on_unannounce",
    COMMANDS.MUTABLE_PUT: "on_mutable_put",
    COMMANDS.MUTABLE_GET: "on_mutable_get",
    COMMANDS.IMMUTABLE_PUT: "on_immutable_put",
    COMMANDS.IMMUTABLE_GET: "on_immutable_get",
}


def _map_lookup(reply: Reply) -> LookupReply | None:
    if not reply.value:
        return None
    try:
        raw = m.LOOKUP_RAW_REPLY.decode(reply.value)
    except HyperDHTDecodeError:
        return None
    return LookupReply(reply.token, reply.from_, reply.to, tuple(raw.peers), raw.bump)


def _map_find_peer(reply: Reply) -> FindPeerReply | None:
    if not reply.value:
        return None
    try:
        peer = m.PEER.decode(reply.value)
    except HyperDHTDecodeError:
        return None
    return FindPeerReply(reply.token, reply.from_, reply.to, peer)


def _map_immutable(reply: Reply) -> ImmutableGetResult | None:
    if not reply.value:
        return None
    return ImmutableGetResult(reply.token, reply.from_, reply.to, reply.value)


def _map_mutable(reply: Reply) -> MutableGetResult | None:
    if not reply.value:
        return None
    try:
        res = m.MUTABLE_GET_RESPONSE.decode(reply.value)
    except HyperDHTDecodeError:
        return None
    return MutableGetResult(reply.token, reply.from_, reply.to, res.seq, res.value, res.signature)


def _filter_node(node: Peer) -> bool:
    # JS skips a few stray public testnet nodes; kept for the public network
    if node.port == 49738 and node.host in ("134.209.28.98", "167.99.142.185"):
        return False
    if node.port == 9400 and node.host == "35.233.47.252":
        return False
    return node.host != "150.136.142.116"


class HyperDHT(DHT):
    """A HyperDHT node. ``bootstrap`` defaults to the public HyperDHT network (never use the
    default in tests: pass a local testnet's list, or ``[]`` to join nobody); ``port``
    defaults to 49737 (any free port if taken). ``key_pair`` (or ``seed``) is the node's
    default key pair; ``max_size``/``max_age`` bound the record caches as JS."""

    def __init__(
        self,
        *,
        bootstrap: Sequence[BootstrapEntry] | None = None,
        port: int = DEFAULT_PORT,
        host: str = "0.0.0.0",
        key_pair: KeyPair | None = None,
        seed: bytes | None = None,
        max_size: int | None = None,
        max_age: float | None = None,
        random_punch_interval: float = RANDOM_PUNCH_INTERVAL,
        **opts: Any,
    ) -> None:
        opts.setdefault("filter_node", _filter_node)
        super().__init__(
            bootstrap=BOOTSTRAP_NODES if bootstrap is None else bootstrap,
            port=port,
            host=host,
            **opts,
        )
        self.default_key_pair = key_pair if key_pair is not None else crypto.key_pair(seed)
        self.limits = PersistentLimits.from_options(max_size, max_age)
        self.router = Router(
            max_size=self.limits.max_size,
            max_age=self.limits.max_age,
            spawn=lambda fn: self.nursery.start_soon(fn),
        )
        self.persistent: Persistent | None = None
        self.listening: set[Server] = set()
        #: Relay addresses servers gave in their handshakes, by public key (hex), for the
        #: next connection to them.
        self.relay_addresses_cache: dict[str, list[Address]] = {}
        #: How connections were made, by side and path ("client:lan", "server:direct"...):
        #: see :mod:`~hyperswarm.hyperdht.connect` and :mod:`~hyperswarm.hyperdht.server`.
        self.connection_paths: collections.Counter[str] = collections.Counter()
        #: Punches started by strategy ("consistent", "random"), and those refused
        #: ("try_later": a random punch too soon; "too_many": a server punching for too many
        #: clients at once), as JS ``stats.punches``.
        self.punches: collections.Counter[str] = collections.Counter()
        #: Punches against a random NAT under way, and when the last one connected (ms): at
        #: most :attr:`random_punch_limit` at once, :attr:`random_punch_interval` ms apart.
        self.random_punches = 0
        self.last_random_punch = -float("inf")
        self.random_punch_limit = 1
        self.random_punch_interval = random_punch_interval
        #: Punch sockets released while a stream still runs on them (closed when it ends).
        self._lingering: set[int] = set()
        self.udx.on_remove = self._on_stream_removed
        self.on_request(self._on_hyperdht_request)

    @staticmethod
    def key_pair(seed: bytes | None = None) -> KeyPair:
        """An Ed25519 key pair (deterministic for a 32-byte seed), as JS ``HyperDHT.keyPair``."""
        return crypto.key_pair(seed)

    @staticmethod
    def hash(data: bytes) -> bytes:
        return crypto.hash(data)

    # --- lifecycle --------------------------------------------------------------------------

    def _setup_core(self) -> None:
        super()._setup_core()
        core = self.core
        previous = core.on_persistent

        def on_persistent() -> None:
            previous()
            if self.persistent is None:
                self.persistent = Persistent(
                    self.router,
                    lambda: self.core.id,
                    lambda: time.time() * 1000.0,
                    self.limits,
                )

        core.on_persistent = on_persistent
        if not core.ephemeral:
            on_persistent()
        self.timers.call_later(GC_INTERVAL, self._gc)

    async def aclose(self) -> None:
        for server in list(self.listening):
            server._stop_listening()
            server.closed = True
        await super().aclose()

    def _gc(self) -> None:
        if self.closed:
            return
        now = self.timers.now()
        self.router.gc(now)
        if self.persistent is not None:
            self.persistent.gc(now)
        self.timers.call_later(GC_INTERVAL, self._gc)

    # --- serving ----------------------------------------------------------------------------

    def _on_hyperdht_request(self, req: IncomingRequest) -> bool:
        command = req.command
        if command == COMMANDS.PEER_HANDSHAKE:
            self.router.on_peer_handshake(req)
            return True
        if command == COMMANDS.PEER_HOLEPUNCH:
            self.router.on_peer_holepunch(req)
            return True
        p = self.persistent
        if p is None or self.core.id is None:
            return False
        name = _PERSISTENT_HANDLERS.get(command)
        if name is None:
            return False
        getattr(p, name)(req)
        return True

    # --- connections ------------------------------------------------------------------------

    def create_raw_stream(self, *, firewall: Firewall | None = None) -> UDXStream:
        """A UDX stream with a free random id on the node's stream table (any of its sockets
        may carry it; ``firewall`` binds it when its first packet arrives)."""
        return self.udx.create_stream(None, firewall=firewall)

    def nodes_from_latest(self) -> list[Address]:
        """The routing table's nodes, newest first (the NAT sampler's order)."""
        nodes = self.core.nodes
        return [Address(n.host, n.port) for n in nodes.from_latest(len(nodes))]

    def release_socket(self, number: int) -> None:
        """A punch socket is no longer needed: it closes now, or when the last stream on it
        ends."""
        sockets = self._transport.sockets
        sock = sockets[number] if 2 <= number < len(sockets) else None
        if sock is None:
            return
        if self.udx.busy(sock):
            self._lingering.add(number)
            return
        self._lingering.discard(number)
        if not self.closed:
            self.nursery.start_soon(self.close_socket, number)

    def _on_stream_removed(self, stream: UDXStream) -> None:
        sock = stream.socket
        if sock is None or not self._lingering:
            return
        for number in list(self._lingering):
            if self._transport.sockets[number] is sock and not self.udx.busy(sock):
                self.release_socket(number)

    def remember_relay_addresses(self, public_key: bytes, addresses: Sequence[Address]) -> None:
        cache = self.relay_addresses_cache
        cache.pop(public_key.hex(), None)
        cache[public_key.hex()] = list(addresses)
        while len(cache) > RELAY_ADDRESSES_CACHE:
            del cache[next(iter(cache))]

    def create_server(
        self,
        *,
        firewall: ServerFirewall | None = None,
        on_connection: ConnectionHandler | None = None,
        share_local_address: bool = True,
        holepunch: HolepunchVeto | bool = True,
        relay_through: RelayThrough = None,
    ) -> Server:
        """A server for :meth:`Server.listen` (JS ``dht.createServer``). ``holepunch``: False
        never punches; a function ``(remote_firewall, local_firewall, remote_addresses,
        local_addresses) -> bool`` may veto each punch."""
        if self.closed:
            raise NodeDestroyedError("the node is destroyed")
        return Server(
            self,
            firewall=firewall,
            on_connection=on_connection,
            share_local_address=share_local_address,
            holepunch=holepunch,
            relay_through=relay_through,
        )

    async def connect(
        self,
        public_key: bytes,
        *,
        key_pair: KeyPair | None = None,
        relay_addresses: Sequence[Address | tuple[str, int]] | None = None,
        holepunch: HolepunchVeto | None = None,
        fast_open: bool = True,
        local_connection: bool = True,
        relay_through: RelayThrough = None,
    ) -> SecretStream:
        """A secret-stream to the server listening on ``public_key`` (JS ``dht.connect``);
        see :mod:`~hyperswarm.hyperdht.connect` for the paths, the options and the errors."""
        relays = [Address(a[0], a[1]) for a in relay_addresses] if relay_addresses else None
        return await connect(
            self,
            public_key,
            key_pair=key_pair,
            relay_addresses=relays,
            holepunch=holepunch,
            fast_open=fast_open,
            local_connection=local_connection,
            relay_through=relay_through,
        )

    # --- records ----------------------------------------------------------------------------

    def find_peer(self, public_key: bytes, *, hash: bool = True, **opts: Any) -> QueryIterator:
        """Nodes holding ``public_key``'s self-announce: an async iterator of
        :class:`FindPeerReply` (``opts`` as :meth:`query`: ``nodes``, ``session``...)."""
        target = crypto.hash(public_key) if hash else public_key
        return self.query(target, COMMANDS.FIND_PEER, None, map=_map_find_peer, **opts)

    def lookup(self, topic: bytes, **opts: Any) -> QueryIterator:
        """Peers announced on ``topic``: an async iterator of :class:`LookupReply`."""
        return self.query(topic, COMMANDS.LOOKUP, None, map=_map_lookup, **opts)

    def announce(
        self,
        topic: bytes,
        key_pair: KeyPair,
        relay_addresses: Sequence[Address | tuple[str, int]] = (),
        *,
        clear: bool = False,
        bump: int = 0,
    ) -> QueryIterator:
        """Announce ``key_pair`` on ``topic`` to the closest nodes (``await
        it.finished()``)."""
        relays = tuple(Address(a[0], a[1]) for a in relay_addresses)

        def commit(reply: Reply, query: Query, done: Done) -> None:
            self._request_announce(key_pair, topic, reply, relays, bump, done)

        if clear:
            return self.lookup_and_unannounce(topic, key_pair, commit=commit)
        return self.lookup(topic, commit=commit)

    def _request_announce(
        self,
        key_pair: KeyPair,
        target: bytes,
        reply: Reply,
        relays: tuple[Address, ...],
        bump: int,
        done: Done,
    ) -> None:
        if reply.token is None or reply.from_.id is None:
            done(DHTError("No token received for closest node"))
            return
        ann = m.Announce(m.Peer(key_pair.public_key, relays), None, None, bump)
        signature = sign_announce(target, reply.token, reply.from_.id, ann, key_pair)
        ann = m.Announce(ann.peer, None, signature, bump)
        self._commit_request(COMMANDS.ANNOUNCE, target, reply, m.ANNOUNCE.encode(ann), done)

    def _commit_request(
        self, command: int, target: bytes, reply: Reply, value: bytes, done: Done
    ) -> None:
        def answered(_r: Reply, _q: OutgoingRequest) -> None:
            done(None)

        def failed(error: DHTError, _q: OutgoingRequest) -> None:
            done(error)

        self.core.request(
            command=command,
            to=reply.from_,
            token=reply.token,
            target=target,
            value=value,
            on_response=answered,
            on_error=failed,
        )

    def lookup_and_unannounce(
        self,
        topic: bytes,
        key_pair: KeyPair,
        *,
        commit: Callable[[Reply, Query, Done], None] | None = None,
    ) -> QueryIterator:
        """A lookup that unannounces ``key_pair`` from every node that lists it."""
        if self.persistent is not None:
            self.persistent.unannounce(topic, key_pair.public_key)
        pending = [0]
        waiters: list[Callable[[], None]] = []

        def settled() -> None:
            pending[0] -= 1
            if pending[0] == 0:
                for w in waiters:
                    w()
                waiters.clear()

        def map_reply(reply: Reply) -> LookupReply | None:
            data = _map_lookup(reply)
            if data is None or data.token is None:
                return data
            found = len(data.peers) >= MAX_LOOKUP_PEERS or any(
                p.public_key == key_pair.public_key for p in data.peers
            )
            if not found or data.from_.id is None:
                return data
            pending[0] += 1
            unann = m.Announce(m.Peer(key_pair.public_key, ()), None, None, 0)
            sig = sign_unannounce(topic, data.token, data.from_.id, unann, key_pair)
            value = m.ANNOUNCE.encode(m.Announce(unann.peer, None, sig, 0))
            self._commit_request(COMMANDS.UNANNOUNCE, topic, reply, value, lambda _e: settled())
            return data

        def commit_after(reply: Reply, query: Query, done: Done) -> None:
            def go() -> None:
                if commit is None:
                    done(None)
                else:
                    commit(reply, query, done)

            if pending[0] == 0:
                go()
            else:
                waiters.append(go)

        return self.query(topic, COMMANDS.LOOKUP, None, map=map_reply, commit=commit_after)

    async def unannounce(self, topic: bytes, key_pair: KeyPair) -> None:
        """Remove ``key_pair``'s announce on ``topic`` from the nodes that hold it."""
        await self.lookup_and_unannounce(topic, key_pair).finished()

    # --- values -----------------------------------------------------------------------------

    async def immutable_put(self, value: bytes) -> ImmutablePutResult:
        """Store ``value`` under its hash on the closest nodes."""
        target = crypto.hash(value)

        def commit(reply: Reply, query: Query, done: Done) -> None:
            self._commit_request(COMMANDS.IMMUTABLE_PUT, target, reply, value, done)

        q = self.query(target, COMMANDS.IMMUTABLE_GET, None, map=_map_immutable, commit=commit)
        await q.finished()
        return ImmutablePutResult(target, q.closest_nodes)

    async def immutable_get(self, target: bytes) -> ImmutableGetResult | None:
        """The value whose hash is ``target``, checked against it, or None."""
        q = self.query(target, COMMANDS.IMMUTABLE_GET, None, map=_map_immutable)
        try:
            async for node in q:
                if crypto.hash(node.value) == target:
                    return node  # type: ignore[no-any-return]
        finally:
            q.destroy()
        return None

    async def mutable_put(
        self, key_pair: KeyPair, value: bytes, *, seq: int = 0
    ) -> MutablePutResult:
        """Store ``value`` signed by ``key_pair`` with sequence ``seq`` under ``H(publicKey)``.

        A node holding a higher ``seq`` answers SEQ_TOO_LOW (17), the same ``seq`` with
        another value SEQ_REUSED (16); as in JS, those answers do not fail the put (a
        :meth:`mutable_get` shows what the nodes kept)."""
        target = crypto.hash(key_pair.public_key)
        signature = sign_mutable(seq, value, key_pair)
        signed = m.MUTABLE_PUT_REQUEST.encode(
            m.MutablePutRequest(key_pair.public_key, seq, value, signature)
        )

        def commit(reply: Reply, query: Query, done: Done) -> None:
            self._commit_request(COMMANDS.MUTABLE_PUT, target, reply, signed, done)

        q = self.query(
            target, COMMANDS.MUTABLE_GET, m.encode_uint(0), map=_map_mutable, commit=commit
        )
        await q.finished()
        return MutablePutResult(key_pair.public_key, q.closest_nodes, seq, signature)

    async def mutable_get(
        self, public_key: bytes, *, seq: int = 0, latest: bool = True
    ) -> MutableGetResult | None:
        """The value stored under ``public_key`` with the highest ``seq`` (at least ``seq``)
        whose signature verifies, or None; ``latest=False`` returns the first one found."""
        target = crypto.hash(public_key)
        q = self.query(target, COMMANDS.MUTABLE_GET, m.encode_uint(seq), map=_map_mutable)
        result: MutableGetResult | None = None
        try:
            async for node in q:
                if result is not None and node.seq <= result.seq:
                    continue
                if node.seq < seq or not verify_mutable(
                    node.signature, node.seq, node.value, public_key
                ):
                    continue
                if not latest:
                    return node  # type: ignore[no-any-return]
                result = node
        finally:
            q.destroy()
        return result
