"""Hashes, keys and signatures of hypercore, identical to JS ``hypercore-crypto`` and the
v11 capability constants of ``hypercore/lib/caps.js`` and ``lib/verifier.js``.

Every hash is BLAKE2b (256-bit unless said otherwise), as libsodium's ``crypto_generichash``;
signatures are Ed25519 with 64-byte libsodium secret keys (``seed || public_key``).
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from nacl import bindings as _sodium
from nacl.exceptions import BadSignatureError

from protomux import encoding as c

from .manifest import Manifest, Signer, decode_manifest, encode_manifest

__all__ = [
    "DEFAULT_ENCRYPTION",
    "DEFAULT_NAMESPACE",
    "MANIFEST",
    "REPLICATE_INITIATOR",
    "REPLICATE_RESPONDER",
    "TREE",
    "KeyPair",
    "TreeNode",
    "core_key",
    "data",
    "default_signer_manifest",
    "discovery_key",
    "hash",
    "key_pair",
    "manifest_hash",
    "namespace",
    "parent",
    "random_bytes",
    "replicate_capability",
    "sign",
    "tree",
    "tree_signable",
    "tree_signable_compat",
    "validate_key_pair",
    "verify",
]

_LEAF_TYPE = b"\x00"
_PARENT_TYPE = b"\x01"
_ROOT_TYPE = b"\x02"
_HYPERCORE = b"hypercore"
_U64 = struct.Struct("<Q")
_blake2b = hashlib.blake2b


class KeyPair(NamedTuple):
    """An Ed25519 key pair; ``secret_key`` is the 64-byte libsodium form."""

    public_key: bytes
    secret_key: bytes


class NodeLike(Protocol):
    """Anything with the three fields of a Merkle tree node."""

    @property
    def index(self) -> int: ...

    @property
    def size(self) -> int: ...

    @property
    def hash(self) -> bytes: ...


@dataclass(slots=True)
class TreeNode:
    """A Merkle tree node: flat-tree ``index``, byte ``size`` of the blocks under it, ``hash``.

    Treat it as immutable. It is not a frozen dataclass only because trees and proofs make
    many nodes and a frozen dataclass takes three times as long to construct.
    """

    index: int
    size: int
    hash: bytes


def key_pair(seed: bytes | None = None) -> KeyPair:
    """A new Ed25519 key pair, deterministic when a 32-byte ``seed`` is given."""
    if seed is None:
        pk, sk = _sodium.crypto_sign_keypair()
    else:
        if len(seed) != 32:
            raise ValueError("seed must be 32 bytes")
        pk, sk = _sodium.crypto_sign_seed_keypair(bytes(seed))
    return KeyPair(pk, sk)


def validate_key_pair(kp: KeyPair) -> bool:
    """Whether the secret key belongs to the public key."""
    return bool(_sodium.crypto_sign_ed25519_sk_to_pk(kp.secret_key) == kp.public_key)


def sign(message: bytes, secret_key: bytes) -> bytes:
    """Detached 64-byte Ed25519 signature of ``message``."""
    signed: bytes = _sodium.crypto_sign(bytes(message), secret_key)
    return signed[:64]


def verify(message: bytes, signature: bytes, public_key: bytes) -> bool:
    """Whether ``signature`` is a valid signature of ``message`` by ``public_key``."""
    if len(signature) != 64 or len(public_key) != 32:
        return False
    try:
        _sodium.crypto_sign_open(bytes(signature) + bytes(message), bytes(public_key))
    except (BadSignatureError, ValueError):
        return False
    return True


def hash(data: bytes | Iterable[bytes]) -> bytes:
    """BLAKE2b-256 of ``data``, or of the concatenation of a list of buffers."""
    h = _blake2b(digest_size=32)
    if isinstance(data, (bytes, bytearray, memoryview)):
        h.update(data)
    else:
        for part in data:
            h.update(part)
    return h.digest()


def data(block: bytes) -> bytes:
    """Leaf hash of a block: ``H(0x00 || u64le(len) || block)``."""
    h = _blake2b(_LEAF_TYPE, digest_size=32)
    h.update(_U64.pack(len(block)))
    h.update(block)
    return h.digest()


def parent(a: NodeLike, b: NodeLike) -> bytes:
    """Hash of the parent of two sibling nodes (ordered by index)."""
    if a.index > b.index:
        a, b = b, a
    h = _blake2b(_PARENT_TYPE, digest_size=32)
    h.update(_U64.pack(a.size + b.size))
    h.update(a.hash)
    h.update(b.hash)
    return h.digest()


def tree(roots: Sequence[NodeLike]) -> bytes:
    """The tree hash over the full roots of a tree, left to right."""
    h = _blake2b(_ROOT_TYPE, digest_size=32)
    for r in roots:
        h.update(r.hash)
        h.update(_U64.pack(r.index))
        h.update(_U64.pack(r.size))
    return h.digest()


def discovery_key(public_key: bytes) -> bytes:
    """The key peers use to find a core without learning it: ``H_key("hypercore")``."""
    if len(public_key) != 32:
        raise ValueError("Must pass a 32 byte buffer")
    return _blake2b(_HYPERCORE, key=bytes(public_key), digest_size=32).digest()


def namespace(name: str | bytes, count: int | Sequence[int]) -> list[bytes]:
    """32-byte namespace hashes ``H(H(name) || id)`` for ids ``range(count)`` or a list."""
    ids = range(count) if isinstance(count, int) else count
    base = _blake2b(name.encode() if isinstance(name, str) else name, digest_size=32).digest()
    return [_blake2b(base + bytes((i,)), digest_size=32).digest() for i in ids]


def random_bytes(n: int) -> bytes:
    """``n`` cryptographically secure random bytes."""
    return os.urandom(n)


# --- v11 capabilities and signing -----------------------------------------------------------

TREE, REPLICATE_INITIATOR, REPLICATE_RESPONDER, MANIFEST, DEFAULT_NAMESPACE, DEFAULT_ENCRYPTION = (
    namespace("hypercore", 6)
)


def replicate_capability(is_initiator: bool, key: bytes, handshake_hash: bytes) -> bytes:
    """The replication capability proving knowledge of ``key`` on one secret-stream session."""
    ns = REPLICATE_INITIATOR if is_initiator else REPLICATE_RESPONDER
    return _blake2b(ns + bytes(key), key=bytes(handshake_hash), digest_size=32).digest()


def tree_signable(manifest_hash: bytes, tree_hash: bytes, length: int, fork: int) -> bytes:
    """The 112 bytes a v1+ manifest signer signs for a tree state."""
    return b"".join((TREE, manifest_hash, tree_hash, _U64.pack(length), _U64.pack(fork)))


def tree_signable_compat(hash: bytes, length: int, fork: int, no_header: bool = False) -> bytes:
    """The signable of compat cores (80 bytes; 48 without the TREE header)."""
    tail = bytes(hash) + c.encode(c.uint64, length) + c.encode(c.uint64, fork)
    return tail if no_header else TREE + tail


def default_signer_manifest(public_key: bytes) -> Manifest:
    """The v1 manifest of a core signed by one Ed25519 key in the default namespace."""
    return Manifest(
        version=1,
        quorum=1,
        signers=(Signer(namespace=DEFAULT_NAMESPACE, public_key=bytes(public_key)),),
    )


def manifest_hash(manifest: Manifest) -> bytes:
    """``H(MANIFEST || encode(manifest))``: the key of a non-compat core."""
    return _blake2b(MANIFEST + encode_manifest(manifest), digest_size=32).digest()


def core_key(manifest: Manifest | bytes, *, compat: bool = False) -> bytes:
    """The core key for a manifest, an encoded manifest or a 32-byte public key.

    Same as JS ``Hypercore.key``: v11 cores are keyed by their manifest hash, compat cores
    by their signer's public key.
    """
    if not isinstance(manifest, Manifest):
        if len(manifest) == 32:
            manifest = default_signer_manifest(manifest)
        else:
            manifest = decode_manifest(manifest)
    if compat:
        return manifest.signers[0].public_key
    return manifest_hash(manifest)
