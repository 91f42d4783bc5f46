"""Rows that do not decode raise StorageCorruptionError naming the row and its core, whatever
the codec raised (the RocksDB read errors themselves: tests/hypercore/test_damaged_storage.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hypercore.crypto import TreeNode
from hypercore.storage import (
    CoreStorage,
    MemoryStorage,
    StorageCorruptionError,
    StorageError,
)
from hypercore.storage import keys as k
from hypercore.storage.records import encode_tree_node

from .test_store import DKEY, KEY, KP, MANIFEST


def test_keys_are_named_by_row_kind_and_index() -> None:
    named = {
        k.store_head(): ("store head", None),
        k.core_by_discovery_key(DKEY): ("core record", None),
        k.core_by_alias(b"\x05" * 32, "bee"): ("alias 'bee'", None),
        k.core_auth(3): ("auth", 3),
        k.core_sessions(3): ("sessions", 3),
        k.core_group(3): ("group", 3),
        k.data_head(2): ("head", 2),
        k.data_dependency(2): ("dependency", 2),
        k.data_hints(2): ("hints", 2),
        k.data_block(0, 5): ("block 5", 0),
        k.data_tree(300, 70000): ("tree node 70000", 300),
        k.data_bitfield(1, 2): ("bitfield page 2", 1),
        k.data_user_data(1, "q"): ("user data 'q'", 1),
        k.data_block(0, 5)[:-1]: ("block", 0),
        k.group_topic(b"\x06" * 32): ("group topic", None),
        b"\x04\xfc": ("row 04fc", None),  # a pointer cut short
        b"\x09": ("row 09", None),
        b"": ("row (empty key)", None),
    }
    for key, (name, pointer) in named.items():
        row = k.describe_key(key)
        assert (row.name, row.pointer) == (name, pointer), key.hex()


def _damage(storage: MemoryStorage, key: bytes, value: bytes) -> None:
    storage._kv.write([(key, value, None)])


def _raises(read: Callable[[], object], row: str, dkey: bytes | None = DKEY) -> None:
    with pytest.raises(StorageCorruptionError) as info:
        read()
    e = info.value
    assert isinstance(e, StorageError)
    assert (e.row, e.discovery_key) == (row, dkey), e
    assert row in str(e) and (dkey is None or dkey.hex() in str(e))


def _core() -> tuple[MemoryStorage, CoreStorage]:
    storage = MemoryStorage()
    core = storage.create_core(KEY, manifest=MANIFEST, key_pair=KP)
    return storage, core


def test_undecodable_core_rows_name_the_row_and_the_core() -> None:
    storage, core = _core()
    data = k.data_prefix(core.data_pointer)
    cases: list[tuple[bytes, bytes, Callable[[], object], str]] = [
        (k.core_auth(0), KEY + DKEY + b"\x02\x05", core.get_auth, "auth"),
        (k.core_sessions(0), b"\x01\x05ab", core.get_sessions, "sessions"),
        (k.core_group(0), b"\x01", core.get_group, "group"),
        (data + b"\x00", b"\x00\x01", core.get_head, "head"),
        (data + b"\x01", b"\x07", core.get_dependency, "dependency"),
        (data + b"\x02", b"\x01", core.get_hints, "hints"),
    ]
    for key, value, read, row in cases:
        _damage(storage, key, value)
        _raises(read, row)
    _raises(lambda: storage.get_auth(DKEY), "auth")
    _raises(lambda: storage.get_core(DKEY), "dependency")


def test_damaged_tree_nodes_and_bitfield_pages_name_their_index() -> None:
    storage, core = _core()
    batch = core.batch()
    batch.put_tree_node(TreeNode(0, 3, bytes(32)))
    batch.commit()
    _damage(storage, k.data_tree(0, 4), b"\x04\x03")  # cut short
    _damage(storage, k.data_tree(0, 6), encode_tree_node(TreeNode(8, 1, bytes(32))))
    _damage(storage, k.data_bitfield(0, 1), bytes(100))
    assert core.get_tree_node(0) == TreeNode(0, 3, bytes(32))
    _raises(lambda: core.get_tree_node(4), "tree node 4")
    _raises(lambda: core.get_tree_node(6), "tree node 6")  # holds node 8
    _raises(lambda: list(core.tree_nodes()), "tree node 4")
    _raises(lambda: core.get_bitfield_page(1), "bitfield page 1")
    _raises(lambda: list(core.bitfield_pages()), "bitfield page 1")


def test_damaged_store_rows_are_named() -> None:
    storage, _ = _core()
    _damage(storage, k.core_by_discovery_key(DKEY), b"\x02\x00")
    _raises(lambda: storage.get_core_record(DKEY), "core record")
    _raises(lambda: list(storage.cores()), "core record")
    bad_alias = k.core_by_alias(b"\x05" * 32, "x")[:-1]  # no terminator
    _damage(storage, bad_alias, DKEY)
    _raises(lambda: list(storage.aliases()), f"row {bad_alias.hex()}", None)
    _damage(storage, k.store_head(), b"\x09")
    _raises(storage.get_head, "store head", None)
    _raises(storage.default_discovery_key, "store head", None)
