"""Hyperbee 2 block formats (JS ``hyperbee/lib/messages.js``, protocol-buffers).

* block 0: :class:`Header` (``protocol = "hyperbee"``, optional :class:`Metadata`);
* every later block: a :class:`Node`: the key, the value (absent for a deletion) and the
  B-tree nodes changed by that write, as :class:`YoloIndex` bytes (a list of :class:`Level`:
  ``keys`` are block seqs, ``children`` are flat ``(seq, offset)`` pairs).

Encodings are byte-identical to JS: fields in tag order, repeated uints packed and left out
when empty, optional fields left out when None. Decoding reads every encoding JS writes the
same way, and like JS skips unknown fields by wire type, reads a known tag as its own type
whatever its wire type, lets the last occurrence of a field win and cuts a field running past
the end of the message. Malformed input raises :class:`DecodingError`, never anything else;
JS's generated decoder reads some malformed nested fields past their bounds (and varints
longer than 10 bytes as imprecise numbers): those are refused here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import DecodingError, EncodingError

__all__ = [
    "Header",
    "Level",
    "Metadata",
    "Node",
    "YoloIndex",
    "decode_header",
    "decode_node",
    "decode_yolo_index",
    "encode_header",
    "encode_node",
    "encode_yolo_index",
]

PROTOCOL = "hyperbee"
_MAX_UINT = (1 << 64) - 1


@dataclass(slots=True)
class Level:
    """One B-tree node: ``keys`` (seqs of the blocks holding them) and ``children`` (flat
    ``seq, offset`` pairs)."""

    keys: list[int] = field(default_factory=list)
    children: list[int] = field(default_factory=list)


@dataclass(slots=True)
class YoloIndex:
    levels: list[Level] = field(default_factory=list)


@dataclass(slots=True)
class Metadata:
    content_feed: bytes | None = None
    user_data: bytes | None = None


@dataclass(slots=True)
class Header:
    protocol: str = PROTOCOL
    metadata: Metadata | None = None


@dataclass(slots=True)
class Node:
    index: bytes
    key: bytes
    value: bytes | None = None


# --- varints and fields ----------------------------------------------------------------------


def _varint(n: int, out: bytearray) -> None:
    if n < 0 or n > _MAX_UINT:
        raise EncodingError(f"cannot encode {n} as a protobuf uint64")
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    n = 0
    shift = 0
    while True:
        if pos >= end:
            raise DecodingError("truncated varint")
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, pos
        shift += 7
        if shift >= 70:
            raise DecodingError("varint longer than 10 bytes")


def _bytes_field(tag: int, value: bytes, out: bytearray) -> None:
    out.append(tag << 3 | 2)
    _varint(len(value), out)
    out += value


def _read_bytes(buf: bytes, pos: int, end: int) -> tuple[bytes, int]:
    """A length-delimited value; one running past the end is cut there (as JS reads it)."""
    n, pos = _read_varint(buf, pos, end)
    value = buf[pos : min(pos + n, end)]
    return value, pos + len(value)


def _skip(wire_type: int, buf: bytes, pos: int, end: int) -> int:
    """Past an unknown field (one running past the end ends the message, as in JS)."""
    if wire_type == 0:
        return _read_varint(buf, pos, end)[1]
    if wire_type == 1:
        return pos + 8
    if wire_type == 2:
        n, pos = _read_varint(buf, pos, end)
        return pos + n
    if wire_type == 5:
        return pos + 4
    raise DecodingError(f"unknown wire type {wire_type}")


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodingError(f"expected bytes, got {type(data).__name__}")
    return bytes(data)


# --- Level / YoloIndex -----------------------------------------------------------------------


def _packed(tag: int, values: list[int], out: bytearray) -> None:
    body = bytearray()
    for v in values:
        _varint(v, body)
    if body:
        out.append(tag << 3 | 2)
        _varint(len(body), out)
        out += body


def _encode_level(level: Level) -> bytes:
    out = bytearray()
    _packed(1, level.keys, out)
    _packed(2, level.children, out)
    return bytes(out)


def _decode_level(buf: bytes, pos: int, end: int) -> Level:
    level = Level()
    while pos < end:
        prefix, pos = _read_varint(buf, pos, end)
        tag = prefix >> 3
        if tag == 1 or tag == 2:
            target = level.keys if tag == 1 else level.children
            n, pos = _read_varint(buf, pos, end)
            packed_end = pos + n
            if packed_end > end:
                raise DecodingError("packed field past the end")
            append = target.append
            while pos < packed_end:  # inlined: the hot loop of reading a tree
                b = buf[pos]
                pos += 1
                if b < 0x80:
                    append(b)
                    continue
                v, shift = b & 0x7F, 7
                while True:
                    if pos >= packed_end:
                        raise DecodingError("truncated varint")
                    b = buf[pos]
                    pos += 1
                    v |= (b & 0x7F) << shift
                    if b < 0x80:
                        break
                    shift += 7
                    if shift >= 70:
                        raise DecodingError("varint longer than 10 bytes")
                append(v)
        else:
            pos = _skip(prefix & 7, buf, pos, end)
    return level


def encode_yolo_index(index: YoloIndex) -> bytes:
    out = bytearray()
    for level in index.levels:
        _bytes_field(1, _encode_level(level), out)
    return bytes(out)


def decode_yolo_index(data: bytes | bytearray | memoryview) -> YoloIndex:
    buf = _as_bytes(data)
    end = len(buf)
    pos = 0
    index = YoloIndex()
    while pos < end:
        prefix, pos = _read_varint(buf, pos, end)
        if prefix >> 3 == 1:
            n, pos = _read_varint(buf, pos, end)
            if n > end - pos:
                raise DecodingError("level past the end")
            index.levels.append(_decode_level(buf, pos, pos + n))
            pos += n
        else:
            pos = _skip(prefix & 7, buf, pos, end)
    return index


# --- Header ----------------------------------------------------------------------------------


def encode_header(header: Header) -> bytes:
    out = bytearray()
    _bytes_field(1, header.protocol.encode("utf-8"), out)
    m = header.metadata
    if m is not None:
        body = bytearray()
        if m.content_feed is not None:
            _bytes_field(1, m.content_feed, body)
        if m.user_data is not None:
            _bytes_field(2, m.user_data, body)
        _bytes_field(2, bytes(body), out)
    return bytes(out)


def _decode_metadata(buf: bytes) -> Metadata:
    m = Metadata()
    pos, end = 0, len(buf)
    while pos < end:
        prefix, pos = _read_varint(buf, pos, end)
        tag = prefix >> 3
        if tag == 1:
            m.content_feed, pos = _read_bytes(buf, pos, end)
        elif tag == 2:
            m.user_data, pos = _read_bytes(buf, pos, end)
        else:
            pos = _skip(prefix & 7, buf, pos, end)
    return m


def decode_header(data: bytes | bytearray | memoryview) -> Header:
    buf = _as_bytes(data)
    pos, end = 0, len(buf)
    protocol: str | None = None
    metadata: Metadata | None = None
    while pos < end:
        prefix, pos = _read_varint(buf, pos, end)
        tag = prefix >> 3
        if tag == 1:
            raw, pos = _read_bytes(buf, pos, end)
            try:
                protocol = raw.decode("utf-8")
            except UnicodeDecodeError:
                # JS decodes with replacement characters; such a header is not a bee's.
                protocol = raw.decode("utf-8", errors="replace")
        elif tag == 2:
            raw, pos = _read_bytes(buf, pos, end)
            metadata = _decode_metadata(raw)
        else:
            pos = _skip(prefix & 7, buf, pos, end)
    if protocol is None:
        raise DecodingError("header without a protocol")
    return Header(protocol, metadata)


# --- Node ------------------------------------------------------------------------------------


def encode_node(node: Node) -> bytes:
    out = bytearray()
    _bytes_field(1, node.index, out)
    _bytes_field(2, node.key, out)
    if node.value is not None:
        _bytes_field(3, node.value, out)
    return bytes(out)


def decode_node(data: bytes | bytearray | memoryview) -> Node:
    buf = _as_bytes(data)
    pos, end = 0, len(buf)
    index: bytes | None = None
    key: bytes | None = None
    value: bytes | None = None
    while pos < end:
        prefix, pos = _read_varint(buf, pos, end)
        tag = prefix >> 3
        if tag == 1:
            index, pos = _read_bytes(buf, pos, end)
        elif tag == 2:
            key, pos = _read_bytes(buf, pos, end)
        elif tag == 3:
            value, pos = _read_bytes(buf, pos, end)
        else:
            pos = _skip(prefix & 7, buf, pos, end)
    if index is None or key is None:
        raise DecodingError("node without an index or a key")
    return Node(index, key, value)
