"""Core ids: the z-base32 text form of a 32-byte key (JS ``hypercore-id-encoding``)."""

from __future__ import annotations

import base64

__all__ = ["decode", "encode", "normalize"]

_RFC4648 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_Z32 = b"ybndrfg8ejkmcpqxot1uwisza345h769"
_TO_Z32 = bytes.maketrans(_RFC4648, _Z32)
_FROM_Z32 = bytes.maketrans(_Z32, _RFC4648)


def encode(key: bytes) -> str:
    """The 52-character z-base32 id of a 32-byte key."""
    if len(key) != 32:
        raise ValueError("Key must be 32-bytes long")
    return base64.b32encode(key).rstrip(b"=").translate(_TO_Z32).decode("ascii")


def decode(id_: str | bytes) -> bytes:
    """A 32-byte key from an id: z-base32 (52 chars), hex (64 chars), ``pear://`` or bytes."""
    if isinstance(id_, (bytes, bytearray)):
        if len(id_) != 32:
            raise ValueError("ID must be 32-bytes long")
        return bytes(id_)
    if id_.startswith("pear://"):
        id_ = id_[7:].split("/")[0]
    if len(id_) == 52:
        raw = id_.encode("ascii", "replace")
        if all(ch in _Z32 for ch in raw):
            key = base64.b32decode(raw.translate(_FROM_Z32) + b"====")
            if len(key) == 32 and encode(key) == id_:
                return key
    elif len(id_) == 64:
        try:
            return bytes.fromhex(id_)
        except ValueError:
            pass
    raise ValueError("Invalid Hypercore key")


def normalize(id_: str | bytes) -> str:
    """The z-base32 id of any accepted form."""
    return encode(decode(id_))
