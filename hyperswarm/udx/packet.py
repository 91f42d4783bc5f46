"""UDX packets (libudx ``udx_write_header``, ``process_packet`` and ``send_ack``).

Every stream packet starts with a 20-byte header, little endian::

    0xFF, version 1, type flags, data offset, u32 destination stream id, u32 receive window,
    u32 seq, u32 ack

then ``data offset`` bytes (selective-ack blocks, or the zero padding of an MTU probe), then
the payload. Selective acks are ``u32 start, u32 end`` pairs (half-open ranges of packets
received above the cumulative ack) read from the data offset bytes, or when the offset is 0
from the whole rest of the packet, as libudx reads them (libudx then also hands those bytes
on as data, which only matters for a DATA and SACK packet without offset: libudx never sends
one; here the payload is what follows the pairs). A socket hands every datagram that
is not a packet of one of its streams (too short, another first byte: dht-rpc messages,
hole-punch bytes) to its other users, so :func:`stream_id_of` never raises.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .errors import UDXDecodeError

__all__ = [
    "DATA",
    "DESTROY",
    "END",
    "HEADER_SIZE",
    "HEARTBEAT",
    "MAGIC",
    "MAX_SACKS",
    "MESSAGE",
    "SACK",
    "VERSION",
    "Packet",
    "decode",
    "encode",
    "encode_plain",
    "stream_id_of",
]

MAGIC = 0xFF
VERSION = 1
HEADER_SIZE = 20

DATA = 0b000001
END = 0b000010
SACK = 0b000100
MESSAGE = 0b001000
DESTROY = 0b010000
HEARTBEAT = 0b100000

#: At most this many selective-ack blocks go into one ack (libudx ``UDX_MAX_SACKS``).
MAX_SACKS = 50

_HEADER = struct.Struct("<BBBBIIII")
_PAIR = struct.Struct("<II")
_U32 = 0xFFFFFFFF


@dataclass(slots=True)
class Packet:
    """One UDX packet. ``padding`` zero bytes go between the header and the payload when
    there are no selective acks (an MTU probe)."""

    type: int
    stream_id: int
    rwnd: int
    seq: int
    ack: int
    sacks: list[tuple[int, int]] = field(default_factory=list)
    payload: bytes = b""
    padding: int = 0


def stream_id_of(datagram: bytes) -> int | None:
    """The destination stream id if ``datagram`` is shaped as a UDX packet, else None."""
    if len(datagram) < HEADER_SIZE or datagram[0] != MAGIC or datagram[1] != VERSION:
        return None
    return int.from_bytes(datagram[4:8], "little")


def encode(packet: Packet) -> bytes:
    """The datagram of ``packet``: selective acks make up the data offset (libudx writes
    them with offset 0 and no payload: pass ``padding=0`` and an empty payload for the same
    bytes), else ``padding`` zero bytes do."""
    for name in ("stream_id", "rwnd", "seq", "ack"):
        v = getattr(packet, name)
        if not 0 <= v <= _U32:
            raise ValueError(f"{name} {v} is not a 32-bit unsigned integer")
    if not 0 <= packet.type <= 0xFF:
        raise ValueError(f"type {packet.type} is not a byte")
    sacks = b"".join(_PAIR.pack(s & _U32, e & _U32) for s, e in packet.sacks)
    if sacks:
        extra = sacks
        offset = len(sacks) if packet.payload else 0
        if offset > 0xFF:
            raise ValueError("too many selective acks to carry data as well")
    else:
        if not 0 <= packet.padding <= 0xFF:
            raise ValueError(f"padding {packet.padding} does not fit the data offset byte")
        extra = bytes(packet.padding)
        offset = packet.padding
    header = _HEADER.pack(
        MAGIC, VERSION, packet.type, offset, packet.stream_id, packet.rwnd, packet.seq, packet.ack
    )
    return header + extra + packet.payload


def encode_plain(
    type_: int, stream_id: int, rwnd: int, seq: int, ack: int, payload: bytes
) -> bytes:
    """:func:`encode` of a packet without selective acks or padding, for the send path: the
    values are the caller's own, already in range (``rwnd`` is capped to 32 bits)."""
    return _HEADER.pack(MAGIC, VERSION, type_, 0, stream_id, min(rwnd, _U32), seq, ack) + payload


def decode(datagram: bytes | bytearray | memoryview) -> Packet:
    """The packet in ``datagram``; :class:`UDXDecodeError` if it is not one (libudx drops
    those: a short or foreign datagram, or a data offset past the end)."""
    buf = bytes(datagram)
    if len(buf) < HEADER_SIZE:
        raise UDXDecodeError(f"{len(buf)} bytes is shorter than a UDX header")
    magic, version, type_, offset, stream_id, rwnd, seq, ack = _HEADER.unpack_from(buf)
    if magic != MAGIC or version != VERSION:
        raise UDXDecodeError(f"not a UDX packet (magic {magic:#x}, version {version})")
    rest = len(buf) - HEADER_SIZE
    if offset > rest:
        raise UDXDecodeError(f"data offset {offset} past the end ({rest} bytes)")
    sacks: list[tuple[int, int]] = []
    if type_ & SACK:
        span = offset if 0 < offset < rest else rest
        for i in range(span // 8):
            sacks.append(_PAIR.unpack_from(buf, HEADER_SIZE + 8 * i))
    if type_ & SACK and offset == 0:
        payload = buf[HEADER_SIZE + 8 * len(sacks) :]  # the rest was the selective acks
    else:
        payload = buf[HEADER_SIZE + offset :]
    padding = 0 if type_ & SACK else offset
    return Packet(type_, stream_id, rwnd, seq, ack, sacks, payload, padding)
