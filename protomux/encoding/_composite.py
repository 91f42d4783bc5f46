"""Composite codecs: ``none``, ``array``, ``frame`` and ``uint32array``."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from ._base import MAX_ARRAY_LENGTH, Codec, State, T, _oob
from ._numbers import uint, uint32
from .errors import DecodeError


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
