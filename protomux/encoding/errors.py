"""Errors of compact-encoding, under one root.

JS compact-encoding throws plain ``Error`` objects (``Out of bounds``, ``Invalid varint``
...); ``code`` here names the two kinds: bytes that do not decode (from a peer or a disk:
:class:`DecodeError`) and a value the caller passed that cannot be encoded
(:class:`EncodeError`). Both are ``ValueError``.
"""

from __future__ import annotations

__all__ = ["CompactEncodingError", "DecodeError", "EncodeError"]


class CompactEncodingError(ValueError):
    """Root of the compact-encoding errors."""

    code = "ENCODING_ERROR"


class DecodeError(CompactEncodingError):
    """Bytes that are not a valid encoding for the codec they were decoded with."""

    code = "DECODE_ERROR"


class EncodeError(CompactEncodingError):
    """A value the codec cannot encode (the caller's mistake, not a peer's)."""

    code = "ENCODE_ERROR"
