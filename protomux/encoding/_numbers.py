"""Integer, float and boolean codecs."""

from __future__ import annotations

import math
import struct

from ._base import MAX_SAFE_INT, MAX_SAFE_INTEGER, MIN_SAFE_INT, Codec, State, _check_uint, _oob
from .errors import DecodeError, EncodeError

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")


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
        if type(value) is not int or value < 0 or value > MAX_SAFE_INTEGER:
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
