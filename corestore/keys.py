"""Key derivation of JS corestore 7: namespaces and the key pairs of named cores.

* The root namespace is 32 zero bytes; ``namespace(name)`` derives
  ``ns' = H(ns || utf8(name))`` (BLAKE2b-256, unkeyed), so chains compose.
* A named core's key pair is the Ed25519 key pair of the seed
  ``H_{primaryKey}(NS || ns || utf8(name))`` (BLAKE2b-256 keyed with the primary key), where
  ``NS = crypto.namespace('corestore', 1)[0]``. Its manifest is the default single-signer
  manifest and its key the manifest hash (never compat).
"""

from __future__ import annotations

import hashlib

from hypercore import crypto
from hypercore.crypto import KeyPair

__all__ = [
    "DEFAULT_NAMESPACE",
    "NS",
    "create_key_pair",
    "derive_seed",
    "generate_namespace",
    "named_core_key",
]

NS: bytes = crypto.namespace("corestore", 1)[0]
"""The corestore namespace constant (``ac5c4cbf...def29``)."""

DEFAULT_NAMESPACE = bytes(32)
"""The root namespace: 32 zero bytes."""


def _utf8(name: str | bytes) -> bytes:
    if isinstance(name, str):
        return name.encode("utf-8")
    if isinstance(name, (bytes, bytearray, memoryview)):
        return bytes(name)
    raise TypeError(f"a name is a str or bytes, not {type(name).__name__}")


def _check32(value: bytes, what: str) -> bytes:
    if len(value) != 32:
        raise ValueError(f"{what} must be 32 bytes, not {len(value)}")
    return bytes(value)


def generate_namespace(namespace: bytes, name: str | bytes) -> bytes:
    """The namespace ``name`` below ``namespace``: ``H(namespace || utf8(name))``."""
    h = hashlib.blake2b(_check32(namespace, "a namespace"), digest_size=32)
    h.update(_utf8(name))
    return h.digest()


def derive_seed(primary_key: bytes, namespace: bytes, name: str | bytes) -> bytes:
    """The key pair seed of core ``name`` in ``namespace``: ``H_pk(NS || ns || utf8(name))``."""
    h = hashlib.blake2b(NS, key=_check32(primary_key, "the primary key"), digest_size=32)
    h.update(_check32(namespace, "a namespace"))
    h.update(_utf8(name))
    return h.digest()


def create_key_pair(primary_key: bytes, namespace: bytes, name: str | bytes) -> KeyPair:
    """The key pair of core ``name`` in ``namespace`` (JS corestore's ``createKeyPair``)."""
    return crypto.key_pair(derive_seed(primary_key, namespace, name))


def named_core_key(primary_key: bytes, namespace: bytes, name: str | bytes) -> bytes:
    """The core key of a named core: the hash of its default single-signer manifest."""
    kp = create_key_pair(primary_key, namespace, name)
    return crypto.core_key(crypto.default_signer_manifest(kp.public_key))
