from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hypercore import crypto
from hypercore.crypto import TreeNode
from hypercore.manifest import Manifest, Prologue, Signer, decode_manifest, encode_manifest

SEED = bytes([1]) * 32
NAMESPACES = {
    ("hypercore", 0): "9fac70b50ca14efc4e91c833b204e75b8b5aad8b5881bfc0adb5ef38a3275b9c",
    ("hypercore", 1): "51812a2a359b50369536775df89e18e47740f3db72ac0ae70b29594c194dc316",
    ("hypercore", 2): "0438492d02970cc13528ac0262bca0074e0926260256865accc0bf15bd79127d",
    ("hypercore", 3): "e64b7108eacce47cfc61ac850568f55f8b15b82ec5ed78c4ec597b036e2a1498",
    ("hypercore", 4): "4144eea531e483d54e0c14f4ca68e0644f355343ff6fcb0f005200e12cd747cb",
    ("hypercore", 5): "9aedb6f1dea8487cc1e1698f97eb2f063f6db4c649695622e7b675e2ceafa6e9",
    ("corestore", 0): "ac5c4cbfb1064776404637a280c71fac823281d351ebeced03151743270def29",
    ("hyperswarm/dht", 10): "6b8a2a8623f28c6c02a1e22abe515ce31cafd9af61d4b69970639aa7eb96a8d5",
}


def test_namespace_values() -> None:
    for (name, i), expected in NAMESPACES.items():
        assert crypto.namespace(name, [i])[0].hex() == expected
    constants = [
        crypto.TREE,
        crypto.REPLICATE_INITIATOR,
        crypto.REPLICATE_RESPONDER,
        crypto.MANIFEST,
        crypto.DEFAULT_NAMESPACE,
        crypto.DEFAULT_ENCRYPTION,
    ]
    assert [k.hex() for k in constants] == [NAMESPACES["hypercore", i] for i in range(6)]
    assert crypto.namespace(b"hypercore", 2) == crypto.namespace("hypercore", [0, 1])


def test_key_pair_and_discovery_key() -> None:
    kp = crypto.key_pair(SEED)
    assert kp.public_key.hex().startswith("8a88e3dd") and kp.public_key.hex().endswith("6f5c")
    assert kp.secret_key == SEED + kp.public_key
    assert crypto.validate_key_pair(kp)
    assert crypto.discovery_key(kp.public_key).hex().startswith("c1feb82a")
    assert len(crypto.key_pair().secret_key) == 64
    with pytest.raises(ValueError):
        crypto.discovery_key(b"short")
    with pytest.raises(ValueError):
        crypto.key_pair(b"short")


def test_tree_hashes() -> None:
    leaf0 = TreeNode(0, 5, crypto.data(b"hello"))
    leaf1 = TreeNode(2, 5, crypto.data(b"world"))
    root = TreeNode(1, 10, crypto.parent(leaf1, leaf0))  # order of arguments does not matter
    assert leaf0.hash.hex().startswith("f2391083") and leaf0.hash.hex().endswith("c8f8")
    assert root.hash.hex().startswith("56826d33") and root.hash.hex().endswith("55f9")
    tree_hash = crypto.tree([root])
    assert tree_hash.hex().startswith("28ac717e") and tree_hash.hex().endswith("215b")
    expected_leaf = hashlib.blake2b(b"\x00" + (5).to_bytes(8, "little") + b"hello", digest_size=32)
    assert leaf0.hash == expected_leaf.digest()
    assert crypto.hash([b"ab", b"c"]) == crypto.hash(b"abc")


@given(st.binary(), st.binary(min_size=32, max_size=32))
def test_sign_and_verify(message: bytes, seed: bytes) -> None:
    kp = crypto.key_pair(seed)
    sig = crypto.sign(message, kp.secret_key)
    assert len(sig) == 64
    assert crypto.verify(message, sig, kp.public_key)
    assert not crypto.verify(message + b"x", sig, kp.public_key)
    bad = bytes([sig[0] ^ 1]) + sig[1:]
    assert not crypto.verify(message, bad, kp.public_key)
    assert not crypto.verify(message, sig[:63], kp.public_key)
    assert not crypto.verify(message, sig, kp.public_key[:31])


def test_default_manifest_and_key() -> None:
    kp = crypto.key_pair(SEED)
    manifest = crypto.default_signer_manifest(kp.public_key)
    encoded = encode_manifest(manifest)
    assert len(encoded) == 70
    assert (
        encoded.hex() == "0100000101" + "00" + crypto.DEFAULT_NAMESPACE.hex() + kp.public_key.hex()
    )
    assert decode_manifest(encoded) == manifest
    key = crypto.manifest_hash(manifest)
    assert key == hashlib.blake2b(crypto.MANIFEST + encoded, digest_size=32).digest()
    assert crypto.core_key(kp.public_key) == key
    assert crypto.core_key(manifest) == key
    assert crypto.core_key(encoded) == key
    assert crypto.core_key(kp.public_key, compat=True) == kp.public_key


def test_signables_and_capability() -> None:
    mh, th = bytes(range(32)), bytes(range(32, 64))
    signable = crypto.tree_signable(mh, th, 3, 1)
    assert len(signable) == 112
    assert signable == crypto.TREE + mh + th + (3).to_bytes(8, "little") + (1).to_bytes(8, "little")
    assert crypto.tree_signable_compat(th, 3, 1) == crypto.TREE + signable[64:]
    assert crypto.tree_signable_compat(th, 3, 1, no_header=True) == signable[64:]
    key = bytes.fromhex("48898f3b") + bytes(28)
    cap = crypto.replicate_capability(True, key, bytes([9]) * 64)
    expected = hashlib.blake2b(
        crypto.REPLICATE_INITIATOR + key, key=bytes([9]) * 64, digest_size=32
    )
    assert cap == expected.digest()
    assert cap != crypto.replicate_capability(False, key, bytes([9]) * 64)


def test_manifest_v2_vector() -> None:
    # REFERENCE.md section 3: allowPatch, quorum 2, two signers, prologue, linked, userData.
    signer = Signer(namespace=bytes(32), public_key=bytes([1]) * 32)
    m = Manifest(
        version=2,
        quorum=2,
        signers=(signer, signer),
        allow_patch=True,
        prologue=Prologue(hash=bytes([2]) * 32, length=5),
        linked=(bytes([3]) * 32,),
        user_data=b"ud",
    )
    signer_hex = "00" + bytes(32).hex() + (bytes([1]) * 32).hex()
    expected = (
        "020f000202"
        + signer_hex * 2
        + (bytes([2]) * 32).hex()
        + "05"
        + "01"
        + (bytes([3]) * 32).hex()
        + "027564"
    )
    encoded = encode_manifest(m)
    assert encoded.hex() == expected
    assert decode_manifest(encoded) == m
