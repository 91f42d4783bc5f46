"""Key and value encodings of a bee (JS ``codecs`` as hyperbee uses it), and the entries a
bee hands out.

An encoding is a name (``"binary"``, ``"utf-8"``, ``"json"``, ``"ndjson"``), a
compact-encoding codec, or any object with ``encode(value) -> bytes`` and
``decode(bytes)``. ``None`` means raw: bytes are stored as given, a ``str`` as its UTF-8
bytes, and what is read comes back as bytes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from hypercore.codecs import ValueEncoding, resolve
from protomux import encoding as c

from .errors import DecodingError, EncodingError

__all__ = [
    "Cas",
    "DiffEntry",
    "Encoding",
    "Encodings",
    "Entry",
    "HistoryEntry",
    "PrefixEncoding",
    "enc",
    "resolve_encoding",
]

#: What the ``key_encoding``/``value_encoding`` arguments take.
Encoding = str | c.Codec[Any] | ValueEncoding | None


@dataclass(slots=True)
class Entry:
    """A stored key: ``seq`` of the block that wrote it, the key and the value, decoded."""

    seq: int
    key: Any
    value: Any


@dataclass(slots=True)
class HistoryEntry:
    """One block of the bee's history: ``type`` is ``"put"`` or ``"del"``."""

    type: str
    seq: int
    key: Any
    value: Any


#: ``cas(previous, new) -> bool`` (or awaitable bool): write only if it says so.
Cas = Callable[[Entry, Entry], "bool | Awaitable[bool]"]


class DiffEntry(NamedTuple):
    """A key that differs between two versions: its entry on each side (None where absent)."""

    left: Entry | None
    right: Entry | None


class Encodings:
    """The key and value encodings a read or write uses (None: raw)."""

    __slots__ = ("key", "value")

    def __init__(self, key: ValueEncoding | None, value: ValueEncoding | None) -> None:
        self.key = key
        self.value = value


def resolve_encoding(encoding: Encoding) -> ValueEncoding | None:
    if encoding is None:
        return None
    try:
        return resolve(encoding)
    except Exception as e:
        raise EncodingError(str(e)) from None


def enc(encoding: ValueEncoding | None, value: Any) -> bytes | None:
    """``value`` as stored: None stays None."""
    if value is None:
        return None
    if encoding is None:
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        raise EncodingError(f"a raw bee stores bytes or str, not {type(value).__name__}")
    try:
        return encoding.encode(value)
    except Exception as e:
        raise EncodingError(f"cannot encode {value!r}: {e}") from None


def dec(encoding: ValueEncoding | None, data: bytes) -> Any:
    if encoding is None:
        return data
    try:
        return encoding.decode(data)
    except Exception as e:
        raise DecodingError(f"cannot decode {data[:32]!r}: {e}") from None


class PrefixEncoding:
    """The key encoding of a sub: the prefix, then the key (bytes as given, anything else
    through the sub's own key encoding), as JS ``prefixEncoding``."""

    def __init__(self, prefix: bytes, inner: ValueEncoding | None) -> None:
        self.prefix = prefix
        self.inner = inner

    def encode(self, key: Any) -> bytes:
        if isinstance(key, (bytes, bytearray, memoryview)):
            return self.prefix + bytes(key)
        raw = enc(self.inner, key)
        assert raw is not None
        return self.prefix + raw

    def decode(self, data: bytes) -> Any:
        return dec(self.inner, data[len(self.prefix) :])
