"""Block encryption of hypercore, byte-identical to JS ``hypercore/lib/default-encryption.js``.

A core opened with an encryption key stores and replicates every block as

    padding (8 bytes) || XSalsa20(block_key, nonce = u64le(index) || padding || 0^8) xor block

where ``padding = XSalsa20(blinding_key, nonce = u64le(index) || 0^16) xor u64le(fork)`` is the
core's fork at append time, blinded so that it can serve as the second half of a unique nonce.
The Merkle tree (leaf hashes and sizes), signatures and proofs cover these stored (padded,
encrypted) bytes; only the JS ``byteLength``/``seek`` API subtracts the 8 bytes per block.

Keys (all 32 bytes, BLAKE2b-256):

* ``block_key = H(DEFAULT_ENCRYPTION || core_key || encryption_key)``; for compat (v10,
  ``key == public key``) cores ``block_key = H_core_key(encryption_key)`` (keyed BLAKE2b).
  With ``block=True`` the given key already *is* the block key.
* ``blinding_key = H(block_key)``.

XSalsa20 is libsodium's ``crypto_stream_xor``. PyNaCl has no Python binding for it, but the
libsodium inside PyNaCl's extension module exports ``crypto_stream_xsalsa20_xor``, which is
called through ctypes when found (checked against the Python path at import). Otherwise it is
assembled from what PyNaCl does bind: ``crypto_secretbox`` is XSalsa20 with its first 32
key-stream bytes spent on the Poly1305 key, so it yields the key stream from byte 32 on; the
first 32 bytes (one HSalsa20 and one Salsa20 block) are computed in Python. Both paths are
tested against each other and the JS.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import struct
from collections.abc import Callable
from typing import NamedTuple

from nacl.bindings import crypto_secretbox

from .crypto import DEFAULT_ENCRYPTION
from .errors import EncryptedBlockError

__all__ = [
    "KEY_BYTES",
    "NONCE_BYTES",
    "PADDING",
    "BlockKeys",
    "DefaultEncryption",
    "block_encryption_key",
    "derive_keys",
    "hsalsa20",
    "salsa20_block",
    "xsalsa20_xor",
]

PADDING = 8
"""Bytes in front of every encrypted block (the blinded fork)."""

KEY_BYTES = 32
"""``crypto_stream_KEYBYTES``: size of the block and blinding keys."""

NONCE_BYTES = 24
"""``crypto_stream_NONCEBYTES``: XSalsa20 nonce size."""

_U64 = struct.Struct("<Q")
_WORDS = struct.Struct("<16I")
_KEY_WORDS = struct.Struct("<8I")
_NONCE_WORDS = struct.Struct("<4I")
_SIGMA = struct.unpack("<4I", b"expand 32-byte k")
_M = 0xFFFFFFFF
_MAX_U64 = 1 << 64
_SECRETBOX_SKIP = 32  # key-stream bytes crypto_secretbox spends on the Poly1305 key
_SECRETBOX_MAC = 16  # bytes of MAC in front of PyNaCl's crypto_secretbox output

_BytesLike = bytes | bytearray | memoryview


class BlockKeys(NamedTuple):
    """The two stream keys of one encrypted core."""

    block: bytes
    blinding: bytes


# --------------------------------------------------------------------------------------------
# Salsa20 family


def _double_rounds(x: list[int]) -> list[int]:
    """Ten Salsa20 double rounds (20 rounds) over 16 words, without the final addition."""
    x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15 = x
    m = _M
    for _ in range(10):
        # columns
        t = (x0 + x12) & m
        x4 ^= ((t << 7) | (t >> 25)) & m
        t = (x4 + x0) & m
        x8 ^= ((t << 9) | (t >> 23)) & m
        t = (x8 + x4) & m
        x12 ^= ((t << 13) | (t >> 19)) & m
        t = (x12 + x8) & m
        x0 ^= ((t << 18) | (t >> 14)) & m

        t = (x5 + x1) & m
        x9 ^= ((t << 7) | (t >> 25)) & m
        t = (x9 + x5) & m
        x13 ^= ((t << 9) | (t >> 23)) & m
        t = (x13 + x9) & m
        x1 ^= ((t << 13) | (t >> 19)) & m
        t = (x1 + x13) & m
        x5 ^= ((t << 18) | (t >> 14)) & m

        t = (x10 + x6) & m
        x14 ^= ((t << 7) | (t >> 25)) & m
        t = (x14 + x10) & m
        x2 ^= ((t << 9) | (t >> 23)) & m
        t = (x2 + x14) & m
        x6 ^= ((t << 13) | (t >> 19)) & m
        t = (x6 + x2) & m
        x10 ^= ((t << 18) | (t >> 14)) & m

        t = (x15 + x11) & m
        x3 ^= ((t << 7) | (t >> 25)) & m
        t = (x3 + x15) & m
        x7 ^= ((t << 9) | (t >> 23)) & m
        t = (x7 + x3) & m
        x11 ^= ((t << 13) | (t >> 19)) & m
        t = (x11 + x7) & m
        x15 ^= ((t << 18) | (t >> 14)) & m

        # rows
        t = (x0 + x3) & m
        x1 ^= ((t << 7) | (t >> 25)) & m
        t = (x1 + x0) & m
        x2 ^= ((t << 9) | (t >> 23)) & m
        t = (x2 + x1) & m
        x3 ^= ((t << 13) | (t >> 19)) & m
        t = (x3 + x2) & m
        x0 ^= ((t << 18) | (t >> 14)) & m

        t = (x5 + x4) & m
        x6 ^= ((t << 7) | (t >> 25)) & m
        t = (x6 + x5) & m
        x7 ^= ((t << 9) | (t >> 23)) & m
        t = (x7 + x6) & m
        x4 ^= ((t << 13) | (t >> 19)) & m
        t = (x4 + x7) & m
        x5 ^= ((t << 18) | (t >> 14)) & m

        t = (x10 + x9) & m
        x11 ^= ((t << 7) | (t >> 25)) & m
        t = (x11 + x10) & m
        x8 ^= ((t << 9) | (t >> 23)) & m
        t = (x8 + x11) & m
        x9 ^= ((t << 13) | (t >> 19)) & m
        t = (x9 + x8) & m
        x10 ^= ((t << 18) | (t >> 14)) & m

        t = (x15 + x14) & m
        x12 ^= ((t << 7) | (t >> 25)) & m
        t = (x12 + x15) & m
        x13 ^= ((t << 9) | (t >> 23)) & m
        t = (x13 + x12) & m
        x14 ^= ((t << 13) | (t >> 19)) & m
        t = (x14 + x13) & m
        x15 ^= ((t << 18) | (t >> 14)) & m
    return [x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15]


def _state(key: bytes, n0: int, n1: int, n2: int, n3: int) -> list[int]:
    k = _KEY_WORDS.unpack(key)
    s0, s1, s2, s3 = _SIGMA
    return [s0, k[0], k[1], k[2], k[3], s1, n0, n1, n2, n3, s2, k[4], k[5], k[6], k[7], s3]


def _check(key: _BytesLike, nonce: _BytesLike, nonce_bytes: int) -> None:
    if len(key) != KEY_BYTES:
        raise ValueError(f"key must be {KEY_BYTES} bytes")
    if len(nonce) != nonce_bytes:
        raise ValueError(f"nonce must be {nonce_bytes} bytes")


def hsalsa20(key: bytes, nonce: bytes) -> bytes:
    """HSalsa20 (libsodium ``crypto_core_hsalsa20``): 32-byte subkey of a key and 16-byte nonce."""
    _check(key, nonce, 16)
    x = _double_rounds(_state(bytes(key), *_NONCE_WORDS.unpack(nonce)))
    return _KEY_WORDS.pack(x[0], x[5], x[10], x[15], x[6], x[7], x[8], x[9])


def salsa20_block(key: bytes, nonce: bytes, counter: int = 0) -> bytes:
    """Block ``counter`` (64 bytes) of the Salsa20 key stream of a key and 8-byte nonce."""
    _check(key, nonce, 8)
    n0, n1 = struct.unpack("<2I", nonce)
    state = _state(bytes(key), n0, n1, counter & _M, (counter >> 32) & _M)
    x = _double_rounds(state)
    return _WORDS.pack(*[(a + b) & _M for a, b in zip(x, state, strict=True)])


def _xor(a: _BytesLike, b: bytes) -> bytes:
    n = len(a)
    return (int.from_bytes(a, "little") ^ int.from_bytes(b[:n], "little")).to_bytes(n, "little")


def _xsalsa20_xor_python(data: bytes, nonce: bytes, key: bytes) -> bytes:
    """XSalsa20 from ``crypto_secretbox`` (key stream from byte 32) and one Python block."""
    if not data:
        return b""
    subkey = hsalsa20(key, nonce[:16])
    head = _xor(data[:_SECRETBOX_SKIP], salsa20_block(subkey, nonce[16:], 0))
    if len(data) <= _SECRETBOX_SKIP:
        return head
    boxed: bytes = crypto_secretbox(data[_SECRETBOX_SKIP:], nonce, key)
    return head + boxed[_SECRETBOX_MAC:]


def _load_native() -> Callable[[bytes, bytes, bytes], bytes] | None:
    """libsodium's ``crypto_stream_xsalsa20_xor`` from PyNaCl's extension, if it exports it."""
    try:
        spec = importlib.util.find_spec("nacl._sodium")
        if spec is None or spec.origin is None:
            return None
        fn = ctypes.CDLL(spec.origin).crypto_stream_xsalsa20_xor
    except (ImportError, OSError, AttributeError):
        return None
    char_p = ctypes.c_char_p
    fn.argtypes = [char_p, char_p, ctypes.c_ulonglong, char_p, char_p]
    fn.restype = ctypes.c_int

    def xor(data: bytes, nonce: bytes, key: bytes) -> bytes:
        n = len(data)
        if n == 0:
            return b""
        out = ctypes.create_string_buffer(n)
        if fn(out, data, n, nonce, key) != 0:
            raise RuntimeError("crypto_stream_xsalsa20_xor failed")
        return out.raw

    probe = bytes(range(100))
    if xor(probe, probe[:24], probe[:32]) != _xsalsa20_xor_python(probe, probe[:24], probe[:32]):
        return None
    return xor


_native = _load_native()
_xsalsa20_xor = _native or _xsalsa20_xor_python


def xsalsa20_xor(data: _BytesLike, nonce: _BytesLike, key: _BytesLike) -> bytes:
    """``data`` xor the XSalsa20 key stream: libsodium ``crypto_stream_xor(data, nonce, key)``."""
    _check(key, nonce, NONCE_BYTES)
    return _xsalsa20_xor(bytes(data), bytes(nonce), bytes(key))


# --------------------------------------------------------------------------------------------
# Keys


def block_encryption_key(
    core_key: _BytesLike, encryption_key: _BytesLike, compat: bool = False
) -> bytes:
    """The key the blocks of a core are encrypted with.

    Non-compat is JS ``Hypercore.blockEncryptionKey(key, encryptionKey)``; compat is what
    ``DefaultEncryption`` derives for a compat core (the static JS helper has no compat form).
    """
    if compat:
        if not 16 <= len(core_key) <= 64:
            raise ValueError("a compat core key must be 16 to 64 bytes to key BLAKE2b")
        return hashlib.blake2b(bytes(encryption_key), key=bytes(core_key), digest_size=32).digest()
    h = hashlib.blake2b(DEFAULT_ENCRYPTION, digest_size=32)
    h.update(core_key)
    h.update(encryption_key)
    return h.digest()


def derive_keys(
    encryption_key: _BytesLike,
    core_key: _BytesLike | None,
    *,
    block: bool = False,
    compat: bool = False,
) -> BlockKeys:
    """Block and blinding keys, as JS ``DefaultEncryption.deriveKeys``.

    With ``block=True`` ``encryption_key`` is already the block key and ``core_key`` is unused.
    """
    if block:
        block_key = bytes(encryption_key)
    else:
        if core_key is None:
            raise ValueError("the core key is needed to derive the block key")
        block_key = block_encryption_key(core_key, encryption_key, compat)
    if len(block_key) != KEY_BYTES:
        raise ValueError(f"a block key must be {KEY_BYTES} bytes")
    return BlockKeys(block_key, hashlib.blake2b(block_key, digest_size=32).digest())


# --------------------------------------------------------------------------------------------
# The scheme


def _nonce_prefix(index: int) -> bytes:
    if not 0 <= index < _MAX_U64:
        raise ValueError("index must be a uint64")
    return _U64.pack(index)


class DefaultEncryption:
    """JS ``DefaultEncryption``: encrypts block ``index`` under the core's current fork.

    ``DefaultEncryption(encryption_key, core_key, compat=...)`` derives the keys as the JS
    constructor does; ``block=True`` (or :meth:`from_block_key`) takes a block key as is.
    ``compat`` must be the core's compat flag (``key == public key``).
    """

    PADDING = PADDING

    __slots__ = ("blinding_key", "block_key", "compat", "key")

    def __init__(
        self,
        encryption_key: _BytesLike,
        core_key: _BytesLike | None = None,
        *,
        block: bool = False,
        compat: bool = False,
    ) -> None:
        self.key = bytes(encryption_key)
        self.compat = compat
        self.block_key, self.blinding_key = derive_keys(
            self.key, core_key, block=block, compat=compat
        )

    @classmethod
    def from_block_key(cls, block_key: _BytesLike) -> DefaultEncryption:
        """The scheme for a block key (``Hypercore.blockEncryptionKey`` / ``isBlockKey``)."""
        return cls(block_key, None, block=True)

    @property
    def padding(self) -> int:
        """Bytes of padding in front of every stored block: always 8."""
        return PADDING

    def encrypt(self, index: int, block: _BytesLike, fork: int) -> bytes:
        """The stored form of block ``index`` appended at ``fork``: padding || ciphertext."""
        prefix = _nonce_prefix(index)
        if not 0 <= fork < _MAX_U64:
            raise ValueError("fork must be a uint64")
        padding = _xsalsa20_xor(_U64.pack(fork), prefix + bytes(16), self.blinding_key)
        return padding + _xsalsa20_xor(bytes(block), prefix + padding + bytes(8), self.block_key)

    def decrypt(self, index: int, stored: _BytesLike) -> bytes:
        """The plaintext of stored block ``index`` (without the padding)."""
        if len(stored) < PADDING:
            raise EncryptedBlockError(
                f"an encrypted block is at least {PADDING} bytes, got {len(stored)}"
            )
        prefix = _nonce_prefix(index)
        stored = bytes(stored)
        nonce = prefix + stored[:PADDING] + bytes(8)
        return _xsalsa20_xor(stored[PADDING:], nonce, self.block_key)

    def fork(self, index: int, stored: _BytesLike) -> int:
        """The fork block ``index`` was encrypted at, recovered from its padding."""
        if len(stored) < PADDING:
            raise EncryptedBlockError(
                f"an encrypted block is at least {PADDING} bytes, got {len(stored)}"
            )
        prefix = _nonce_prefix(index)
        blinded = bytes(memoryview(stored)[:PADDING])
        fork: int = _U64.unpack(_xsalsa20_xor(blinded, prefix + bytes(16), self.blinding_key))[0]
        return fork
