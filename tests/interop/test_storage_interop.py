"""hypercore-storage on disk: JS-written stores read by Python, Python-written stores opened by
JS hypercore, and the CORESTORE lock between the two."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hypercore import crypto, flat_tree
from hypercore.bitfield import BITS_PER_PAGE, Bitfield
from hypercore.crypto import TreeNode
from hypercore.storage import (
    CoreHead,
    CoreStorage,
    Hints,
    RocksDBStorage,
    StorageLockedError,
    StoreHead,
)
from hypercore.storage import keys as k

from .jsenv import JSHelper

SEED = b"\x01" * 32
KP = crypto.key_pair(SEED)
MANIFEST = crypto.default_signer_manifest(KP.public_key)
KEY = crypto.manifest_hash(MANIFEST)
DKEY = crypto.discovery_key(KEY)


def full_tree(blocks: list[bytes]) -> dict[int, TreeNode]:
    """Every node of the Merkle tree over ``blocks`` (what a full append writes)."""
    n = len(blocks)
    nodes = {2 * i: TreeNode(2 * i, len(b), crypto.data(b)) for i, b in enumerate(blocks)}
    depth = 1
    while (1 << depth) <= n:
        index = (1 << depth) - 1
        step = 1 << (depth + 1)
        while flat_tree.right_span(index) <= 2 * (n - 1):
            left, right = flat_tree.children(index) or (0, 0)
            a, b = nodes[left], nodes[right]
            nodes[index] = TreeNode(index, a.size + b.size, crypto.parent(a, b))
            index += step
        depth += 1
    return nodes


def tree_hash(nodes: dict[int, TreeNode], length: int) -> bytes:
    return crypto.tree([nodes[r] for r in flat_tree.full_roots(2 * length)])


def sign_head(tree: bytes, length: int, fork: int) -> bytes:
    sig = crypto.sign(crypto.tree_signable(KEY, tree, length, fork), KP.secret_key)
    return b"\x01\x00" + sig + b"\x00\x00"


def verify_head(head: CoreHead) -> bool:
    sig = head.signature
    assert sig is not None and len(sig) == 68 and sig[:2] == b"\x01\x00" and sig[-2:] == b"\x00\x00"
    signable = crypto.tree_signable(KEY, head.root_hash, head.length, head.fork)
    return crypto.verify(signable, sig[2:66], KP.public_key)


def bitfield_page(length: int) -> bytes:
    bf = Bitfield()
    bf.set_range(0, length, True)
    return bf.page(0)


def open_default(path: Path) -> tuple[RocksDBStorage, CoreStorage]:
    store = RocksDBStorage.open(path)
    core = store.get_core()
    assert core is not None
    return store, core


def test_python_reads_a_js_written_core(js: JSHelper, tmp_path: Path) -> None:
    blocks = [f"block {i}".encode() * (i % 7 + 1) for i in range(37)]
    before = int(time.time() * 1000)
    info = js(
        "storage.writeCore",
        str(tmp_path),
        SEED,
        blocks,
        [["foo", b"bar"], ["k\x00z", "str"], ["empty", b""]],
        None,
    )
    assert info["key"] == KEY and info["length"] == 37 and info["signatureValid"] is True

    store, core = open_default(tmp_path)
    try:
        assert store.get_head() == StoreHead(2, 1, 1, 0, None, DKEY)
        assert (core.discovery_key, core.core_pointer, core.data_pointer) == (DKEY, 0, 0)
        auth = core.get_auth()
        assert auth is not None
        assert (auth.key, auth.discovery_key, auth.manifest) == (KEY, DKEY, MANIFEST)
        assert auth.key_pair == (KP.public_key, KP.secret_key)
        assert auth.encryption_key is None

        nodes = full_tree(blocks)
        head = core.get_head()
        assert head is not None
        assert (head.fork, head.length) == (0, 37)
        assert head.root_hash == tree_hash(nodes, 37) == info["treeHash"]
        assert verify_head(head)
        assert before - 5000 <= head.timestamp <= int(time.time() * 1000) + 5000

        assert {n.index: n for n in core.tree_nodes()} == nodes
        assert all(core.get_tree_node(i) == n for i, n in nodes.items())
        assert [core.get_block(i) for i in range(37)] == blocks
        assert core.get_block(37) is None
        assert core.get_bitfield_page(0) == bitfield_page(37)
        assert core.get_hints() == Hints(37)
        assert list(core.user_data()) == [("empty", b""), ("foo", b"bar"), ("k\x00z", b"str")]
        assert core.get_user_data("foo") == b"bar"

        # Exactly these rows: nothing else is written by a standalone Hypercore.
        expected = {
            k.store_head(),
            k.core_by_discovery_key(DKEY),
            k.core_auth(0),
            k.data_head(0),
            k.data_hints(0),
            k.data_bitfield(0, 0),
            *(k.data_block(0, i) for i in range(37)),
            *(k.data_tree(0, i) for i in nodes),
            *(k.data_user_data(0, name) for name in ("empty", "foo", "k\x00z")),
        }
        assert {key for key, _ in store.rows()} == expected
    finally:
        store.close()


def test_python_reads_js_truncate_and_encrypted_blocks(js: JSHelper, tmp_path: Path) -> None:
    blocks = [b"a", b"bb", b"ccc", b"dddd", b"eeeee"]
    info = js("storage.writeCore", str(tmp_path / "t"), SEED, blocks, [], {"truncate": 3})
    assert (info["length"], info["fork"]) == (3, 1)
    store, core = open_default(tmp_path / "t")
    try:
        head = core.get_head()
        assert head is not None and (head.fork, head.length) == (1, 3)
        nodes = full_tree(blocks[:3])
        assert head.root_hash == tree_hash(nodes, 3) and verify_head(head)
        assert [i for i, _ in core.blocks()] == [0, 1, 2]
        assert core.get_bitfield_page(0) == bitfield_page(3)
        assert core.get_hints() == Hints(3)
        for i, node in nodes.items():
            assert core.get_tree_node(i) == node
    finally:
        store.close()

    enc = b"\x09" * 32
    info = js(
        "storage.writeCore",
        str(tmp_path / "e"),
        SEED,
        [b"secret", b"x"],
        [],
        {"encryptionKey": enc},
    )
    assert info["blocks"] == [b"secret", b"x"]
    store, core = open_default(tmp_path / "e")
    try:
        auth = core.get_auth()
        assert auth is not None and auth.encryption_key is None  # JS does not store it
        stored = [core.get_block(0), core.get_block(1)]
        assert [len(b or b"") for b in stored] == [14, 9]  # 8 bytes of padding each
        assert stored[0] is not None and b"secret" not in stored[0]
        nodes = full_tree([b for b in stored if b is not None])
        assert {n.index: n for n in core.tree_nodes()} == nodes
        head = core.get_head()
        assert head is not None and head.root_hash == tree_hash(nodes, 2) and verify_head(head)
    finally:
        store.close()


def write_python_core(path: Path, blocks: list[bytes], user_data: dict[str, bytes]) -> None:
    store = RocksDBStorage.open(path)
    try:
        core = store.create_core(KEY, manifest=MANIFEST, key_pair=KP)
        nodes = full_tree(blocks)
        n = len(blocks)
        tree = tree_hash(nodes, n)
        with core.batch() as b:
            b.put_tree_nodes(nodes.values())
            b.put_blocks(0, blocks)
            b.put_head(CoreHead(0, n, tree, sign_head(tree, n, 0), int(time.time() * 1000)))
            bf = Bitfield()
            for p in bf.set_range(0, n, True):
                b.put_bitfield_page(p, bf.page(p))
            b.put_hints(Hints(n))
            for name, value in user_data.items():
                b.put_user_data(name, value)
    finally:
        store.close()


def test_js_opens_a_python_written_core(js: JSHelper, tmp_path: Path) -> None:
    blocks = [bytes([i % 251]) * (i % 300 + 1) for i in range(BITS_PER_PAGE // 1000 + 40)]
    blocks[5] = bytes(range(256)) * 20  # >= 4 KiB: stored in a RocksDB blob file
    n = len(blocks)
    write_python_core(tmp_path, blocks, {"foo": b"bar", "k\x00z": b"\x00\x01"})
    with RocksDBStorage.open(tmp_path, read_only=True) as ro:
        rows_before = list(ro.rows())

    info = js("storage.readCore", str(tmp_path), None, None)
    assert info["key"] == KEY and info["discoveryKey"] == DKEY
    assert (info["length"], info["fork"], info["contiguousLength"]) == (n, 0, n)
    assert info["writable"] is True and info["signatureValid"] is True
    assert info["treeHash"] == tree_hash(full_tree(blocks), n)
    assert info["blocks"] == blocks
    assert info["userData"] == [["foo", b"bar"], ["k\x00z", b"\x00\x01"]]

    # Opening a consistent core writes nothing.
    store = RocksDBStorage.open(tmp_path)
    try:
        assert list(store.rows()) == rows_before
    finally:
        store.close()

    # JS extends the Python core with the stored key pair; Python checks what JS wrote.
    more = [b"js 1", b"js 2", b"js 3"]
    info = js("storage.readCore", str(tmp_path), KEY, more)
    assert info["length"] == n + 3 and info["signatureValid"] is True
    store, core = open_default(tmp_path)
    try:
        everything = blocks + more
        nodes = full_tree(everything)
        assert {nd.index: nd for nd in core.tree_nodes()} == nodes
        head = core.get_head()
        assert head is not None and head.length == n + 3
        assert head.root_hash == tree_hash(nodes, n + 3) and verify_head(head)
        assert core.get_hints() == Hints(n + 3)
        assert core.get_bitfield_page(0) == bitfield_page(n + 3)
    finally:
        store.close()

    # JS adds a second core to the Python store: pointers come from the head counters.
    other = b"\x05" * 32
    assert js("storage.touchKey", str(tmp_path), other)["key"] == other
    store = RocksDBStorage.open(tmp_path)
    try:
        store_head = store.get_head()
        assert store_head is not None and (store_head.cores, store_head.datas) == (2, 2)
        assert store_head.default_discovery_key == DKEY
        second = store.get_core(crypto.discovery_key(other))
        assert second is not None and (second.core_pointer, second.data_pointer) == (1, 1)
        auth = second.get_auth()
        assert auth is not None and auth.manifest is None and auth.key_pair is None
    finally:
        store.close()


def test_empty_python_store_and_second_python_core(js: JSHelper, tmp_path: Path) -> None:
    # A store Python only created (head, no core): JS makes its core there as in a fresh dir.
    RocksDBStorage.open(tmp_path / "empty").close()
    info = js("storage.writeCore", str(tmp_path / "empty"), SEED, [b"x"], [], None)
    assert info["key"] == KEY and info["length"] == 1
    store, core = open_default(tmp_path / "empty")
    try:
        assert (core.core_pointer, core.data_pointer) == (0, 0)
    finally:
        store.close()

    # Python creates two cores; JS's default core is the first one.
    path = tmp_path / "two"
    write_python_core(path, [b"one"], {})
    store = RocksDBStorage.open(path)
    store.create_core(b"\x06" * 32)
    store.close()
    info = js("storage.readCore", str(path), None, None)
    assert info["key"] == KEY and info["blocks"] == [b"one"]
    info = js("storage.readCore", str(path), b"\x06" * 32, None)
    assert info["key"] == b"\x06" * 32 and info["length"] == 0


def test_lock_between_js_and_python(js: JSHelper, tmp_path: Path) -> None:
    write_python_core(tmp_path, [b"a"], {})
    assert js("storage.hold", str(tmp_path)) == KEY
    try:
        with pytest.raises(StorageLockedError):
            RocksDBStorage.open(tmp_path)
        # Read-only access does not take the lock.
        ro = RocksDBStorage.open(tmp_path, read_only=True)
        assert ro.default_discovery_key() == DKEY
        ro.close()
    finally:
        assert js("storage.release", str(tmp_path)) is True
    store = RocksDBStorage.open(tmp_path)
    try:
        err = js("storage.tryOpen", str(tmp_path))
        assert err is not None and "lock" in err.lower()
    finally:
        store.close()
    assert js("storage.tryOpen", str(tmp_path)) is None
