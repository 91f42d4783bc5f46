"""Damaged RocksDB storage: rows deleted or overwritten, table and blob file bytes flipped (so
RocksDB's checksums fail), WAL truncated or garbled. Every case either reopens as a consistent
core or fails with a StorageError naming the row and the core; a damaged block is dropped (its
bit cleared) when read; a server keeps serving the rest of the core."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import trio

from corestore import Corestore
from hypercore import Hypercore, crypto, errors
from hypercore.crypto import TreeNode
from hypercore.storage import BITFIELD_PAGE_SIZE, MemoryStorage, StorageCorruptionError
from hypercore.storage import keys as k
from hypercore.storage.kv import RocksKV
from hypercore.storage.records import (
    CORE_HEAD,
    HINTS,
    CoreHead,
    Hints,
    decode_tree_node,
    encode_tree_node,
)
from hypercore.wire import RequestIndex, RequestUpgrade
from protomux import encoding as c

from .replication_helpers import connect, open_core, wait_peer, wait_until

ROOT = Path(__file__).resolve().parents[2]
KP = crypto.key_pair(bytes(range(32)))
KEY = crypto.core_key(KP.public_key)
DKEY = crypto.discovery_key(KEY)
# The first core of a store has core and data pointer 0.
HEAD = k.data_head(0)


def block(i: int, size: int = 100) -> bytes:
    """Block ``i``: ``size`` bytes found nowhere else in the store."""
    seed = hashlib.sha256(f"block {i}".encode()).digest()
    return (seed * (size // 32 + 1))[:size]


async def write_core(path: Path, n: int, size: int = 100) -> None:
    async with Hypercore(path, key_pair=KP) as core:
        await core.append([block(i, size) for i in range(n)])


@contextmanager
def raw(path: Path) -> Iterator[RocksKV]:
    """The store's RocksDB, opened directly (the store must be closed)."""
    kv = RocksKV(path / "db")
    try:
        yield kv
    finally:
        kv.close()


def put(path: Path, key: bytes, value: bytes) -> None:
    with raw(path) as kv:
        kv.write([(key, value, None)])


def delete(path: Path, *keys: bytes) -> None:
    with raw(path) as kv:
        kv.write([(key, None, None) for key in keys])


def flip(path: Path, suffix: str, needle: bytes | None = None, offset: int = 0) -> None:
    """Flip a byte of the store's only ``suffix`` file: inside the first copy of ``needle``, or
    at ``offset``."""
    (file,) = (path / "db").glob(f"*{suffix}")
    data = bytearray(file.read_bytes())
    at = offset if needle is None else data.index(needle) + len(needle) // 2
    data[at] ^= 0xFF
    file.write_bytes(bytes(data))


def unreadable_blocks(path: Path, n: int, size: int) -> set[int]:
    """The blocks RocksDB cannot read, asked directly (the others read back intact)."""
    found = set()
    with raw(path) as kv:
        for i in range(n):
            try:
                assert kv.get(k.data_block(0, i)) == block(i, size)
            except StorageCorruptionError as e:
                assert e.row == f"block {i} of data pointer 0" and "Corruption" in str(e)
                found.add(i)
    return found


def assert_names(error: StorageCorruptionError, row: str) -> None:
    assert error.row == row, error
    assert error.discovery_key == DKEY, error
    assert row in str(error) and DKEY.hex() in str(error)


async def open_fails(path: Path) -> StorageCorruptionError:
    with pytest.raises(StorageCorruptionError) as info:
        async with Hypercore(path):
            pass
    return info.value


# --- blocks -------------------------------------------------------------------------------------


async def test_a_block_whose_row_is_deleted_is_dropped_when_read(tmp_path: Path) -> None:
    await write_core(tmp_path, 10)
    delete(tmp_path, k.data_block(0, 4))
    with trio.fail_after(10):
        async with Hypercore(tmp_path) as core:
            assert await core.has(4)  # nothing has looked at the row yet
            with pytest.raises(StorageCorruptionError) as info:
                await core.get(4)
            assert_names(info.value, "block 4")
            assert not await core.has(4) and core.contiguous_length == 4
            with pytest.raises(errors.BlockNotAvailableError):
                await core.get(4, wait=False)
            for i in (*range(4), *range(5, 10)):
                assert await core.get(i) == block(i)
        async with Hypercore(tmp_path) as core:  # the dropped bit was stored
            assert core.length == 10 and core.contiguous_length == 4
            assert not await core.has(4) and await core.has(5, 10)


async def test_a_table_checksum_failure_drops_the_blocks_of_that_table_block(
    tmp_path: Path,
) -> None:
    # 3000-byte blocks: a few per 8 KB table block. Flip a byte inside block 7's bytes.
    await write_core(tmp_path, 20, size=3000)
    flip(tmp_path, ".sst", block(7, 3000))
    damaged = unreadable_blocks(tmp_path, 20, 3000)
    assert 7 in damaged and len(damaged) < 5
    with trio.fail_after(10):
        async with Hypercore(tmp_path) as core:
            for i in range(20):
                if i in damaged:
                    with pytest.raises(StorageCorruptionError) as info:
                        await core.get(i)
                    assert_names(info.value, f"block {i}")
                else:
                    assert await core.get(i) == block(i, 3000)
            assert [i for i in range(20) if not await core.has(i)] == sorted(damaged)
        async with Hypercore(tmp_path) as core:
            assert core.length == 20 and core.contiguous_length == min(damaged)
            assert [i for i in range(20) if not await core.has(i)] == sorted(damaged)


async def test_iterating_over_a_table_checksum_failure_raises_instead_of_ending(
    tmp_path: Path,
) -> None:
    await write_core(tmp_path, 20, size=3000)
    flip(tmp_path, ".sst", block(7, 3000))
    with raw(tmp_path) as kv:
        start, end = k.data_block(0, 0), k.data_block(0, 20)
        for reverse in (False, True):
            seen = []
            with pytest.raises(StorageCorruptionError) as info:
                for key, _ in kv.iterate(start, end, reverse=reverse):
                    seen.append(k.decode_uint(key, len(start) - 1)[0])
            assert "Corruption" in str(info.value) and info.value.row.startswith("row ")
            assert 7 not in seen and seen


async def test_a_table_checksum_failure_in_the_first_rows_fails_the_open(tmp_path: Path) -> None:
    await write_core(tmp_path, 20, size=3000)
    flip(tmp_path, ".sst", offset=5)  # the store head, core record, auth and head are there
    with pytest.raises(StorageCorruptionError) as info:
        async with Hypercore(tmp_path):
            pass
    assert info.value.row == "store head" and "Corruption" in str(info.value)


# --- tree nodes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["deleted", "undecodable"])
async def test_a_proof_that_needs_a_damaged_tree_node_is_a_storage_error(
    tmp_path: Path, damage: str
) -> None:
    await write_core(tmp_path, 10)
    if damage == "deleted":
        delete(tmp_path, k.data_tree(0, 2))  # leaf of block 1: block 0's proof needs it
    else:
        put(tmp_path, k.data_tree(0, 2), b"\x02\x03")
    async with Hypercore(tmp_path) as core:
        with pytest.raises(StorageCorruptionError) as info:
            await core.proof(block=RequestIndex(0, 0), upgrade=RequestUpgrade(0, 10))
        assert_names(info.value, "tree node 2")
        assert await core.has(0)  # a damaged node is not a damaged block
        reader = Hypercore(MemoryStorage(), core.key)
        await reader.ready()
        assert await reader.verify(
            await core.proof(block=RequestIndex(9, 0), upgrade=RequestUpgrade(0, 10), manifest=True)
        )
        assert await reader.get(9) == block(9)
        await reader.aclose()


@pytest.mark.parametrize("damage", ["deleted", "undecodable", "wrong hash", "wrong index"])
async def test_a_damaged_root_node_is_recomputed_on_open(tmp_path: Path, damage: str) -> None:
    await write_core(tmp_path, 10)  # roots 7 (blocks 0-7) and 17 (blocks 8-9)
    key = k.data_tree(0, 7)
    with raw(tmp_path) as kv:
        original = kv.get(key)
    assert original is not None
    node = decode_tree_node(original)
    if damage == "deleted":
        delete(tmp_path, key)
    elif damage == "undecodable":
        put(tmp_path, key, b"\xff")
    elif damage == "wrong hash":
        put(tmp_path, key, encode_tree_node(TreeNode(7, node.size, bytes(32))))
    else:
        put(tmp_path, key, encode_tree_node(TreeNode(5, node.size, node.hash)))
    with trio.fail_after(10):
        async with Hypercore(tmp_path) as core:
            assert core.length == 10 and core.contiguous_length == 10
            assert [await core.get(i) for i in range(10)] == [block(i) for i in range(10)]
            reader = Hypercore(MemoryStorage(), core.key)
            await reader.ready()
            assert await reader.verify(
                await core.proof(
                    block=RequestIndex(3, 0), upgrade=RequestUpgrade(0, 10), manifest=True
                )
            )
            await reader.aclose()
    with raw(tmp_path) as kv:
        assert kv.get(key) == original  # the repair was stored


async def test_a_lost_root_subtree_fails_the_open_naming_the_root(tmp_path: Path) -> None:
    await write_core(tmp_path, 10)
    # Root 17 covers blocks 8 and 9 (leaves 16 and 18): without it, leaf 16 and block 8 it
    # cannot be hashed again.
    delete(tmp_path, k.data_tree(0, 17), k.data_tree(0, 16), k.data_block(0, 8))
    assert_names(await open_fails(tmp_path), "tree node 17")


# --- head, bitfield, auth, hints, core record, store head ------------------------------------


def _head(path: Path) -> CoreHead:
    with raw(path) as kv:
        value = kv.get(HEAD)
    assert value is not None
    return c.decode(CORE_HEAD, value)


@pytest.mark.parametrize("damage", ["undecodable", "signature", "tree hash"])
async def test_a_damaged_head_fails_the_open_naming_it(tmp_path: Path, damage: str) -> None:
    await write_core(tmp_path, 10)
    head = _head(tmp_path)
    assert head.signature is not None
    if damage == "undecodable":
        put(tmp_path, HEAD, b"\x00\x0a\x01")
    elif damage == "signature":
        signature = head.signature[:2] + bytes([head.signature[2] ^ 1]) + head.signature[3:]
        put(tmp_path, HEAD, c.encode(CORE_HEAD, replace(head, signature=signature)))
    else:
        put(tmp_path, HEAD, c.encode(CORE_HEAD, replace(head, root_hash=bytes(32))))
    error = await open_fails(tmp_path)
    assert_names(error, "head")
    if damage == "signature":  # also the error JS gives it
        assert isinstance(error, errors.InvalidSignatureError)
    elif damage == "tree hash":
        assert isinstance(error, errors.InvalidChecksumError)


@pytest.mark.parametrize("damage", ["truncated row", "blob checksum"])
async def test_a_damaged_bitfield_page_is_rebuilt_from_the_block_rows(
    tmp_path: Path, damage: str
) -> None:
    await write_core(tmp_path, 40)
    key = k.data_bitfield(0, 0)
    delete(tmp_path, k.data_block(0, 30))  # a block the page claims but is not stored
    if damage == "truncated row":
        with raw(tmp_path) as kv:
            page = kv.get(key)
        assert page is not None
        put(tmp_path, key, page[:100])
    else:
        flip(tmp_path, ".blob", offset=2000)  # a bitfield page is the one value kept in a blob
    with trio.fail_after(10):
        async with Hypercore(tmp_path) as core:
            assert core.length == 40 and core.contiguous_length == 30
            assert [i for i in range(40) if not await core.has(i)] == [30]
            assert [await core.get(i) for i in range(30)] == [block(i) for i in range(30)]
    with raw(tmp_path) as kv:
        page = kv.get(key)
        hints = kv.get(k.data_hints(0))
    assert page is not None and len(page) == BITFIELD_PAGE_SIZE
    assert page[:6] == b"\xff\xff\xff\xbf\xff\x00"  # blocks 0-39 but 30
    assert hints is not None and c.decode(HINTS, hints) == Hints(30)


@pytest.mark.parametrize("damage", ["deleted", "undecodable"])
async def test_a_damaged_auth_row_fails_the_open_naming_it(tmp_path: Path, damage: str) -> None:
    await write_core(tmp_path, 3)
    if damage == "deleted":
        delete(tmp_path, k.core_auth(0))
    else:
        put(tmp_path, k.core_auth(0), KEY + DKEY + b"\x01\x10")  # manifest promised, absent
    error = await open_fails(tmp_path)
    assert_names(error, "auth")
    assert isinstance(error, errors.StorageEmptyError) == (damage == "deleted")  # as JS says
    async with Corestore(tmp_path) as store:
        with pytest.raises(StorageCorruptionError) as info:
            await store.get(key=KEY).ready()
        assert_names(info.value, "auth")


async def test_undecodable_hints_are_recomputed(tmp_path: Path) -> None:
    await write_core(tmp_path, 10)
    put(tmp_path, k.data_hints(0), b"\x07")
    async with Hypercore(tmp_path) as core:
        assert core.length == 10 and core.contiguous_length == 10
    with raw(tmp_path) as kv:
        hints = kv.get(k.data_hints(0))
    assert hints is not None and c.decode(HINTS, hints) == Hints(10)


async def test_damaged_store_rows_fail_the_open_naming_them(tmp_path: Path) -> None:
    await write_core(tmp_path, 3)
    put(tmp_path, k.core_by_discovery_key(DKEY), b"\x02\x00")
    assert_names(await open_fails(tmp_path), "core record")
    put(tmp_path, k.store_head(), b"\x09")
    error = await open_fails(tmp_path)
    assert error.row == "store head" and error.discovery_key is None


# --- the write-ahead log ------------------------------------------------------------------------

_WAL_WRITER = textwrap.dedent(
    """
    import hashlib, os, sys, trio
    from hypercore import Hypercore, crypto

    async def main() -> None:
        core = Hypercore(sys.argv[1], key_pair=crypto.key_pair(bytes(range(32))))
        await core.ready()
        for i in range(30):
            seed = hashlib.sha256(f"block {i}".encode()).digest()
            await core.append((seed * 4)[:100])  # block(i)
        os._exit(0)  # no close: every write is only in the WAL

    trio.run(main)
    """
)


@pytest.mark.parametrize("damage", ["truncated", "garbled"])
async def test_a_damaged_wal_reopens_as_a_prefix(tmp_path: Path, damage: str) -> None:
    subprocess.run([sys.executable, "-c", _WAL_WRITER, str(tmp_path)], cwd=ROOT, check=True)
    (log,) = (tmp_path / "db").glob("*.log")
    assert not list((tmp_path / "db").glob("*.sst"))
    data = bytearray(log.read_bytes())
    if damage == "truncated":
        del data[len(data) * 2 // 3 :]
    else:
        data[len(data) * 2 // 3] ^= 0xFF
    log.write_bytes(bytes(data))
    os.sync()
    with trio.fail_after(10):
        async with Hypercore(tmp_path, key_pair=KP) as core:
            assert 0 < core.length < 30 and core.contiguous_length == core.length
            assert [await core.get(i) for i in range(core.length)] == [
                block(i) for i in range(core.length)
            ]
            assert not await core.has(core.length)
            await core.append(block(core.length))  # and it goes on
        async with Hypercore(tmp_path) as core:
            assert core.contiguous_length == core.length > 0


# --- serving from a damaged core ----------------------------------------------------------------


async def _serve_damaged(path: Path, size: int, damaged: set[int], first: int) -> None:
    """Replicate the core at ``path`` (20 blocks, ``damaged`` unreadable) to a reader: the
    writer's own ``get(first)`` raises; the reader gets every other block, asking for the
    remaining damaged ones too (the writer finds them damaged while serving); the writer is
    still serving afterwards."""
    with trio.fail_after(30):
        async with AsyncExitStack() as stack:
            writer = await stack.enter_async_context(Hypercore(path))
            with pytest.raises(StorageCorruptionError) as info:
                await writer.get(first)
            assert_names(info.value, f"block {first}")
            reader = await open_core(stack, writer.key)
            _, stream = await connect(stack, writer, reader)
            await wait_peer(reader, stream)
            await reader.update()
            reader.download(0, 20)
            good = [i for i in range(20) if i not in damaged]

            async def reader_has_the_rest() -> bool:
                return all([await reader.has(i) for i in good])

            await wait_until(reader_has_the_rest)
            assert [await reader.get(i) for i in good] == [block(i, size) for i in good]
            await wait_until(lambda: not any(writer._state.bitfield.get(i) for i in damaged))  # type: ignore[union-attr]
            assert not any([await reader.has(i) for i in damaged])
            await writer.append(block(20, size))  # the writer still serves
            assert await reader.get(20) == block(20, size)


async def test_a_server_with_a_deleted_block_row_serves_the_rest(tmp_path: Path) -> None:
    await write_core(tmp_path, 20)
    delete(tmp_path, k.data_block(0, 5), k.data_block(0, 9))
    await _serve_damaged(tmp_path, 100, {5, 9}, first=9)


async def test_a_server_with_a_table_checksum_failure_serves_the_rest(tmp_path: Path) -> None:
    await write_core(tmp_path, 20, size=3000)
    flip(tmp_path, ".sst", block(12, 3000))
    damaged = unreadable_blocks(tmp_path, 20, 3000)
    assert 12 in damaged and len(damaged) < 5
    await _serve_damaged(tmp_path, 3000, damaged, first=12)
