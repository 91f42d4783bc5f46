"""Sans-IO Noise handshakes over Ed25519, as JS ``noise-handshake`` with ``noise-curve-ed``.

Suite ``Noise_<pattern>_Ed25519_ChaChaPoly_BLAKE2b``: hash BLAKE2b-512 (HASHLEN 64), HKDF
(RFC 5869) over HMAC-BLAKE2b-512, cipher ChaCha20-Poly1305 IETF with the 12-byte nonce
``4 zero bytes || u64le(counter)``, and Diffie-Hellman on the Edwards curve: the local
scalar is the clamped first half of ``SHA-512(seed)`` of an Ed25519 secret key and the shared
secret is ``crypto_scalarmult_ed25519_noclamp(scalar, remote_public_key)`` (a compressed
point). Static and ephemeral keys are ordinary Ed25519 key pairs.

Patterns ``XX`` (secret-stream) and ``IK`` (hyperdht) are supported. Nothing here touches a
socket: :class:`NoiseState` turns payloads into handshake messages and back.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import struct
from typing import Final

from nacl import bindings as _sodium
from nacl.exceptions import CryptoError

from hypercore.crypto import KeyPair

from .errors import HandshakeError

__all__ = [
    "DHLEN",
    "HASHLEN",
    "MAX_MESSAGE_LENGTH",
    "PATTERNS",
    "CipherState",
    "NoiseState",
    "SymmetricState",
    "dh",
    "ed25519_scalar",
    "generate_key_pair",
    "hkdf",
    "hmac_blake2b",
]

HASHLEN: Final = 64
DHLEN: Final = 32
MACLEN: Final = 16
MAX_MESSAGE_LENGTH: Final = 65535
"""Largest Noise message (and largest ciphertext inside one)."""

_NONCE = struct.Struct("<4xQ")
_MAX_NONCE = 2**64 - 1

# Tokens of the handshake patterns; a pattern is the pre-message keys and the message list.
_E, _S, _EE, _ES, _SE, _SS = "e", "s", "ee", "es", "se", "ss"

PATTERNS: Final[dict[str, tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]]] = {
    # pre-messages: "rs" = the responder's static key is known to the initiator
    "XX": ((), ((_E,), (_E, _EE, _S, _ES), (_S, _SE))),
    "IK": (("rs",), ((_E, _ES, _S, _SS), (_E, _EE, _SE))),
    "NN": ((), ((_E,), (_E, _EE))),
}


def _blake2b512(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=HASHLEN).digest()


_new_blake2b512 = functools.partial(hashlib.blake2b, digest_size=HASHLEN)


def hmac_blake2b(key: bytes, data: bytes) -> bytes:
    """HMAC with BLAKE2b-512 (block size 128)."""
    return hmac.new(key, data, _new_blake2b512).digest()


def hkdf(chaining_key: bytes, input_key_material: bytes, count: int = 2) -> list[bytes]:
    """HKDF with empty info: ``count`` outputs of 64 bytes each."""
    prk = hmac_blake2b(chaining_key, input_key_material)
    out: list[bytes] = []
    prev = b""
    for i in range(1, count + 1):
        prev = hmac_blake2b(prk, prev + bytes((i,)))
        out.append(prev)
    return out


def generate_key_pair(seed: bytes | None = None) -> KeyPair:
    """A fresh (or seeded) Ed25519 key pair, usable as a Noise static or ephemeral key."""
    if seed is None:
        pk, sk = _sodium.crypto_sign_keypair()
    else:
        pk, sk = _sodium.crypto_sign_seed_keypair(bytes(seed))
    return KeyPair(pk, sk)


def ed25519_scalar(secret_key: bytes) -> bytes:
    """The clamped Ed25519 scalar of a 64-byte libsodium secret key (``seed || pk``)."""
    if len(secret_key) != 64:
        raise ValueError("an Ed25519 secret key is 64 bytes")
    h = bytearray(hashlib.sha512(secret_key[:32]).digest()[:32])
    h[0] &= 248
    h[31] &= 127
    h[31] |= 64
    return bytes(h)


def dh(scalar: bytes, remote_public_key: bytes) -> bytes:
    """Ed25519 Diffie-Hellman; rejects small-order and malformed points."""
    if len(remote_public_key) != DHLEN:
        raise HandshakeError("remote public key must be 32 bytes")
    try:
        out: bytes = _sodium.crypto_scalarmult_ed25519_noclamp(scalar, bytes(remote_public_key))
    except CryptoError:
        raise HandshakeError("invalid remote public key") from None
    return out


class CipherState:
    """A ChaCha20-Poly1305 key and nonce; passes data through unchanged before a key exists."""

    __slots__ = ("key", "nonce")

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key
        self.nonce = 0

    def initialise_key(self, key: bytes) -> None:
        self.key = key
        self.nonce = 0

    @property
    def has_key(self) -> bool:
        return self.key is not None

    def _next_nonce(self) -> bytes:
        if self.nonce >= _MAX_NONCE:
            raise HandshakeError("nonce exhausted")
        return _NONCE.pack(self.nonce)

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        if self.key is None:
            return bytes(plaintext)
        if len(plaintext) + MACLEN > MAX_MESSAGE_LENGTH:
            raise ValueError("ciphertext would exceed the Noise message limit of 65535 bytes")
        out: bytes = _sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
            bytes(plaintext), ad, self._next_nonce(), self.key
        )
        self.nonce += 1
        return out

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        if self.key is None:
            return bytes(ciphertext)
        if len(ciphertext) > MAX_MESSAGE_LENGTH:
            raise HandshakeError("ciphertext exceeds the Noise message limit of 65535 bytes")
        if len(ciphertext) < MACLEN:
            raise HandshakeError("ciphertext is shorter than its MAC")
        try:
            out: bytes = _sodium.crypto_aead_chacha20poly1305_ietf_decrypt(
                bytes(ciphertext), ad, self._next_nonce(), self.key
            )
        except CryptoError:
            raise HandshakeError("handshake message did not authenticate") from None
        self.nonce += 1
        return out


class SymmetricState:
    """Noise SymmetricState: chaining key ``ck``, handshake hash ``h`` and a cipher."""

    __slots__ = ("cipher", "ck", "h")

    def __init__(self, protocol_name: bytes) -> None:
        if len(protocol_name) <= HASHLEN:
            self.h = protocol_name.ljust(HASHLEN, b"\x00")
        else:
            self.h = _blake2b512(protocol_name)
        self.ck = self.h
        self.cipher = CipherState()

    def mix_hash(self, data: bytes) -> None:
        self.h = _blake2b512(self.h + data)

    def mix_key(self, input_key_material: bytes) -> None:
        self.ck, temp_k = hkdf(self.ck, input_key_material)
        self.cipher.initialise_key(temp_k[:32])

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self.cipher.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[bytes, bytes]:
        k1, k2 = hkdf(self.ck, b"")
        return k1[:32], k2[:32]


class NoiseState:
    """One side of a Noise handshake (sans-IO).

    Call :meth:`send` when :attr:`my_turn` is true and :meth:`recv` with each message from the
    peer. When :attr:`complete` is true, :attr:`tx`, :attr:`rx` (32-byte transport keys),
    :attr:`handshake_hash` (64 bytes) and :attr:`remote_static` are set. A malformed or
    unauthentic message raises :class:`HandshakeError`; the state must then be discarded.

    ``ephemeral_key_pair`` pins the ephemeral key (tests and golden vectors only).
    """

    __slots__ = (
        "_e",
        "_local_scalars",
        "_messages",
        "_re",
        "_ss",
        "complete",
        "handshake_hash",
        "is_initiator",
        "pattern",
        "remote_static",
        "rx",
        "static_key_pair",
        "tx",
    )

    def __init__(
        self,
        pattern: str,
        is_initiator: bool,
        static_key_pair: KeyPair,
        *,
        prologue: bytes = b"",
        remote_static: bytes | None = None,
        ephemeral_key_pair: KeyPair | None = None,
    ) -> None:
        if pattern not in PATTERNS:
            raise ValueError(f"unsupported Noise pattern {pattern!r}")
        if len(static_key_pair.public_key) != 32 or len(static_key_pair.secret_key) != 64:
            raise ValueError("static key pair must be a 32-byte public and 64-byte secret key")
        pre, messages = PATTERNS[pattern]
        self.pattern = pattern
        self.is_initiator = is_initiator
        self.static_key_pair = static_key_pair
        self.remote_static: bytes | None = None
        self.complete = False
        self.tx: bytes | None = None
        self.rx: bytes | None = None
        self.handshake_hash: bytes | None = None
        self._messages = list(messages)
        self._e = ephemeral_key_pair
        self._re: bytes | None = None
        self._local_scalars: dict[bytes, bytes] = {}
        protocol = f"Noise_{pattern}_Ed25519_ChaChaPoly_BLAKE2b".encode()
        self._ss = SymmetricState(protocol)
        self._ss.mix_hash(prologue)
        for token in pre:
            assert token == "rs"
            if is_initiator:
                if remote_static is None or len(remote_static) != 32:
                    raise ValueError(f"pattern {pattern} needs the responder's public key")
                self.remote_static = bytes(remote_static)
                self._ss.mix_hash(self.remote_static)
            else:
                self._ss.mix_hash(static_key_pair.public_key)

    @property
    def my_turn(self) -> bool:
        """Whether the next handshake message is ours to send."""
        if self.complete:
            return False
        sent_by_initiator = len(PATTERNS[self.pattern][1]) - len(self._messages)
        return (sent_by_initiator % 2 == 0) == self.is_initiator

    def _scalar(self, key_pair: KeyPair) -> bytes:
        scalar = self._local_scalars.get(key_pair.secret_key)
        if scalar is None:
            scalar = ed25519_scalar(key_pair.secret_key)
            self._local_scalars[key_pair.secret_key] = scalar
        return scalar

    def _mix_dh(self, token: str) -> None:
        # Which of our keys (static or ephemeral) meets which of theirs.
        if token == _EE:
            local_static, remote_static = False, False
        elif token == _ES:
            local_static, remote_static = not self.is_initiator, self.is_initiator
        elif token == _SE:
            local_static, remote_static = self.is_initiator, not self.is_initiator
        else:
            local_static, remote_static = True, True
        local = self.static_key_pair if local_static else self._e
        remote = self.remote_static if remote_static else self._re
        if local is None or remote is None:
            raise HandshakeError("handshake key missing")
        self._ss.mix_key(dh(self._scalar(local), remote))

    def send(self, payload: bytes = b"") -> bytes:
        """The next handshake message, carrying ``payload``."""
        if not self.my_turn:
            raise RuntimeError("not our turn to send a handshake message")
        out = bytearray()
        for token in self._messages.pop(0):
            if token == _E:
                if self._e is None:
                    self._e = generate_key_pair()
                self._ss.mix_hash(self._e.public_key)
                out += self._e.public_key
            elif token == _S:
                out += self._ss.encrypt_and_hash(self.static_key_pair.public_key)
            else:
                self._mix_dh(token)
        out += self._ss.encrypt_and_hash(bytes(payload))
        if not self._messages:
            self._finish()
        return bytes(out)

    def recv(self, message: bytes | bytearray | memoryview) -> bytes:
        """Process the peer's next handshake message and return its payload."""
        if self.complete or self.my_turn:
            raise HandshakeError("unexpected handshake message")
        msg = bytes(message)
        if len(msg) > MAX_MESSAGE_LENGTH:
            raise HandshakeError("handshake message exceeds 65535 bytes")
        offset = 0
        for token in self._messages.pop(0):
            if token == _E:
                if len(msg) - offset < DHLEN:
                    raise HandshakeError("handshake message too short")
                self._re = msg[offset : offset + DHLEN]
                offset += DHLEN
                self._ss.mix_hash(self._re)
            elif token == _S:
                size = DHLEN + MACLEN if self._ss.cipher.has_key else DHLEN
                if len(msg) - offset < size:
                    raise HandshakeError("handshake message too short")
                self.remote_static = self._ss.decrypt_and_hash(msg[offset : offset + size])
                offset += size
            else:
                self._mix_dh(token)
        payload = self._ss.decrypt_and_hash(msg[offset:])
        if not self._messages:
            self._finish()
        return payload

    def _finish(self) -> None:
        k1, k2 = self._ss.split()
        self.tx, self.rx = (k1, k2) if self.is_initiator else (k2, k1)
        self.handshake_hash = self._ss.h
        self.complete = True
        self._e = None
        self._re = None
        self._local_scalars.clear()
