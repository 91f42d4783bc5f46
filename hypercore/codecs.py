"""Value encodings of blocks: ``binary``, ``utf-8``, ``json`` or any compact-encoding codec
(JS ``c.from(name)``, which resolves names as the ``codecs`` package does).

As in JS, named encodings use the whole block with no length prefix.
"""

from __future__ import annotations

from typing import Any, Protocol

from protomux import encoding as c

from .errors import BadArgumentError, DecodingError

__all__ = ["ValueEncoding", "resolve"]


class ValueEncoding(Protocol):
    def encode(self, value: Any) -> bytes: ...

    def decode(self, data: bytes) -> Any: ...


class _Binary:
    def encode(self, value: Any) -> bytes:
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        raise BadArgumentError(f"cannot append a {type(value).__name__} as binary")

    def decode(self, data: bytes) -> Any:
        return data


class _Utf8:
    def encode(self, value: Any) -> bytes:
        if not isinstance(value, str):
            raise BadArgumentError(f"expected str, got {type(value).__name__}")
        return value.encode("utf-8")

    def decode(self, data: bytes) -> Any:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DecodingError(str(e)) from None


class _Json:
    def __init__(self, suffix: str = "") -> None:
        self._suffix = suffix

    def encode(self, value: Any) -> bytes:
        try:
            return (c.stringify(value) + self._suffix).encode("utf-8")
        except c.EncodeError as e:
            raise BadArgumentError(str(e)) from None

    def decode(self, data: bytes) -> Any:
        try:
            return c.parse_json(data.decode("utf-8"))
        except (UnicodeDecodeError, c.DecodeError) as e:
            raise DecodingError(str(e)) from None


class _CodecEncoding:
    def __init__(self, codec: c.Codec[Any]) -> None:
        self._codec = codec

    def encode(self, value: Any) -> bytes:
        try:
            return c.encode(self._codec, value)
        except c.EncodeError as e:
            raise BadArgumentError(str(e)) from None

    def decode(self, data: bytes) -> Any:
        try:
            return c.decode(self._codec, data)
        except c.DecodeError as e:
            raise DecodingError(str(e)) from None


BINARY: ValueEncoding = _Binary()
_NAMED: dict[str, ValueEncoding] = {
    "binary": BINARY,
    "utf-8": _Utf8(),
    "utf8": _Utf8(),
    "json": _Json(),
    "ndjson": _Json("\n"),
}


def resolve(encoding: str | c.Codec[Any] | ValueEncoding | None) -> ValueEncoding:
    """The encoding for a name, a compact-encoding codec, an encoding object, or None (binary)."""
    if encoding is None:
        return BINARY
    if isinstance(encoding, str):
        try:
            return _NAMED[encoding]
        except KeyError:
            raise BadArgumentError(f"unknown value encoding {encoding!r}") from None
    if isinstance(encoding, c.Codec):
        return _CodecEncoding(encoding)
    if callable(getattr(encoding, "encode", None)) and callable(getattr(encoding, "decode", None)):
        return encoding
    raise BadArgumentError(f"not a value encoding: {encoding!r}")
