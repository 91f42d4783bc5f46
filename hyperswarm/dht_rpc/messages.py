"""The dht-rpc packet codec (JS dht-rpc ``lib/io.js``: ``Request.decode``, ``_encodeRequest``,
``_sendReply``, ``decodeReply``).

A packet starts with its type byte (``0x03`` request, ``0x13`` response: kind in the high
nibble, protocol version 3 in the low bits), then a flags uint, the u16le transaction id and the
receiver's IPv4 address as the sender sees it. Optional fields follow in a fixed order, each
present when its flag bit is set. Trailing bytes after the last field are ignored, as JS does.
Every decoding failure raises :class:`~hyperswarm.dht_rpc.errors.DHTDecodeError`.
"""

from __future__ import annotations

import functools
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from protomux.encoding import Address

from .errors import DHTDecodeError

__all__ = [
    "REQUEST_ID",
    "RESPONSE_ID",
    "Request",
    "Response",
    "decode_packet",
    "encode_request",
    "encode_response",
]

REQUEST_ID = 0x03
RESPONSE_ID = 0x13

# Request flags.
_ID = 1
_TOKEN = 2
_INTERNAL = 4
_TARGET = 8
_VALUE = 16
# Response flags (id and token as requests).
_CLOSER_NODES = 4
_ERROR = 8

_U16 = struct.Struct("<H")


class HostPort(Protocol):
    """Anything with an IPv4 ``host`` and a ``port`` (an Address, a routing-table node)."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Request:
    """A request packet. ``id`` is the sender's node id (persistent nodes only), ``to`` the
    receiver's address as the sender sees it."""

    tid: int
    to: Address
    command: int
    id: bytes | None = None
    token: bytes | None = None
    internal: bool = False
    target: bytes | None = None
    value: bytes | None = None


@dataclass(frozen=True, slots=True)
class Response:
    """A response packet. ``to`` is the requester's address as the responder sees it (what NAT
    sampling feeds on); ``error`` is 0 for none."""

    tid: int
    to: Address
    id: bytes | None = None
    token: bytes | None = None
    closer_nodes: Sequence[HostPort] = ()
    error: int = 0
    value: bytes | None = None


# --- encoding ------------------------------------------------------------------------------


def _uint(n: int) -> bytes:
    if n < 0 or n > 0xFFFFFFFFFFFFFFFF:
        raise ValueError(f"{n} is not a uint")
    if n <= 0xFC:
        return bytes((n,))
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    return b"\xff" + n.to_bytes(8, "little")


def _address(addr: HostPort) -> bytes:
    return _packed(addr.host, addr.port)


@functools.lru_cache(maxsize=8192)
def _packed(host: str, port: int) -> bytes:
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port {port} out of range")
    return socket.inet_aton(host) + _U16.pack(port)


@functools.lru_cache(maxsize=8192)
def _unpacked(raw: bytes) -> Address:
    return Address(socket.inet_ntoa(raw[:4]), raw[4] | (raw[5] << 8))


def _fixed32(b: bytes) -> bytes:
    if len(b) != 32:
        raise ValueError("expected 32 bytes")
    return b


def encode_request(p: Request) -> bytes:
    """The bytes of request ``p``."""
    flags = (
        (_ID if p.id is not None else 0)
        | (_TOKEN if p.token is not None else 0)
        | (_INTERNAL if p.internal else 0)
        | (_TARGET if p.target is not None else 0)
        | (_VALUE if p.value is not None else 0)
    )
    parts = [bytes((REQUEST_ID, flags)), _U16.pack(p.tid), _address(p.to)]
    if p.id is not None:
        parts.append(_fixed32(p.id))
    if p.token is not None:
        parts.append(_fixed32(p.token))
    parts.append(_uint(p.command))
    if p.target is not None:
        parts.append(_fixed32(p.target))
    if p.value is not None:
        parts.append(_uint(len(p.value)))
        parts.append(bytes(p.value))
    return b"".join(parts)


def encode_response(p: Response) -> bytes:
    """The bytes of response ``p``."""
    flags = (
        (_ID if p.id is not None else 0)
        | (_TOKEN if p.token is not None else 0)
        | (_CLOSER_NODES if p.closer_nodes else 0)
        | (_ERROR if p.error > 0 else 0)
        | (_VALUE if p.value is not None else 0)
    )
    parts = [bytes((RESPONSE_ID, flags)), _U16.pack(p.tid), _address(p.to)]
    if p.id is not None:
        parts.append(_fixed32(p.id))
    if p.token is not None:
        parts.append(_fixed32(p.token))
    if p.closer_nodes:
        parts.append(_uint(len(p.closer_nodes)))
        parts.extend(_address(a) for a in p.closer_nodes)
    if p.error > 0:
        parts.append(_uint(p.error))
    if p.value is not None:
        parts.append(_uint(len(p.value)))
        parts.append(bytes(p.value))
    return b"".join(parts)


# --- decoding ------------------------------------------------------------------------------


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf = buf
        self.pos = pos

    def take(self, n: int) -> bytes:
        start = self.pos
        end = start + n
        if end > len(self.buf):
            raise DHTDecodeError("out of bounds")
        self.pos = end
        return self.buf[start:end]

    def uint(self) -> int:
        buf = self.buf
        pos = self.pos
        if pos >= len(buf):
            raise DHTDecodeError("out of bounds")
        a = buf[pos]
        self.pos = pos + 1
        if a <= 0xFC:
            return a
        size = 2 if a == 0xFD else 4 if a == 0xFE else 8
        return int.from_bytes(self.take(size), "little")

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "little")

    def address(self) -> Address:
        return _unpacked(self.take(6))

    def buffer(self) -> bytes:
        return self.take(self.uint())


# JS compact-encoding caps arrays at this many entries.
_MAX_ARRAY = 0x100000


def decode_packet(data: bytes | bytearray | memoryview) -> Request | Response:
    """Decode one datagram. Raises :class:`DHTDecodeError` if it is not a dht-rpc packet."""
    buf = bytes(data)
    if len(buf) < 2:
        raise DHTDecodeError("packet too short")
    kind = buf[0]
    r = _Reader(buf, 1)
    if kind == REQUEST_ID:
        flags = r.uint()
        tid = r.u16()
        to = r.address()
        node = r.take(32) if flags & _ID else None
        token = r.take(32) if flags & _TOKEN else None
        command = r.uint()
        target = r.take(32) if flags & _TARGET else None
        value = r.buffer() if flags & _VALUE else None
        return Request(tid, to, command, node, token, bool(flags & _INTERNAL), target, value)
    if kind == RESPONSE_ID:
        flags = r.uint()
        tid = r.u16()
        to = r.address()
        node = r.take(32) if flags & _ID else None
        token = r.take(32) if flags & _TOKEN else None
        closer: Sequence[HostPort] = ()
        if flags & _CLOSER_NODES:
            n = r.uint()
            if n > _MAX_ARRAY or n * 6 > len(buf) - r.pos:
                raise DHTDecodeError("closer nodes out of bounds")
            start = r.pos
            r.pos = start + 6 * n
            unpacked = _unpacked
            closer = tuple([unpacked(buf[i : i + 6]) for i in range(start, start + 6 * n, 6)])
        error = r.uint() if flags & _ERROR else 0
        value = r.buffer() if flags & _VALUE else None
        return Response(tid, to, node, token, closer, error, value)
    raise DHTDecodeError(f"unknown packet type {kind:#x}")
