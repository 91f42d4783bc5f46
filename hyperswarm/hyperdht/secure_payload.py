"""The encrypted payload of PEER_HOLEPUNCH messages (JS hyperdht ``lib/secure-payload.js``).

Both sides of a connection attempt derive the same ``holepunch_secret`` from the Noise
handshake; the holepunch state each sends the other (:class:`~.messages.HolepunchPayload`)
travels through DHT relays as ``nonce(24) || secretbox(holepunch_secret)``, so the relays
can neither read nor forge it. A side also proves the address it saw the other at: its
*token* for a host is a keyed hash of the host under a secret of its own, which only a peer
that received it at that host can echo back.
"""

from __future__ import annotations

import hashlib
import os

from nacl import bindings as _sodium
from nacl.exceptions import CryptoError

from protomux.encoding import Address

from . import messages as m
from .errors import HyperDHTDecodeError

__all__ = ["SecurePayload"]

_NONCE = 24
_MAC = 16


class SecurePayload:
    """Seals and opens holepunch payloads under one connection's ``holepunch_secret``."""

    __slots__ = ("_local_secret", "_shared_secret")

    def __init__(self, holepunch_secret: bytes) -> None:
        if len(holepunch_secret) != 32:
            raise ValueError("the holepunch secret is 32 bytes")
        self._shared_secret = bytes(holepunch_secret)
        self._local_secret = os.urandom(32)

    def encrypt(self, payload: m.HolepunchPayload) -> bytes:
        nonce = os.urandom(_NONCE)
        body = m.HOLEPUNCH_PAYLOAD.encode(payload)
        return nonce + _sodium.crypto_secretbox(body, nonce, self._shared_secret)

    def decrypt(self, data: bytes) -> m.HolepunchPayload | None:
        """The payload, or None if ``data`` is not one sealed under this secret (too short,
        forged, or not a payload)."""
        if len(data) <= _NONCE + _MAC:
            return None
        try:
            body = _sodium.crypto_secretbox_open(
                bytes(data[_NONCE:]), bytes(data[:_NONCE]), self._shared_secret
            )
        except CryptoError:
            return None
        try:
            return m.HOLEPUNCH_PAYLOAD.decode(body)
        except HyperDHTDecodeError:
            return None

    def token(self, address: Address) -> bytes:
        """Our token for ``address``'s host (32 bytes)."""
        return hashlib.blake2b(
            address.host.encode(), digest_size=32, key=self._local_secret
        ).digest()
