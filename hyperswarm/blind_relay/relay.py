"""The blind relay (JS ``blind-relay`` 1.6.1): a third peer that joins two peers' UDX streams
when neither can reach the other, reading none of it.

Each peer holds a connection to the relay (any protomux stream, a HyperDHT connection in
practice) and opens a ``blind-relay`` channel on it, with the peer's public key as the
channel id. Both peers send ``pair`` with the same secret 32-byte token, one as the initiator
and one not, and the id of the UDX stream they want relayed. Once both halves are in, the
relay makes two UDX streams of its own, each relaying to the other
(:meth:`~hyperswarm.udx.UDXStream.relay_to`), and answers each peer with the id of its half.
Each half connects to the peer whose first packet reaches it (its firewall hook), so a peer
sends to ``relay stream id`` at the relay's address, from the socket of its relay connection.
Packets then cross unread: they are the peers' own secret-stream, end to end.

:class:`BlindRelayServer` bounds what a peer can make it hold: unpaired halves wait at most
``pair_timeout`` seconds, at most ``max_pending`` wait at once (``max_pending_per_session``
per connection), and one connection keeps at most ``max_links_per_session`` relayed streams;
requests over a cap are dropped (the peer's own timeout then gives up). Only a connection
that holds a half of a pairing or link can ``unpair`` it. :class:`BlindRelayClient` is the
peer's side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from protomux import Channel, Protomux
from protomux._toolkit import AsyncResource
from protomux.mux import MessageStream

from ..udx import UDXSocket, UDXStream
from ..udx.socket import MAX_STREAM_ID
from .errors import (
    AlreadyPairingError,
    ChannelClosedError,
    DuplicateChannelError,
    PairingCancelledError,
)
from .messages import PAIR, UNPAIR, Pair, Unpair

__all__ = [
    "MAX_LINKS_PER_SESSION",
    "MAX_PENDING",
    "MAX_PENDING_PER_SESSION",
    "PAIR_TIMEOUT",
    "PROTOCOL",
    "BlindRelayClient",
    "BlindRelayServer",
    "RelaySession",
    "RelayStats",
]

PROTOCOL = "blind-relay"
#: Unpaired halves the whole relay holds at once.
MAX_PENDING = 1024
#: Unpaired halves one connection may have waiting.
MAX_PENDING_PER_SESSION = 16
#: Relayed links one connection may hold.
MAX_LINKS_PER_SESSION = 64
#: Seconds an unpaired half waits for its other half (peers give up after 15).
PAIR_TIMEOUT = 20.0

#: ``firewall(socket, host, port) -> bool`` (see :meth:`~hyperswarm.udx.UDX.create_stream`).
StreamFirewall = Callable[[UDXSocket, str, int], bool]


@dataclass
class RelayStats:
    """What a relay did (as JS ``server.stats``, plus what the caps refused and expired)."""

    sessions_accepted: int = 0
    sessions_closed: int = 0
    pairings_requested: int = 0
    pairings_matched: int = 0
    pairings_cancelled: int = 0
    pairings_expired: int = 0
    pairings_refused: int = 0
    streams_opened: int = 0
    streams_closed: int = 0
    #: Packets and bytes passed on by links that ended.
    relayed_packets: int = 0
    relayed_bytes: int = 0

    @property
    def sessions_active(self) -> int:
        return self.sessions_accepted - self.sessions_closed

    @property
    def streams_active(self) -> int:
        return self.streams_opened - self.streams_closed


#: (token, is_initiator): one half of a pairing.
_Half = tuple[bytes, bool]


def _open_channel(
    mux: Protomux,
    id: bytes | None,
    on_pair: Callable[..., None],
    on_unpair: Callable[..., None] | None,
    on_close: Callable[..., None],
) -> Channel:
    """The ``blind-relay`` channel of a connection, opened."""
    channel = mux.create_channel(
        PROTOCOL,
        id,
        messages=[
            {"encoding": PAIR, "on_message": on_pair},
            {"encoding": UNPAIR, "on_message": on_unpair},
        ],
        on_close=on_close,
    )
    if channel is None:
        raise DuplicateChannelError("a blind-relay channel is already open on this stream")
    channel.open()
    return channel


class _Link:
    """One relayed half: the session that asked, its peer's stream id, the relay's stream."""

    __slots__ = ("is_initiator", "remote_id", "session", "stream", "token")

    def __init__(self, session: RelaySession, token: bytes, is_initiator: bool, remote_id: int):
        self.session = session
        self.token = token
        self.is_initiator = is_initiator
        self.remote_id = remote_id
        self.stream: UDXStream | None = None

    @property
    def half(self) -> _Half:
        return self.token, self.is_initiator

    def _on_first_packet(self, sock: UDXSocket, host: str, port: int) -> bool:
        stream = self.stream
        if stream is None or not 0 < port < 65536:
            return True
        stream.connect(self.remote_id, port, host, socket=sock)
        return False

    def _on_stream_close(self) -> None:
        session = self.session
        if session._links.get(self.half) is self:
            del session._links[self.half]
        server = session.server
        left = server._linked.get(self.token, 0) - 1
        if left > 0:
            server._linked[self.token] = left
        else:
            server._linked.pop(self.token, None)
        stats = server.stats
        stats.streams_closed += 1
        if self.stream is not None:
            stats.relayed_packets += self.stream.relayed_packets
            stats.relayed_bytes += self.stream.relayed_bytes
        self.stream = None


class _Pairing:
    __slots__ = ("deadline", "links", "token")

    def __init__(self, token: bytes, deadline: float) -> None:
        self.token = token
        self.deadline = deadline
        self.links: list[_Link | None] = [None, None]  # [not initiator, initiator]


class RelaySession:
    """One peer's ``blind-relay`` channel on a relay (``server.accept(stream)``)."""

    def __init__(self, server: BlindRelayServer, mux: Protomux, id: bytes | None) -> None:
        self.server = server
        self.mux = mux
        self._pairing: set[_Half] = set()
        self._links: dict[_Half, _Link] = {}
        self.closed = trio.Event()
        self.channel = _open_channel(mux, id, self._on_pair, self._on_unpair, self._on_close)

    @property
    def links(self) -> int:
        return len(self._links)

    @property
    def pending(self) -> int:
        return len(self._pairing)

    def close(self) -> None:
        """Close the channel: the session's pending halves and links end."""
        self.channel.close()

    def _on_pair(self, m: Pair, _channel: Any) -> None:
        server = self.server
        stats = server.stats
        side = 1 if m.is_initiator else 0
        pairing = server._pairing.get(m.token)
        if pairing is not None and pairing.links[side] is not None:
            return  # that half is taken
        if m.id > MAX_STREAM_ID or m.token in server._linked:
            stats.pairings_refused += 1  # not a stream id; a token already relayed
            return
        if len(self._links) >= server.max_links_per_session or (
            pairing is None
            and (
                len(server._pairing) >= server.max_pending
                or len(self._pairing) >= server.max_pending_per_session
            )
        ):
            stats.pairings_refused += 1
            return
        if pairing is None:
            pairing = _Pairing(m.token, trio.current_time() + server.pair_timeout)
            server._add_pending(pairing)
        link = _Link(self, m.token, m.is_initiator, m.id)
        pairing.links[side] = link
        self._pairing.add(link.half)
        stats.pairings_requested += 1
        a, b = pairing.links
        if a is None or b is None:
            return
        server._pairing.pop(m.token, None)
        if a.session is b.session:
            full = len(a.session._links) + 2 > server.max_links_per_session
        else:
            full = any(len(one.session._links) >= server.max_links_per_session for one in (a, b))
        if full:  # (the other half's session filled up meanwhile)
            server._drop_pending(pairing)
            stats.pairings_refused += 1
            return
        stats.pairings_matched += 1
        server._linked[m.token] = 2
        for one in (a, b):
            one.session._pairing.discard(one.half)
            one.stream = server.create_stream(one._on_first_packet)
        assert a.stream is not None and b.stream is not None
        a.stream.relay_to(b.stream)
        b.stream.relay_to(a.stream)
        for one in (a, b):
            assert one.stream is not None
            one.stream.on_close = one._on_stream_close
            one.session._links[one.half] = one
            stats.streams_opened += 1
        for one in (a, b):
            assert one.stream is not None
            one.session._send_pair(Pair(one.is_initiator, one.token, one.stream.local_id, 0))

    def _send_pair(self, m: Pair) -> None:
        if not self.channel.closed:
            self.channel.messages[0].send(m)

    def _on_unpair(self, m: Unpair, _channel: Any) -> None:
        server = self.server
        mine = [h for h in ((m.token, False), (m.token, True)) if h in self._pairing]
        pairing = server._pairing.get(m.token)
        if pairing is not None and mine:
            server._drop_pending(pairing)
            server.stats.pairings_cancelled += 1
            return
        for half in ((m.token, False), (m.token, True)):
            link = self._links.get(half)
            if link is not None and link.stream is not None:
                link.stream.destroy()  # (its other half ends with it)
                server.stats.pairings_cancelled += 1
                return

    def _on_close(self, *_args: Any) -> None:
        server = self.server
        for token, _side in list(self._pairing):
            pairing = server._pairing.get(token)
            if pairing is not None:
                server._drop_pending(pairing)
                server.stats.pairings_cancelled += 1
        self._pairing.clear()
        for link in list(self._links.values()):
            if link.stream is not None:
                link.stream.destroy()
        self._links.clear()
        if self in server._sessions:
            server._sessions.discard(self)
            server.stats.sessions_closed += 1
        self.closed.set()


class BlindRelayServer(AsyncResource):
    """Relays for peers that cannot reach each other (JS ``new BlindRelayServer({
    createStream })``): ``async with BlindRelayServer(dht.create_raw_stream) as relay:``,
    then ``relay.accept(connection)`` (or ``await relay.serve(connection)`` as a HyperDHT
    server's connection handler) for each peer's connection to it."""

    def __init__(
        self,
        create_stream: Callable[..., UDXStream],
        *,
        max_pending: int = MAX_PENDING,
        max_pending_per_session: int = MAX_PENDING_PER_SESSION,
        max_links_per_session: int = MAX_LINKS_PER_SESSION,
        pair_timeout: float = PAIR_TIMEOUT,
    ) -> None:
        self._create = create_stream
        self.max_pending = max_pending
        self.max_pending_per_session = max_pending_per_session
        self.max_links_per_session = max_links_per_session
        self.pair_timeout = pair_timeout
        self.stats = RelayStats()
        self._pairing: dict[bytes, _Pairing] = {}  # in deadline order
        self._linked: dict[bytes, int] = {}  # token -> its relay streams still open
        self._sessions: set[RelaySession] = set()
        self._wake = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._expiring = trio.CancelScope()
        self.closed = False

    def create_stream(self, firewall: StreamFirewall) -> UDXStream:
        return self._create(firewall=firewall)

    @property
    def sessions(self) -> list[RelaySession]:
        return list(self._sessions)

    @property
    def pending(self) -> int:
        """Unpaired halves waiting now."""
        return sum(sum(1 for link in p.links if link is not None) for p in self._pairing.values())

    async def _open(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        nursery.start_soon(self._run_expire)

    def accept(self, stream: MessageStream | Protomux, *, id: bytes | None = None) -> RelaySession:
        """Serve one peer's connection (its Protomux is shared with whatever else runs on the
        connection). ``id`` is the channel id: the peer's public key (JS
        ``{ id: socket.remotePublicKey }``); by default the stream's ``remote_public_key``."""
        if self._nursery is None or self.closed:
            raise RuntimeError("use the relay as an async context manager")
        if id is None:
            id = getattr(stream, "remote_public_key", None)
        mux = stream if isinstance(stream, Protomux) else Protomux.of(stream, self._nursery)
        session = RelaySession(self, mux, id)
        self._sessions.add(session)
        self.stats.sessions_accepted += 1
        return session

    async def serve(self, stream: MessageStream | Protomux, *, id: bytes | None = None) -> None:
        """:meth:`accept`, then wait until the session ends (a connection handler)."""
        session = self.accept(stream, id=id)
        await session.closed.wait()

    def _add_pending(self, pairing: _Pairing) -> None:
        self._pairing[pairing.token] = pairing
        self._wake.set()

    def _drop_pending(self, pairing: _Pairing) -> None:
        if self._pairing.get(pairing.token) is pairing:
            del self._pairing[pairing.token]
        for link in pairing.links:
            if link is not None:
                link.session._pairing.discard(link.half)

    async def _run_expire(self) -> None:
        with self._expiring:
            await self._expire()

    async def _expire(self) -> None:
        """End unpaired halves once their time is up (the oldest first: a dict keeps the
        order they came in, which is their deadlines' order)."""
        while True:
            if not self._pairing:
                self._wake = trio.Event()
                await self._wake.wait()
                continue
            oldest = next(iter(self._pairing.values()))
            await trio.sleep_until(oldest.deadline)
            now = trio.current_time()
            while self._pairing:
                pairing = next(iter(self._pairing.values()))
                if pairing.deadline > now:
                    break
                self._drop_pending(pairing)
                self.stats.pairings_expired += 1

    async def aclose(self) -> None:
        """Close every session (their links end) and stop."""
        if self.closed:
            await trio.lowlevel.checkpoint()
            return
        self.closed = True
        for session in list(self._sessions):
            session.close()
        self._pairing.clear()
        self._expiring.cancel()
        await trio.lowlevel.checkpoint()


class _Request:
    __slots__ = ("done", "error", "is_initiator", "remote_id")

    def __init__(self, is_initiator: bool) -> None:
        self.is_initiator = is_initiator
        self.done = trio.Event()
        self.remote_id: int | None = None
        self.error: Exception | None = None


class BlindRelayClient:
    """A peer's side of a relay (JS ``BlindRelayClient``): ``client = BlindRelayClient(mux,
    id=our_public_key)``, then ``remote_id = await client.pair(is_initiator, token,
    udx_stream)``: connect the stream to ``remote_id`` at the relay's address, through the
    socket of the relay connection."""

    def __init__(self, mux: Protomux, *, id: bytes | None = None) -> None:
        self._requests: dict[bytes, _Request] = {}
        #: Set once the channel closed (the relay connection ended or refused the channel).
        self.ended = trio.Event()
        self.channel = _open_channel(mux, id, self._on_pair, None, self._on_close)

    @property
    def closed(self) -> bool:
        return bool(self.channel.closed)

    async def pair(self, is_initiator: bool, token: bytes, stream: UDXStream) -> int:
        """Ask the relay to pair ``stream`` with the other end of ``token``; return the id of
        the relay's stream to send to, once the other end is in. Raises
        :class:`ChannelClosedError` if the relay connection closes first,
        :class:`PairingCancelledError` after :meth:`unpair`."""
        if self.channel.closed:
            raise ChannelClosedError("the relay channel is closed")
        if token in self._requests:
            raise AlreadyPairingError("this token is already pairing")
        if len(token) != 32:
            raise ValueError("a pairing token is 32 bytes")
        request = self._requests[token] = _Request(is_initiator)
        try:
            self.channel.messages[0].send(Pair(is_initiator, token, stream.local_id, 0))
            await request.done.wait()
        finally:
            if self._requests.get(token) is request:
                del self._requests[token]
        if request.error is not None:
            raise request.error
        assert request.remote_id is not None
        return request.remote_id

    def unpair(self, token: bytes) -> None:
        """Cancel the pairing (or the link) of ``token`` at the relay."""
        request = self._requests.pop(token, None)
        if request is not None and not request.done.is_set():
            request.error = PairingCancelledError("pairing cancelled")
            request.done.set()
        if not self.channel.closed:
            self.channel.messages[1].send(Unpair(token))

    def close(self) -> None:
        self.channel.close()

    def _on_pair(self, m: Pair, _channel: Any) -> None:
        request = self._requests.get(m.token)
        if request is None or request.is_initiator != m.is_initiator or request.done.is_set():
            return
        if m.id > MAX_STREAM_ID:
            return  # not a stream id: the pairing times out
        request.remote_id = m.id
        request.done.set()

    def _on_close(self, *_args: Any) -> None:
        self.ended.set()
        for request in self._requests.values():
            if not request.done.is_set():
                request.error = ChannelClosedError("the relay channel closed")
                request.done.set()
