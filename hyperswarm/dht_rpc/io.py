"""Requests and replies of one DHT node, sans-IO (JS dht-rpc ``lib/io.js``).

:class:`IO` turns datagrams into :class:`IncomingRequest`/:class:`Reply` objects and sends
:class:`OutgoingRequest`s with retries, per-try timeouts and the send limiter
(:class:`CongestionWindow`: at most ``max_window`` new requests per 750 ms slot and twice
that over four slots), as JS does. It owns the write tokens (two rotating secrets).

Nothing here touches a socket or a clock: packets leave through a :class:`Transport` and time
comes from a :class:`~hyperswarm.dht_rpc.timers.TimerQueue`. A node has two sockets, named
:data:`SERVER` and :data:`CLIENT` as in JS; requests leave from the client socket while the
node is firewalled and from the server socket afterwards.

One deliberate difference from JS: a reply is matched to its request by tid *and* by the
address the request went to. JS matches the tid alone, so anyone who guesses a 16-bit tid
could answer for another node.
"""

from __future__ import annotations

import hashlib
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from protomux.encoding import Address

from .errors import (
    INVALID_TOKEN,
    DHTDecodeError,
    DHTError,
    IOSuspendedError,
    RequestDestroyedError,
    RequestTimeoutError,
)
from .messages import Request, Response, decode_packet, encode_request, encode_response
from .peer import node_id

if TYPE_CHECKING:
    from .timers import Timer, TimerQueue

__all__ = [
    "CLIENT",
    "IO",
    "SERVER",
    "CongestionWindow",
    "IncomingRequest",
    "OutgoingRequest",
    "Peer",
    "Reply",
    "Session",
    "Transport",
]

SERVER = 0
CLIENT = 1

MAX_WINDOW = 80
DRAIN_INTERVAL = 750.0
ROTATE_SECRETS = 10  # drains between token secret rotations
DEFAULT_TIMEOUT = 1000.0
DEFAULT_RETRIES = 3
TOKEN_CACHE = 4096  # hosts whose tokens are kept per secret (cleared when full)


class Transport(Protocol):
    """Where a node's datagrams go: ``socket`` is :data:`SERVER` or :data:`CLIENT`."""

    def send(self, socket: int, data: bytes, host: str, port: int, ttl: int) -> None: ...


class ClosestSource(Protocol):
    """What replies need of the routing table: its id and the nodes closest to a target."""

    @property
    def id(self) -> bytes: ...

    def closest(self, target: bytes, k: int | None = None) -> Sequence[_HasAddress]: ...


class _HasAddress(Protocol):
    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


@dataclass(slots=True)
class Peer:
    """A node as a request or reply names it: its address, and its id when it is known
    (an id a packet claims is kept only if it is the hash of the address it came from)."""

    host: str
    port: int
    id: bytes | None = None

    @property
    def address(self) -> Address:
        return Address(self.host, self.port)


@dataclass(slots=True)
class Reply:
    """A response to one of our requests (JS dht-rpc's response object)."""

    tid: int
    from_: Peer
    to: Address  # our address as the responder saw it
    token: bytes | None
    closer_nodes: tuple[Address, ...]
    error: int
    value: bytes | None
    rtt: float = 0.0


class CongestionWindow:
    """The send limiter of JS ``lib/io.js``: four 750 ms slots."""

    __slots__ = ("_i", "_max", "_total", "_window")

    def __init__(self, max_window: int = MAX_WINDOW) -> None:
        self._max = max_window
        self._i = 0
        self._total = 0
        self._window = [0, 0, 0, 0]

    @property
    def max_window(self) -> int:
        return self._max

    @property
    def total(self) -> int:
        return self._total

    def clear(self) -> None:
        self._i = 0
        self._total = 0
        self._window = [0, 0, 0, 0]

    def is_full(self) -> bool:
        return self._total >= 2 * self._max or self._window[self._i] >= self._max

    def recv(self) -> None:
        if self._window[self._i] > 0:
            self._window[self._i] -= 1
            self._total -= 1

    def send(self) -> None:
        self._total += 1
        self._window[self._i] += 1

    def drain(self) -> None:
        self._i = (self._i + 1) & 3
        self._total -= self._window[self._i]
        self._window[self._i] = 0


class Session:
    """Requests that end together (JS dht-rpc ``Session``): a query's requests, for example."""

    __slots__ = ("_io", "inflight")

    def __init__(self, io: IO) -> None:
        self._io = io
        self.inflight: set[OutgoingRequest] = set()

    def destroy(self, error: DHTError | None = None) -> None:
        while self.inflight:
            req = next(iter(self.inflight))
            # a destroyed request does not count against the send limiter
            self._io.congestion.recv()
            req.destroy(error)


def _noop_response(reply: Reply, req: OutgoingRequest) -> None:
    pass


def _noop_error(error: DHTError, req: OutgoingRequest) -> None:
    pass


def _noop_cycle(req: OutgoingRequest) -> None:
    pass


class OutgoingRequest:
    """A request we send: retried ``retries`` times, each try timed out after ``timeout`` ms.

    ``on_response(reply, req)`` or ``on_error(error, req)`` is called exactly once (unless
    the request is destroyed before it is sent); ``on_cycle(req)`` at each timed-out try.
    """

    __slots__ = (
        "__weakref__",
        "_buffer",
        "_io",
        "_timer",
        "command",
        "destroyed",
        "internal",
        "on_cycle",
        "on_error",
        "on_response",
        "retries",
        "sent",
        "session",
        "socket",
        "target",
        "tid",
        "timeout",
        "timestamp",
        "to",
        "token",
        "ttl",
        "value",
    )

    def __init__(
        self,
        io: IO,
        socket: int,
        tid: int,
        to: Peer,
        token: bytes | None,
        internal: bool,
        command: int,
        target: bytes | None,
        value: bytes | None,
        session: Session | None,
        ttl: int,
    ) -> None:
        self._io = io
        self.socket = socket
        self.tid = tid
        self.to = to
        self.token = token
        self.internal = internal
        self.command = command
        self.target = target
        self.value = value
        self.session = session
        self.ttl = ttl
        self.sent = 0
        self.retries = DEFAULT_RETRIES
        self.timeout = 0.0  # 0: the default per-try timeout
        self.destroyed = False
        self.timestamp = io.timers.now()
        self.on_response: Callable[[Reply, OutgoingRequest], None] = _noop_response
        self.on_error: Callable[[DHTError, OutgoingRequest], None] = _noop_error
        self.on_cycle: Callable[[OutgoingRequest], None] = _noop_cycle
        self._buffer: bytes | None = None
        self._timer: Timer | None = None

    def send(self, force: bool = False) -> None:
        """Send now, or queue behind the send limiter (unless ``force``)."""
        if self.destroyed:
            return
        if self._buffer is None:
            self._buffer = self._io.encode_request(self, self.token, self.value, self.to)
        if not force and self._io.congestion.is_full():
            self._io.pending.append(self)
            return
        self.send_now()

    def send_now(self) -> None:
        if self.destroyed:
            return
        io = self._io
        if self._buffer is None:
            self._buffer = io.encode_request(self, self.token, self.value, self.to)
        self.sent += 1
        io.congestion.send()
        io.transport.send(self.socket, self._buffer, self.to.host, self.to.port, self.ttl)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = io.timers.call_later(self.timeout or DEFAULT_TIMEOUT, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        io = self._io
        self.on_cycle(self)
        if self.destroyed:
            return
        if self.sent > self.retries:
            io.stats.timeouts += 1
            self.destroy(RequestTimeoutError())
            io.on_timeout(self)
        else:
            io.stats.retries += 1
            self.send()

    def destroy(self, error: DHTError | None = None) -> None:
        """End the request; ``on_error`` gets ``error`` (REQUEST_DESTROYED by default)."""
        if self.destroyed:
            return
        self.destroyed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        io = self._io
        if io.inflight.get(self.tid) is not self:
            return
        del io.inflight[self.tid]
        if self.session is not None:
            self.session.inflight.discard(self)
        io.stats.active -= 1
        io.congestion.recv()
        self.on_error(error if error is not None else RequestDestroyedError(), self)

    def _settle(self) -> None:
        """A reply arrived: stop the timer and leave the in-flight table."""
        self.destroyed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.session is not None:
            self.session.inflight.discard(self)


class IncomingRequest:
    """A request another node sent us; answer it with :meth:`reply` or :meth:`error`, or
    pass it on with :meth:`relay` (JS dht-rpc's request object)."""

    __slots__ = (
        "_io",
        "command",
        "from_",
        "internal",
        "socket",
        "target",
        "tid",
        "to",
        "token",
        "ttl",
        "value",
    )

    def __init__(self, io: IO, socket: int, from_: Peer, packet: Request) -> None:
        self._io = io
        self.socket = socket
        self.from_ = from_
        self.tid = packet.tid
        self.to = packet.to
        self.token = packet.token
        self.internal = packet.internal
        self.command = packet.command
        self.target = packet.target
        self.value = packet.value
        self.ttl = 0

    def reply(
        self,
        value: bytes | None = None,
        *,
        token: bool = True,
        closer_nodes: bool = True,
        to: Address | None = None,
        socket: int | None = None,
    ) -> None:
        """Answer with ``value``; a write token and closer nodes go along unless disabled."""
        self.send_reply(0, value, token, closer_nodes, to=to, socket=socket)

    def error(
        self,
        code: int,
        *,
        token: bool = False,
        closer_nodes: bool = True,
        to: Address | None = None,
        socket: int | None = None,
    ) -> None:
        """Answer with error ``code`` (closer nodes go along unless disabled)."""
        self.send_reply(code, None, token, closer_nodes, to=to, socket=socket)

    def relay(self, value: bytes | None, to: Address, *, socket: int | None = None) -> None:
        """Forward this request (same tid, command and target) to ``to`` with ``value``."""
        io = self._io
        sock = self.socket if socket is None else socket
        packet = Request(
            tid=self.tid,
            to=to,
            command=self.command,
            id=io.table.id if (not io.ephemeral and sock == SERVER) else None,
            token=None,
            internal=self.internal,
            target=self.target,
            value=value,
        )
        io.transport.send(sock, encode_request(packet), to.host, to.port, self.ttl)

    def send_reply(
        self,
        error: int,
        value: bytes | None,
        token: bool,
        closer_nodes: bool,
        *,
        to: Address | None = None,
        socket: int | None = None,
    ) -> None:
        io = self._io
        if io.destroyed:
            return
        sock = self.socket if socket is None else socket
        dest = to if to is not None else Address(self.from_.host, self.from_.port)
        nodes: Sequence[_HasAddress] = ()
        if self.target is not None and closer_nodes:
            nodes = io.table.closest(self.target)
        packet = Response(
            tid=self.tid,
            to=dest,
            id=io.table.id if (not io.ephemeral and sock == SERVER) else None,
            token=io.token(dest.host, 1) if token else None,
            closer_nodes=nodes,
            error=error,
            value=value,
        )
        io.transport.send(sock, encode_response(packet), dest.host, dest.port, self.ttl)


@dataclass(slots=True)
class IOStats:
    active: int = 0
    total: int = 0
    responses: int = 0
    timeouts: int = 0
    retries: int = 0


class IO:
    """The request/reply layer of one node. ``on_request(req, external)`` gets every valid
    request (``external``: it arrived on the socket we do not send from),
    ``on_response(reply, external)`` every matched reply, ``on_timeout(req)`` every request
    that ran out of tries."""

    def __init__(
        self,
        table: ClosestSource,
        transport: Transport,
        timers: TimerQueue,
        *,
        rng: random.Random,
        max_window: int = MAX_WINDOW,
        firewalled: bool = True,
        on_request: Callable[[IncomingRequest, bool], None],
        on_response: Callable[[Reply, bool], None],
        on_timeout: Callable[[OutgoingRequest], None],
    ) -> None:
        self.table = table
        self.transport = transport
        self.timers = timers
        self.rng = rng
        self.firewalled = firewalled
        self.ephemeral = True
        self.suspended = False
        self.destroyed = False
        self.congestion = CongestionWindow(max_window)
        self.inflight: dict[int, OutgoingRequest] = {}
        self.pending: deque[OutgoingRequest] = deque()
        self.stats = IOStats()
        self.on_request = on_request
        self.on_response = on_response
        self.on_timeout = on_timeout
        self._tid = rng.randrange(65536)
        self._secrets: list[bytes] | None = None
        # per secret: the secret and the tokens made with it (host -> token)
        self._tokens: list[tuple[bytes, dict[str, bytes]]] = [(b"", {}), (b"", {})]
        self._rotate = ROTATE_SECRETS
        self._drain_timer: Timer | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the 750 ms drain of the send limiter (JS starts it once bound)."""
        if self._drain_timer is None and not self.destroyed:
            self._drain_timer = self.timers.call_later(DRAIN_INTERVAL, self._drain)

    def destroy(self) -> None:
        """Fail every request in flight with REQUEST_DESTROYED and stop."""
        self._clear(suspended=False)
        self.destroyed = True

    def suspend(self) -> None:
        self.suspended = True
        self._clear(suspended=True)
        self.congestion.clear()

    def resume(self) -> None:
        self.suspended = False
        self.start()

    def _clear(self, *, suspended: bool) -> None:
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None
        while self.inflight:
            _, req = self.inflight.popitem()
            if req._timer is not None:
                req._timer.cancel()
                req._timer = None
            req.destroyed = True
            if req.session is not None:
                req.session.inflight.discard(req)
            self.congestion.recv()
            self.stats.active -= 1
            req.on_error(IOSuspendedError() if suspended else RequestDestroyedError(), req)
        self.pending.clear()

    # --- tokens -----------------------------------------------------------------------------

    def token(self, host: str, i: int) -> bytes:
        """The write token for ``host`` under secret ``i`` (1: current, 0: previous)."""
        if self._secrets is None:
            self._secrets = [self.rng.randbytes(32), self.rng.randbytes(32)]
        key = self._secrets[i]
        cached_key, cache = self._tokens[i]
        if cached_key is not key or len(cache) >= TOKEN_CACHE:
            cache = {}
            self._tokens[i] = (key, cache)
        token = cache.get(host)
        if token is None:
            token = cache[host] = hashlib.blake2b(host.encode(), digest_size=32, key=key).digest()
        return token

    def valid_token(self, host: str, token: bytes) -> bool:
        return token == self.token(host, 1) or token == self.token(host, 0)

    def _drain(self) -> None:
        self._drain_timer = self.timers.call_later(DRAIN_INTERVAL, self._drain)
        if self._secrets is not None:
            self._rotate -= 1
            if self._rotate == 0:
                self._rotate = ROTATE_SECRETS
                old = self._secrets[0]
                self._secrets = [self._secrets[1], hashlib.blake2b(old, digest_size=32).digest()]
        self.congestion.drain()
        while not self.congestion.is_full() and self.pending:
            self.pending.popleft().send_now()

    # --- requests ---------------------------------------------------------------------------

    @property
    def socket(self) -> int:
        """The socket requests leave from."""
        return CLIENT if self.firewalled else SERVER

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
        """A new request in flight (not yet sent: call ``send``), or None once destroyed."""
        if self.destroyed:
            return None
        inflight = self.inflight
        if len(inflight) >= 65536:
            return None
        tid = self._tid
        while tid in inflight:
            tid = (tid + 1) & 0xFFFF
        self._tid = (tid + 1) & 0xFFFF
        req = OutgoingRequest(
            self, self.socket, tid, to, token, internal, command, target, value, session, ttl
        )
        inflight[tid] = req
        if session is not None:
            session.inflight.add(req)
        self.stats.active += 1
        self.stats.total += 1
        return req

    def encode_request(
        self, req: OutgoingRequest, token: bytes | None, value: bytes | None, to: Peer
    ) -> bytes:
        packet = Request(
            tid=req.tid,
            to=Address(to.host, to.port),
            command=req.command,
            id=self.table.id if (not self.ephemeral and req.socket == SERVER) else None,
            token=token,
            internal=req.internal,
            target=req.target,
            value=value,
        )
        return encode_request(packet)

    # --- datagrams in -------------------------------------------------------------------------

    def on_message(self, socket: int, data: bytes, host: str, port: int) -> None:
        """A datagram from ``host:port`` arrived on ``socket``; bad ones are dropped."""
        if len(data) < 2 or not 0 < port < 65536 or self.suspended or self.destroyed:
            return
        try:
            packet = decode_packet(data)
        except DHTDecodeError:
            return
        external = socket != self.socket
        if isinstance(packet, Request):
            from_ = Peer(host, port, _validate_id(packet.id, host, port))
            req = IncomingRequest(self, socket, from_, packet)
            if packet.token is not None and not self.valid_token(host, packet.token):
                req.error(INVALID_TOKEN, token=True)
                return
            self.on_request(req, external)
            return
        out = self.inflight.get(packet.tid)
        if out is None or out.to.port != port or out.to.host != host:
            return
        del self.inflight[packet.tid]
        out._settle()
        self.congestion.recv()
        self.stats.active -= 1
        self.stats.responses += 1
        reply = Reply(
            tid=packet.tid,
            from_=Peer(host, port, _validate_id(packet.id, host, port)),
            to=packet.to,
            token=packet.token,
            closer_nodes=cast("tuple[Address, ...]", packet.closer_nodes),
            error=packet.error,
            value=packet.value,
            rtt=self.timers.now() - out.timestamp,
        )
        self.on_response(reply, external)
        out.on_response(reply, out)


def _validate_id(claimed: bytes | None, host: str, port: int) -> bytes | None:
    if claimed is None:
        return None
    try:
        expected = node_id(host, port)
    except (OSError, ValueError):
        return None
    return expected if claimed == expected else None
