"""Byte string and text codecs: ``buffer``, ``optional_buffer``, ``raw``, ``fixed``, ``string``."""

from __future__ import annotations

from typing import Any

from ._base import Codec, State, _oob
from ._numbers import uint
from .errors import DecodeError, EncodeError

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
