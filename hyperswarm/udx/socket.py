"""Trio adapters of UDX: :class:`UDXSocket` owns one UDP socket; :class:`UDXStream` is one
stream on it, a :class:`trio.abc.HalfCloseableStream` (udx-native's ``createSocket``,
``createStream(id)`` and ``stream.connect(socket, remoteId, port, host)``).

The socket's reader hands each datagram addressed to a stream of its own to that stream's
:class:`~hyperswarm.udx.connection.Connection`, and every other datagram (dht-rpc messages,
hole-punch bytes, UDX packets for ids it does not know) to :meth:`UDXSocket.receive`. Each
stream has one driver task that sends what its connection wants sent and runs its timers on
Trio's clock.

A connected stream takes packets only from the address it is connected to (same IP, same
port): others are dropped. libudx (``process_packet``) looks streams up by id alone and
processes a packet from anywhere once the stream is connected, so there anyone who knows a
stream id (every packet carries it in the clear) can end a transfer with one DESTROY or
corrupt it with data. A peer answers from the address it is reached at, and HyperDHT
connects streams to the address a peer's packets come from, so udx-native peers get through.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import socket as _stdsocket
import sys
from collections.abc import Callable
from typing import NamedTuple

import trio

from protomux._toolkit import AsyncResource, ConflictDetector

from .connection import MTU_MAX, Closed, Connection, Data, End, Message
from .errors import UDXError
from .packet import stream_id_of

__all__ = ["UDXSocket", "UDXStream"]

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


class UDXSocket(AsyncResource):
    """A UDP socket carrying UDX streams and plain datagrams. ``async with UDXSocket() as
    s: await s.bind(0, "127.0.0.1")``."""

    def __init__(self, *, on_datagram: DatagramHandler | None = None) -> None:
        """``on_datagram(data, (host, port))``, if given, is called with every datagram that
        is not for a stream of this socket, as it arrives (udx-native's ``message`` event);
        without it they queue for :meth:`receive`."""
        self.on_datagram = on_datagram
        self._sock: trio.socket.SocketType | None = None
        self._raw: _stdsocket.socket | None = None
        self._streams: dict[int, UDXStream] = {}
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
        """Close the socket and its streams at once (from any task: the background tasks
        are cancelled here and collected when the ``async with`` block ends)."""
        if self.closed:
            await trio.lowlevel.checkpoint()
            return
        self.closed = True
        for stream in list(self._streams.values()):
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
            stream._on_datagram(data, addr)
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
        """The next datagram that is not for one of this socket's streams."""
        return await self._recv.receive()

    def create_stream(self, local_id: int, *, firewall: Firewall | None = None) -> UDXStream:
        """A stream the peer addresses as ``local_id``; :meth:`UDXStream.connect` it.

        ``firewall(socket, host, port)`` (udx-native's ``firewall`` option) is asked about
        each packet for this stream that arrives before it is connected: True drops the
        packet; otherwise it may call :meth:`UDXStream.connect` (to the address the packet
        came from, as HyperDHT does after a hole punch), and the packet is then processed."""
        if local_id in self._streams:
            raise UDXError(f"stream id {local_id} is in use on this socket")
        stream = UDXStream(self, local_id, firewall)
        self._streams[local_id] = stream
        return stream

    def _sendto(self, datagrams: list[bytes], addr: Address) -> None:
        if self._sock is None or self.closed:
            return
        raw = self._raw
        assert raw is not None
        for d in datagrams:
            _sendto(raw, d, addr)  # what the kernel refuses is lost: retransmission covers


class UDXStream(trio.abc.HalfCloseableStream):
    """One UDX stream: reliable, ordered bytes both ways (with half-close), plus unreliable
    stream messages."""

    def __init__(self, socket: UDXSocket, local_id: int, firewall: Firewall | None = None) -> None:
        self.socket = socket
        self.local_id = local_id
        self._firewall = firewall
        self.remote_id: int | None = None
        self.remote_address: Address | None = None
        # Once connected, packets must come from this IP (packed) and port ...
        self._remote_key: tuple[bytes, int] | None = None
        # ... and this is that IP as the kernel last wrote it in a packet's source address.
        self._remote_host_seen: str | None = None
        self._conn: Connection | None = None
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

    def connect(self, remote_id: int, port: int, host: str) -> None:
        """Start talking to stream ``remote_id`` at ``host:port`` (at once, as in JS)."""
        if self._conn is not None:
            raise UDXError("the stream is already connected")
        _check_address(host, port)
        nursery = self.socket._nursery()
        self.remote_id = remote_id
        self.remote_address = (host, port)
        self._remote_key = _address_key(host, port)
        self._conn = Connection(
            self.local_id,
            remote_id,
            ipv6=_family(host) == _stdsocket.AF_INET6,
            mtu_max=_link_mtu(host, port),
        )
        if self._keepalive:
            self._conn.set_keepalive(self._keepalive, trio.current_time())
        nursery.start_soon(self._drive)

    def set_keepalive(self, seconds: float | None) -> None:
        """While the stream is idle, send a heartbeat every ``seconds`` (the peer answers
        it), keeping NAT mappings on the path open: udx-native's ``setKeepalive``, in
        seconds. None or 0 turns it off."""
        self._keepalive = seconds or None
        if self._conn is not None:
            self._conn.set_keepalive(self._keepalive, trio.current_time())
            self._wake.set()

    # --- driving -------------------------------------------------------------------------

    def _on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        conn = self._conn
        if conn is None:
            # (what the firewall lets in is processed, wherever it connected the stream to)
            if self._firewall is None or self._firewall(self.socket, addr[0], addr[1]):
                return
            conn = self._conn
            if conn is None:
                return
        elif not self._from_remote(addr):
            return  # not the peer: a spoofed or stray packet must not touch the stream
        conn.receive(data, trio.current_time())
        self._take_events()
        self._wake.set()

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

    async def _drive(self) -> None:
        conn = self._conn
        assert conn is not None and self.remote_address is not None
        while True:
            self.socket._sendto(conn.datagrams(trio.current_time()), self.remote_address)
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
            self._wake = trio.Event()
            now = trio.current_time()
            t = conn.timer()
            if t is not None and now >= t:
                conn.on_timer(now)
                self._take_events()
        self.socket._streams.pop(self.local_id, None)

    def _shutdown(self, error: UDXError) -> None:
        if self._error is None and not (self._conn is not None and self._conn.closed):
            self._error = error
        self._readable.set()
        self._writable.set()
        self._wake.set()

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
