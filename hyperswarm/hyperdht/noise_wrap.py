"""The Noise IK handshake of a HyperDHT connection (JS hyperdht ``lib/noise-wrap.js``).

A client that knows a server's public key sends the first IK message (its ephemeral key, its
static key encrypted, and a :class:`~hyperswarm.hyperdht.messages.NoisePayload`) through the
DHT; the server answers with the second. Both payloads are encoded with
:data:`~hyperswarm.hyperdht.messages.NOISE_PAYLOAD`; the prologue is ``NS_PEER_HANDSHAKE``.
Once both messages are through, :meth:`NoiseWrap.final` gives the keys the connection's
secret-stream starts from, and the secret that seals holepunch payloads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from hypercore.crypto import KeyPair

from ..secret_stream.errors import HandshakeError
from ..secret_stream.noise import NoiseState
from . import messages as m
from .constants import NS_PEER_HANDSHAKE, NS_PEER_HOLEPUNCH
from .errors import HandshakeInvalidError, HandshakeUnfinishedError, HyperDHTDecodeError

__all__ = ["ConnectionKeys", "NoiseWrap"]


@dataclass(frozen=True, slots=True)
class ConnectionKeys:
    """What a finished connection handshake leaves: the secret-stream's keys and hash, both
    public keys, and the key of holepunch payloads."""

    is_initiator: bool
    public_key: bytes
    remote_public_key: bytes
    hash: bytes
    tx: bytes
    rx: bytes
    holepunch_secret: bytes


class NoiseWrap:
    """One side of a connection handshake. The client (``remote_public_key`` given) sends
    first; the server (no ``remote_public_key``) receives first and learns the client's key."""

    __slots__ = ("_state", "is_initiator", "key_pair", "remote_public_key")

    def __init__(
        self,
        key_pair: KeyPair,
        remote_public_key: bytes | None = None,
        *,
        ephemeral_key_pair: KeyPair | None = None,
    ) -> None:
        self.is_initiator = remote_public_key is not None
        self.key_pair = key_pair
        self.remote_public_key = remote_public_key
        self._state = NoiseState(
            "IK",
            self.is_initiator,
            key_pair,
            prologue=NS_PEER_HANDSHAKE,
            remote_static=remote_public_key,
            ephemeral_key_pair=ephemeral_key_pair,
        )

    @property
    def complete(self) -> bool:
        return self._state.complete

    def send(self, payload: m.NoisePayload) -> bytes:
        """The next handshake message, carrying ``payload``."""
        return self._state.send(m.NOISE_PAYLOAD.encode(payload))

    def recv(self, message: bytes) -> m.NoisePayload:
        """The payload of the peer's handshake message. :class:`HandshakeInvalidError` when the
        message does not decrypt or its payload does not decode (the wrap is then spent)."""
        try:
            plain = self._state.recv(message)
            payload = m.NOISE_PAYLOAD.decode(plain)
        except (HandshakeError, HyperDHTDecodeError, RuntimeError) as e:
            raise HandshakeInvalidError(f"bad handshake message: {e}") from e
        if self._state.remote_static is not None:
            self.remote_public_key = self._state.remote_static
        return payload

    def final(self) -> ConnectionKeys:
        """The keys of the finished handshake."""
        s = self._state
        if not s.complete or s.handshake_hash is None or s.tx is None or s.rx is None:
            raise HandshakeUnfinishedError("the handshake is not finished")
        assert self.remote_public_key is not None
        secret = hashlib.blake2b(NS_PEER_HOLEPUNCH, digest_size=32, key=s.handshake_hash).digest()
        return ConnectionKeys(
            self.is_initiator,
            self.key_pair.public_key,
            self.remote_public_key,
            s.handshake_hash,
            s.tx,
            s.rx,
            secret,
        )
