"""Hypercore manifests: who may sign a core, and their wire encoding.

A v11 core's key is the hash of its manifest (see :func:`hypercore.crypto.manifest_hash`).
The encoding is the ``manifest`` codec of JS ``hypercore/lib/messages.js``: version 0 is the
legacy layout, versions 1 to 3 share one flagged layout.
"""

from __future__ import annotations

from dataclasses import dataclass

from protomux import encoding as c

__all__ = [
    "MANIFEST",
    "STORED_MANIFEST",
    "Manifest",
    "Prologue",
    "Signer",
    "decode_manifest",
    "encode_manifest",
]

_FLAG_PATCH = 1
_FLAG_PROLOGUE = 2
_FLAG_LINKED = 4
_FLAG_USER_DATA = 8


@dataclass(frozen=True, slots=True)
class Signer:
    """One allowed signer: an Ed25519 key and the namespace its signatures are bound to."""

    namespace: bytes
    public_key: bytes
    signature: str = "ed25519"


@dataclass(frozen=True, slots=True)
class Prologue:
    """A fixed tree (hash and length) every state of the core must start with."""

    hash: bytes
    length: int


@dataclass(frozen=True, slots=True)
class Manifest:
    version: int = 1
    quorum: int = 1
    signers: tuple[Signer, ...] = ()
    allow_patch: bool = False
    prologue: Prologue | None = None
    linked: tuple[bytes, ...] | None = None
    user_data: bytes | None = None
    hash: str = "blake2b"


class _Hash(c.Codec[str]):
    def preencode(self, state: c.State, value: str) -> None:
        state.end += 1

    def encode(self, state: c.State, value: str) -> None:
        if value != "blake2b":
            raise c.EncodeError(f"unknown hash: {value}")
        c.uint.encode(state, 0)

    def decode(self, state: c.State) -> str:
        n = c.uint.decode(state)
        if n != 0:
            raise c.DecodeError(f"unknown hash id: {n}")
        return "blake2b"


class _SignatureType(c.Codec[str]):
    def preencode(self, state: c.State, value: str) -> None:
        state.end += 1

    def encode(self, state: c.State, value: str) -> None:
        if value != "ed25519":
            raise c.EncodeError(f"unknown signature: {value}")
        c.uint.encode(state, 0)

    def decode(self, state: c.State) -> str:
        n = c.uint.decode(state)
        if n != 0:
            raise c.DecodeError(f"unknown signature id: {n}")
        return "ed25519"


_hash = _Hash()
_signature_type = _SignatureType()


class _Signer(c.Codec[Signer]):
    def preencode(self, state: c.State, value: Signer) -> None:
        state.end += 65

    def encode(self, state: c.State, value: Signer) -> None:
        _signature_type.encode(state, value.signature)
        c.fixed32.encode(state, value.namespace)
        c.fixed32.encode(state, value.public_key)

    def decode(self, state: c.State) -> Signer:
        sig = _signature_type.decode(state)
        ns = c.fixed32.decode(state)
        return Signer(namespace=ns, public_key=c.fixed32.decode(state), signature=sig)


_signer = _Signer()
_signers = c.array(_signer)
_fixed32_array = c.array(c.fixed32)


def _check_keys(value: Manifest) -> None:
    for s in value.signers:
        if len(s.namespace) != 32 or len(s.public_key) != 32:
            raise c.EncodeError("signer namespace and public key must be 32 bytes")


class _ManifestV0:
    """The legacy (version 0) layout: a type byte picks prologue-only, one signer or many."""

    @staticmethod
    def _single(m: Manifest) -> bool:
        return m.quorum == 1 and len(m.signers) == 1 and not m.allow_patch

    def preencode(self, state: c.State, m: Manifest) -> None:
        state.end += 2  # hash, type
        if m.prologue is not None and not m.signers:
            state.end += 32
        elif self._single(m):
            _signer.preencode(state, m.signers[0])
        else:
            state.end += 1  # flags
            c.uint.preencode(state, m.quorum)
            _signers.preencode(state, list(m.signers))

    def encode(self, state: c.State, m: Manifest) -> None:
        _hash.encode(state, m.hash)
        if m.prologue is not None and not m.signers:
            c.uint.encode(state, 0)
            c.fixed32.encode(state, m.prologue.hash)
        elif self._single(m):
            c.uint.encode(state, 1)
            _signer.encode(state, m.signers[0])
        else:
            c.uint.encode(state, 2)
            c.uint.encode(state, 1 if m.allow_patch else 0)
            c.uint.encode(state, m.quorum)
            _signers.encode(state, list(m.signers))

    def decode(self, state: c.State) -> Manifest:
        hash_ = _hash.decode(state)
        kind = c.uint.decode(state)
        if kind == 0:
            prologue = Prologue(hash=c.fixed32.decode(state), length=0)
            return Manifest(version=0, quorum=0, prologue=prologue, hash=hash_)
        if kind == 1:
            signer = _signer.decode(state)
            return Manifest(version=0, quorum=1, signers=(signer,), hash=hash_)
        if kind == 2:
            flags = c.uint.decode(state)
            quorum = c.uint.decode(state)
            signers = tuple(_signers.decode(state))
            return Manifest(
                version=0, quorum=quorum, signers=signers, allow_patch=bool(flags & 1), hash=hash_
            )
        raise c.DecodeError(f"unknown manifest type: {kind}")


_v0 = _ManifestV0()


class _FlaggedManifest(c.Codec[Manifest]):
    """The flagged layout of versions 1-3; hypercore-storage stores every version this way."""

    def preencode(self, state: c.State, m: Manifest) -> None:
        _check_keys(m)
        c.uint.preencode(state, m.version)
        state.end += 2  # flags, hash
        c.uint.preencode(state, m.quorum)
        _signers.preencode(state, list(m.signers))
        if m.prologue is not None:
            state.end += 32
            c.uint.preencode(state, m.prologue.length)
        if m.linked is not None:
            _fixed32_array.preencode(state, list(m.linked))
        if m.user_data is not None:
            c.buffer.preencode(state, m.user_data)

    def encode(self, state: c.State, m: Manifest) -> None:
        c.uint.encode(state, m.version)
        flags = (
            (_FLAG_PATCH if m.allow_patch else 0)
            | (_FLAG_PROLOGUE if m.prologue is not None else 0)
            | (_FLAG_LINKED if m.linked is not None else 0)
            | (_FLAG_USER_DATA if m.user_data is not None else 0)
        )
        c.uint.encode(state, flags)
        _hash.encode(state, m.hash)
        c.uint.encode(state, m.quorum)
        _signers.encode(state, list(m.signers))
        if m.prologue is not None:
            c.fixed32.encode(state, m.prologue.hash)
            c.uint.encode(state, m.prologue.length)
        if m.linked is not None:
            _fixed32_array.encode(state, list(m.linked))
        if m.user_data is not None:
            c.buffer.encode(state, m.user_data)

    def decode(self, state: c.State) -> Manifest:
        version = c.uint.decode(state)
        return self.decode_body(state, version)

    @staticmethod
    def decode_body(state: c.State, version: int) -> Manifest:
        flags = c.uint.decode(state)
        hash_ = _hash.decode(state)
        quorum = c.uint.decode(state)
        signers = tuple(_signers.decode(state))
        prologue = None
        if flags & _FLAG_PROLOGUE:
            ph = c.fixed32.decode(state)
            prologue = Prologue(hash=ph, length=c.uint.decode(state))
        linked = tuple(_fixed32_array.decode(state)) if flags & _FLAG_LINKED else None
        user_data = c.buffer.decode(state) if flags & _FLAG_USER_DATA else None
        return Manifest(
            version=version,
            quorum=quorum,
            signers=signers,
            allow_patch=bool(flags & _FLAG_PATCH),
            prologue=prologue,
            linked=linked,
            user_data=user_data,
            hash=hash_,
        )


_flagged = _FlaggedManifest()


class _ManifestCodec(c.Codec[Manifest]):
    def preencode(self, state: c.State, m: Manifest) -> None:
        if m.version == 0:
            _check_keys(m)
            state.end += 1
            _v0.preencode(state, m)
        else:
            _flagged.preencode(state, m)

    def encode(self, state: c.State, m: Manifest) -> None:
        if m.version == 0:
            c.uint.encode(state, 0)
            _v0.encode(state, m)
        else:
            _flagged.encode(state, m)

    def decode(self, state: c.State) -> Manifest:
        version = c.uint.decode(state)
        if version == 0:
            return _v0.decode(state)
        if version > 3:
            raise c.DecodeError(f"unknown manifest version: {version}")
        return _flagged.decode_body(state, version)


MANIFEST: c.Codec[Manifest] = _ManifestCodec()
"""The manifest codec (JS ``messages.manifest``)."""

STORED_MANIFEST: c.Codec[Manifest] = _flagged
"""A manifest as hypercore-storage stores it: the flagged layout for every version."""


def encode_manifest(manifest: Manifest) -> bytes:
    return c.encode(MANIFEST, manifest)


def decode_manifest(data: bytes | bytearray | memoryview) -> Manifest:
    return c.decode(MANIFEST, data)
