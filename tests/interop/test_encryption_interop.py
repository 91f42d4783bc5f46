"""Block encryption against the pinned JS ``hypercore/lib/default-encryption.js`` and a real
encrypted JS core."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from hypercore import crypto, flat_tree
from hypercore import encryption as enc
from hypercore.crypto import TreeNode
from hypercore.encryption import PADDING, DefaultEncryption, block_encryption_key

from .jsenv import JSHelper

N = 3000


def random_case(rng: random.Random) -> tuple[bytes, bytes, int, bytes, int]:
    core_key = rng.randbytes(32)
    encryption_key = rng.randbytes(32)
    index = rng.choice([0, 1, rng.randrange(2**16), rng.randrange(2**40), 2**40])
    size = rng.choice([0, 1, 7, 8, 31, 32, 33, 64, 65, rng.randrange(4097), 4096])
    fork = rng.choice([0, 1, rng.randrange(2**8), rng.randrange(2**32), rng.randrange(2**53)])
    return core_key, encryption_key, index, rng.randbytes(size), fork


def test_block_keys(js: JSHelper) -> None:
    rng = random.Random(10)
    pairs = [(rng.randbytes(32), rng.randbytes(32)) for _ in range(N)]
    for compat in (False, True):
        theirs = js.call("encryption.keys", [[k, e, compat] for k, e in pairs])
        for (core_key, encryption_key), t in zip(pairs, theirs, strict=True):
            keys = enc.derive_keys(encryption_key, core_key, compat=compat)
            assert block_encryption_key(core_key, encryption_key, compat) == t["block"]
            assert keys == (t["block"], t["blinding"])
            # Hypercore.blockEncryptionKey is the non-compat key whatever the core is.
            assert block_encryption_key(core_key, encryption_key) == t["static"]


@pytest.mark.parametrize("compat", [False, True])
def test_encrypt_and_decrypt_match(js: JSHelper, compat: bool) -> None:
    rng = random.Random(11 + compat)
    cases = [random_case(rng) for _ in range(N)]
    opts = {"compat": compat}

    ours = [DefaultEncryption(e, k, compat=compat).encrypt(i, b, f) for k, e, i, b, f in cases]
    theirs = js.call("encryption.encrypt", [[k, e, i, b, f, opts] for k, e, i, b, f in cases])
    for case, mine, js_stored in zip(cases, ours, theirs, strict=True):
        assert mine == js_stored, case

    # Each side decrypts what the other wrote.
    calls = [[k, e, i, s, opts] for (k, e, i, _, _), s in zip(cases, ours, strict=True)]
    back = js.call("encryption.decrypt", calls)
    assert back == [b for _, _, _, b, _ in cases]
    for (k, e, i, b, f), js_stored in zip(cases, theirs, strict=True):
        e_ = DefaultEncryption(e, k, compat=compat)
        assert e_.decrypt(i, js_stored) == b
        assert e_.fork(i, js_stored) == f


def test_block_key_providers_match(js: JSHelper) -> None:
    """``isBlockKey`` / ``{block: true}``: the given key is used as the block key."""
    rng = random.Random(13)
    cases = [random_case(rng) for _ in range(500)]
    opts = {"block": True}
    theirs = js.call("encryption.encrypt", [[k, e, i, b, f, opts] for k, e, i, b, f in cases])
    for (_, e, i, b, f), t in zip(cases, theirs, strict=True):
        assert DefaultEncryption.from_block_key(e).encrypt(i, b, f) == t
    # A block key derived with Hypercore.blockEncryptionKey reads a keyed core's blocks.
    keyed = js.call("encryption.encrypt", [[k, e, i, b, f, {}] for k, e, i, b, f in cases])
    for (k, e, i, b, _), t in zip(cases, keyed, strict=True):
        assert DefaultEncryption.from_block_key(block_encryption_key(k, e)).decrypt(i, t) == b


def tree_hash(stored: list[bytes]) -> bytes:
    leaves = {2 * i: TreeNode(2 * i, len(b), crypto.data(b)) for i, b in enumerate(stored)}

    def node(index: int) -> TreeNode:
        if index in leaves:
            return leaves[index]
        kids = flat_tree.children(index)
        assert kids is not None
        a, b = node(kids[0]), node(kids[1])
        return TreeNode(index, a.size + b.size, crypto.parent(a, b))

    return crypto.tree([node(r) for r in flat_tree.full_roots(2 * len(stored))])


@pytest.mark.parametrize(
    "style,compat",
    [("object", False), ("buffer", False), ("encryptionKey", False), ("object", True)],
)
def test_a_real_encrypted_core(js: JSHelper, tmp_path: Path, style: str, compat: bool) -> None:
    rng = random.Random(14)
    encryption_key = rng.randbytes(32)
    first = [rng.randbytes(rng.randrange(300)) for _ in range(6)]
    second = [rng.randbytes(rng.randrange(300)) for _ in range(3)]
    out: dict[str, Any] = js(
        "encryption.core",
        str(tmp_path / "core"),
        encryption_key,
        first,
        4,
        second,
        {"style": style, "compat": compat},
    )
    assert out["compat"] is compat
    assert out["padding"] == PADDING
    blocks = first[:4] + second
    assert out["plain"] == blocks
    # The truncation bumped the fork; blocks appended after it carry the new fork.
    assert out["fork"] == 1
    assert out["forks"] == [0, 0, 0, 0, 1, 1, 1]

    e = DefaultEncryption(encryption_key, out["key"], compat=compat)
    for i, (b, f, raw) in enumerate(zip(blocks, out["forks"], out["raw"], strict=True)):
        assert e.encrypt(i, b, f) == raw
        assert e.decrypt(i, raw) == b
        assert e.fork(i, raw) == f
    # The Merkle tree covers the stored bytes; byteLength reports the plaintext bytes.
    assert out["treeHash"] == tree_hash(out["raw"])
    assert out["byteLength"] == sum(map(len, blocks))


def test_a_real_core_opened_with_a_block_key(js: JSHelper, tmp_path: Path) -> None:
    rng = random.Random(15)
    block_key = rng.randbytes(32)
    blocks = [rng.randbytes(rng.randrange(100)) for _ in range(3)]
    out: dict[str, Any] = js(
        "encryption.core", str(tmp_path / "core"), block_key, blocks, None, [], {"isBlockKey": True}
    )
    assert out["plain"] == blocks
    e = DefaultEncryption.from_block_key(block_key)
    assert [e.encrypt(i, b, 0) for i, b in enumerate(blocks)] == out["raw"]
