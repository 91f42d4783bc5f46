"""Trio adapters of UDX: :class:`UDX` is the stream table, :class:`UDXSocket` owns one UDP
socket, :class:`UDXStream` is one stream, a :class:`trio.abc.HalfCloseableStream`
(udx-native's ``new UDX()``, ``udx.createSocket``, ``udx.createStream(id)``,
``stream.connect(socket, remoteId, port, host)`` and ``stream.changeRemote``).

Streams belong to a :class:`UDX`, not to a socket: every socket made with ``udx=`` shares its
table, so a packet for stream id X that arrives on any of them reaches stream X (HyperDHT
makes a stream before it knows which socket the peer's packets will come in on: the main
socket, or a hole-punching one). A socket made without ``udx=`` gets a table of its own, and
:meth:`UDXSocket.create_stream` makes a stream in its socket's table that connects through
that socket. Each socket's reader hands every datagram addressed to a stream in the table to
that stream's :class:`~hyperswarm.udx.connection.Connection`, and every other datagram
(dht-rpc messages, hole-punch bytes, UDX packets for ids nobody has) to
:meth:`UDXSocket.receive`.

Which packets a stream takes: one that arrives on another socket than the stream's, or before
the stream is connected, goes to the stream's ``firewall(socket, host, port)`` hook (socket:
the one it arrived on): True drops it; False lets it in, wherever it came from (the hook may
have connected the stream, or moved it with :meth:`UDXStream.change_remote`, to where it came
from); without a hook it is dropped. A connected stream otherwise takes packets only from the
address it is connected to (same IP, same port): others are dropped (for a while after
:meth:`UDXStream.change_remote`, the peer's data over the previous path excepted). libudx
(``process_packet``) looks streams up by id alone and processes a packet from anywhere once
the stream is connected, so there anyone who knows a stream id (every packet carries it in
the clear) can end a transfer with one DESTROY or corrupt it with data. A peer answers from
the address it is reached at, and HyperDHT connects streams to the address a peer's packets
come from, so udx-native peers get through.

Driver tasks: each connected stream has one task that sends what its connection wants sent
and runs its timers on Trio's clock. It runs in the nursery of the socket the stream sends
through, so that the stream lives exactly as long as its path: closing a socket ends the
streams on it with an error (their drivers are cancelled with the socket's other tasks), and
:meth:`UDXStream.change_remote` to another socket cancels the driver (its own cancel scope)
and starts a new one in the new socket's nursery: the driver holds no state of its own (all of
it is in the :class:`~hyperswarm.udx.connection.Connection`), so the stream goes on where it
was. :class:`UDX` itself therefore owns no tasks and needs no ``async with``: a stream not
connected yet has no task, only an entry in the table.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import os
import random
import socket as _stdsocket
import sys
from collections.abc import Callable
from typing import NamedTuple

import trio

from protomux._toolkit import AsyncResource, ConflictDetector

from .connection import (
    MTU_MAX,
    Closed,
    Connection,
    Data,
    End,
    Message,
    RemoteChanged,
    seq_diff,
)
from .errors import UDXError
from .packet import DATA, DESTROY, END, stream_id_of

__all__ = ["UDX", "UDXSocket", "UDXStream"]

#: Bytes a stream buffers for sending before ``send_all`` waits.
HIGH_WATER = 4 * 1024 * 1024
#: Kernel receive and send buffer asked for each socket.
SOCKET_BUFFER = 4 * 1024 * 1024
#: Seconds a closed stream keeps sending what was written before it gives up and resets.
LINGER = 10.0
#: Datagrams (stream messages, or socket datagrams for nobody) kept for readers; more are
#: dropped, as a full UDP buffer would.
MAX_QUEUED_DATAGRAMS = 1024


class _IPOptions(NamedTuple):
    """The socket options of one IP version (the Linux numbers Python does not name are from
    <linux/in.h> and <linux/in6.h>)."""

    level: int
    ttl: int
    mtu_discover: int
    mtu: int


_OPTIONS: dict[int, _IPOptions] = {
    _stdsocket.AF_INET: _IPOptions(_stdsocket.IPPROTO_IP, _stdsocket.IP_TTL, 10, 14),
    _stdsocket.AF_INET6: _IPOptions(_stdsocket.IPPROTO_IPV6, _stdsocket.IPV6_UNICAST_HOPS, 23, 24),
}
#: IP_PMTUDISC_PROBE / IPV6_PMTUDISC_PROBE: never fragment, whatever the path MTU cache says.
_PMTUDISC_PROBE = 3

Address = tuple[str, int]
#: ``on_datagram(data, (host, port))``: a datagram for no stream of the socket.
DatagramHandler = Callable[[bytes, Address], None]
#: ``firewall(socket, host, port) -> bool``: True drops a packet for an unconnected stream.
Firewall = Callable[["UDXSocket", str, int], bool]
#: Stream ids are unsigned 32-bit numbers.
MAX_STREAM_ID = 0xFFFFFFFF


class UDX:
    """The stream table that sockets made with ``UDXSocket(udx=...)`` share (udx-native's
    ``UDX`` instance): a packet for one of its streams reaches it on any of those sockets.
    It owns no socket and no task (see the module docstring), so it needs no closing.

    ``rng`` picks the ids of :meth:`free_stream_id` (tests pass a seeded one)."""

    def __init__(self, *, rng: random.Random | None = None) -> None:
        self._streams: dict[int, UDXStream] = {}
        self._rng = rng if rng is not None else random.Random(os.urandom(16))
        #: Called with each stream that leaves the table (ended, destroyed or its socket
        #: closed): the owner of extra sockets closes one once no stream runs on it.
        self.on_remove: Callable[[UDXStream], None] | None = None

    @property
    def streams(self) -> list[UDXStream]:
        """The streams in the table (until their end, or their socket's close)."""
        return list(self._streams.values())

    def free_stream_id(self) -> int:
        """A random stream id no stream of this table has (as hyperdht's ``RawStreamSet``
        picks them; Python's table is keyed by the whole id, so any free one will do)."""
        streams, rng = self._streams, self._rng
        for _ in range(64):
            sid = rng.getrandbits(32)
            if sid not in streams:
                return sid
        raise UDXError("no free stream id found")  # (only with a rigged rng)

    def create_stream(
        self, local_id: int | None = None, *, firewall: Firewall | None = None
    ) -> UDXStream:
        """A stream the peer addresses as ``local_id`` (None: a free random id) that belongs
        to no socket yet: :meth:`UDXStream.connect` it with ``socket=``, or let its
        ``firewall(socket, host, port)`` hook (udx-native's ``firewall`` option) connect it
        through whichever socket of this table its first packet arrives on. The hook is
        asked about each packet that arrives before the stream is connected, or on another
        socket than the stream's: True drops the packet; False lets it in (after the hook
        connected or moved the stream, typically to where the packet came from)."""
        return self._add(local_id, firewall, None)

    def _add(
        self, local_id: int | None, firewall: Firewall | None, socket: UDXSocket | None
    ) -> UDXStream:
        if local_id is None:
            local_id = self.free_stream_id()
        elif not 0 <= local_id <= MAX_STREAM_ID:
            raise ValueError(f"stream id {local_id} is not a 32-bit unsigned number")
        if local_id in self._streams:
            raise UDXError(f"stream id {local_id} is in use")
        stream = UDXStream(self, local_id, firewall, socket=socket)
        self._streams[local_id] = stream
        return stream

    def _remove(self, stream: UDXStream) -> None:
        if self._streams.get(stream.local_id) is stream:
            del self._streams[stream.local_id]
            if self.on_remove is not None:
                self.on_remove(stream)
            stream._gone.set()
            stream._data_in.set()
            on_close, stream.on_close = stream.on_close, None
            if on_close is not None:
                on_close()

    def busy(self, socket: UDXSocket) -> bool:
        """Whether a stream of the table runs on ``socket``."""
        return any(s.socket is socket for s in self._streams.values())


class UDXSocket(AsyncResource):
    """A UDP socket carrying UDX streams and plain datagrams. ``async with UDXSocket() as
    s: await s.bind(0, "127.0.0.1")``."""

    def __init__(
        self, *, udx: UDX | None = None, on_datagram: DatagramHandler | None = None
    ) -> None:
        """``udx``: the stream table this socket shares with others (a new one of its own if
        None). ``on_datagram(data, (host, port))``, if given, is called with every datagram
        that is not for a stream of the table, as it arrives (udx-native's ``message``
        event); without it they queue for :meth:`receive`."""
        self.udx = udx if udx is not None else UDX()
        self.on_datagram = on_datagram
        self._sock: trio.socket.SocketType | None = None
        self._raw: _stdsocket.socket | None = None
        self._streams = self.udx._streams  # (the table itself: one lookup per datagram)
        self._tasks: trio.Nursery | None = None  # the reader and stream drivers run here
        self._send, self._recv = trio.open_memory_channel[tuple[bytes, Address]](
            MAX_QUEUED_DATAGRAMS
        )
        self.closed = False

    async def _open(self, nursery: trio.Nursery) -> None:
        await nursery.start(self._hold_tasks)

    async def _hold_tasks(self, task_status: trio.TaskStatus[None]) -> None:
        """A nursery of its own for the socket's tasks, so that :meth:`aclose` can cancel
        them without cancelling the ``async with`` body around them."""
        async with trio.open_nursery() as tasks:
            self._tasks = tasks
            task_status.started()
            await trio.sleep_forever()

    def _nursery(self) -> trio.Nursery:
        if self._tasks is None or self.closed:
            raise UDXError("the socket is not open (use it as an async context manager)")
        return self._tasks

    async def bind(self, port: int = 0, host: str = "127.0.0.1") -> None:
        nursery = self._nursery()
        family = _family(host)
        raw = _stdsocket.socket(family, _stdsocket.SOCK_DGRAM)
        raw.setblocking(False)
        for option in (_stdsocket.SO_RCVBUF, _stdsocket.SO_SNDBUF):
            try:  # bursts of a full window must not overflow the kernel's buffers
                raw.setsockopt(_stdsocket.SOL_SOCKET, option, SOCKET_BUFFER)
            except OSError:
                pass
        if sys.platform.startswith("linux"):
            # Datagrams go unfragmented whatever their size (MTU probes must fail, not be
            # fragmented), as libudx asks.
            options = _OPTIONS[family]
            try:
                raw.setsockopt(options.level, options.mtu_discover, _PMTUDISC_PROBE)
            except OSError:
                pass
        sock = trio.socket.from_stdlib_socket(raw)
        await sock.bind((host, port))
        self._raw = raw  # sends go out without waiting (a full buffer drops the packet)
        self._sock = sock
        nursery.start_soon(self._reader)

    def address(self) -> Address:
        if self._sock is None:
            raise UDXError("the socket is not bound")
        if self.closed:
            raise UDXError("the socket is closed")
        host, port = self._sock.getsockname()[:2]
        return host, port

    async def aclose(self) -> None:
        """Close the socket and the streams on it at once, with an error (from any task: the
        background tasks are cancelled here and collected when the ``async with`` block
        ends). Streams of a shared :class:`UDX` on other sockets, or on none yet, go on."""
        if self.closed:
            await trio.lowlevel.checkpoint()
            return
        self.closed = True
        for stream in list(self._streams.values()):
            if stream.socket is self:
                self.udx._remove(stream)
                stream._shutdown(UDXError("the socket closed"))
        self._send.close()
        if self._tasks is not None:
            self._tasks.cancel_scope.cancel()  # the reader and the stream drivers stop
        if self._sock is not None:
            self._sock.close()
        await trio.lowlevel.checkpoint()

    async def _reader(self) -> None:
        sock, raw = self._sock, self._raw
        assert sock is not None and raw is not None
        # The socket may close while this task runs (aclose from another task woken in the
        # same batch, or from a callback of a datagram): it then stops here.
        while not self.closed:
            await trio.lowlevel.wait_readable(sock)
            # Take every datagram already here before the streams' drivers run: they answer
            # a burst with one ack instead of one per packet. Waiting for the socket again
            # is the checkpoint: there is no other.
            for _ in range(1024):
                try:
                    data, addr = raw.recvfrom(65536)
                except BlockingIOError:
                    break
                except OSError:
                    if self.closed:
                        return
                    continue  # e.g. an ICMP port unreachable surfacing on Linux
                self._dispatch(data, addr)

    def _dispatch(self, data: bytes, addr: tuple[str, int]) -> None:
        sid = stream_id_of(data)
        stream = self._streams.get(sid) if sid is not None else None
        if stream is not None:
            stream._on_datagram(data, addr, self)
            return
        if self.on_datagram is not None:
            self.on_datagram(data, (addr[0], addr[1]))
            return
        try:
            self._send.send_nowait((data, (addr[0], addr[1])))
        except trio.WouldBlock:
            pass

    async def send(self, data: bytes, port: int, host: str, *, ttl: int | None = None) -> bool:
        """A plain datagram (no UDX header), as udx-native's ``socket.send``; ``ttl`` sends
        this one datagram with that IP time to live (hole punching sends short-lived ones).
        True once the kernel took it; False if it could not (a full buffer, an unreachable
        network) or the socket is closed, as JS resolves."""
        sent = self.try_send(data, port, host, ttl=ttl)
        await trio.lowlevel.checkpoint()
        return sent

    def try_send(self, data: bytes, port: int, host: str, *, ttl: int | None = None) -> bool:
        """:meth:`send` without waiting. ``host`` must be an IP address (as in JS)."""
        _check_address(host, port)
        if ttl is not None and not 0 < ttl < 256:
            raise ValueError(f"ttl {ttl} is not in 1..255")
        if self._sock is None or self._raw is None:
            raise UDXError("the socket is not bound")
        if self.closed:
            return False
        raw = self._raw
        if ttl is None:
            return _sendto(raw, data, (host, port))
        level, option = _OPTIONS[raw.family].level, _OPTIONS[raw.family].ttl
        previous = raw.getsockopt(level, option)
        raw.setsockopt(level, option, ttl)
        try:
            return _sendto(raw, data, (host, port))
        finally:
            raw.setsockopt(level, option, previous)

    async def receive(self) -> tuple[bytes, Address]:
        """The next datagram that is not for a stream of the table."""
        return await self._recv.receive()

    def create_stream(
        self, local_id: int | None = None, *, firewall: Firewall | None = None
    ) -> UDXStream:
        """A stream of this socket's table that :meth:`UDXStream.connect` connects through
        this socket unless told otherwise (``local_id`` None: a free random id).

        ``firewall(socket, host, port)`` (udx-native's ``firewall`` option) is asked about
        each packet for this stream that arrives before it is connected, or on another
        socket than the stream's: True drops the packet; otherwise it may call
        :meth:`UDXStream.connect` (to the address the packet came from, as HyperDHT does
        after a hole punch) or :meth:`UDXStream.change_remote`, and the packet is then
        processed (see :meth:`UDX.create_stream`)."""
        return self.udx._add(local_id, firewall, self)

    def _sendto(self, datagrams: list[bytes], addr: Address) -> None:
        if self._sock is None or self.closed:
            return
        raw = self._raw
        assert raw is not None
        for d in datagrams:
            _sendto(raw, d, addr)  # what the kernel refuses is lost: retransmission covers


class UDXStream(trio.abc.HalfCloseableStream):
    """One UDX stream: reliable, ordered bytes both ways (with half-close), plus unreliable
    stream messages. Made by :meth:`UDX.create_stream` or :meth:`UDXSocket.create_stream`."""

    def __init__(
        self,
        udx: UDX,
        local_id: int,
        firewall: Firewall | None = None,
        *,
        socket: UDXSocket | None = None,
    ) -> None:
        self.udx = udx
        #: The socket the stream sends through (None: not connected, and made without one).
        self.socket = socket
        self.local_id = local_id
        self._firewall = firewall
        self.remote_id: int | None = None
        self.remote_address: Address | None = None
        # Once connected, packets must come from this IP (packed) and port ...
        self._remote_key: tuple[bytes, int] | None = None
        # ... and this is that IP as the kernel last wrote it in a packet's source address.
        self._remote_host_seen: str | None = None
        # After change_remote: the previous path (address key, socket), whose DATA/END
        # packets are still taken until the peer's packets from before its move are in
        # (libudx retransmits those over the old path), and the seq of the first packet
        # from the new path (once all before it is delivered, the old path is dropped).
        self._previous: tuple[tuple[bytes, int], UDXSocket] | None = None
        self._previous_until: int | None = None
        self._conn: Connection | None = None
        self._driver: trio.CancelScope | None = None
        # set once what was sent before the latest change_remote is acknowledged
        self._changing: trio.Event | None = None
        self._wake = trio.Event()
        self._readable = trio.Event()
        self._writable = trio.Event()
        self._buffer = bytearray()
        self._eof = False
        self._error: UDXError | None = None
        self._closed = False
        self._send_eof = False
        self._send_conflict = ConflictDetector("another task is sending on this stream")
        self._receive_conflict = ConflictDetector("another task is receiving on this stream")
        self._linger_until: float | None = None
        self._keepalive: float | None = None
        self._msg_send, self._msg_recv = trio.open_memory_channel[bytes](MAX_QUEUED_DATAGRAMS)
        #: Ordered bytes that arrived from the peer / that were handed to the stream to send
        #: (JS ``rawBytesRead``/``rawBytesWritten`` of the secret-stream above).
        self.bytes_read = 0
        self.bytes_written = 0
        #: Called once when the stream leaves its table (ended, destroyed, socket closed).
        self.on_close: Callable[[], None] | None = None
        self._gone = trio.Event()
        self._data_in = trio.Event()  # the peer's first ordered bytes came (or the stream went)
        # set by the first packet from the path the latest change_remote moved to
        self._new_path: trio.Event | None = None
        # relaying (see relay_to): where this stream's packets go, and who relays here
        self._relay_to: UDXStream | None = None
        self._relayed_from: list[UDXStream] = []
        #: Set for good by :meth:`relay_to`.
        self.relayed = False
        #: Packets and bytes a relaying stream passed on.
        self.relayed_packets = 0
        self.relayed_bytes = 0

    @property
    def connected(self) -> bool:
        if self.relayed:
            return self.remote_address is not None
        return self._conn is not None

    def relay_to(self, destination: UDXStream) -> None:
        """Make this stream a blind relay (udx-native's ``relayTo``): every packet its peer
        sends it is passed on unread to ``destination``'s peer, with the stream id rewritten
        to ``destination``'s remote id, through ``destination``'s socket (dropped while
        ``destination`` is not connected). A relaying stream keeps no connection state and
        sends nothing of its own: it only checks that packets come from its peer's host
        (once connected, usually by its firewall hook on the first packet; any port, as a
        peer may resend from another socket). A DESTROY passing
        through ends it, and a stream that ends ends the streams relaying into it, so a pair
        relaying to each other ends together. Call it before :meth:`connect`."""
        if self._closed:
            return
        if self._conn is not None:
            raise UDXError("relay_to must come before the stream is connected")
        if self.relayed:
            raise UDXError("the stream already relays")
        if destination._closed:
            raise UDXError("the destination stream is closed")
        self.relayed = True
        self._relay_to = destination
        destination._relayed_from.append(self)

    def connect(
        self, remote_id: int, port: int, host: str, *, socket: UDXSocket | None = None
    ) -> None:
        """Start talking to stream ``remote_id`` at ``host:port`` through ``socket`` (a
        socket of the stream's :class:`UDX`; by default the one the stream was made on), at
        once, as in JS."""
        if self._conn is not None or (self.relayed and self.remote_address is not None):
            raise UDXError("the stream is already connected")
        _check_stream_id(remote_id)
        _check_address(host, port)
        sock = self._socket_for(socket)
        nursery = sock._nursery()
        self.socket = sock
        self.remote_id = remote_id
        self._set_remote(host, port)
        if self.relayed:
            return  # (a relay only passes packets on: no connection state, no driver)
        self._conn = Connection(
            self.local_id,
            remote_id,
            ipv6=_family(host) == _stdsocket.AF_INET6,
            mtu_max=_link_mtu(host, port),
        )
        if self._keepalive:
            self._conn.set_keepalive(self._keepalive, trio.current_time())
        self._start_driver(sock, nursery)

    def change_remote(
        self, remote_id: int, port: int, host: str, *, socket: UDXSocket | None = None
    ) -> None:
        """Move a connected stream to peer stream ``remote_id`` at ``host:port``, sending
        through ``socket`` (a socket of the stream's :class:`UDX`; by default the current
        one): udx-native's ``changeRemote(socket, remoteId, port, host)``.

        The change is at once for everything sent from now on, retransmissions of packets
        sent before it included: these go to the new address with the new id (libudx sends
        them over the old path until they are acknowledged). Sequence numbers, acks and
        congestion state go on; the MTU search starts again. From now on packets are taken
        only from the new address (and, without the firewall's leave, on the new socket),
        except the peer's DATA/END (never a DESTROY) over the old path until the peer's
        packets from before the first one on the new path are in (for a libudx peer that
        moved). :meth:`wait_remote_changed` waits until everything sent before the change
        is acknowledged; until then another change is refused, as in JS
        ("Remote already changing")."""
        conn = self._conn
        if conn is None:
            raise UDXError("the stream is not connected")
        if conn.closed:
            raise UDXError("the stream is closed")
        if self._changing is not None:
            raise UDXError("the remote is already changing")
        _check_stream_id(remote_id)
        _check_address(host, port)
        sock = self._socket_for(socket)
        nursery = sock._nursery()
        done = conn.change_remote(
            remote_id, ipv6=_family(host) == _stdsocket.AF_INET6, mtu_max=_link_mtu(host, port)
        )
        assert self._remote_key is not None and self.socket is not None
        self._previous, self._previous_until = (self._remote_key, self.socket), None
        self._new_path = trio.Event()
        self.remote_id = remote_id
        self._set_remote(host, port)
        if not done:
            self._changing = trio.Event()
        if sock is not self.socket:
            self.socket = sock
            self._start_driver(sock, nursery)
        else:
            self._wake.set()

    async def wait_data(self) -> None:
        """Return once the peer's first ordered bytes arrived (at once if they did), or the
        stream ended."""
        await self._data_in.wait()

    async def wait_closed(self) -> None:
        """Return once the stream has left its table (ended, destroyed, its socket closed)."""
        await self._gone.wait()

    async def wait_new_path(self) -> None:
        """Return once the peer's packets come in from the address the latest
        :meth:`change_remote` moved the stream to, and none it sent before its own move is
        still due by the old path (the old path may go). Raises UDXError without a change."""
        event = self._new_path
        if event is None:
            raise UDXError("the remote never changed")
        await event.wait()

    @property
    def remote_changing(self) -> bool:
        """A :meth:`change_remote` still waits for the acks of what was sent before it."""
        return self._changing is not None

    async def wait_remote_changed(self) -> None:
        """Return once everything sent before the latest :meth:`change_remote` is
        acknowledged (at once if nothing was outstanding); :class:`trio.BrokenResourceError`
        if the stream ends first (JS's ``changeRemote`` promise)."""
        changing = self._changing
        if changing is None:
            await trio.lowlevel.checkpoint()
            return
        await changing.wait()
        if self._changing is changing:
            raise trio.BrokenResourceError("the stream closed while its remote was changing")

    def _socket_for(self, socket: UDXSocket | None) -> UDXSocket:
        sock = socket if socket is not None else self.socket
        if sock is None:
            raise UDXError("the stream has no socket: pass socket=")
        if sock.udx is not self.udx:
            raise UDXError("the socket belongs to another UDX than the stream")
        return sock

    def _set_remote(self, host: str, port: int) -> None:
        self.remote_address = (host, port)
        self._remote_key = _address_key(host, port)
        self._remote_host_seen = None

    def _start_driver(self, sock: UDXSocket, nursery: trio.Nursery) -> None:
        if self._driver is not None:
            # (It may already be woken in this batch, when cancelling comes too late: it
            # sees that it is no longer the driver and stops before sending anything.)
            self._driver.cancel()
        scope = self._driver = trio.CancelScope()
        nursery.start_soon(self._drive, sock, scope)

    def set_keepalive(self, seconds: float | None) -> None:
        """While the stream is idle, send a heartbeat every ``seconds`` (the peer answers
        it), keeping NAT mappings on the path open: udx-native's ``setKeepalive``, in
        seconds. None or 0 turns it off."""
        self._keepalive = seconds or None
        if self._conn is not None:
            self._conn.set_keepalive(self._keepalive, trio.current_time())
            self._wake.set()

    # --- driving -------------------------------------------------------------------------

    def _on_datagram(self, data: bytes, addr: tuple[str, int], socket: UDXSocket) -> None:
        if self.relayed:
            self._relay(data, addr, socket)
            return
        conn = self._conn
        if conn is None or socket is not self.socket:
            if self._previous is not None and self._from_previous(data, addr, socket):
                pass
            # (what the firewall lets in is processed, wherever it connected the stream to)
            elif self._firewall is None or self._firewall(socket, addr[0], addr[1]):
                return
            conn = self._conn
            if conn is None:
                return
        elif not self._from_remote(addr):
            if self._previous is None or not self._from_previous(data, addr, socket):
                return  # not the peer: a spoofed or stray packet must not touch the stream
        elif self._previous is not None:
            self._on_new_path(data, conn)
        conn.receive(data, trio.current_time())
        self._take_events()
        self._wake.set()

    def _relay(self, data: bytes, addr: tuple[str, int], socket: UDXSocket) -> None:
        """A packet for a relaying stream: from its peer (the firewall hook connects the
        stream to whoever sends first), on to the destination's peer, id rewritten."""
        if self._closed:
            return
        if self.remote_address is None or socket is not self.socket:
            if self._firewall is None or self._firewall(socket, addr[0], addr[1]):
                return
            if self.remote_address is None or socket is not self.socket:
                return
        elif not self._from_remote_host(addr):
            # Only the host this half is connected to, from any port: libudx takes packets
            # from anywhere, and a udx-native peer that moved its stream to a direct path
            # resends, from its new socket, what the relay had not passed on yet.
            return
        if len(data) < 20:
            return
        dest = self._relay_to
        if dest is not None and dest.socket is not None and dest.remote_address is not None:
            assert dest.remote_id is not None
            out = bytearray(data)
            out[4:8] = dest.remote_id.to_bytes(4, "little")
            dest.socket._sendto([bytes(out)], dest.remote_address)
            self.relayed_packets += 1
            self.relayed_bytes += len(data)
        if data[2] & DESTROY:
            self._end_relay()

    def _end_relay(self) -> None:
        """End the streams relaying into this one and, for a relaying stream, the stream
        itself (libudx ``close_stream``; a relaying stream sends no DESTROY of its own)."""
        sources, self._relayed_from = self._relayed_from, []
        for source in sources:
            source._relay_to = None
            source.destroy()
        if not self.relayed or self.udx._streams.get(self.local_id) is not self:
            return
        self._closed = True
        dest, self._relay_to = self._relay_to, None
        if dest is not None and self in dest._relayed_from:
            dest._relayed_from.remove(self)
        self._readable.set()
        self._writable.set()
        self.udx._remove(self)

    def _from_previous(self, data: bytes, addr: tuple[str, int], socket: UDXSocket) -> bool:
        """Whether a packet is the peer's data (DATA or END: never a DESTROY) over the path
        the stream had before :meth:`change_remote`: libudx retransmits what it sent before
        its own change over its old path until that is acknowledged."""
        previous = self._previous
        assert previous is not None
        (ip, port), sock = previous
        if (
            socket is not sock
            or addr[1] != port
            or len(data) < 4
            or not data[2] & (DATA | END)
            or data[2] & DESTROY
        ):
            return False
        return _address_key(addr[0], addr[1]) == (ip, port)

    def _on_new_path(self, data: bytes, conn: Connection) -> None:
        """A packet from the new path: the first one's seq marks where the peer's packets
        from before the move end; once all before it is delivered, the old path is done."""
        if self._previous_until is None:
            self._previous_until = int.from_bytes(data[12:16], "little")
        if seq_diff(conn.ack, self._previous_until) >= 0:
            self._previous = None
            if self._new_path is not None:
                self._new_path.set()

    def _from_remote_host(self, addr: tuple[str, int]) -> bool:
        key = self._remote_key
        return key is not None and (
            addr[0] == self._remote_host_seen or _address_key(addr[0], addr[1])[0] == key[0]
        )

    def _from_remote(self, addr: tuple[str, int]) -> bool:
        """Whether a packet from ``addr`` comes from the address the stream is connected to
        (IPs compared as addresses: ``::ffff:1.2.3.4`` is ``1.2.3.4``, zone ids aside)."""
        key = self._remote_key
        if key is None or addr[1] != key[1]:
            return False
        if addr[0] == self._remote_host_seen:
            return True
        if _address_key(addr[0], addr[1]) != key:
            return False
        self._remote_host_seen = addr[0]
        return True

    def _take_events(self) -> None:
        conn = self._conn
        assert conn is not None
        for ev in conn.events():
            if isinstance(ev, Data):
                self._buffer += ev.data
                self.bytes_read += len(ev.data)
                self._data_in.set()
                self._readable.set()
            elif isinstance(ev, End):
                self._eof = True
                self._readable.set()
            elif isinstance(ev, Message):
                try:
                    self._msg_send.send_nowait(ev.data)
                except trio.WouldBlock:
                    pass
            elif isinstance(ev, Closed):
                if ev.error is not None and self._error is None:
                    self._error = ev.error
                self._readable.set()
                self._writable.set()
                self._msg_send.close()
                if self._changing is not None:
                    self._changing.set()  # (the waiter sees it still pending: broken)
            elif isinstance(ev, RemoteChanged):
                changing, self._changing = self._changing, None
                if changing is not None:
                    changing.set()

    async def _drive(self, sock: UDXSocket, scope: trio.CancelScope) -> None:
        """Sends through ``sock`` until the stream ends or moves to another socket (then
        ``scope`` is cancelled: see the module docstring).

        A driver that is no longer the stream's stops before it touches anything: a driver
        woken (its wait already over) in the batch in which :meth:`change_remote` moves the
        stream runs on to its next checkpoint despite the cancel, and would otherwise send
        through the old socket to the new address (a libudx peer, whose firewall hook
        moves its stream to where the first packet on its new socket came from, would then
        answer our old socket) and replace ``_wake`` under the new driver's wait."""
        conn = self._conn
        assert conn is not None
        with scope:
            while True:
                if self._driver is not scope:
                    return
                remote = self.remote_address
                assert remote is not None
                sock._sendto(conn.datagrams(trio.current_time()), remote)
                if conn.buffered < HIGH_WATER:
                    self._writable.set()
                if conn.closed:
                    break
                deadline = conn.timer()
                if self._linger_until is not None:
                    if conn.flushed or trio.current_time() >= self._linger_until:
                        conn.destroy()
                        self._take_events()
                        continue
                    deadline = min(self._linger_until, deadline or math.inf)
                with trio.move_on_at(math.inf if deadline is None else deadline):
                    await self._wake.wait()
                if self._driver is not scope:
                    return
                self._wake = trio.Event()
                now = trio.current_time()
                t = conn.timer()
                if t is not None and now >= t:
                    conn.on_timer(now)
                    self._take_events()
            self.udx._remove(self)

    def _shutdown(self, error: UDXError) -> None:
        if self.relayed or self._relayed_from:
            self._end_relay()
        if self._error is None and not (self._conn is not None and self._conn.closed):
            self._error = error
        self._readable.set()
        self._writable.set()
        self._wake.set()
        if self._changing is not None:
            self._changing.set()

    def _check(self) -> Connection:
        if self._closed:
            raise trio.ClosedResourceError("the stream is closed")
        if self._conn is None:
            raise UDXError("the stream is not connected")
        return self._conn

    # --- trio.abc.HalfCloseableStream --------------------------------------------------

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        with self._send_conflict:
            conn = self._check()
            if self._send_eof:
                raise trio.ClosedResourceError("send_eof() was called")
            if self._error is not None or conn.closed:
                raise trio.BrokenResourceError("the stream is broken") from self._error
            if data:
                conn.write(bytes(data))
                self.bytes_written += len(data)
                self._wake.set()
            await self._wait_writable(conn)

    async def wait_send_all_might_not_block(self) -> None:
        with self._send_conflict:
            await self._wait_writable(self._check())

    async def _wait_writable(self, conn: Connection) -> None:
        while conn.buffered >= HIGH_WATER and not conn.closed and self._error is None:
            self._writable = trio.Event()
            await self._writable.wait()
            if self._closed:
                raise trio.ClosedResourceError("the stream is closed")
        await trio.lowlevel.checkpoint()

    async def send_eof(self) -> None:
        with self._send_conflict:  # (not held across the checkpoint below)
            conn = self._check()
        if not self._send_eof:
            self._send_eof = True
            conn.end()
            self._wake.set()
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if max_bytes is not None:
            if not isinstance(max_bytes, int):
                raise TypeError("max_bytes must be an int")
            if max_bytes < 1:
                raise ValueError("max_bytes must be at least 1")
        with self._receive_conflict:
            if self._closed:
                raise trio.ClosedResourceError("the stream is closed")
            # (an unconnected stream waits: a firewall may connect it)
            while not self._buffer and not self._eof and self._error is None:
                self._readable = trio.Event()
                await self._readable.wait()
                if self._closed:
                    raise trio.ClosedResourceError("the stream is closed")
        if self._buffer:
            n = len(self._buffer) if max_bytes is None else min(max_bytes, len(self._buffer))
            out = bytes(self._buffer[:n])
            del self._buffer[:n]
            if self._conn is not None:
                self._conn.consumed(n)
            await trio.lowlevel.checkpoint()
            return out
        if self._error is not None and not self._eof:
            raise trio.BrokenResourceError("the stream is broken") from self._error
        await trio.lowlevel.checkpoint()
        return b""

    async def aclose(self) -> None:
        """Close at once for this side. What was written still goes out, then the end (the
        peer reads it all, then EOF); once that is acknowledged, or after
        :data:`LINGER` seconds, a stream the peer has not ended is destroyed."""
        if self.relayed:
            self.destroy()
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        conn = self._conn
        if conn is not None and not conn.closed:
            conn.end()
            self._linger_until = trio.current_time() + LINGER
            self._wake.set()
        self._readable.set()
        self._writable.set()
        await trio.lowlevel.checkpoint()

    def destroy(self) -> None:
        """Close at once, without waiting (udx-native ``destroy()``): a connected stream
        tells the peer with a DESTROY packet and drops what is unsent; a stream not connected
        yet leaves the stream table, so packets for its id reach it no more."""
        if self.relayed or self._relayed_from:
            self._end_relay()
            if self.relayed:
                self._closed = True
                return
        if self._closed and (self._conn is None or self._conn.closed):
            return
        self._closed = True
        conn = self._conn
        if conn is None:
            self.udx._remove(self)
        elif not conn.closed:
            conn.destroy()
            self._take_events()
        self._readable.set()
        self._writable.set()
        self._wake.set()

    # --- stream messages ---------------------------------------------------------------

    async def send(self, message: bytes) -> None:
        """An unreliable datagram on the stream (udx-native ``stream.send``)."""
        self.try_send(message)
        await trio.lowlevel.checkpoint()

    def try_send(self, message: bytes) -> None:
        conn = self._check()
        conn.send_message(message)
        self._wake.set()

    async def receive_message(self) -> bytes:
        """The next stream message (``trio.EndOfChannel`` once the stream closed)."""
        return await self._msg_recv.receive()


def _family(host: str) -> _stdsocket.AddressFamily:
    return _stdsocket.AF_INET6 if ":" in host else _stdsocket.AF_INET


def _address_key(host: str, port: int) -> tuple[bytes, int]:
    """``host:port`` in one form whatever way the IP is written: the packed IP (an
    IPv4-mapped IPv6 address as its IPv4 address, without an IPv6 zone id) and the port."""
    ip = ipaddress.ip_address(host.partition("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.packed, port
    return ip.packed, port


def _link_mtu(host: str, port: int) -> int:
    """The MTU of the link towards ``host`` as the kernel knows it (capped at the largest
    MTU probed), or that cap where the kernel does not say."""
    if not sys.platform.startswith("linux"):
        return MTU_MAX
    family = _family(host)
    try:
        with _stdsocket.socket(family, _stdsocket.SOCK_DGRAM) as probe:
            probe.connect((host, port))  # no packet: a UDP connect only picks the route
            mtu = probe.getsockopt(_OPTIONS[family].level, _OPTIONS[family].mtu)
    except OSError:
        return MTU_MAX
    return min(mtu, MTU_MAX)


def _sendto(raw: _stdsocket.socket, data: bytes, addr: Address) -> bool:
    """One datagram now, or False when the kernel refuses it (a full buffer, an unreachable
    network or port, a datagram over the path MTU): UDP may lose it anyway."""
    try:
        raw.sendto(data, addr)
    except OSError:
        return False
    return True


def _check_stream_id(remote_id: int) -> None:
    if not 0 <= remote_id <= MAX_STREAM_ID:
        raise UDXError(f"stream id {remote_id} is not a 32-bit unsigned number")


def _check_address(host: str, port: int) -> None:
    """As udx-native: a host must be an IP address (no name lookups), a port 1..65535."""
    if not _is_ip(host):
        raise ValueError(f"{host!r} is not a valid IP address")
    if not 0 < port < 65536:
        raise ValueError(f"{port} is not a valid port")


@functools.lru_cache(maxsize=4096)
def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
