"""Sans-IO boxes for secret-stream's unordered messages (``send``/``trySend`` over UDX in JS).

Each side seals datagrams with ``H_hh(NS_own_role || NS_SEND)`` and opens the peer's with
``H_hh(NS_peer_role || NS_SEND)``, where ``hh`` is the handshake hash. A datagram is
``counter(8) || crypto_secretbox_easy(message, counter || 16 zero bytes, key)``; the counter
starts at a random value and is incremented (little endian, wrapping) before every send.
"""

from __future__ import annotations

import hashlib
import os

from nacl import bindings as _sodium
from nacl.exceptions import CryptoError

from hypercore.crypto import namespace

__all__ = ["NS_INITIATOR", "NS_RESPONDER", "NS_SEND", "UnorderedBoxes"]

NS_INITIATOR, NS_RESPONDER, NS_SEND = namespace("hyperswarm/secret-stream", 3)

_MACBYTES = 16
_PAD = bytes(16)


class UnorderedBoxes:
    """Seal and open unordered datagrams of one side of an established secret stream."""

    __slots__ = ("_counter", "_initial", "_open_key", "_seal_key")

    def __init__(
        self, handshake_hash: bytes, is_initiator: bool, *, initial_counter: bytes | None = None
    ) -> None:
        if len(handshake_hash) != 64:
            raise ValueError("handshake hash must be 64 bytes")
        ours, theirs = (
            (NS_INITIATOR, NS_RESPONDER) if is_initiator else (NS_RESPONDER, NS_INITIATOR)
        )
        self._seal_key = hashlib.blake2b(
            ours + NS_SEND, key=handshake_hash, digest_size=32
        ).digest()
        self._open_key = hashlib.blake2b(
            theirs + NS_SEND, key=handshake_hash, digest_size=32
        ).digest()
        initial = os.urandom(8) if initial_counter is None else bytes(initial_counter)
        if len(initial) != 8:
            raise ValueError("initial counter must be 8 bytes")
        self._initial = int.from_bytes(initial, "little")
        self._counter = self._initial

    def seal(self, message: bytes | bytearray | memoryview) -> bytes:
        """The datagram carrying ``message``; RuntimeError once all 2^64 nonces are used."""
        counter = (self._counter + 1) & 0xFFFFFFFFFFFFFFFF
        if counter == self._initial:
            raise RuntimeError("udp send nonce exhausted")
        self._counter = counter
        nonce = counter.to_bytes(8, "little")
        box: bytes = _sodium.crypto_secretbox_easy(bytes(message), nonce + _PAD, self._seal_key)
        return nonce + box

    def open(self, datagram: bytes | bytearray | memoryview) -> bytes | None:
        """The message in a peer's datagram, or ``None`` if it is invalid (JS drops those)."""
        data = bytes(datagram)
        if len(data) < 8 + _MACBYTES:
            return None
        try:
            out: bytes = _sodium.crypto_secretbox_open_easy(
                data[8:], data[:8] + _PAD, self._open_key
            )
        except CryptoError:
            return None
        return out
