"""Store and core storage: creation, pointers, batches, locks and the device file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypercore import crypto
from hypercore.crypto import TreeNode
from hypercore.storage import (
    BITFIELD_PAGE_SIZE,
    Alias,
    CoreHead,
    Dependency,
    DeviceFileError,
    Hints,
    MemoryStorage,
    RocksDBStorage,
    Session,
    Storage,
    StorageClosedError,
    StorageError,
    StorageLockedError,
    StoreHead,
)
from hypercore.storage import keys as k
from hypercore.storage.device import PLATFORM

KP = crypto.key_pair(b"\x01" * 32)
MANIFEST = crypto.default_signer_manifest(KP.public_key)
KEY = crypto.manifest_hash(MANIFEST)
DKEY = crypto.discovery_key(KEY)


@pytest.fixture(params=["memory", "rocksdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    s: Storage = MemoryStorage() if request.param == "memory" else RocksDBStorage.open(tmp_path)
    yield s
    s.close()


def test_fresh_store_has_the_js_initial_head(store: Storage) -> None:
    assert list(store.rows()) == [(b"\x00", bytes.fromhex("0200000000"))]
    assert store.get_head() == StoreHead()
    assert store.default_discovery_key() is None and store.seed() is None
    assert store.get_core() is None


def test_create_core_writes_the_js_rows(store: Storage) -> None:
    core = store.create_core(KEY, manifest=MANIFEST, key_pair=KP)
    assert (core.core_pointer, core.data_pointer, core.discovery_key) == (0, 0, DKEY)
    rows = dict(store.rows())
    assert rows == {
        b"\x00": bytes.fromhex("0201010002") + DKEY,
        b"\x01" + DKEY: bytes.fromhex("02000000"),
        bytes.fromhex("030000"): KEY
        + DKEY
        + b"\x03\x46"
        + bytes.fromhex("010000010100")
        + crypto.DEFAULT_NAMESPACE
        + KP.public_key
        + b"\x20"
        + KP.public_key
        + b"\x40"
        + KP.secret_key,
    }
    auth = core.get_auth()
    assert auth is not None and auth.key == KEY and auth.manifest == MANIFEST
    assert auth.key_pair is not None and tuple(auth.key_pair) == tuple(KP)
    assert core.get_head() is None and core.get_hints() is None
    # Creating it again returns the same core and writes nothing.
    again = store.create_core(KEY, manifest=MANIFEST, key_pair=KP)
    assert (again.core_pointer, again.data_pointer) == (0, 0)
    assert dict(store.rows()) == rows


def test_pointers_aliases_default_core_and_seed(store: Storage) -> None:
    ns = b"\x05" * 32
    first = store.create_core(KEY)
    second_key = b"\x02" * 32
    user_data: dict[str, bytes | str] = {"a": b"1", "b": "two"}
    second = store.create_core(
        second_key,
        alias=Alias(ns, "bee"),
        user_data=user_data,
        key_pair=crypto.KeyPair(b"\x09" * 32, None),  # type: ignore[arg-type]
    )
    assert (second.core_pointer, second.data_pointer) == (1, 1)
    head = store.get_head()
    assert head is not None and (head.cores, head.datas) == (2, 2)
    assert store.default_discovery_key() == first.discovery_key == DKEY
    default = store.get_core()
    assert default is not None and default.core_pointer == 0
    assert store.get_alias(ns, "bee") == second.discovery_key
    assert store.get_alias(ns, "nope") is None
    assert list(store.discovery_keys(ns)) == [second.discovery_key]
    assert sorted(store.discovery_keys()) == sorted([DKEY, second.discovery_key])
    assert list(store.aliases()) == [(Alias(ns, "bee"), second.discovery_key)]
    record = store.get_core_record(second.discovery_key)
    assert record is not None and record.alias == Alias(ns, "bee")
    assert list(second.user_data()) == [("a", b"1"), ("b", b"two")]
    auth = store.get_auth(second.discovery_key)
    assert auth is not None and auth.key_pair == (b"\x09" * 32, None) and auth.manifest is None
    # A core placed on given pointers does not move the counters.
    third = store.create_core(b"\x03" * 32, pointers=(0, 7))
    assert (third.core_pointer, third.data_pointer) == (0, 7)
    assert store.get_head() == StoreHead(2, 2, 2, 0, None, DKEY)
    assert store.alloc_data() == 2
    # Seed: kept unless overwritten.
    assert store.set_seed(b"\x07" * 32) == b"\x07" * 32
    assert store.set_seed(b"\x08" * 32, overwrite=False) == b"\x07" * 32
    assert store.seed() == b"\x07" * 32
    assert store.set_default_discovery_key(b"\x04" * 32, overwrite=False) == DKEY
    assert store.set_default_discovery_key(b"\x04" * 32) == b"\x04" * 32
    assert store.get_head() == StoreHead(2, 2, 3, 0, b"\x07" * 32, b"\x04" * 32)


def _node(i: int) -> TreeNode:
    return TreeNode(i, i + 1, bytes([i % 256]) * 32)


def test_core_batch_reads_and_ranges(store: Storage) -> None:
    core = store.create_core(KEY, manifest=MANIFEST, key_pair=KP)
    blocks = [os.urandom(i % 50) for i in range(1000)]
    page = bytes([0xFF]) * 125 + bytes(BITFIELD_PAGE_SIZE - 125)
    head = CoreHead(0, 1000, b"\x0a" * 32, b"\x01\x00" + b"\x11" * 64 + b"\x00\x00", 1700000000000)
    with core.batch() as b:
        b.put_blocks(0, blocks)
        b.put_tree_nodes(_node(i) for i in range(0, 1999, 2))
        b.put_tree_node(_node(1))
        b.put_head(head)
        b.put_hints(Hints(1000))
        b.put_bitfield_page(0, page)
        b.put_bitfield_page(3, page)
        b.put_user_data("k\x00z", "str")
        b.put_user_data("foo", b"bar")
        assert len(b) == 2007
        assert core.get_block(0) is None  # nothing is visible before the commit
    assert [core.get_block(i) for i in range(1000)] == blocks
    assert core.get_block(1000) is None
    assert core.get_tree_node(2) == _node(2) and core.get_tree_node(3) is None
    assert core.get_head() == head and core.get_hints() == Hints(1000)
    assert core.get_bitfield_page(0) == page and core.get_bitfield_page(1) is None
    assert [p for p, _ in core.bitfield_pages()] == [0, 3]
    assert [p for p, _ in core.bitfield_pages(1, 3)] == []
    assert list(core.user_data()) == [("foo", b"bar"), ("k\x00z", b"str")]
    assert [i for i, _ in core.blocks(250, 260)] == list(range(250, 260))
    assert [n.index for n in core.tree_nodes(0, 5)] == [0, 1, 2, 4]

    with core.batch() as b:
        b.delete_block_range(10)
        b.delete_block(3)
        b.put_block(500, b"again")  # after the range delete: wins
        b.delete_tree_node_range(4, 8)
        b.delete_tree_node(0)
        b.delete_bitfield_page_range(1)
        b.put_user_data("foo", None)
        b.delete_user_data("absent")
        b.delete_head()
    assert [i for i, _ in core.blocks()] == [0, 1, 2, *range(4, 10), 500]
    assert [n.index for n in core.tree_nodes(0, 12)] == [1, 2, 8, 10]
    assert [p for p, _ in core.bitfield_pages()] == [0]
    assert list(core.user_data()) == [("k\x00z", b"str")]
    assert core.get_head() is None

    b = core.batch()
    with pytest.raises(ValueError):
        b.put_bitfield_page(0, b"short")
    b.commit()
    with pytest.raises(StorageError):
        b.put_block(0, b"")


def test_uncommitted_and_failed_batches_leave_nothing(store: Storage) -> None:
    core = store.create_core(KEY)
    before = list(store.rows())
    b = core.batch()
    b.put_blocks(0, [b"a", b"b"])
    b.put_hints(Hints(2))
    del b
    with pytest.raises(RuntimeError), core.batch() as b2:
        b2.put_block(0, b"a")
        b2.delete_block_range(0)
        raise RuntimeError("boom")
    b3 = core.batch()
    b3.put_block(0, b"x")
    b3.discard()
    with pytest.raises(StorageError):
        b3.commit()
    assert list(store.rows()) == before


def test_other_core_rows(store: Storage) -> None:
    core = store.create_core(KEY)
    with core.batch() as b:
        b.put_dependency(Dependency(5, 3))
        b.put_sessions([Session("s", 4)])
    assert core.get_dependency() == Dependency(5, 3)
    assert core.get_sessions() == [Session("s", 4)]
    assert core.get_group() is None


def test_dependencies_are_followed(store: Storage) -> None:
    base = store.create_core(KEY)
    with base.batch() as b:
        b.put_blocks(0, [b"0", b"1", b"2", b"3"])
        b.put_tree_nodes([_node(0), _node(1), _node(2), _node(3)])
    session_ptr = store.alloc_data()
    from hypercore.storage import CoreStorage

    session = CoreStorage(store, base.discovery_key, base.core_pointer, session_ptr)
    with session.batch() as b:
        b.put_dependency(Dependency(base.data_pointer, 2))
        b.put_block(2, b"new")
        b.put_tree_node(TreeNode(4, 3, b"\x44" * 32))
    # Reopening through a store record resolves the dependency chain like JS resumeCore.
    reopened = store._core_storage(base.discovery_key, base.core_pointer, session_ptr)
    assert reopened.dependencies == (Dependency(base.data_pointer, 2),)
    assert [reopened.get_block(i) for i in range(4)] == [b"0", b"1", b"new", None]
    node1 = reopened.get_tree_node(1)
    assert node1 is not None and node1.index == 1  # right span 2 <= (2 - 1) * 2: from the base
    node4 = reopened.get_tree_node(4)
    assert node4 is not None and node4.size == 3


def test_memory_and_rocksdb_write_the_same_rows(tmp_path: Path) -> None:
    stores = [MemoryStorage(), RocksDBStorage.open(tmp_path)]
    try:
        for s in stores:
            core = s.create_core(KEY, manifest=MANIFEST, key_pair=KP, user_data={"x": b"y"})
            s.create_core(b"\x02" * 32, alias=Alias(b"\x00" * 32, "n"))
            with core.batch() as b:
                b.put_blocks(0, [b"hello", b"world"])
                b.put_tree_nodes([_node(0), _node(1), _node(2)])
                b.put_bitfield_page(0, b"\x03" + bytes(BITFIELD_PAGE_SIZE - 1))
                b.put_hints(Hints(2))
                b.put_head(CoreHead(0, 2, b"\x01" * 32, b"sig", 5))
            with core.batch() as b:
                b.delete_block_range(1, 2)
                b.put_user_data("x", None)
            s.set_seed(b"\x07" * 32)
        assert list(stores[0].rows()) == list(stores[1].rows())
    finally:
        for s in stores:
            s.close()


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["put", "del", "range", "ud", "udel", "node", "noderange"]),
            st.integers(0, 300),
            st.integers(0, 300),
            st.binary(max_size=5),
        ),
        max_size=30,
    ),
    st.integers(1, 4),
)
def test_random_core_batches_memory_vs_rocksdb(
    ops: list[tuple[str, int, int, bytes]], n: int
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        stores = [MemoryStorage(), RocksDBStorage.open(tmp)]
        try:
            cores = [s.create_core(KEY) for s in stores]
            chunk = max(1, len(ops) // n)
            for i in range(0, len(ops), chunk):
                for core in cores:
                    with core.batch() as b:
                        for op, a, z, data in ops[i : i + chunk]:
                            if op == "put":
                                b.put_block(a, data)
                            elif op == "del":
                                b.delete_block(a)
                            elif op == "range":
                                b.delete_block_range(a, None if z > 250 else z)
                            elif op == "ud":
                                b.put_user_data(str(a) + "\x00" * (z % 3), data)
                            elif op == "udel":
                                b.delete_user_data(str(a))
                            elif op == "node":
                                b.put_tree_node(TreeNode(a, z, b"\x01" * 32))
                            else:
                                b.delete_tree_node_range(a, z)
                assert list(stores[0].rows()) == list(stores[1].rows())
            assert list(cores[0].blocks()) == list(cores[1].blocks())
            assert list(cores[0].user_data()) == list(cores[1].user_data())
        finally:
            for s in stores:
                s.close()


def test_closed_storage_refuses_use(tmp_path: Path) -> None:
    for s in (MemoryStorage(), RocksDBStorage.open(tmp_path)):
        core = s.create_core(KEY)
        s.close()
        s.close()
        with pytest.raises(StorageClosedError):
            core.get_block(0)
        with pytest.raises(StorageClosedError):
            s.get_head()


def test_append_1000_blocks_is_cheap(tmp_path: Path) -> None:
    s = RocksDBStorage.open(tmp_path)
    try:
        core = s.create_core(KEY)
        blocks = [os.urandom(64) for _ in range(1000)]
        t = time.perf_counter()
        with core.batch() as b:
            b.put_blocks(0, blocks)
            b.put_tree_nodes(TreeNode(2 * i, 64, b"\x00" * 32) for i in range(1000))
        elapsed = time.perf_counter() - t
        assert core.get_block(999) == blocks[999]
        assert elapsed < 0.25, elapsed  # ~5 ms here; generous for slow machines
    finally:
        s.close()


# --- locks and the device file ------------------------------------------------------------------


def test_second_open_is_refused_until_close(tmp_path: Path) -> None:
    s = RocksDBStorage.open(tmp_path)
    with pytest.raises(StorageLockedError):
        RocksDBStorage.open(tmp_path)
    s.close()
    RocksDBStorage.open(tmp_path).close()


CHILD = """
import sys
from hypercore.storage import RocksDBStorage, StorageLockedError
try:
    RocksDBStorage.open(sys.argv[1]).close()
except StorageLockedError:
    print("locked")
else:
    print("opened")
"""


def _child_open(path: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()


def test_second_open_from_a_child_process_is_refused(tmp_path: Path) -> None:
    s = RocksDBStorage.open(tmp_path)
    try:
        assert _child_open(tmp_path) == "locked"
    finally:
        s.close()
    assert _child_open(tmp_path) == "opened"


def test_read_only_open_needs_no_lock(tmp_path: Path) -> None:
    s = RocksDBStorage.open(tmp_path)
    s.create_core(KEY)
    s.close()
    s = RocksDBStorage.open(tmp_path)
    try:
        ro = RocksDBStorage.open(tmp_path, read_only=True)
        assert ro.default_discovery_key() == DKEY
        with pytest.raises(StorageError):
            ro.set_seed(b"\x00" * 32)
        ro.close()
    finally:
        s.close()
    with pytest.raises(StorageError):
        RocksDBStorage.open(tmp_path / "nothing", read_only=True)


def test_device_file_format(tmp_path: Path) -> None:
    RocksDBStorage.open(tmp_path).close()
    f = tmp_path / "CORESTORE"
    lines = f.read_text().splitlines()
    fields = dict(line.split("=", 1) for line in lines)
    assert [line.split("=")[0] for line in lines][:3] == [
        "device/platform",
        "device/inode",
        "device/created",
    ]
    assert fields["device/platform"] == PLATFORM
    assert int(fields["device/inode"]) == f.stat().st_ino
    assert abs(int(fields["device/created"]) - time.time() * 1000) < 60_000
    if "device/attribute" in fields:
        assert fields["device/attribute"] == "original"
        assert os.getxattr(f, "user.device-file") == b"original"
    assert (tmp_path / "db").is_dir()


def test_copied_or_modified_store_is_refused(tmp_path: Path) -> None:
    import shutil

    src = tmp_path / "a"
    RocksDBStorage.open(src).close()
    dst = tmp_path / "b"
    shutil.copytree(src, dst)
    with pytest.raises(DeviceFileError, match=r"moved unsafely|was modified"):
        RocksDBStorage.open(dst)
    # Deleting the device file makes a new one (as in JS).
    (dst / "CORESTORE").unlink()
    RocksDBStorage.open(dst).close()

    f = src / "CORESTORE"
    st_ = f.stat()
    os.utime(f, ns=(st_.st_atime_ns, st_.st_mtime_ns + 10 * 10**9))
    with pytest.raises(DeviceFileError, match="was modified"):
        RocksDBStorage.open(src)

    other = tmp_path / "c"
    RocksDBStorage.open(other).close()
    f = other / "CORESTORE"
    text = f.read_text().replace("device/platform=linux", "device/platform=darwin")
    mtime = f.stat().st_mtime_ns
    f.write_text(text)
    os.utime(f, ns=(mtime, mtime))
    with pytest.raises(DeviceFileError, match="different platform"):
        RocksDBStorage.open(other)


def test_tables_are_written_uncompressed(tmp_path: Path) -> None:
    # rocksdb-native has no compression libraries: a Snappy table would be unreadable to JS.
    s = RocksDBStorage.open(tmp_path)
    core = s.create_core(KEY)
    with core.batch() as b:
        b.put_blocks(0, [os.urandom(5000), b"small"])
    s.close()
    assert list((tmp_path / "db").glob("*.sst")) and list((tmp_path / "db").glob("*.blob"))
    options = max((tmp_path / "db").glob("OPTIONS-*")).read_text()
    corestore = options[options.index('[CFOptions "corestore"]') :]
    assert "\n  compression=kNoCompression" in corestore
    default = options[options.index('[CFOptions "default"]') : options.index(corestore[:20])]
    assert "\n  compression=kNoCompression" in default
    assert "enable_blob_files=true" in corestore and "min_blob_size=4096" in corestore


def test_legacy_hypercore_10_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "primary-key").write_bytes(b"\x00" * 32)
    with pytest.raises(StorageError, match="hypercore 10"):
        RocksDBStorage.open(tmp_path)
    # The failed open released the lock.
    (tmp_path / "primary-key").unlink()
    RocksDBStorage.open(tmp_path).close()


def test_keys_used_by_the_core_storage(store: Storage) -> None:
    core = store.create_core(KEY)
    with core.batch() as b:
        b.put_block(300, b"x")
        b.put_user_data("foo", b"bar")
    rows = dict(store.rows())
    assert rows[k.data_block(0, 300)] == b"x"
    assert rows[bytes.fromhex("04000600666f6f0001")] == b"bar"
