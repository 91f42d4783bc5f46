"""hypercore-crypto, caps, verifier and messages against the pinned JS, on random inputs."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypercore import crypto
from hypercore.crypto import TreeNode
from hypercore.manifest import MANIFEST, Manifest, decode_manifest, encode_manifest
from hypercore.wire import DATA, Data
from protomux import encoding as c

from ..hypercore.strategies import (
    data_from_js,
    data_messages,
    data_to_js,
    manifest_from_js,
    manifest_to_js,
    manifests,
)
from .jsenv import JSError, JSHelper

N = 1000


def rbytes(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n)


def random_node(rng: random.Random, index: int) -> TreeNode:
    return TreeNode(index, rng.randrange(2 ** rng.randrange(1, 53)), rbytes(rng, 32))


def test_key_pairs_signatures_and_discovery_keys(js: JSHelper) -> None:
    rng = random.Random(1)
    seeds = [rbytes(rng, 32) for _ in range(N)]
    pairs = [crypto.key_pair(s) for s in seeds]
    theirs = js.call("crypto.keyPair", [[s] for s in seeds])
    assert [{"publicKey": p.public_key, "secretKey": p.secret_key} for p in pairs] == theirs

    pks = [p.public_key for p in pairs]
    assert [crypto.discovery_key(pk) for pk in pks] == js.call(
        "crypto.discoveryKey", [[pk] for pk in pks]
    )

    messages = [rbytes(rng, rng.randrange(300)) for _ in range(N)]
    sigs = [crypto.sign(m, p.secret_key) for m, p in zip(messages, pairs, strict=True)]
    js_sigs = js.call(
        "crypto.sign", [[m, p.secret_key] for m, p in zip(messages, pairs, strict=True)]
    )
    assert sigs == js_sigs  # Ed25519 is deterministic

    # JS accepts Python's signatures and rejects tampered ones; Python does the same for JS.
    checks = []
    expected = []
    for m, s, p in zip(messages, js_sigs, pairs, strict=True):
        bad = bytearray(s)
        bad[rng.randrange(64)] ^= 1 << rng.randrange(8)
        checks += [[m, s, p.public_key], [m, bytes(bad), p.public_key]]
        expected += [True, False]
        assert crypto.verify(m, s, p.public_key)
        assert not crypto.verify(m, bytes(bad), p.public_key)
    assert js.call("crypto.verify", checks) == expected


def test_tree_hashes(js: JSHelper) -> None:
    rng = random.Random(2)
    blocks = [rbytes(rng, rng.choice([0, 1, 5, 100, 1024, 4096])) for _ in range(N)]
    assert [crypto.data(b) for b in blocks] == js.call("crypto.data", [[b] for b in blocks])

    pairs = []
    for _ in range(N):
        i = 2 * rng.randrange(2**40)
        a, b = random_node(rng, i), random_node(rng, i + 2)
        if rng.random() < 0.5:
            a, b = b, a
        pairs.append((a, b))
    ours = [crypto.parent(a, b) for a, b in pairs]
    assert ours == js.call("crypto.parent", [[node_js(a), node_js(b)] for a, b in pairs])

    forests = [[random_node(rng, rng.randrange(2**45)) for _ in range(rng.randrange(1, 8))]]
    forests += [
        [random_node(rng, rng.randrange(2**45)) for _ in range(rng.randrange(1, 8))]
        for _ in range(N)
    ]
    ours = [crypto.tree(f) for f in forests]
    assert ours == js.call("crypto.tree", [[[node_js(n) for n in f]] for f in forests])

    chunks = [
        [rbytes(rng, rng.randrange(64)) for _ in range(rng.randrange(1, 4))] for _ in range(200)
    ]
    assert [crypto.hash(ch) for ch in chunks] == js.call("crypto.hash", [[ch] for ch in chunks])


def test_namespaces(js: JSHelper) -> None:
    rng = random.Random(3)
    names = ["hypercore", "corestore", "hyperswarm/dht", "hyperswarm/secret-stream", ""]
    names += [
        "".join(chr(rng.randrange(32, 0x3000)) for _ in range(rng.randrange(20)))
        for _ in range(200)
    ]
    calls: list[list[Any]] = [[n, rng.randrange(1, 12)] for n in names]
    calls += [[n, [rng.randrange(256) for _ in range(3)]] for n in names[:50]]
    assert [crypto.namespace(n, k) for n, k in calls] == js.call("crypto.namespace", calls)
    constants = js("caps.constants")
    assert constants["MANIFEST"] == crypto.MANIFEST
    assert constants["DEFAULT_NAMESPACE"] == crypto.DEFAULT_NAMESPACE
    assert constants["DEFAULT_ENCRYPTION"] == crypto.DEFAULT_ENCRYPTION


def test_manifest_hash_and_core_keys(js: JSHelper) -> None:
    rng = random.Random(4)
    pks = [crypto.key_pair(rbytes(rng, 32)).public_key for _ in range(300)]
    defaults = js.call("verifier.defaultSignerManifest", [[pk] for pk in pks])
    assert [crypto.default_signer_manifest(pk) for pk in pks] == [
        manifest_from_js(m) for m in defaults
    ]
    ours = [crypto.manifest_hash(crypto.default_signer_manifest(pk)) for pk in pks]
    assert ours == js.call("verifier.manifestHash", [[m] for m in defaults])
    assert ours == js.call("Hypercore.key", [[pk] for pk in pks])
    assert [crypto.core_key(pk) for pk in pks] == ours
    assert pks == js.call("Hypercore.key", [[pk, {"compat": True}] for pk in pks])
    assert [crypto.discovery_key(k) for k in ours] == js.call(
        "Hypercore.discoveryKey", [[k] for k in ours]
    )


def test_signables_and_capabilities(js: JSHelper) -> None:
    rng = random.Random(5)
    calls = [
        [rbytes(rng, 32), rbytes(rng, 32), rng.randrange(2**53), rng.randrange(2**20)]
        for _ in range(N)
    ]
    assert [crypto.tree_signable(*a) for a in calls] == js.call("caps.treeSignable", calls)
    compat = [[a[1], a[2], a[3], rng.random() < 0.5] for a in calls]
    assert [crypto.tree_signable_compat(*a) for a in compat] == js.call(
        "caps.treeSignableCompat", compat
    )
    caps = [[rng.random() < 0.5, rbytes(rng, 32), rbytes(rng, 64)] for _ in range(N)]
    assert [crypto.replicate_capability(*a) for a in caps] == js.call("caps.replicate", caps)


BATCH = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


@BATCH
@given(st.lists(manifests, min_size=20, max_size=60))
def test_manifests_both_ways(js: JSHelper, batch: list[Manifest]) -> None:
    ours = [encode_manifest(m) for m in batch]
    theirs = js.call("encode", [["hypercore.manifest", manifest_to_js(m)] for m in batch])
    assert ours == theirs
    decoded = js.call("decodeAll", [["hypercore.manifest", b] for b in ours])
    assert [manifest_from_js(d) for d in decoded] == batch
    hashes = js.call("verifier.manifestHash", [[manifest_to_js(m)] for m in batch])
    assert [crypto.manifest_hash(m) for m in batch] == hashes


@settings(BATCH, max_examples=60)
@given(st.lists(data_messages, min_size=3, max_size=10))
def test_data_messages_both_ways(js: JSHelper, batch: list[Data]) -> None:
    ours = [c.encode(DATA, m) for m in batch]
    theirs = js.call("encode", [["hypercore.data", data_to_js(m)] for m in batch])
    assert ours == theirs
    decoded = js.call("decodeAll", [["hypercore.data", b] for b in ours])
    assert [data_from_js(d) for d in decoded] == batch


@BATCH
@given(st.lists(st.binary(max_size=120), min_size=50, max_size=150))
def test_random_bytes_decode_alike(js: JSHelper, blobs: list[bytes]) -> None:
    """Where Python accepts a manifest or data message, JS decodes the same value."""
    for spec, codec, from_js in (
        ("hypercore.manifest", MANIFEST, manifest_from_js),
        ("hypercore.data", DATA, data_from_js),
    ):
        theirs = js.call("decodeAll", [[spec, b] for b in blobs])
        for blob, t in zip(blobs, theirs, strict=True):
            try:
                ours = c.decode(codec, blob)  # type: ignore[arg-type]
            except c.DecodeError:
                continue
            assert not isinstance(t, JSError), (blob.hex(), ours, t)
            assert from_js(t) == ours, blob.hex()


def node_js(n: TreeNode) -> dict[str, Any]:
    return {"index": n.index, "size": n.size, "hash": n.hash}


def test_decode_manifest_rejects_what_js_rejects(js: JSHelper) -> None:
    bad = [bytes.fromhex(h) for h in ("04", "0100010100", "000003", "")]
    for blob, t in zip(
        bad, js.call("decodeAll", [["hypercore.manifest", b] for b in bad]), strict=True
    ):
        assert isinstance(t, JSError)
        try:
            decode_manifest(blob)
        except c.DecodeError:
            continue
        raise AssertionError(f"Python accepted {blob.hex()}")
