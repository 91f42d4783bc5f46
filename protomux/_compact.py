"""compact-encoding: the byte codec every Holepunch protocol is written in.

The public names live in :mod:`protomux.encoding`; this module holds the implementation under
names that do not shadow Python builtins (``int_``, ``bool_``, ``json_``).

A codec is an object with three methods working on a :class:`State`:

- ``preencode(state, value)`` adds the encoded size of ``value`` to ``state.end``;
- ``encode(state, value)`` writes ``value`` at ``state.start`` and advances it;
- ``decode(state)`` reads a value at ``state.start``, never past ``state.end``.

Decoding is strict: truncated input, non-canonical (overlong) varints, values outside the
range the JS implementation accepts and malformed text all raise :class:`DecodeError`.
Encoding a value the codec cannot represent raises :class:`EncodeError`.
"""

from __future__ import annotations

import ipaddress
import json as _jsonlib
import math
import struct
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Generic, NamedTuple, TypeVar

T = TypeVar("T")

MAX_SAFE_INTEGER = 2**53 - 1
MAX_SAFE_INT = 2**52 - 1
MIN_SAFE_INT = -(2**52)
MAX_ARRAY_LENGTH = 0x100000

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")


class DecodeError(ValueError):
    """Bytes that are not a valid encoding for the codec they were decoded with."""


class EncodeError(ValueError):
    """A value the codec cannot encode (the caller's mistake, not a peer's)."""


class State:
    """Cursor over a buffer: ``start`` is the read/write position, ``end`` the limit."""

    __slots__ = ("buffer", "end", "start")

    def __init__(self, buffer: Any = None, start: int = 0, end: int | None = None) -> None:
        self.buffer = buffer
        self.start = start
        if end is None:
            end = len(buffer) if buffer is not None else 0
        self.end = end

    def __repr__(self) -> str:
        return f"State(start={self.start}, end={self.end})"


class Codec(Generic[T]):
    """Base class of every codec: subclasses implement the three state methods."""

    __slots__ = ()

    def preencode(self, state: State, value: T) -> None:
        raise NotImplementedError

    def encode(self, state: State, value: T) -> None:
        raise NotImplementedError

    def decode(self, state: State) -> T:
        raise NotImplementedError


def encode(codec: Codec[T], value: T) -> bytes:
    """Encode ``value`` with ``codec`` into a new ``bytes`` object."""
    state = State()
    codec.preencode(state, value)
    state.buffer = bytearray(state.end)
    codec.encode(state, value)
    return bytes(state.buffer)


def decode(
    codec: Codec[T], data: bytes | bytearray | memoryview, *, allow_trailing: bool = False
) -> T:
    """Decode one value; trailing bytes raise :class:`DecodeError` unless ``allow_trailing``."""
    if type(data) is not bytes:
        data = bytes(data)
    state = State(data, 0, len(data))
    value = codec.decode(state)
    if state.start != state.end and not allow_trailing:
        raise DecodeError(f"{state.end - state.start} trailing bytes")
    return value


def _oob() -> DecodeError:
    return DecodeError("out of bounds")


def _check_uint(n: Any, limit: int) -> None:
    if type(n) is not int:
        if isinstance(n, bool) or not isinstance(n, int):
            raise EncodeError(f"expected an integer, got {type(n).__name__}")
    if n < 0 or n > limit:
        raise EncodeError(f"{n} is outside 0..{limit}")


# --- unsigned integers --------------------------------------------------------------------


class _UInt(Codec[int]):
    """Variable length unsigned integer (1, 3, 5 or 9 bytes), at most 2^53 - 1."""

    __slots__ = ()

    def preencode(self, state: State, value: int) -> None:
        try:
            state.end += (
                1 if value <= 0xFC else 3 if value <= 0xFFFF else 5 if value <= 0xFFFFFFFF else 9
            )
        except TypeError:
            raise EncodeError(f"expected an integer, got {type(value).__name__}") from None

    def encode(self, state: State, value: int) -> None:
        _check_uint(value, MAX_SAFE_INTEGER)
        buf = state.buffer
        s = state.start
        if value <= 0xFC:
            buf[s] = value
            state.start = s + 1
        elif value <= 0xFFFF:
            buf[s] = 0xFD
            _U16.pack_into(buf, s + 1, value)
            state.start = s + 3
        elif value <= 0xFFFFFFFF:
            buf[s] = 0xFE
            _U32.pack_into(buf, s + 1, value)
            state.start = s + 5
        else:
            buf[s] = 0xFF
            _U64.pack_into(buf, s + 1, value)
            state.start = s + 9

    def decode(self, state: State) -> int:
        s = state.start
        end = state.end
        if s >= end:
            raise _oob()
        buf = state.buffer
        a = buf[s]
        if a <= 0xFC:
            state.start = s + 1
            return a  # type: ignore[no-any-return]
        if a == 0xFD:
            if end - s < 3:
                raise _oob()
            n = buf[s + 1] | buf[s + 2] << 8
            if n <= 0xFC:
                raise DecodeError("non-canonical uint")
            state.start = s + 3
            return n  # type: ignore[no-any-return]
        if a == 0xFE:
            if end - s < 5:
                raise _oob()
            n = _U32.unpack_from(buf, s + 1)[0]
            if n <= 0xFFFF:
                raise DecodeError("non-canonical uint")
            state.start = s + 5
            return n  # type: ignore[no-any-return]
        if end - s < 9:
            raise _oob()
        n = _U64.unpack_from(buf, s + 1)[0]
        if n <= 0xFFFFFFFF:
            raise DecodeError("non-canonical uint")
        if n > MAX_SAFE_INTEGER:
            raise DecodeError("uint above 2^53 - 1")
        state.start = s + 9
        return n  # type: ignore[no-any-return]


class _FixedUInt(Codec[int]):
    """Fixed width little-endian unsigned integer of ``width`` bytes."""

    __slots__ = ("_big", "_limit", "width")

    def __init__(self, width: int, *, big_endian: bool = False) -> None:
        self.width = width
        self._big = big_endian
        self._limit = min((1 << (8 * width)) - 1, MAX_SAFE_INTEGER)

    def preencode(self, state: State, value: int) -> None:
        state.end += self.width

    def encode(self, state: State, value: int) -> None:
        _check_uint(value, self._limit)
        s = state.start
        w = self.width
        state.buffer[s : s + w] = value.to_bytes(w, "big" if self._big else "little")
        state.start = s + w

    def decode(self, state: State) -> int:
        s = state.start
        w = self.width
        if state.end - s < w:
            raise _oob()
        n = int.from_bytes(state.buffer[s : s + w], "big" if self._big else "little")
        if n > self._limit:
            raise DecodeError("uint above 2^53 - 1")
        state.start = s + w
        return n


class _UInt8(Codec[int]):
    __slots__ = ()

    def preencode(self, state: State, value: int) -> None:
        state.end += 1

    def encode(self, state: State, value: int) -> None:
        _check_uint(value, 0xFF)
        state.buffer[state.start] = value
        state.start += 1

    def decode(self, state: State) -> int:
        s = state.start
        if s >= state.end:
            raise _oob()
        state.start = s + 1
        return state.buffer[s]  # type: ignore[no-any-return]


class _UInt16(Codec[int]):
    __slots__ = ()

    def preencode(self, state: State, value: int) -> None:
        state.end += 2

    def encode(self, state: State, value: int) -> None:
        _check_uint(value, 0xFFFF)
        _U16.pack_into(state.buffer, state.start, value)
        state.start += 2

    def decode(self, state: State) -> int:
        s = state.start
        if state.end - s < 2:
            raise _oob()
        buf = state.buffer
        state.start = s + 2
        return buf[s] | buf[s + 1] << 8  # type: ignore[no-any-return]


class _UInt32(Codec[int]):
    __slots__ = ()

    def preencode(self, state: State, value: int) -> None:
        state.end += 4

    def encode(self, state: State, value: int) -> None:
        _check_uint(value, 0xFFFFFFFF)
        _U32.pack_into(state.buffer, state.start, value)
        state.start += 4

    def decode(self, state: State) -> int:
        s = state.start
        if state.end - s < 4:
            raise _oob()
        state.start = s + 4
        return _U32.unpack_from(state.buffer, s)[0]  # type: ignore[no-any-return]


class _UInt64(Codec[int]):
    __slots__ = ()

    def preencode(self, state: State, value: int) -> None:
        state.end += 8

    def encode(self, state: State, value: int) -> None:
        _check_uint(value, MAX_SAFE_INTEGER)
        _U64.pack_into(state.buffer, state.start, value)
        state.start += 8

    def decode(self, state: State) -> int:
        s = state.start
        if state.end - s < 8:
            raise _oob()
        n: int = _U64.unpack_from(state.buffer, s)[0]
        if n > MAX_SAFE_INTEGER:
            raise DecodeError("uint64 above 2^53 - 1")
        state.start = s + 8
        return n


uint = _UInt()
uint8 = _UInt8()
uint16 = _UInt16()
uint24 = _FixedUInt(3)
uint32 = _UInt32()
uint40 = _FixedUInt(5)
uint48 = _FixedUInt(6)
uint56 = _FixedUInt(7)
uint64 = _UInt64()
uint32be = _FixedUInt(4, big_endian=True)
uint64be = _FixedUInt(8, big_endian=True)
port = uint16


# --- signed integers (zig-zag) ------------------------------------------------------------


class _ZigZag(Codec[int]):
    """Signed integer mapped onto an unsigned codec: 0, -1, 1, -2, 2 -> 0, 1, 2, 3, 4."""

    __slots__ = ("_high", "_inner", "_low")

    def __init__(self, inner: Codec[int], bits: int | None) -> None:
        self._inner = inner
        if bits is None or bits >= 53:
            self._low, self._high = MIN_SAFE_INT, MAX_SAFE_INT
        else:
            self._low, self._high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def _zig(self, n: int) -> int:
        if isinstance(n, bool) or not isinstance(n, int):
            raise EncodeError(f"expected an integer, got {type(n).__name__}")
        if n < self._low or n > self._high:
            raise EncodeError(f"{n} is outside {self._low}..{self._high}")
        return 2 * -n - 1 if n < 0 else 2 * n

    def preencode(self, state: State, value: int) -> None:
        self._inner.preencode(state, self._zig(value))

    def encode(self, state: State, value: int) -> None:
        self._inner.encode(state, self._zig(value))

    def decode(self, state: State) -> int:
        n = self._inner.decode(state)
        return -(n + 1) // 2 if n & 1 else n // 2


int_ = _ZigZag(uint, None)
int8 = _ZigZag(uint8, 8)
int16 = _ZigZag(uint16, 16)
int24 = _ZigZag(uint24, 24)
int32 = _ZigZag(uint32, 32)
int40 = _ZigZag(uint40, 40)
int48 = _ZigZag(uint48, 48)
int56 = _ZigZag(uint56, None)
int64 = _ZigZag(uint64, None)


# --- floats and booleans -------------------------------------------------------------------


class _Float(Codec[float]):
    __slots__ = ("_nan", "_st")

    def __init__(self, st: struct.Struct, nan: bytes) -> None:
        self._st = st
        self._nan = nan

    def preencode(self, state: State, value: float) -> None:
        state.end += self._st.size

    def encode(self, state: State, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise EncodeError(f"expected a number, got {type(value).__name__}")
        if value != value:
            # One NaN, as JS writes it (the sign and payload bits of a NaN are not kept).
            state.buffer[state.start : state.start + self._st.size] = self._nan
            state.start += self._st.size
            return
        try:
            self._st.pack_into(state.buffer, state.start, value)
        except OverflowError:
            # Too large for a float32: round to infinity, as a JS DataView does.
            self._st.pack_into(state.buffer, state.start, math.inf if value > 0 else -math.inf)
        state.start += self._st.size

    def decode(self, state: State) -> float:
        s = state.start
        n = self._st.size
        if state.end - s < n:
            raise _oob()
        state.start = s + n
        return self._st.unpack_from(state.buffer, s)[0]  # type: ignore[no-any-return]


float32 = _Float(_F32, bytes.fromhex("0000c07f"))
float64 = _Float(_F64, bytes.fromhex("000000000000f87f"))


class _Bool(Codec[bool]):
    __slots__ = ()

    def preencode(self, state: State, value: bool) -> None:
        state.end += 1

    def encode(self, state: State, value: bool) -> None:
        state.buffer[state.start] = 1 if value else 0
        state.start += 1

    def decode(self, state: State) -> bool:
        s = state.start
        if s >= state.end:
            raise _oob()
        b = state.buffer[s]
        if b > 1:
            raise DecodeError(f"bool byte {b}")
        state.start = s + 1
        return b == 1  # type: ignore[no-any-return]


bool_ = _Bool()


# --- byte strings --------------------------------------------------------------------------


def _as_bytes(value: Any) -> bytes | bytearray | memoryview:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return value
    raise EncodeError(f"expected bytes, got {type(value).__name__}")


class _Buffer(Codec[bytes]):
    """Length-prefixed bytes. Encodes ``None`` as empty; decodes to ``bytes`` (maybe empty)."""

    __slots__ = ()

    def preencode(self, state: State, value: bytes | None) -> None:
        n = 0 if value is None else len(_as_bytes(value))
        uint.preencode(state, n)
        state.end += n

    def encode(self, state: State, value: bytes | None) -> None:
        if value is None:
            value = b""
        n = len(value)
        uint.encode(state, n)
        s = state.start
        state.buffer[s : s + n] = value
        state.start = s + n

    def decode(self, state: State) -> bytes:
        n = uint.decode(state)
        s = state.start
        if state.end - s < n:
            raise _oob()
        state.start = s + n
        return state.buffer[s : s + n]  # type: ignore[no-any-return]


class _OptionalBuffer(Codec["bytes | None"]):
    """Length-prefixed bytes where the empty buffer stands for ``None``."""

    __slots__ = ()

    def preencode(self, state: State, value: bytes | None) -> None:
        _buffer.preencode(state, value)

    def encode(self, state: State, value: bytes | None) -> None:
        _buffer.encode(state, value)

    def decode(self, state: State) -> bytes | None:
        value = _buffer.decode(state)
        return value if value else None


_buffer = _Buffer()
buffer = _buffer
optional_buffer = _OptionalBuffer()


class _Raw(Codec[bytes]):
    """All remaining bytes, no length prefix: only valid as the last field."""

    __slots__ = ()

    def preencode(self, state: State, value: bytes) -> None:
        state.end += len(_as_bytes(value))

    def encode(self, state: State, value: bytes) -> None:
        s = state.start
        n = len(value)
        state.buffer[s : s + n] = value
        state.start = s + n

    def decode(self, state: State) -> bytes:
        s = state.start
        state.start = state.end
        return state.buffer[s : state.end]  # type: ignore[no-any-return]


raw = _Raw()


class _Fixed(Codec[bytes]):
    """Exactly ``n`` raw bytes."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    def preencode(self, state: State, value: bytes) -> None:
        if len(_as_bytes(value)) != self.n:
            raise EncodeError(f"expected {self.n} bytes, got {len(value)}")
        state.end += self.n

    def encode(self, state: State, value: bytes) -> None:
        s = state.start
        n = self.n
        state.buffer[s : s + n] = value
        state.start = s + n

    def decode(self, state: State) -> bytes:
        s = state.start
        n = self.n
        if state.end - s < n:
            raise _oob()
        state.start = s + n
        return state.buffer[s : s + n]  # type: ignore[no-any-return]


def fixed(n: int) -> Codec[bytes]:
    """Codec for exactly ``n`` bytes with no prefix."""
    return _Fixed(n)


fixed8 = _Fixed(8)
fixed16 = _Fixed(16)
fixed24 = _Fixed(24)
fixed32 = _Fixed(32)
fixed64 = _Fixed(64)


# --- text ----------------------------------------------------------------------------------


def _utf8(value: Any) -> bytes:
    if not isinstance(value, str):
        raise EncodeError(f"expected str, got {type(value).__name__}")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise EncodeError(f"string is not valid unicode: {e}") from None


class _String(Codec[str]):
    """Length-prefixed UTF-8 text; invalid UTF-8 raises :class:`DecodeError`."""

    __slots__ = ()

    def preencode(self, state: State, value: str) -> None:
        n = len(value) if type(value) is str and value.isascii() else len(_utf8(value))
        uint.preencode(state, n)
        state.end += n

    def encode(self, state: State, value: str) -> None:
        data = value.encode("ascii") if type(value) is str and value.isascii() else _utf8(value)
        n = len(data)
        uint.encode(state, n)
        s = state.start
        state.buffer[s : s + n] = data
        state.start = s + n

    def decode(self, state: State) -> str:
        n = uint.decode(state)
        s = state.start
        if state.end - s < n:
            raise _oob()
        try:
            text = state.buffer[s : s + n].decode("utf-8")
        except UnicodeDecodeError as e:
            raise DecodeError(f"invalid utf-8: {e}") from None
        state.start = s + n
        return text  # type: ignore[no-any-return]


string = _String()
utf8 = string


# --- JSON ----------------------------------------------------------------------------------


def _js_number(x: float) -> str:
    """Format a float the way JavaScript's ``Number.prototype.toString`` does."""
    if x != x or x in (math.inf, -math.inf):
        return "null"  # JSON.stringify writes null for NaN and the infinities
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    _, digit_tuple, exp = Decimal(repr(abs(x))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    k = len(digits)
    n = k + int(exp)  # value = 0.<digits> * 10^n
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * -n + digits
    else:
        e = n - 1
        mant = digits[0] + ("." + digits[1:] if k > 1 else "")
        body = f"{mant}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + body


def _is_array_index(key: str) -> bool:
    return (
        key.isdigit()
        and key.isascii()
        and (key == "0" or key[0] != "0")
        and (int(key) < 0xFFFFFFFF)
    )


def _js_key_order(obj: dict[Any, Any]) -> list[tuple[str, Any]]:
    """Items in the order JS enumerates an object's keys: array indices first, ascending."""
    for k in obj:
        if not isinstance(k, str):
            raise EncodeError(f"JSON object keys must be str, got {type(k).__name__}")
    items = list(obj.items())
    indices = [kv for kv in items if _is_array_index(kv[0])]
    if not indices:
        return items
    indices.sort(key=lambda kv: int(kv[0]))
    return indices + [kv for kv in items if not _is_array_index(kv[0])]


def _stringify(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise EncodeError(f"string is not valid unicode: {e}") from None
        out.append(_jsonlib.dumps(value, ensure_ascii=False))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(_js_number(value))
    elif isinstance(value, dict):
        out.append("{")
        first = True
        for k, v in _js_key_order(value):
            if not first:
                out.append(",")
            first = False
            _stringify(k, out)
            out.append(":")
            _stringify(v, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _stringify(v, out)
        out.append("]")
    else:
        raise EncodeError(f"{type(value).__name__} is not JSON serialisable")


def stringify(value: Any) -> str:
    """``JSON.stringify`` with JavaScript's exact output for the same value."""
    out: list[str] = []
    try:
        _stringify(value, out)
    except RecursionError:
        raise EncodeError("value is nested too deeply") from None
    return "".join(out)


def _reject_constant(name: str) -> Any:
    raise DecodeError(f"{name} is not JSON")


def parse_json(text: str) -> Any:
    """``JSON.parse``: raises :class:`DecodeError` on anything that is not strict JSON."""
    try:
        return _jsonlib.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        if isinstance(e, DecodeError):
            raise
        raise DecodeError(f"invalid JSON: {e}") from None


class _Json(Codec[Any]):
    """A string holding ``JSON.stringify(value)`` (plus a newline for ndjson)."""

    __slots__ = ("_suffix",)

    def __init__(self, suffix: str) -> None:
        self._suffix = suffix

    def _text(self, value: Any) -> str:
        return stringify(value) + self._suffix

    def preencode(self, state: State, value: Any) -> None:
        string.preencode(state, self._text(value))

    def encode(self, state: State, value: Any) -> None:
        string.encode(state, self._text(value))

    def decode(self, state: State) -> Any:
        return parse_json(string.decode(state))


json_ = _Json("")
ndjson = _Json("\n")


class _None(Codec[None]):
    """Zero bytes; decodes to ``None``."""

    __slots__ = ()

    def preencode(self, state: State, value: None) -> None:
        pass

    def encode(self, state: State, value: None) -> None:
        pass

    def decode(self, state: State) -> None:
        return None


none = _None()


# --- composites ----------------------------------------------------------------------------


class _Array(Codec[list[T]]):
    """``uint`` count followed by the items; at most 0x100000 items are decoded."""

    __slots__ = ("item",)

    def __init__(self, item: Codec[T]) -> None:
        self.item = item

    def preencode(self, state: State, value: Sequence[T]) -> None:
        uint.preencode(state, len(value))
        pre = self.item.preencode
        for v in value:
            pre(state, v)

    def encode(self, state: State, value: Sequence[T]) -> None:
        uint.encode(state, len(value))
        enc = self.item.encode
        for v in value:
            enc(state, v)

    def decode(self, state: State) -> list[T]:
        n = uint.decode(state)
        if n > MAX_ARRAY_LENGTH:
            raise DecodeError(f"array of {n} items is too big")
        dec = self.item.decode
        return [dec(state) for _ in range(n)]


def array(item: Codec[T]) -> Codec[list[T]]:
    """Codec for a list of ``item`` values."""
    return _Array(item)


class _Frame(Codec[T]):
    """``uint`` byte length followed by one value; bytes after the value inside it are skipped."""

    __slots__ = ("inner",)

    def __init__(self, inner: Codec[T]) -> None:
        self.inner = inner

    def preencode(self, state: State, value: T) -> None:
        before = state.end
        self.inner.preencode(state, value)
        uint.preencode(state, state.end - before)

    def encode(self, state: State, value: T) -> None:
        size = State()
        self.inner.preencode(size, value)
        uint.encode(state, size.end)
        self.inner.encode(state, value)

    def decode(self, state: State) -> T:
        n = uint.decode(state)
        end = state.end
        if n > end - state.start:
            raise _oob()
        state.end = state.start + n
        try:
            value = self.inner.decode(state)
        finally:
            state.start = state.end
            state.end = end
        return value


def frame(inner: Codec[T]) -> Codec[T]:
    """Codec for a length-delimited ``inner`` value."""
    return _Frame(inner)


class _UInt32Array(Codec[list[int]]):
    """``uint`` element count followed by little-endian u32 words."""

    __slots__ = ()

    def preencode(self, state: State, value: Sequence[int]) -> None:
        uint.preencode(state, len(value))
        state.end += 4 * len(value)

    def encode(self, state: State, value: Sequence[int]) -> None:
        uint.encode(state, len(value))
        for v in value:
            uint32.encode(state, v)

    def decode(self, state: State) -> list[int]:
        n = uint.decode(state)
        s = state.start
        if (state.end - s) // 4 < n:
            raise _oob()
        state.start = s + 4 * n
        return list(struct.unpack_from(f"<{n}I", state.buffer, s))


uint32array = _UInt32Array()


# --- network addresses ---------------------------------------------------------------------


class Address(NamedTuple):
    """A host and port, as decoded by the address codecs (usable as a socket address)."""

    host: str
    port: int

    @property
    def family(self) -> int:
        return 6 if ":" in self.host else 4


def _ipv4_bytes(host: Any) -> bytes:
    try:
        return ipaddress.IPv4Address(host).packed
    except (ipaddress.AddressValueError, ValueError, TypeError):
        raise EncodeError(f"not an IPv4 address: {host!r}") from None


def _ipv6_bytes(host: Any) -> bytes:
    try:
        return ipaddress.IPv6Address(host).packed
    except (ipaddress.AddressValueError, ValueError, TypeError):
        raise EncodeError(f"not an IPv6 address: {host!r}") from None


def _ipv6_text(b: bytes) -> str:
    # The JS form: eight lowercase hex groups without leading zeros and without "::".
    return ":".join(format(g, "x") for g in struct.unpack(">8H", b))


class _IPv4(Codec[str]):
    __slots__ = ()

    def preencode(self, state: State, value: str) -> None:
        state.end += 4

    def encode(self, state: State, value: str) -> None:
        s = state.start
        state.buffer[s : s + 4] = _ipv4_bytes(value)
        state.start = s + 4

    def decode(self, state: State) -> str:
        s = state.start
        if state.end - s < 4:
            raise _oob()
        b = state.buffer
        state.start = s + 4
        return f"{b[s]}.{b[s + 1]}.{b[s + 2]}.{b[s + 3]}"


class _IPv6(Codec[str]):
    __slots__ = ()

    def preencode(self, state: State, value: str) -> None:
        state.end += 16

    def encode(self, state: State, value: str) -> None:
        s = state.start
        state.buffer[s : s + 16] = _ipv6_bytes(value)
        state.start = s + 16

    def decode(self, state: State) -> str:
        s = state.start
        if state.end - s < 16:
            raise _oob()
        state.start = s + 16
        return _ipv6_text(state.buffer[s : s + 16])


ipv4 = _IPv4()
ipv6 = _IPv6()


def _is_v6(host: Any) -> bool:
    if not isinstance(host, str):
        raise EncodeError(f"expected an IP address string, got {type(host).__name__}")
    return ":" in host


class _IP(Codec[str]):
    """``uint8`` family (4 or 6) followed by the address bytes."""

    __slots__ = ()

    def preencode(self, state: State, value: str) -> None:
        state.end += 17 if _is_v6(value) else 5

    def encode(self, state: State, value: str) -> None:
        if _is_v6(value):
            uint8.encode(state, 6)
            ipv6.encode(state, value)
        else:
            uint8.encode(state, 4)
            ipv4.encode(state, value)

    def decode(self, state: State) -> str:
        family = uint8.decode(state)
        if family == 4:
            return ipv4.decode(state)
        if family == 6:
            return ipv6.decode(state)
        raise DecodeError(f"unknown address family {family}")


ip = _IP()


def _host_port(value: Any) -> tuple[Any, Any]:
    try:
        host, port_ = value
    except (TypeError, ValueError):
        raise EncodeError(f"expected a (host, port) pair, got {value!r}") from None
    return host, port_


class _AddressCodec(Codec[Address]):
    __slots__ = ("_host",)

    def __init__(self, host: Codec[str]) -> None:
        self._host = host

    def preencode(self, state: State, value: tuple[str, int]) -> None:
        host, _ = _host_port(value)
        self._host.preencode(state, host)
        state.end += 2

    def encode(self, state: State, value: tuple[str, int]) -> None:
        host, port_ = _host_port(value)
        self._host.encode(state, host)
        uint16.encode(state, port_)

    def decode(self, state: State) -> Address:
        host = self._host.decode(state)
        return Address(host, uint16.decode(state))


ipv4_address = _AddressCodec(ipv4)
ipv6_address = _AddressCodec(ipv6)
ip_address = _AddressCodec(ip)
