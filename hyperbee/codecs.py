"""Key and value encodings of a bee (JS ``codecs`` as hyperbee uses it), and the entries a
bee hands out.

An encoding is a name (``"binary"``, ``"utf-8"``, ``"json"``, ``"ndjson"``), a
compact-encoding codec, or any object with ``encode(value) -> bytes`` and
``decode(bytes)``. ``None`` means raw: bytes are stored as given, a ``str`` as its UTF-8
bytes, and what is read comes back as bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from hypercore.encodings import ValueEncoding, resolve
from protomux import encoding as c

from .errors import DecodingError, HyperbeeError

__all__ = [
    "DiffEntry",
    "Encoding",
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


class DiffEntry(NamedTuple):
    """A key that differs between two versions: its entry on each side (None where absent)."""

    left: Entry | None
    right: Entry | None


def resolve_encoding(encoding: Encoding) -> ValueEncoding | None:
    if encoding is None:
        return None
    try:
        return resolve(encoding)
    except Exception as e:
        raise HyperbeeError(str(e)) from None


def enc(encoding: ValueEncoding | None, value: Any) -> bytes | None:
    """``value`` as stored: None stays None."""
    if value is None:
        return None
    if encoding is None:
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        raise HyperbeeError(f"a raw bee stores bytes or str, not {type(value).__name__}")
    try:
        return encoding.encode(value)
    except Exception as e:
        raise HyperbeeError(f"cannot encode {value!r}: {e}") from None


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
