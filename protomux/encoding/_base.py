"""The codec machinery of compact-encoding: :class:`State`, :class:`Codec` and the errors.

A codec is an object with three methods working on a :class:`State`:

- ``preencode(state, value)`` adds the encoded size of ``value`` to ``state.end``;
- ``encode(state, value)`` writes ``value`` at ``state.start`` and advances it;
- ``decode(state)`` reads a value at ``state.start``, never past ``state.end``.

Decoding is strict: truncated input, non-canonical (overlong) varints, values outside the
range the JS implementation accepts and malformed text all raise :class:`DecodeError`.
Encoding a value the codec cannot represent raises :class:`EncodeError`.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from .errors import DecodeError, EncodeError

T = TypeVar("T")

MAX_SAFE_INTEGER = 2**53 - 1
MAX_SAFE_INT = 2**52 - 1
MIN_SAFE_INT = -(2**52)
MAX_ARRAY_LENGTH = 0x100000


class State:
    """Cursor over a buffer: ``start`` is the read/write position, ``end`` the limit.

    Encoding writes into a ``bytearray``; decoding reads a ``bytes`` object (which
    :func:`decode` makes of any bytes-like input), so decoded byte strings are ``bytes``.
    """

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
