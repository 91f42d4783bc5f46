"""RocksDB keys of hypercore-storage 3: the order-preserving ``index-encoder`` codecs and one
builder per key kind (JS ``hypercore-storage/lib/keys.js``).

index-encoder ``UINT`` is *not* compact-encoding's uint: it is big-endian so that byte order is
numeric order. ``n <= 0xfb`` is one byte, then ``fc`` + u16be, ``fd`` + u32be, ``fe`` + u64be;
the single byte ``ff`` is +Infinity and only ever used as the exclusive end of a range
(:data:`UINT_INFINITY`). ``STRING`` and ``BUFFER`` are ``00`` + the bytes with every ``00``
written as ``00 02`` + the terminator ``00 01``.

Fixed 32-byte fields (discovery keys, namespaces, topics) are written raw.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from protomux import encoding as c

__all__ = [
    "BUFFER",
    "CORE_AUTH",
    "CORE_GROUP",
    "CORE_SESSIONS",
    "DATA_BITFIELD",
    "DATA_BLOCK",
    "DATA_DEPENDENCY",
    "DATA_HEAD",
    "DATA_HINTS",
    "DATA_LOCAL",
    "DATA_MARK",
    "DATA_TREE",
    "DATA_USER_DATA",
    "STRING",
    "TL_CORE",
    "TL_CORE_BY_ALIAS",
    "TL_CORE_BY_DKEY",
    "TL_DATA",
    "TL_GROUP",
    "TL_GROUP_BY_TOPIC",
    "TL_HEAD",
    "UINT",
    "UINT_INFINITY",
    "RowName",
    "alias_range",
    "core_auth",
    "core_by_alias",
    "core_by_discovery_key",
    "core_group",
    "core_prefix",
    "core_range",
    "core_sessions",
    "data_bitfield",
    "data_block",
    "data_dependency",
    "data_head",
    "data_hints",
    "data_prefix",
    "data_tree",
    "data_user_data",
    "decode_alias_key",
    "decode_buffer",
    "decode_string",
    "decode_uint",
    "describe_key",
    "encode_buffer",
    "encode_string",
    "encode_uint",
    "group_entry",
    "group_topic",
    "store_head",
]

# Top-level tags.
TL_HEAD = 0
TL_CORE_BY_DKEY = 1
TL_CORE_BY_ALIAS = 2
TL_CORE = 3
TL_DATA = 4
TL_GROUP_BY_TOPIC = 5
TL_GROUP = 6

# Rows under ``03 UINT(corePointer)``.
CORE_AUTH = 0
CORE_SESSIONS = 1
CORE_GROUP = 2

# Rows under ``04 UINT(dataPointer)``.
DATA_HEAD = 0
DATA_DEPENDENCY = 1
DATA_HINTS = 2
DATA_BLOCK = 3
DATA_TREE = 4
DATA_BITFIELD = 5
DATA_USER_DATA = 6
DATA_LOCAL = 7
DATA_MARK = 8

UINT_INFINITY = b"\xff"
"""index-encoder's +Infinity: sorts after every encoded number, used as an open range end."""

_MAX = c.MAX_SAFE_INTEGER
_SMALL = [bytes((i,)) for i in range(0xFC)]
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


# --- plain functions (the fast path used by the key builders) ---------------------------------


def encode_uint(n: int) -> bytes:
    """index-encoder ``UINT`` of ``0 <= n <= 2^53 - 1``."""
    if type(n) is not int or n < 0 or n > _MAX:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0 or n > _MAX:
            raise c.EncodeError(f"index-encoder UINT cannot encode {n!r}")
    if n <= 0xFB:
        return _SMALL[n]
    if n <= 0xFFFF:
        return b"\xfc" + _U16.pack(n)
    if n <= 0xFFFFFFFF:
        return b"\xfd" + _U32.pack(n)
    return b"\xfe" + _U64.pack(n)


def decode_uint(buf: bytes, start: int = 0) -> tuple[int, int]:
    """Decode a ``UINT`` at ``start``: ``(value, end)``.

    Strict where JS is lax: non-canonical forms, values above 2^53 - 1 and the +Infinity
    marker raise :class:`~protomux.encoding.DecodeError`.
    """
    n = len(buf)
    if start >= n:
        raise c.DecodeError("out of bounds")
    a = buf[start]
    if a <= 0xFB:
        return a, start + 1
    if a == 0xFC:
        if n - start < 3:
            raise c.DecodeError("out of bounds")
        v = _U16.unpack_from(buf, start + 1)[0]
        if v <= 0xFB:
            raise c.DecodeError("non-canonical index-encoder uint")
        return v, start + 3
    if a == 0xFD:
        if n - start < 5:
            raise c.DecodeError("out of bounds")
        v = _U32.unpack_from(buf, start + 1)[0]
        if v <= 0xFFFF:
            raise c.DecodeError("non-canonical index-encoder uint")
        return v, start + 5
    if a == 0xFE:
        if n - start < 9:
            raise c.DecodeError("out of bounds")
        v = _U64.unpack_from(buf, start + 1)[0]
        if v <= 0xFFFFFFFF:
            raise c.DecodeError("non-canonical index-encoder uint")
        if v > _MAX:
            raise c.DecodeError("index-encoder uint above 2^53 - 1")
        return v, start + 9
    raise c.DecodeError("index-encoder +Infinity is only a range bound")


def encode_buffer(value: bytes) -> bytes:
    """index-encoder ``BUFFER``: ``00``, the bytes with ``00`` escaped as ``00 02``, ``00 01``."""
    return b"\x00" + bytes(value).replace(b"\x00", b"\x00\x02") + b"\x00\x01"


def decode_buffer(buf: bytes, start: int = 0) -> tuple[bytes, int]:
    """Decode a ``BUFFER`` at ``start``: ``(value, end)``."""
    n = len(buf)
    if start >= n:
        raise c.DecodeError("out of bounds")
    if buf[start] != 0:
        raise c.DecodeError("invalid start of index-encoder string")
    i = start + 1
    parts: list[bytes] = []
    prev = i
    while True:
        z = buf.find(b"\x00", i)
        if z == -1 or z + 1 >= n:
            raise c.DecodeError("no terminator in index-encoder string")
        nxt = buf[z + 1]
        if nxt == 1:
            parts.append(buf[prev:z])
            return b"".join(parts), z + 2
        if nxt == 2:
            parts.append(buf[prev : z + 1])
            prev = i = z + 2
            continue
        raise c.DecodeError("unknown value in index-encoder string terminator")


def encode_string(value: str) -> bytes:
    """index-encoder ``STRING``: the UTF-8 bytes as a ``BUFFER``."""
    try:
        data = value.encode("utf-8")
    except (AttributeError, UnicodeEncodeError) as e:
        raise c.EncodeError(f"cannot encode {value!r} as UTF-8: {e}") from None
    return encode_buffer(data)


def decode_string(buf: bytes, start: int = 0) -> tuple[str, int]:
    """Decode a ``STRING`` at ``start``; invalid UTF-8 raises ``DecodeError``."""
    data, end = decode_buffer(buf, start)
    try:
        return data.decode("utf-8"), end
    except UnicodeDecodeError as e:
        raise c.DecodeError(f"invalid utf-8: {e}") from None


# --- the same as compact-encoding codecs, for composition -------------------------------------


class _Uint(c.Codec[int]):
    __slots__ = ()

    def preencode(self, state: c.State, value: int) -> None:
        state.end += len(encode_uint(value))

    def encode(self, state: c.State, value: int) -> None:
        _put(state, encode_uint(value))

    def decode(self, state: c.State) -> int:
        v, end = decode_uint(_view(state), state.start)
        state.start = end
        return v


class _Buffer(c.Codec[bytes]):
    __slots__ = ()

    def preencode(self, state: c.State, value: bytes) -> None:
        state.end += len(encode_buffer(value))

    def encode(self, state: c.State, value: bytes) -> None:
        _put(state, encode_buffer(value))

    def decode(self, state: c.State) -> bytes:
        v, end = decode_buffer(_view(state), state.start)
        state.start = end
        return v


class _String(c.Codec[str]):
    __slots__ = ()

    def preencode(self, state: c.State, value: str) -> None:
        state.end += len(encode_string(value))

    def encode(self, state: c.State, value: str) -> None:
        _put(state, encode_string(value))

    def decode(self, state: c.State) -> str:
        v, end = decode_string(_view(state), state.start)
        state.start = end
        return v


def _put(state: c.State, data: bytes) -> None:
    s = state.start
    state.buffer[s : s + len(data)] = data
    state.start = s + len(data)


def _view(state: c.State) -> bytes:
    buf = state.buffer
    data = buf if state.end == len(buf) else buf[: state.end]
    return bytes(data) if type(data) is not bytes else data


UINT: c.Codec[int] = _Uint()
"""index-encoder ``UINT`` as a codec (``c.encode(UINT, 300) == b'\\xfc\\x01\\x2c'``)."""
BUFFER: c.Codec[bytes] = _Buffer()
"""index-encoder ``BUFFER`` as a codec."""
STRING: c.Codec[str] = _String()
"""index-encoder ``STRING`` as a codec."""


# --- key builders ---------------------------------------------------------------------------

_HEAD = bytes((TL_HEAD,))


def _fixed32(value: bytes) -> bytes:
    if len(value) != 32:
        raise c.EncodeError(f"expected 32 bytes, got {len(value)}")
    return bytes(value)


def store_head() -> bytes:
    """``00``: the store head."""
    return _HEAD


def core_by_discovery_key(discovery_key: bytes) -> bytes:
    """``01 <dkey>``: the core record (pointers, alias) of a core."""
    return b"\x01" + _fixed32(discovery_key)


def core_range() -> tuple[bytes, bytes]:
    """``[01, 02)``: every core record."""
    return b"\x01", b"\x02"


def core_by_alias(namespace: bytes, name: str) -> bytes:
    """``02 <namespace> STRING(name)``: the discovery key of a named core."""
    return b"\x02" + _fixed32(namespace) + encode_string(name)


def alias_range(namespace: bytes | None = None) -> tuple[bytes, bytes]:
    """Every alias row, or those of one namespace."""
    if namespace is None:
        return b"\x02", b"\x03"
    prefix = b"\x02" + _fixed32(namespace)
    return prefix, prefix + b"\xff"


def decode_alias_key(key: bytes) -> tuple[bytes, str]:
    """``(namespace, name)`` of an alias row key."""
    if len(key) < 33 or key[0] != TL_CORE_BY_ALIAS:
        raise c.DecodeError("not an alias key")
    name, end = decode_string(bytes(key), 33)
    if end != len(key):
        raise c.DecodeError("trailing bytes in alias key")
    return bytes(key[1:33]), name


def core_prefix(core_pointer: int) -> bytes:
    """``03 UINT(corePointer)``: the start of a core's rows (auth, sessions, group)."""
    return b"\x03" + encode_uint(core_pointer)


def data_prefix(data_pointer: int) -> bytes:
    """``04 UINT(dataPointer)``: the start of a data set's rows (head, blocks, tree ...)."""
    return b"\x04" + encode_uint(data_pointer)


def core_auth(core_pointer: int) -> bytes:
    return core_prefix(core_pointer) + b"\x00"


def core_sessions(core_pointer: int) -> bytes:
    return core_prefix(core_pointer) + b"\x01"


def core_group(core_pointer: int) -> bytes:
    return core_prefix(core_pointer) + b"\x02"


def data_head(data_pointer: int) -> bytes:
    return data_prefix(data_pointer) + b"\x00"


def data_dependency(data_pointer: int) -> bytes:
    return data_prefix(data_pointer) + b"\x01"


def data_hints(data_pointer: int) -> bytes:
    return data_prefix(data_pointer) + b"\x02"


def data_block(data_pointer: int, index: int) -> bytes:
    return data_prefix(data_pointer) + b"\x03" + encode_uint(index)


def data_tree(data_pointer: int, index: int) -> bytes:
    return data_prefix(data_pointer) + b"\x04" + encode_uint(index)


def data_bitfield(data_pointer: int, page: int, type: int = 0) -> bytes:
    return data_prefix(data_pointer) + b"\x05" + encode_uint(page) + encode_uint(type)


def data_user_data(data_pointer: int, key: str) -> bytes:
    return data_prefix(data_pointer) + b"\x06" + encode_string(key)


def group_topic(topic: bytes) -> bytes:
    """``05 <topic>``: the group pointer of a topic."""
    return b"\x05" + _fixed32(topic)


def group_entry(group: int, timestamp: int, core_pointer: int) -> bytes:
    """``06 UINT(group) u64be(timestamp) UINT(corePointer)``: a group update entry."""
    return b"\x06" + encode_uint(group) + _U64.pack(timestamp) + encode_uint(core_pointer)


# --- naming rows (for error messages) ---------------------------------------------------------


class RowName(NamedTuple):
    """What a key is: ``name`` (``"block 6"``, ``"auth"`` ...), its top-level tag and, under
    ``03``/``04``, the core or data pointer it belongs to."""

    name: str
    tag: int | None
    pointer: int | None


_CORE_ROWS = {CORE_AUTH: "auth", CORE_SESSIONS: "sessions", CORE_GROUP: "group"}
_DATA_ROWS = {DATA_HEAD: "head", DATA_DEPENDENCY: "dependency", DATA_HINTS: "hints"}
_INDEXED_ROWS = {DATA_BLOCK: "block", DATA_TREE: "tree node", DATA_BITFIELD: "bitfield page"}


def describe_key(key: bytes) -> RowName:
    """Name the row of ``key`` (any bytes: what does not parse is named by its hex)."""
    key = bytes(key)
    try:
        return _describe(key)
    except c.DecodeError:
        return RowName(f"row {key.hex() or '(empty key)'}", key[0] if key else None, None)


def _describe(key: bytes) -> RowName:
    tag = key[0] if key else None
    if tag == TL_HEAD and len(key) == 1:
        return RowName("store head", tag, None)
    if tag == TL_CORE_BY_DKEY:
        return RowName("core record", tag, None)
    if tag == TL_CORE_BY_ALIAS:
        return RowName(f"alias {decode_alias_key(key)[1]!r}", tag, None)
    if tag == TL_GROUP_BY_TOPIC:
        return RowName("group topic", tag, None)
    if tag == TL_GROUP:
        return RowName("group entry", tag, None)
    if tag in (TL_CORE, TL_DATA):
        pointer, i = decode_uint(key, 1)
        rest = key[i:]
        if not rest:
            name = "core rows" if tag == TL_CORE else "data rows"
        elif tag == TL_CORE:
            name = _CORE_ROWS.get(rest[0], f"core row {rest.hex()}")
        elif rest[0] in _INDEXED_ROWS:
            name = _INDEXED_ROWS[rest[0]]
            if len(rest) > 1:
                name += f" {decode_uint(rest, 1)[0]}"
        elif rest[0] == DATA_USER_DATA:
            name = f"user data {decode_string(rest, 1)[0]!r}" if len(rest) > 1 else "user data"
        else:
            name = _DATA_ROWS.get(rest[0], f"data row {rest.hex()}")
        return RowName(name, tag, pointer)
    return RowName(f"row {key.hex() or '(empty key)'}", tag, None)
