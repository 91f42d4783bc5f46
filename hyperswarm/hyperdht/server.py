"""Servers reached by public key (JS hyperdht ``lib/server.js``, without the blind relay).

``server = dht.create_server(on_connection=handler)``; ``await server.listen(key_pair)``
announces the key pair (see :mod:`~hyperswarm.hyperdht.announcer`) and routes the handshakes
that reach this node for ``H(publicKey)`` here. For each client handshake the server:

1. decrypts the first Noise IK message (:mod:`~hyperswarm.hyperdht.noise_wrap`); a message
   that does not decrypt gets no answer;
2. asks ``firewall(remote_public_key, remote_payload, client_address)``: True (or an
   exception) refuses the client, who then hears nothing, as from JS;
3. opens a UDX stream for the client and answers with its id, its addresses (its public one
   when it is reachable, and its LAN ones) and, when it is not reachable, the relays a hole
   punch could go through;
4. connects that stream to the client at once when the client is reachable (it said OPEN) or
   the handshake came straight to this node; otherwise it waits up to 10 s for the client's
   first UDX packet and connects back to where it came from. When this server is not
   reachable itself, it opens a punch socket (:mod:`.holepuncher`), answers the handshake
   from it, and takes part in the client's PEER_HOLEPUNCH rounds: each round it says its NAT
   kind and addresses (once its NAT is sampled), proves the address the relay saw the client
   at with a token, and starts punching when the client says it punches. Punches against a
   random NAT are limited to one at a time and one per 20 s; a client that could fall back to
   a relay is told to TRY_LATER, any other is refused. A client behind the same NAT (the relay
   saw both at one host) gets a puncher too, while it tries the LAN address.

The connection is a :class:`~hyperswarm.secret_stream.SecretStream` started from the
handshake's keys. ``on_connection(stream)`` runs in a task of the node for each one, inside the
stream's ``async with`` block; without a handler, connections queue for :meth:`Server.accept`.

A retransmitted first message (the same bytes, through the same or another relay) gets the
same answer and yields one connection. Pending handshakes are bounded (:data:`MAX_PENDING`
per server; more are ignored) and forgotten :data:`HANDSHAKE_CLEAR_WAIT` ms after they ended.
Holepunch messages for a session that is unknown, finished or not punching, or that do not
decrypt, get no answer or an ABORTED one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import trio

from hypercore import crypto
from hypercore.crypto import KeyPair
from protomux.encoding import Address

from ..dht_rpc.errors import DHTError
from ..dht_rpc.io import CLIENT, IncomingRequest
from ..dht_rpc.timers import Timer
from ..secret_stream import FinishedHandshake, SecretStream, SecretStreamError
from ..udx import UDXSocket, UDXStream
from . import messages as m
from .addresses import is_private, local_addresses, match_address
from .announcer import Announcer
from .constants import ERROR, FIREWALL
from .errors import (
    AlreadyListeningError,
    HandshakeInvalidError,
    KeypairAlreadyUsedError,
    NodeDestroyedError,
)
from .holepuncher import Holepuncher, random_punch_blocked
from .host import ConnectionHost
from .noise_wrap import ConnectionKeys, NoiseWrap
from .relay_connection import (
    RELAY_KEEP_ALIVE,
    RelayLink,
    RelayThrough,
    connect_through,
    relay_token,
    select_relay,
    start_upgrade,
)
from .router import HandshakeReply, HolepunchReply, RouterEntry
from .secure_payload import SecurePayload

__all__ = [
    "HANDSHAKE_CLEAR_WAIT",
    "MAX_PENDING",
    "ConnectionHandler",
    "Firewall",
    "Server",
    "ServerAddress",
    "connection_stream",
]

#: Milliseconds a finished or refused handshake is remembered (its retransmissions get the
#: same answer, or the same silence).
HANDSHAKE_CLEAR_WAIT = 10_000.0
#: Milliseconds the server waits for the first packet of a client it cannot connect to.
HANDSHAKE_INITIAL_TIMEOUT = 10_000.0
#: Handshakes one server remembers at once; more are ignored until some are forgotten.
MAX_PENDING = 1024
#: Handshakes of one server punching at once (each holds a socket, 256 for the birthday
#: strategy); more are answered without punching.
MAX_PUNCHING = 32
#: Seconds between keep-alive messages of a connection (JS ``connectionKeepAlive``).
CONNECTION_KEEP_ALIVE = 5.0

#: ``firewall(remote_public_key, remote_payload, client_address) -> bool``: True refuses.
Firewall = Callable[[bytes, m.NoisePayload, Address], bool]
#: ``await on_connection(stream)`` for each connection.
ConnectionHandler = Callable[[SecretStream], Awaitable[None]]
#: ``holepunch(remote_firewall, local_firewall, remote_addresses, local_addresses) -> bool``:
#: False vetoes a punch (JS's ``holepunch`` option).
HolepunchVeto = Callable[[int, int, Sequence[object], Sequence[Address] | None], bool]


@dataclass(frozen=True, slots=True)
class ServerAddress:
    """Where a listening server is: its public key and its node's address."""

    public_key: bytes
    host: str | None
    port: int


def connection_stream(raw: UDXStream, keys: ConnectionKeys) -> SecretStream:
    """The secret-stream of a connection over ``raw``, started from the handshake's keys."""
    return SecretStream(
        raw,
        is_initiator=keys.is_initiator,
        handshake=FinishedHandshake(
            public_key=keys.public_key,
            remote_public_key=keys.remote_public_key,
            hash=keys.hash,
            tx=keys.tx,
            rx=keys.rx,
        ),
        keep_alive=CONNECTION_KEEP_ALIVE,
    )


class _Pending:
    """One client handshake: its answer, and the stream waiting for the client."""

    __slots__ = (
        "aborted",
        "clearing",
        "id",
        "keys",
        "noise",
        "payload",
        "puncher",
        "puncher_ready",
        "raw",
        "relay",
        "relayed",
        "remote_firewall",
        "remote_udx_id",
        "reply",
        "reply_from_puncher",
        "round",
        "timeout",
        "upgraded",
    )

    def __init__(self, slot: int, noise: bytes) -> None:
        self.id = slot
        self.noise = noise  # the client's first message: the key of its retransmissions
        self.reply: bytes | None = None
        self.keys: ConnectionKeys | None = None
        self.raw: UDXStream | None = None
        self.remote_udx_id = 0
        self.remote_firewall = FIREWALL.UNKNOWN
        self.timeout: Timer | None = None
        self.clearing: Timer | None = None
        # hole punching: the sealed payloads, the puncher (set once its socket is open)
        self.payload: SecurePayload | None = None
        self.puncher: Holepuncher | None = None
        self.puncher_ready: trio.Event | None = None
        self.reply_from_puncher = False
        self.round = 0
        # the blind relay (if one side offered one) and its token; whether the direct
        # paths gave up while the relay still pairs
        self.relay: RelayLink | None = None
        self.aborted = False
        # the stream the relay carries (it moves to a direct path if a punch lands)
        self.relayed: UDXStream | None = None
        self.upgraded = False


class Server:
    """A server other peers connect to by its public key (JS ``dht.createServer()``)."""

    def __init__(
        self,
        dht: ConnectionHost,
        *,
        firewall: Firewall | None = None,
        on_connection: ConnectionHandler | None = None,
        share_local_address: bool = True,
        handshake_clear_wait: float = HANDSHAKE_CLEAR_WAIT,
        holepunch: HolepunchVeto | bool = True,
        relay_through: RelayThrough = None,
        relay_keep_alive: float = RELAY_KEEP_ALIVE,
    ) -> None:
        self.dht = dht
        #: The blind relay offered to clients (JS ``relayThrough``): a public key, a list,
        #: or a function giving one (see :func:`~.relay_connection.select_relay`).
        self.relay_through = relay_through
        self.relay_keep_alive = relay_keep_alive
        self.firewall = firewall
        self._never_punch = holepunch is False
        self.holepunch: HolepunchVeto = (
            holepunch if callable(holepunch) else (lambda *_: bool(holepunch))
        )
        self.on_connection = on_connection
        self.handshake_clear_wait = handshake_clear_wait
        self._share_local_address = share_local_address
        self.target: bytes | None = None
        self.closed = False
        self._key_pair: KeyPair | None = None
        self._announcer: Announcer | None = None
        self._scope: trio.CancelScope | None = None
        # noise message -> its handshake (None: refused); slot id -> handshake
        self._connects: dict[bytes, _Pending | None] = {}
        self._slots: list[_Pending | None] = []
        self._closing = False
        self._queue_send, self._queue = trio.open_memory_channel[SecretStream](64)
        self.connections = 0  # connections handed out

    # --- state ----------------------------------------------------------------------------

    @property
    def listening(self) -> bool:
        return self._key_pair is not None

    @property
    def public_key(self) -> bytes | None:
        return self._key_pair.public_key if self._key_pair is not None else None

    @property
    def relay_addresses(self) -> list[Address]:
        return list(self._announcer.relay_addresses) if self._announcer is not None else []

    @property
    def pending(self) -> int:
        """Handshakes remembered now (answered, refused or waiting for the client)."""
        return len(self._connects)

    def address(self) -> ServerAddress | None:
        if self._key_pair is None:
            return None
        return ServerAddress(self._key_pair.public_key, self.dht.host, self.dht.port)

    # --- lifecycle ------------------------------------------------------------------------

    async def listen(self, key_pair: KeyPair | None = None) -> None:
        """Announce ``key_pair`` (default: the node's) and take connections for it; returns
        once the first announce round is done."""
        if self._key_pair is not None or self._scope is not None:
            raise AlreadyListeningError("the server is already listening")
        if self.closed or self.dht.closed:
            raise NodeDestroyedError("the node is destroyed")
        kp = key_pair if key_pair is not None else self.dht.default_key_pair
        for other in self.dht.listening:
            if other is not self and other.public_key == kp.public_key:
                raise KeypairAlreadyUsedError("another server listens on this key pair")
        self.target = crypto.hash(kp.public_key)
        self._key_pair = kp
        self._announcer = Announcer(self.dht, kp, self.target)
        self.dht.listening.add(self)
        self.dht.router.set(
            self.target,
            RouterEntry(
                None,
                self._announcer.record,
                on_handshake=self._on_handshake,
                on_holepunch=self._on_holepunch,
            ),
        )
        try:
            await self.dht.nursery.start(self._run_announcer, self._announcer)
        except BaseException:
            self._stop_listening()
            raise

    async def _run_announcer(
        self, announcer: Announcer, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        with trio.CancelScope() as scope:
            self._scope = scope
            await announcer.run(task_status)

    def refresh(self) -> None:
        """Announce again soon (after a network change, say)."""
        if self._announcer is not None:
            self._announcer.refresh()

    async def close(self) -> None:
        """Stop taking connections and unannounce. Connections already made stay open."""
        if self.closed:
            await trio.lowlevel.checkpoint()
            return
        self.closed = True
        self._closing = True
        announcer = self._announcer
        self._stop_listening()
        self._queue_send.close()
        if announcer is not None and not self.dht.closed:
            with trio.move_on_after(5):
                await announcer.stop()
        await trio.lowlevel.checkpoint()

    def _stop_listening(self) -> None:
        if self._scope is not None:
            self._scope.cancel()
        if self._announcer is not None:
            self._announcer.stopped = True
        self.dht.listening.discard(self)
        if self.target is not None:
            self.dht.router.delete(self.target)
        for hs in self._slots:
            if hs is not None:
                self._drop(hs)
        self._slots.clear()
        self._connects.clear()
        self._key_pair = None

    async def accept(self) -> SecretStream:
        """The next connection (when there is no ``on_connection`` handler);
        ``trio.EndOfChannel`` once the server is closed."""
        return await self._queue.receive()

    # --- handshakes -----------------------------------------------------------------------

    def _on_handshake(
        self, noise: bytes, peer_address: Address | None, req: IncomingRequest
    ) -> HandshakeReply | Awaitable[HandshakeReply | None] | None:
        if self._closing or self._key_pair is None:
            return None
        if noise in self._connects:
            hs = self._connects[noise]
        else:
            if len(self._connects) >= MAX_PENDING:
                return None  # a flood: the oldest are forgotten soon enough
            client = peer_address if peer_address is not None else req.from_.address
            hs = self._add_handshake(noise, client, req, direct=peer_address is None)
            self._connects[noise] = hs
            if hs is None:
                self.dht.timers.call_later(self.handshake_clear_wait, lambda: self._forget(noise))
        if hs is None or hs.reply is None:
            return None
        if hs.puncher_ready is not None and not hs.puncher_ready.is_set():
            return self._reply_when_ready(hs)
        return self._handshake_reply(hs)

    def _handshake_reply(self, hs: _Pending) -> HandshakeReply | None:
        if hs.reply is None or self._closing:
            return None
        p = hs.puncher
        if hs.reply_from_puncher and p is not None and not p.destroyed:
            return HandshakeReply(hs.reply, p.socket_number)
        return HandshakeReply(hs.reply, None)

    async def _reply_when_ready(self, hs: _Pending) -> HandshakeReply | None:
        assert hs.puncher_ready is not None
        await hs.puncher_ready.wait()
        return self._handshake_reply(hs)

    def _forget(self, noise: bytes) -> None:
        if noise in self._connects and self._connects[noise] is None:
            del self._connects[noise]

    # --- hole punching ---------------------------------------------------------------------

    def _punching(self) -> int:
        """Handshakes whose puncher is opening or running."""
        n = 0
        for hs in self._slots:
            if hs is None or hs.puncher_ready is None or hs.raw is None:
                continue
            if hs.puncher is not None:
                n += not hs.puncher.destroyed
            else:
                n += not hs.puncher_ready.is_set()
        return n

    def _start_puncher(self, hs: _Pending, *, reply_from_puncher: bool) -> None:
        """Open the handshake's puncher in the background (its reply waits for it when it
        is to be sent from the punch socket)."""
        assert hs.keys is not None
        if self._punching() >= MAX_PUNCHING:
            self.dht.punches["too_many"] += 1
            return
        hs.payload = SecurePayload(hs.keys.holepunch_secret)
        hs.reply_from_puncher = reply_from_puncher
        hs.puncher_ready = trio.Event()
        self.dht.nursery.start_soon(self._open_puncher, hs)

    async def _open_puncher(self, hs: _Pending) -> None:
        assert hs.puncher_ready is not None
        try:
            p = await Holepuncher.open(self.dht, self.dht.session(), False, hs.remote_firewall)
        except (OSError, DHTError):  # out of sockets, or the node is closing
            hs.puncher_ready.set()
            self._give_up(hs)
            return
        if hs.raw is None or self._closing:  # the handshake ended while the socket opened
            p.destroy()
        else:
            p.on_abort = lambda: self._give_up(hs)
            hs.puncher = p
        hs.puncher_ready.set()

    def _on_holepunch(
        self, slot: int, payload: bytes, peer: Address, req: IncomingRequest
    ) -> HolepunchReply | Awaitable[HolepunchReply | None] | None:
        hs = self._slots[slot] if 0 <= slot < len(self._slots) else None
        if hs is None or self._closing:
            return None
        if hs.payload is None:
            return self._abort(hs)  # no punching for this one
        remote = hs.payload.decrypt(payload)
        if remote is None:
            return None
        return self._holepunch_round(hs, remote, peer, req)

    async def _holepunch_round(
        self, hs: _Pending, remote: m.HolepunchPayload, peer: Address, req: IncomingRequest
    ) -> HolepunchReply | None:
        if hs.puncher_ready is not None:
            await hs.puncher_ready.wait()
        p, sealed = hs.puncher, hs.payload
        if p is None or p.destroyed or sealed is None or p.socket is None:
            return self._abort(hs)
        announcer = self._announcer
        is_server_relay = announcer is not None and announcer.is_relay(req.from_.address)
        if remote.error != ERROR.NONE:
            hs.round = max(hs.round, remote.round)
            return self._abort(hs)
        token = sealed.token(peer)
        given = token if is_server_relay else None  # (what we tell the client of it)
        echoed = (
            is_server_relay and remote.remote_token is not None and remote.remote_token == token
        )
        if req.socket == p.socket_number and req.to is not None:
            p.nat.add(req.to, req.from_.address)
        if remote.round >= hs.round:
            hs.round = remote.round
            p.update_remote(
                punching=remote.punching,
                firewall=remote.firewall,
                addresses=remote.addresses,
                verified=peer.host if echoed else None,
            )
        stable = await p.analyze(False)
        if p.destroyed:
            return None
        if not p.remote_holepunching and not stable:
            stable = await p.analyze(True)
            if p.destroyed:
                return None
            if not stable:
                return self._abort(hs)
        # fast open: the client opened a session to our address, so punch back at once
        nat_addresses = p.nat.addresses or []
        if (
            p.nat.firewall in (FIREWALL.OPEN, FIREWALL.CONSISTENT)
            and remote.remote_address is not None
            and remote.remote_address in nat_addresses
        ):
            await p.ping(peer)
            if p.destroyed:
                return None
        if p.remote_holepunching:
            remote_addresses = [a.address for a in p.remote_addresses]
            if not self.holepunch(
                p.remote_firewall, p.nat.firewall, remote_addresses, nat_addresses
            ):
                return None if p.destroyed else self._abort(hs)
            if hs.timeout is not None:
                hs.timeout.cancel()
                hs.timeout = None
            if p.remote_firewall >= FIREWALL.RANDOM or p.nat.firewall >= FIREWALL.RANDOM:
                dht = self.dht
                if random_punch_blocked(dht):
                    dht.punches["try_later"] += 1
                    if hs.relay is None:
                        return self._abort(hs, ERROR.TRY_LATER)
                    # a relay is in play: the client asks again later, meanwhile it pairs
                    return _round_reply(hs, p, sealed, ERROR.TRY_LATER, given, remote)
            punching = await p.punch()
            if p.destroyed:
                return None
            if not punching:
                return self._abort(hs)
        if p.nat.firewall != FIREWALL.UNKNOWN:
            p.nat.freeze()
        return _round_reply(hs, p, sealed, ERROR.NONE, given, remote)

    def _abort(self, hs: _Pending, error: int = ERROR.ABORTED) -> HolepunchReply | None:
        """Tell the client this punch is off (nothing, for a session that never punched)."""
        p = hs.puncher
        if hs.payload is None:
            if p is not None:
                p.destroy()
            return None
        sealed = hs.payload.encrypt(
            m.HolepunchPayload(error=error, firewall=FIREWALL.UNKNOWN, round=hs.round)
        )
        if p is not None:
            p.destroy()
        return HolepunchReply(sealed, None)

    def _add_handshake(
        self, noise: bytes, client: Address, req: IncomingRequest, *, direct: bool
    ) -> _Pending | None:
        assert self._key_pair is not None and self._announcer is not None
        wrap = NoiseWrap(self._key_pair)
        try:
            remote = wrap.recv(noise)
        except HandshakeInvalidError:
            return None
        remote_key = wrap.remote_public_key
        assert remote_key is not None
        if self.firewall is not None:
            try:
                refused = bool(self.firewall(remote_key, remote, client))
            except Exception:
                refused = True  # as JS: a firewall that fails refuses
            if refused or self._closing:
                return None
        if remote.version != 1:
            error = ERROR.VERSION_MISMATCH
        elif remote.udx is None:
            error = ERROR.ABORTED
        else:
            error = ERROR.NONE
        ours = self.dht.remote_address()
        addresses: list[Address] = [ours] if ours is not None else []
        if self._share_local_address:
            addresses.extend(local_addresses(self.dht.server_socket.address()))
        slot = self._free_slot()
        hs = _Pending(slot, noise)
        self._slots[slot] = hs
        if error == ERROR.NONE:
            hs.raw = self.dht.create_raw_stream(
                firewall=lambda sock, host, port: self._on_first_packet(hs, sock, host, port)
            )
        relays = self._announcer.relay_addresses
        relay_key = select_relay(self.relay_through) if error == ERROR.NONE else None
        offer = (
            m.RelayThroughInfo(public_key=relay_key, token=relay_token())
            if relay_key is not None
            else None
        )
        payload = m.NoisePayload(
            error=error,
            firewall=FIREWALL.OPEN if ours is not None else FIREWALL.UNKNOWN,
            holepunch=None
            if ours is not None
            else m.HolepunchInfo(id=slot, relays=tuple(self._announcer.relays)),
            addresses4=tuple(addresses),
            udx=m.UdxInfo(id=hs.raw.local_id if hs.raw is not None else 0, seq=0),
            secret_stream=m.SecretStreamInfo(),
            relay_through=offer,
            relay_addresses=tuple(relays) if relays else None,
        )
        hs.reply = wrap.send(payload)
        hs.keys = wrap.final()
        if error != ERROR.NONE or remote.udx is None:
            self._drop(hs)
            self._clear_later(hs)
            return hs
        hs.remote_udx_id = remote.udx.id
        hs.remote_firewall = remote.firewall
        if remote.firewall == FIREWALL.OPEN or direct:
            path = "server:direct" if direct else "server:client-open"
            self.dht.connection_paths[path] += 1
            sock = self.dht.client_socket if direct and req.socket == CLIENT else None
            self._on_socket(hs, sock or self.dht.socket, client.host, client.port)
            return hs
        if offer is not None or remote.relay_through is not None:
            self._relay_connection(hs, offer, remote.relay_through)
        hs.timeout = self.dht.timers.call_later(
            HANDSHAKE_INITIAL_TIMEOUT, lambda: self._give_up(hs)
        )
        server_address = req.to
        if server_address is not None and client.host == server_address.host:
            # behind the same NAT: the client tries our LAN address; a puncher stands by
            private = [a for a in remote.addresses4 if is_private(a.host)]
            if private and self._share_local_address:
                mine = local_addresses(self.dht.server_socket.address())
                if match_address(mine, private) is not None:
                    self._start_puncher(hs, reply_from_puncher=False)
                    return hs
        if ours is not None or self._never_punch:
            return hs
        self._start_puncher(hs, reply_from_puncher=True)
        return hs

    # --- streams --------------------------------------------------------------------------

    def _free_slot(self) -> int:
        for i, hs in enumerate(self._slots):
            if hs is None:
                return i
        self._slots.append(None)
        return len(self._slots) - 1

    def _on_first_packet(self, hs: _Pending, sock: UDXSocket, host: str, port: int) -> bool:
        """The stream's firewall: the client's first UDX packet connects the stream to it
        (or, on a relayed stream, moves it to the direct path the packet came by)."""
        if not 0 < port < 65536:
            return True
        if hs.relay is not None and hs.relay.carries(sock, host, port):
            return False  # the client, through the relay
        if hs.raw is not None and hs.keys is not None:
            self.dht.connection_paths["server:first-packet"] += 1
        self._on_socket(hs, sock, host, port)
        return False

    def _on_socket(self, hs: _Pending, sock: UDXSocket, host: str, port: int) -> None:
        raw, keys = hs.raw, hs.keys
        if raw is None and hs.relayed is not None and not hs.upgraded:
            self._upgrade(hs, hs.relayed, sock, host, port)
            return
        if raw is None or keys is None:
            return
        hs.raw = None
        if hs.timeout is not None:
            hs.timeout.cancel()
            hs.timeout = None
        self._clear_later(hs)
        raw.connect(hs.remote_udx_id, port, host, socket=sock)
        p = hs.puncher
        if p is not None and p.socket is sock:
            self.dht.connection_paths["server:punched"] += 1
        _stop_puncher(hs)
        self._deliver(connection_stream(raw, keys))

    def _give_up(self, hs: _Pending) -> None:
        hs.timeout = None
        if hs.relay is not None and not hs.relay.ended.is_set() and hs.raw is not None:
            hs.aborted = True  # the direct paths are done; the relay may still pair
            _stop_puncher(hs)
            return
        self._drop(hs)
        self._clear_later(hs)

    # --- the blind relay -----------------------------------------------------------------

    def _relay_connection(
        self, hs: _Pending, ours: m.RelayThroughInfo | None, theirs: m.RelayThroughInfo | None
    ) -> None:
        """Pair the handshake's stream at the relay one side offered."""
        assert hs.raw is not None
        self.dht.punches["relay_attempts"] += 1
        hs.relay = RelayLink.offered(
            self.dht,
            ours,
            theirs,
            is_server=True,
            raw=hs.raw,
            on_paired=lambda remote_id, stream: self._on_relayed(hs, remote_id, stream),
            on_abort=lambda: self._on_relay_abort(hs),
            keep_alive=self.relay_keep_alive,
        )
        hs.relay.start()

    def _on_relayed(self, hs: _Pending, remote_id: int, relay_stream: UDXStream) -> bool:
        """The relay paired us: connect through it. The punch goes on, and the handshake
        stays known while the stream lives (for the client's holepunch rounds)."""
        raw, keys = hs.raw, hs.keys
        if raw is None or keys is None or not connect_through(raw, remote_id, relay_stream):
            return False
        hs.raw = None
        hs.relayed = raw
        if hs.timeout is not None:
            hs.timeout.cancel()
            hs.timeout = None
        self.dht.connection_paths["server:relayed"] += 1
        self.dht.nursery.start_soon(self._forget_when_closed, hs, raw)
        # retransmissions of its first message get the same answer for a while; then the
        # handshake stops counting against MAX_PENDING (its slot stays for punch rounds)
        self.dht.timers.call_later(self.handshake_clear_wait, lambda: self._forget_noise(hs))
        self._deliver(connection_stream(raw, keys))
        return True

    def _forget_noise(self, hs: _Pending) -> None:
        if self._connects.get(hs.noise) is hs:
            del self._connects[hs.noise]

    async def _forget_when_closed(self, hs: _Pending, raw: UDXStream) -> None:
        await raw.wait_closed()
        _stop_puncher(hs)
        self._clear_later(hs)

    def _upgrade(self, hs: _Pending, raw: UDXStream, sock: UDXSocket, host: str, port: int) -> None:
        """Move a relayed stream to the direct path the client's packets came by."""
        hs.upgraded = True

        def on_moved(moved: bool) -> None:
            if moved:
                self.dht.connection_paths["server:upgraded"] += 1
            _stop_puncher(hs)

        start_upgrade(self.dht, raw, hs.relay, (hs.remote_udx_id, sock, host, port), on_moved)

    def _on_relay_abort(self, hs: _Pending) -> None:
        if hs.raw is None:
            return  # connected by another path, or already dropped
        self.dht.punches["relay_aborts"] += 1
        if hs.aborted or self._closing:
            self._drop(hs)
            self._clear_later(hs)

    def _drop(self, hs: _Pending) -> None:
        relay = hs.relay
        if relay is not None and not relay.paired:
            relay.close()
        if hs.timeout is not None:
            hs.timeout.cancel()
            hs.timeout = None
        _stop_puncher(hs)
        raw, hs.raw = hs.raw, None
        if raw is not None:
            raw.destroy()

    def _clear_later(self, hs: _Pending) -> None:
        if hs.clearing is None:
            hs.clearing = self.dht.timers.call_later(
                self.handshake_clear_wait, lambda: self._clear(hs)
            )

    def _clear(self, hs: _Pending) -> None:
        if hs.id < len(self._slots) and self._slots[hs.id] is hs:
            self._slots[hs.id] = None
            while self._slots and self._slots[-1] is None:
                self._slots.pop()
        if self._connects.get(hs.noise) is hs:
            del self._connects[hs.noise]

    def _deliver(self, stream: SecretStream) -> None:
        self.connections += 1
        if self.on_connection is not None:
            self.dht.nursery.start_soon(_serve, self.on_connection, stream)
            return
        try:
            self._queue_send.send_nowait(stream)
        except (trio.WouldBlock, trio.ClosedResourceError):
            self.dht.nursery.start_soon(stream.aclose)  # nobody takes it


async def _serve(handler: ConnectionHandler, stream: SecretStream) -> None:
    """One connection's task: the handler inside the stream's block; a connection the peer
    breaks ends here (the node goes on)."""
    try:
        async with stream:
            await handler(stream)
    except (SecretStreamError, trio.BrokenResourceError, trio.ClosedResourceError):
        pass


def _stop_puncher(hs: _Pending) -> None:
    """Stop the handshake's puncher (its socket stays open while a stream runs on it)."""
    p, hs.puncher = hs.puncher, None
    if p is not None:
        p.on_abort = None
        p.destroy()


def _round_reply(
    hs: _Pending,
    p: Holepuncher,
    sealed: SecurePayload,
    error: int,
    token: bytes | None,
    remote: m.HolepunchPayload,
) -> HolepunchReply:
    """Our sealed answer to a holepunch round, from the punch socket: our NAT, where the
    punch stands, and ``token`` (proving the client's address; only through our relays)."""
    return HolepunchReply(
        sealed.encrypt(
            m.HolepunchPayload(
                error=error,
                firewall=p.nat.firewall,
                round=hs.round,
                connected=p.connected,
                punching=p.punching,
                addresses=tuple(p.nat.addresses) if p.nat.addresses is not None else None,
                token=token,
                remote_token=remote.token,
            )
        ),
        p.socket_number,
    )
