"""Value codecs: rows written by JS decode and re-encode byte for byte; random values
round-trip; arbitrary bytes raise only DecodeError."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hypercore import crypto
from hypercore.manifest import encode_manifest
from hypercore.storage import records as r
from protomux import encoding as c

from ..strategies import b32, manifests, nodes

MAX = 2**53 - 1
uints = st.integers(0, 300) | st.integers(0, MAX)
opt_b32 = st.none() | b32

# Rows of a store written by JS hypercore 11.37.1 (new Hypercore(dir, {keyPair: keyPair(32 x 01)})
# then append(['a', 'bb', 'ccc'])), dumped with rocksdict.
DKEY = bytes.fromhex("fb892b1c77fdcb05dcbd234607208b7036e00a13e7f2cc0bbaa463924e57865a")
KEY = bytes.fromhex("d8c3a0597903b28d751c6e0b7107775e388ec5a3cf669bdd1e7ec41b8b8f6e72")
PK = bytes.fromhex("8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c")
JS_STORE_HEAD = "0201010002" + DKEY.hex()
JS_CORE_RECORD = "02000000"
JS_AUTH = (
    KEY.hex()
    + DKEY.hex()
    + "0346"
    + "0100000101004144eea531e483d54e0c14f4ca68e0644f355343ff6fcb0f005200e12cd747cb"
    + PK.hex()
    + "20"
    + PK.hex()
    + "40"
    + "01" * 32
    + PK.hex()
)
JS_HEAD = (
    "0003"
    + "45f511522f3ccc90b4b76f89a9ee1ac039febd894778b3e9b06aefe521c52265"
    + "44"
    + "0100"
    + "16edd1114e1c7ad67065d803df4eef0df63859cc38eba5e65c22f8a54893afa3"
    + "1df074977ba4ddec3b9fcf77343e49431da791315cef474fb3e698091e70a306"
    + "0000"
    + "01"
    + "00845c0aa2010000"
)
JS_HINTS = "0103"
JS_NODE = "0001423177bd3da55c6ac57419beff9c763bab05e12a6d8908b38b7fc14360228d4a"
# A Corestore core record with alias "x" in the root namespace (REFERENCE.md section 8).
JS_ALIASED_RECORD = "0200000101" + "78" + "00" * 32


def rt(codec: c.Codec[Any], hex_: str) -> Any:
    value = c.decode(codec, bytes.fromhex(hex_))
    assert c.encode(codec, value).hex() == hex_
    return value


def test_js_rows() -> None:
    head = rt(r.STORE_HEAD, JS_STORE_HEAD)
    assert head == r.StoreHead(2, 1, 1, 0, None, DKEY)
    assert rt(r.CORE_RECORD, JS_CORE_RECORD) == r.CoreRecord(2, 0, 0, None)
    assert rt(r.CORE_RECORD, JS_ALIASED_RECORD).alias == r.Alias(bytes(32), "x")
    auth = rt(r.AUTH, JS_AUTH)
    assert auth.key == KEY and auth.discovery_key == DKEY
    assert auth.manifest == crypto.default_signer_manifest(PK)
    assert crypto.manifest_hash(auth.manifest) == KEY
    assert auth.key_pair == crypto.key_pair(b"\x01" * 32)
    assert auth.encryption_key is None
    tree = rt(r.CORE_HEAD, JS_HEAD)
    assert (tree.fork, tree.length, tree.timestamp) == (0, 3, 1795470164992)
    assert tree.signature is not None and len(tree.signature) == 68
    assert rt(r.HINTS, JS_HINTS) == r.Hints(3, 0, 0)
    node = rt(r.TREE_NODE, JS_NODE)
    assert (node.index, node.size) == (0, 1)
    assert node.hash == crypto.data(b"a")
    assert rt(r.STORE_HEAD, "0200000000") == r.StoreHead()  # a fresh JS store


def test_legacy_store_heads_decode_as_version_2() -> None:
    seed, dkey = b"\x07" * 32, b"\x09" * 32
    v1 = "01" + "07" + "0305" + seed.hex() + dkey.hex()
    assert c.decode(r.STORE_HEAD, bytes.fromhex(v1)) == r.StoreHead(2, 3, 5, 0, seed, dkey)
    assert c.decode(r.STORE_HEAD, bytes.fromhex("00010102")) == r.StoreHead(2, 1, 2)
    with pytest.raises(c.DecodeError):
        c.decode(r.STORE_HEAD, bytes.fromhex("0100"))  # JS throws on a head without counters
    with pytest.raises(c.DecodeError):
        c.decode(r.STORE_HEAD, bytes.fromhex("03000000"))
    with pytest.raises(c.EncodeError):
        c.encode(r.STORE_HEAD, r.StoreHead(version=1))


def test_old_heads_without_flags_and_manifest_storage_form() -> None:
    old = "0102" + "11" * 32 + "00"  # no flags byte at all
    assert c.decode(r.CORE_HEAD, bytes.fromhex(old)) == r.CoreHead(1, 2, b"\x11" * 32)
    # Version 0 manifests are stored in the version >= 1 layout, unlike on the wire.
    m0 = crypto.default_signer_manifest(PK)
    m0 = type(m0)(version=0, quorum=1, signers=m0.signers)
    stored = c.encode(r.MANIFEST, m0)
    assert stored == bytes.fromhex("000000010100") + m0.signers[0].namespace + PK
    assert encode_manifest(m0) == bytes.fromhex("00000100") + m0.signers[0].namespace + PK
    assert c.decode(r.MANIFEST, stored) == m0


key_pairs = st.builds(
    r.StoredKeyPair,
    public_key=st.binary(max_size=40),
    secret_key=st.none() | st.binary(min_size=1, max_size=70),
)
aliases = st.builds(r.Alias, namespace=b32, name=st.text(max_size=10))

VALUES: dict[str, tuple[c.Codec[Any], st.SearchStrategy[Any]]] = {
    "store_head": (
        r.STORE_HEAD,
        st.builds(
            r.StoreHead,
            version=st.just(2),
            cores=uints,
            datas=uints,
            groups=uints,
            seed=opt_b32,
            default_discovery_key=opt_b32,
        ),
    ),
    "core_record": (
        r.CORE_RECORD,
        st.builds(r.CoreRecord, uints, uints, uints, st.none() | aliases),
    ),
    "manifest": (r.MANIFEST, manifests),
    "auth": (
        r.AUTH,
        st.builds(
            r.Auth,
            key=b32,
            discovery_key=b32,
            manifest=st.none() | manifests,
            key_pair=st.none() | key_pairs,
            encryption_key=st.none() | st.binary(max_size=40),
        ),
    ),
    "core_head": (
        r.CORE_HEAD,
        st.builds(
            r.CoreHead,
            fork=uints,
            length=uints,
            root_hash=b32,
            signature=st.none() | st.binary(min_size=1, max_size=100),
            timestamp=st.integers(0, MAX),
        ),
    ),
    "tree_node": (r.TREE_NODE, nodes),
    "hints": (r.HINTS, st.builds(r.Hints, uints, uints, uints)),
    "dependency": (r.DEPENDENCY, st.builds(r.Dependency, uints, uints)),
    "sessions": (
        r.SESSIONS,
        st.lists(st.builds(r.Session, st.text(max_size=8), uints), max_size=4),
    ),
    "group": (r.GROUP, st.builds(r.Group, key=opt_b32, pointer=uints)),
    "group_pointer": (r.GROUP_POINTER, uints),
}


@pytest.mark.parametrize("name", sorted(VALUES))
@given(data=st.data())
def test_round_trip(name: str, data: st.DataObject) -> None:
    codec, values = VALUES[name]
    value = data.draw(values)
    encoded = c.encode(codec, value)
    assert c.decode(codec, encoded) == value
    assert c.encode(codec, c.decode(codec, encoded)) == encoded


@pytest.mark.parametrize("name", sorted(VALUES))
@given(raw=st.binary(max_size=120))
def test_arbitrary_bytes_raise_only_decode_error(name: str, raw: bytes) -> None:
    codec, _ = VALUES[name]
    for trailing in (False, True):
        try:
            c.decode(codec, raw, allow_trailing=trailing)
        except c.DecodeError:
            pass


@pytest.mark.parametrize("name", sorted(VALUES))
@given(data=st.data())
def test_mutated_rows_raise_only_decode_error(name: str, data: st.DataObject) -> None:
    codec, values = VALUES[name]
    encoded = bytearray(c.encode(codec, data.draw(values)))
    if encoded:
        i = data.draw(st.integers(0, len(encoded) - 1))
        encoded[i] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(encoded)))
        for raw in (bytes(encoded), bytes(encoded[:cut])):
            try:
                c.decode(codec, raw)
            except c.DecodeError:
                pass


@given(nodes | st.builds(r.TreeNode, st.integers(0, 300), st.integers(0, 70_000), b32))
def test_fast_tree_node_codec(node: r.TreeNode) -> None:
    encoded = r.encode_tree_node(node)
    assert encoded == c.encode(r.TREE_NODE, node)
    assert r.decode_tree_node(encoded) == node


@given(st.binary(min_size=30, max_size=40))
def test_fast_tree_node_decoder_agrees(raw: bytes) -> None:
    try:
        want = c.decode(r.TREE_NODE, raw)
    except c.DecodeError:
        with pytest.raises(c.DecodeError):
            r.decode_tree_node(raw)
    else:
        assert r.decode_tree_node(raw) == want
