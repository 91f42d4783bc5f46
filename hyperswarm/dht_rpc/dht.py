"""The Trio dht-rpc node: :class:`DHT`, a :class:`~hyperswarm.dht_rpc.core.DHTCore` on two
:class:`~hyperswarm.udx.UDXSocket`\\ s (JS dht-rpc's ``DHT``).

``async with DHT(bootstrap=[...]) as node:`` binds the server socket (``port``, trying
``[port, port + 5)`` then any port, as JS) and a client socket, bootstraps in the background
and answers other nodes until the block ends. UDX streams may run on the same sockets: a
datagram that is not for a stream goes to the DHT.

Queries are async iterators of replies (:class:`QueryIterator`); :meth:`DHT.request` and
:meth:`DHT.ping` await one reply.
"""

from __future__ import annotations

import collections
import ipaddress
import random
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import trio

from protomux._toolkit import AsyncResource, ChangeNotifier
from protomux.encoding import Address

from ..udx import UDX, UDXSocket
from ..udx.errors import UDXError
from .core import DHTCore
from .errors import DHTError, NodeDestroyedError, RequestDestroyedError
from .io import CLIENT, SERVER, IncomingRequest, OutgoingRequest, Peer, Reply, Session
from .query import Commit, Query
from .timers import TimerQueue

__all__ = ["DHT", "QueryIterator", "parse_bootstrap"]

BootstrapEntry = str | int | tuple[str, int] | Address


def parse_bootstrap(entries: Sequence[BootstrapEntry]) -> list[tuple[str, str | None, int]]:
    """``host:port``, ``suggestedIP@hostname:port``, a bare port (127.0.0.1) or a tuple, as
    ``(host, fallback_host, port)``: JS's bootstrap formats."""
    out: list[tuple[str, str | None, int]] = []
    for entry in entries:
        if isinstance(entry, int):
            out.append(("127.0.0.1", None, entry))
            continue
        if isinstance(entry, tuple):
            out.append((entry[0], None, int(entry[1])))
            continue
        host, sep, port = entry.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError("Bootstrap node format is host:port")
        fallback: str | None = None
        if "@" in host:
            host, fallback = host.split("@", 1)
        out.append((host, fallback, int(port)))
    return out


def _is_ipv4(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 4
    except ValueError:
        return False


class _SocketTransport:
    """Sends the core's datagrams on the node's sockets (drops what cannot be sent): its two
    own, numbered :data:`SERVER` and :data:`CLIENT`, and any it opened later."""

    def __init__(self) -> None:
        self.sockets: list[UDXSocket | None] = [None, None]

    def send(self, socket: int, data: bytes, host: str, port: int, ttl: int) -> None:
        sock = self.sockets[socket] if socket < len(self.sockets) else None
        if sock is None or sock.closed:
            return
        try:
            sock.try_send(data, port, host, ttl=ttl or None)
        except (ValueError, UDXError):
            pass  # an address a peer made up (port 0, not an IP): nothing to send to


class QueryIterator:
    """A running query: ``async for reply in q`` yields each reply as it arrives;
    :meth:`finished` waits for the end (raising the query's error, if any)."""

    def __init__(self, query: Query) -> None:
        self.query = query
        self._items: collections.deque[Any] = collections.deque()
        self._changed = ChangeNotifier()
        self._closed = False
        self._error: BaseException | None = None
        query.on_data = self._on_data
        query.on_close = self._on_close

    def _on_data(self, item: Any) -> None:
        self._items.append(item)
        self._changed.notify()

    def _on_close(self, error: BaseException | None) -> None:
        self._closed = True
        self._error = error
        self._changed.notify()

    @property
    def closest_replies(self) -> list[Reply]:
        return self.query.closest_replies

    @property
    def closest_nodes(self) -> list[Peer]:
        return self.query.closest_nodes

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        if self._items:
            # Replies already here come out with a cancel point but no trip through the
            # scheduler (a lookup's replies arrive in bursts; one poll per reply would cost
            # more than the reply's handling).
            await trio.lowlevel.checkpoint_if_cancelled()
            return self._items.popleft()
        await self._changed.wait_until(lambda: bool(self._items) or self._closed)
        if self._items:
            return self._items.popleft()
        if self._error is not None:
            raise self._error
        raise StopAsyncIteration

    async def finished(self) -> None:
        """Wait for the query (and its commit) to end; replies not read are dropped."""
        await self._changed.wait_until(lambda: self._closed)
        self._items.clear()
        if self._error is not None:
            raise self._error

    def destroy(self) -> None:
        self.query.destroy(None)


class DHT(AsyncResource):
    """A dht-rpc node. Options as JS: ``bootstrap`` (``host:port`` strings; empty joins
    nobody), ``port``/``host`` of the server socket, ``ephemeral`` (None: adaptive),
    ``firewalled``, ``quick_firewall``, ``concurrency``, ``max_window``, ``nodes``,
    ``filter_node``; ``rng`` for tests that want determinism."""

    def __init__(
        self,
        *,
        bootstrap: Sequence[BootstrapEntry] = (),
        port: int = 0,
        host: str = "0.0.0.0",
        any_port: bool = True,
        ephemeral: bool | None = None,
        firewalled: bool = True,
        quick_firewall: bool = True,
        concurrency: int = 10,
        max_window: int = 80,
        nodes: Sequence[tuple[str, int]] = (),
        filter_node: Callable[[Peer], bool] | None = None,
        rng: random.Random | None = None,
        _known_host: str | None = None,
    ) -> None:
        self._bootstrap = parse_bootstrap(bootstrap)
        self._port = port
        self._host = host
        self._any_port = any_port
        self._known_host = _known_host
        self._transport = _SocketTransport()
        #: The stream table of the node's sockets: a UDX stream may run on either of them.
        self.udx = UDX()
        self._epoch = 0.0
        self.timers = TimerQueue()
        self.timers.on_schedule = self._on_schedule
        self._wake = trio.Event()
        self._ready = trio.Event()
        self._options: dict[str, Any] = {
            "ephemeral": ephemeral,
            "firewalled": firewalled,
            "quick_firewall": quick_firewall,
            "concurrency": concurrency,
            "max_window": max_window,
            "nodes": nodes,
            "filter_node": filter_node,
            "rng": rng,
        }
        self._core: DHTCore | None = None
        self._server: UDXSocket | None = None
        self._client: UDXSocket | None = None
        self._request_handler: Callable[[IncomingRequest], bool] | None = None
        self._extra_closed: dict[int, trio.Event] = {}
        self.closed = False

    @classmethod
    def bootstrapper(cls, port: int, host: str, **opts: Any) -> DHT:
        """A first node of a network on ``host:port`` (persistent, not firewalled, that exact
        port), as JS ``DHT.bootstrapper``."""
        if not port:
            raise ValueError("Port is required")
        if not _is_ipv4(host) or host == "0.0.0.0":
            raise ValueError("Host must be an IPv4 address")
        opts.setdefault("ephemeral", False)
        opts.setdefault("firewalled", False)
        opts.setdefault("bootstrap", ())
        return cls(port=port, host=host, any_port=False, _known_host=host, **opts)

    # --- lifecycle --------------------------------------------------------------------------

    def _now(self) -> float:
        return trio.current_time() * 1000.0 - self._epoch

    async def _open(self, nursery: trio.Nursery) -> None:
        self._epoch = trio.current_time() * 1000.0
        bootstrap = await self._resolve_bootstrap()
        server = UDXSocket(udx=self.udx, on_datagram=lambda d, a: self._on_datagram(SERVER, d, a))
        client = UDXSocket(udx=self.udx, on_datagram=lambda d, a: self._on_datagram(CLIENT, d, a))
        await nursery.start(self._hold, server)
        await nursery.start(self._hold, client)
        self._server, self._client = server, client
        try:
            await self._bind_server(server)
            await client.bind(0, self._host)
        except BaseException:
            await server.aclose()
            await client.aclose()
            raise
        self._transport.sockets = [server, client]
        opts = {k: v for k, v in self._options.items() if v is not None or k == "ephemeral"}
        core = DHTCore(self._transport, self.timers, bootstrap=bootstrap, **opts)
        if self._known_host is not None:  # a bootstrapper knows its own address
            core.add_nat_sample(self._known_host, server.address()[1])
        self._core = core
        core.on_ready = self._ready.set
        if self._request_handler is not None:
            core.on_request = self._request_handler
        core.bind(server.address()[1], client.address()[1])
        self._setup_core()
        core.start()
        nursery.start_soon(self._run_timers)

    def _setup_core(self) -> None:
        """Subclasses hook into the core here, before it starts (it is :attr:`core`)."""

    async def _hold(self, sock: UDXSocket, task_status: trio.TaskStatus[None]) -> None:
        async with sock:
            task_status.started()
            await trio.sleep_forever()

    async def _bind_server(self, server: UDXSocket) -> None:
        ports = list(range(self._port, self._port + 5)) if self._port else []
        for port in ports:
            try:
                await server.bind(port, self._host)
                return
            except OSError:
                if not self._any_port:
                    raise
        await server.bind(0, self._host)

    async def _resolve_bootstrap(self) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        for host, fallback, port in self._bootstrap:
            if _is_ipv4(host):
                out.append((host, port))
                continue
            name = fallback if fallback is not None else host
            try:
                infos = await trio.socket.getaddrinfo(name, port, family=trio.socket.AF_INET)
            except OSError:
                continue
            if infos:
                out.append((str(infos[0][4][0]), port))
        return out

    async def _run_timers(self) -> None:
        timers = self.timers
        while True:
            deadline = timers.next_deadline()
            self._wake = trio.Event()
            if deadline is None:
                await self._wake.wait()
            else:
                with trio.move_on_at((deadline + self._epoch) / 1000.0):
                    await self._wake.wait()
            timers.advance(self._now())

    def _on_schedule(self, _deadline: float) -> None:
        self._wake.set()

    def _on_datagram(self, socket: int, data: bytes, addr: tuple[str, int]) -> None:
        core = self._core
        if core is None or self.closed:
            return
        self.timers.advance(self._now())
        core.on_message(socket, data, addr[0], addr[1])

    async def aclose(self) -> None:
        if self.closed:
            await trio.lowlevel.checkpoint()
            return
        self.closed = True
        if self._core is not None:
            self._core.destroy()
        for sock in list(self._transport.sockets):
            if sock is not None:
                await sock.aclose()
        await trio.lowlevel.checkpoint()

    # --- more sockets -----------------------------------------------------------------------

    async def open_socket(
        self, on_small: Callable[[bytes, Address], None] | None = None
    ) -> tuple[int, UDXSocket]:
        """Another UDP socket of the node, bound to the node's host on any port and sharing
        its stream table: RPC datagrams that reach it go to the node as arriving on socket
        number ``n`` (requests with ``socket=`` it leave from it, and replies to what came
        in on it go out through it); one-byte datagrams (hole punches) go to
        ``on_small(data, address)``. Returns ``(n, socket)``; :meth:`close_socket` ends it
        (the node's close ends it too)."""
        sockets = self._transport.sockets
        number = next((i for i in range(2, len(sockets)) if sockets[i] is None), len(sockets))

        def on_datagram(data: bytes, addr: tuple[str, int]) -> None:
            if len(data) > 1:
                self._on_datagram(number, data, addr)
            elif on_small is not None:
                on_small(data, Address(addr[0], addr[1]))

        sock = UDXSocket(udx=self.udx, on_datagram=on_datagram)
        closed = trio.Event()
        if number == len(sockets):  # the number is taken now (others may open meanwhile)
            sockets.append(sock)
        else:
            sockets[number] = sock
        try:
            await self.nursery.start(self._hold_until, sock, closed)
            await sock.bind(0, self._host if self._host != "::" else "0.0.0.0")
        except BaseException:
            closed.set()
            if sockets[number] is sock:
                sockets[number] = None
            await sock.aclose()
            raise
        self._extra_closed[id(sock)] = closed
        return number, sock

    async def close_socket(self, number: int) -> None:
        """Close a socket :meth:`open_socket` opened (and the streams on it)."""
        sockets = self._transport.sockets
        if number < 2 or number >= len(sockets) or sockets[number] is None:
            await trio.lowlevel.checkpoint()
            return
        sock = sockets[number]
        assert sock is not None
        sockets[number] = None
        while len(sockets) > 2 and sockets[-1] is None:
            sockets.pop()
        closed = self._extra_closed.pop(id(sock), None)
        await sock.aclose()
        if closed is not None:
            closed.set()

    @property
    def open_sockets(self) -> int:
        """The sockets :meth:`open_socket` opened that are open now."""
        return sum(1 for s in self._transport.sockets[2:] if s is not None)

    def socket_number(self, socket: UDXSocket) -> int:
        """The number the node knows ``socket`` by (see :meth:`open_socket`)."""
        for i, s in enumerate(self._transport.sockets):
            if s is socket:
                return i
        raise ValueError("not a socket of this node")

    @property
    def nursery(self) -> trio.Nursery:
        """The node's nursery (its sockets', servers' and connections' tasks run there)."""
        nursery = self._background.nursery
        if nursery is None or self.closed:
            raise NodeDestroyedError("the node is not open (use it as an async context manager)")
        return nursery

    async def _hold_until(
        self, sock: UDXSocket, closed: trio.Event, task_status: trio.TaskStatus[None]
    ) -> None:
        async with sock:
            task_status.started()
            await closed.wait()

    # --- state ------------------------------------------------------------------------------

    @property
    def core(self) -> DHTCore:
        if self._core is None:
            raise NodeDestroyedError("the node is not open (use it as an async context manager)")
        return self._core

    @property
    def server_socket(self) -> UDXSocket:
        if self._server is None:
            raise NodeDestroyedError("the node is not open")
        return self._server

    @property
    def client_socket(self) -> UDXSocket:
        if self._client is None:
            raise NodeDestroyedError("the node is not open")
        return self._client

    @property
    def socket(self) -> UDXSocket:
        """The socket requests leave from (the client socket while firewalled)."""
        return self.client_socket if self.core.firewalled else self.server_socket

    @property
    def id(self) -> bytes | None:
        return self.core.id

    @property
    def table_id(self) -> bytes:
        return self.core.table.id

    @property
    def ephemeral(self) -> bool:
        return self.core.ephemeral

    @property
    def firewalled(self) -> bool:
        return self.core.firewalled

    @property
    def bootstrapped(self) -> bool:
        return self.core.bootstrapped

    @property
    def online(self) -> bool:
        """Whether requests get replies (JS ``online``; see :mod:`~hyperswarm.dht_rpc.health`)."""
        return self.core.health.online

    @property
    def degraded(self) -> bool:
        """Whether most requests time out (JS ``degraded``)."""
        return self.core.health.degraded

    @property
    def host(self) -> str | None:
        return self.core.host

    @property
    def randomized(self) -> bool:
        """Whether this node sits behind a random NAT (its samples agree on the host but
        not on the port: JS ``randomized``)."""
        return self.core.randomized

    @property
    def port(self) -> int:
        return self.core.port

    @property
    def bootstrap_nodes(self) -> list[tuple[str, int]]:
        return self.core.bootstrap_addresses()

    def address(self) -> Address:
        host, port = self.socket.address()
        return Address(host, port)

    def remote_address(self) -> Address | None:
        return self.core.remote_address()

    def on_request(self, handler: Callable[[IncomingRequest], bool]) -> None:
        """Handle non-internal commands: ``handler(req)`` answers (``req.reply``/``error``)
        and returns True, or returns False for a command it does not know."""
        self._request_handler = handler
        if self._core is not None:
            self._core.on_request = handler

    async def fully_bootstrapped(self) -> None:
        """Wait for the bootstrap walk (and the first firewall check) to end."""
        await self._ready.wait()

    # --- operations -------------------------------------------------------------------------

    def add_node(self, host: str, port: int) -> None:
        self.core.add_node(host, port)

    def to_array(self, limit: int | None = None) -> list[Address]:
        return self.core.to_array(limit)

    def refresh(self) -> None:
        self.core.refresh()

    def session(self) -> Session:
        return self.core.session()

    def find_node(self, target: bytes, **opts: Any) -> QueryIterator:
        q = self.core.find_node(target, **opts)
        it = QueryIterator(q)
        q.start()
        return it

    def query(
        self,
        target: bytes,
        command: int,
        value: bytes | None = None,
        *,
        commit: Commit | bool | None = None,
        **opts: Any,
    ) -> QueryIterator:
        """An iterative query (JS ``dht.query({target, command, value}, {commit})``)."""
        q = self.core.query(target, command, value, commit=commit, **opts)
        it = QueryIterator(q)
        q.start()
        return it

    async def request(
        self,
        *,
        command: int,
        to: Address | tuple[str, int] | Peer,
        token: bytes | None = None,
        target: bytes | None = None,
        value: bytes | None = None,
        internal: bool = False,
        retry: bool = True,
        session: Session | None = None,
        ttl: int = 0,
        socket: UDXSocket | None = None,
    ) -> Reply:
        """One request; the reply (its ``error`` may be set), or the request's error
        (REQUEST_TIMEOUT...)."""
        result: list[Reply | DHTError] = []
        done = trio.Event()

        def answered(reply: Reply, _req: OutgoingRequest) -> None:
            result.append(reply)
            done.set()

        def failed(error: DHTError, _req: OutgoingRequest) -> None:
            result.append(error)
            done.set()

        which = None
        if socket is not None:
            try:
                which = self.socket_number(socket)
            except ValueError:
                raise RequestDestroyedError("the socket to send from is closed") from None
        req = self.core.request(
            command=command,
            to=to,
            token=token,
            target=target,
            value=value,
            internal=internal,
            on_response=answered,
            on_error=failed,
            session=session,
            ttl=ttl,
            retry=retry,
            socket=which,
        )
        try:
            await done.wait()
        except BaseException:
            req.destroy()
            raise
        (out,) = result
        if isinstance(out, DHTError):
            raise out
        return out

    async def ping(self, to: Address | tuple[str, int], *, retry: bool = True) -> Reply:
        return await self.request(command=0, internal=True, to=to, retry=retry)
