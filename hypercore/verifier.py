"""Signing and verifying tree heads as a core's manifest prescribes (JS ``lib/verifier.js``).

A signature covers ``(tree hash, length, fork)``. Version 1+ manifests sign the 112-byte
:func:`~hypercore.crypto.tree_signable` bound to the manifest hash and wrap the signatures in a
multisig container, even for one signer; compat cores (key = public key) sign the 80-byte
compat signable and store the raw 64-byte signature. A prologue fixes the tree up to its
length, which then needs no signature.
"""

from __future__ import annotations

from dataclasses import dataclass

from protomux import encoding as c

from . import crypto
from .crypto import KeyPair, TreeNode
from .manifest import Manifest
from .wire import NODES

__all__ = ["MULTISIG", "MultiSignature", "SignatureInput", "Verifier"]


@dataclass(frozen=True, slots=True)
class SignatureInput:
    signer: int
    signature: bytes
    patch: int = 0


@dataclass(frozen=True, slots=True)
class MultiSignature:
    """The v1 multisig container: one input per signature, and patch nodes."""

    proofs: tuple[SignatureInput, ...]
    patch: tuple[TreeNode, ...] = ()


class _Input(c.Codec[SignatureInput]):
    def preencode(self, state: c.State, value: SignatureInput) -> None:
        c.uint.preencode(state, value.signer)
        state.end += 64
        c.uint.preencode(state, value.patch)

    def encode(self, state: c.State, value: SignatureInput) -> None:
        c.uint.encode(state, value.signer)
        c.fixed64.encode(state, value.signature)
        c.uint.encode(state, value.patch)

    def decode(self, state: c.State) -> SignatureInput:
        signer = c.uint.decode(state)
        signature = c.fixed64.decode(state)
        return SignatureInput(signer, signature, c.uint.decode(state))


_inputs = c.array(_Input())


class _MultiSignature(c.Codec[MultiSignature]):
    def preencode(self, state: c.State, value: MultiSignature) -> None:
        _inputs.preencode(state, list(value.proofs))
        NODES.preencode(state, list(value.patch))

    def encode(self, state: c.State, value: MultiSignature) -> None:
        _inputs.encode(state, list(value.proofs))
        NODES.encode(state, list(value.patch))

    def decode(self, state: c.State) -> MultiSignature:
        proofs = tuple(_inputs.decode(state))
        return MultiSignature(proofs, tuple(NODES.decode(state)))


MULTISIG: c.Codec[MultiSignature] = _MultiSignature()
"""The multisig container codec (JS ``messages.multiSignature``)."""


class Verifier:
    """Signs and verifies tree heads for one core (its key and manifest)."""

    def __init__(self, key: bytes, manifest: Manifest, *, legacy: bool = False) -> None:
        self.key = key
        self.manifest = manifest
        self.compat = len(manifest.signers) == 1 and manifest.signers[0].public_key == key
        self.legacy = legacy
        self.version = 0 if self.compat else manifest.version
        self.quorum = 1 if self.compat else manifest.quorum
        self.prologue = None if self.compat else manifest.prologue

    def _signable(self, index: int, tree_hash: bytes, length: int, fork: int) -> bytes:
        if self.compat:
            return crypto.tree_signable_compat(tree_hash, length, fork, self.legacy)
        ctx = self.manifest.signers[index].namespace if self.version == 0 else self.key
        return crypto.tree_signable(ctx, tree_hash, length, fork)

    def sign(self, tree_hash: bytes, length: int, fork: int, key_pair: KeyPair) -> bytes:
        """The stored/sent signature of a tree head by ``key_pair`` (one of the signers)."""
        for i, signer in enumerate(self.manifest.signers):
            if signer.public_key == key_pair.public_key:
                sig = crypto.sign(self._signable(i, tree_hash, length, fork), key_pair.secret_key)
                if len(self.manifest.signers) != 1 or self.version == 0:
                    return sig
                # The multisig container with one input (signer 0, no patch) and no nodes.
                return b"\x01\x00" + sig + b"\x00\x00"
        raise ValueError("the key pair is not a signer of this core")

    def verify(self, tree_hash: bytes, length: int, fork: int, signature: bytes | None) -> bool:
        """Whether ``signature`` is valid for this tree head."""
        if self.prologue is not None and length <= self.prologue.length:
            return length == self.prologue.length and tree_hash == self.prologue.hash
        if not signature:
            return False
        if self.version == 0 and (
            self.compat or (not self.manifest.allow_patch and len(self.manifest.signers) == 1)
        ):
            signable = self._signable(0, tree_hash, length, fork)
            return crypto.verify(signable, signature, self.manifest.signers[0].public_key)
        if self.version == 0:
            return False  # v0 multisig containers are not supported
        try:
            container = c.decode(MULTISIG, signature)
        except c.DecodeError:
            return False
        if self.quorum == 0 or len(container.proofs) < self.quorum:
            return False
        tried: set[int] = set()
        for proof in container.proofs[: self.quorum]:
            if proof.patch:
                return False  # signatures over a patched (longer) tree are not supported yet
            if proof.signer >= len(self.manifest.signers) or proof.signer in tried:
                return False
            tried.add(proof.signer)
            signable = self._signable(proof.signer, tree_hash, length, fork)
            public_key = self.manifest.signers[proof.signer].public_key
            if not crypto.verify(signable, proof.signature, public_key):
                return False
        return True
