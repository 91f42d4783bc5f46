"""A tiny ordered key-value interface with two backends: RocksDB (through rocksdict, laid out
exactly like JS ``rocksdb-native`` + ``hypercore-storage``) and an in-memory sorted map.

Both compare keys as unsigned bytes, apply a list of operations atomically and iterate a
half-open range ``[start, end)`` over a consistent view taken when the iteration starts.

Every error RocksDB reports (a block checksum mismatch, an I/O error) is raised as a
:class:`~hypercore.storage.errors.StorageCorruptionError` naming the row (through the backend's
``namer``, which the store replaces with one that also names the core), and an iteration that
RocksDB ends because of one raises it too instead of ending early.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol, cast

from rocksdict import (
    AccessType,
    BlockBasedOptions,
    Cache,
    DBCompressionType,
    Options,
    Rdict,
    RdictIter,
    ReadOptions,
    WriteBatch,
)

from . import keys as k
from .errors import StorageClosedError, StorageCorruptionError, StorageError

__all__ = ["COLUMN_FAMILY", "KV", "MemoryKV", "Op", "RocksKV", "RowNamer", "name_row"]

_Items = Iterator[tuple[bytes, bytes]]

COLUMN_FAMILY = "corestore"
"""The RocksDB column family holding every row (the ``default`` family exists but is unused)."""

Op = tuple[bytes, "bytes | None", "bytes | None"]
"""``(key, value, end)``: put when ``value`` is set, delete ``[key, end)`` when ``end`` is set,
else delete ``key`` (the change tuples of JS ``hypercore-storage``)."""

RowNamer = Callable[[bytes], "tuple[str, bytes | None]"]
"""``key -> (row name, discovery key of its core or None)``, for the errors of a backend."""


def name_row(
    key: bytes, owners: Mapping[tuple[int, int], bytes] | None = None
) -> tuple[str, bytes | None]:
    """The name of the row of ``key`` and the discovery key of its core, found in the key
    (a core record) or in ``owners`` (``(03 or 04, core or data pointer) -> discovery key``);
    a row whose core is not known there is named with its pointer."""
    row = k.describe_key(key)
    if row.tag == k.TL_CORE_BY_DKEY and len(key) == 33:
        return row.name, bytes(key[1:])
    if row.pointer is None or row.tag is None:
        return row.name, None
    dkey = owners.get((row.tag, row.pointer)) if owners else None
    if dkey is None:
        kind = "core" if row.tag == k.TL_CORE else "data"
        return f"{row.name} of {kind} pointer {row.pointer}", None
    return row.name, dkey


class KV(Protocol):
    """The operations the storage layer needs from a backend."""

    #: Names the row of a key in error messages.
    namer: RowNamer

    def get(self, key: bytes) -> bytes | None: ...

    def iterate(
        self, start: bytes, end: bytes, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]: ...

    def write(self, ops: Sequence[Op]) -> None: ...

    def close(self) -> None: ...


class MemoryKV:
    """An ordered map in memory: a dict plus a sorted list of its keys."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []
        self._closed = False
        self.namer: RowNamer = name_row

    def get(self, key: bytes) -> bytes | None:
        if self._closed:
            raise StorageClosedError("storage is closed")
        return self._data.get(key)

    def iterate(
        self, start: bytes, end: bytes, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        if self._closed:
            raise StorageClosedError("storage is closed")
        keys = self._keys
        selected = keys[bisect_left(keys, start) : bisect_left(keys, end)]
        if reverse:
            selected.reverse()
        data = self._data
        return iter([(k, data[k]) for k in selected])

    def write(self, ops: Sequence[Op]) -> None:
        if self._closed:
            raise StorageClosedError("storage is closed")
        data = self._data
        keys = self._keys
        added: set[bytes] = set()  # in ``data`` but not yet in ``keys``
        for key, value, end in ops:
            if end is not None:
                if added:
                    keys = self._merge(keys, added)
                i = bisect_left(keys, key)
                j = bisect_left(keys, end)
                if i < j:
                    for k in keys[i:j]:
                        del data[k]
                    del keys[i:j]
            elif value is not None:
                if key not in data:
                    added.add(key)
                data[key] = value
            elif key in data:
                del data[key]
                if key in added:
                    added.discard(key)
                else:
                    del keys[bisect_left(keys, key)]
        if added:
            self._merge(keys, added)

    def _merge(self, keys: list[bytes], added: set[bytes]) -> list[bytes]:
        if len(added) < 8:
            for k in added:
                keys.insert(bisect_left(keys, k), k)
        else:
            keys.extend(sorted(added))
            keys.sort()  # two sorted runs: a linear merge
        added.clear()
        return keys

    def close(self) -> None:
        self._closed = True

    def __len__(self) -> int:
        return len(self._data)


class RocksKV:
    """The column family ``corestore`` of a RocksDB database, through rocksdict."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        opts = Options(raw_mode=True)
        opts.set_compression_type(DBCompressionType.none())
        opts.create_if_missing(not read_only)
        opts.create_missing_column_families(not read_only)
        access = AccessType.read_only() if read_only else AccessType.read_write()
        try:
            self._db = Rdict(
                str(path),
                options=opts,
                column_families={COLUMN_FAMILY: _column_family_options()},
                access_type=access,
            )
        except Exception as e:  # rocksdict raises plain Exception subclasses
            raise StorageError(f"cannot open RocksDB at {path}: {e}") from e
        try:
            self._cf = self._db.get_column_family(COLUMN_FAMILY)
            self._handle = self._db.get_column_family_handle(COLUMN_FAMILY)
        except Exception as e:
            self._db.close()
            raise StorageError(f"RocksDB at {path} has no '{COLUMN_FAMILY}' column family") from e
        self._closed = False
        self.namer: RowNamer = name_row

    def _damaged(self, key: bytes, error: Exception, where: str = "") -> StorageCorruptionError:
        """The error for a row RocksDB could not read (``where``: "row after " ...)."""
        if isinstance(error, StorageCorruptionError):
            return error
        name, dkey = self.namer(key)
        return StorageCorruptionError(where + name, dkey, str(error) or repr(error), key)

    def get(self, key: bytes) -> bytes | None:
        if self._closed:
            raise StorageClosedError("storage is closed")
        try:
            value: bytes | None = self._cf.get(key)
        except Exception as e:  # rocksdict raises plain Exception("Corruption: ...")
            raise self._damaged(key, e) from e
        return value

    def iterate(
        self, start: bytes, end: bytes, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        if self._closed:
            raise StorageClosedError("storage is closed")
        # rocksdict ignores iterate_lower_bound, so the start is checked by hand; and its
        # iterators point into the bytes of the upper bound without keeping them alive, so the
        # generators below hold them (``end``, and the ReadOptions) until the iteration ends.
        ro = ReadOptions()
        ro.set_iterate_upper_bound(end)
        try:
            if not reverse:
                items = cast(_Items, self._cf.items(from_key=start, read_opt=ro))
            else:
                items = cast(_Items, self._cf.items(backwards=True, from_key=end, read_opt=ro))
        except Exception as e:
            raise self._damaged(start, e, "rows from ") from e
        return self._checked(items, ro, start, end, reverse)

    # rocksdict's item iterators end quietly where RocksDB stops on an error (a block whose
    # checksum fails ends the iteration as if the range ended there). So once one ends, a raw
    # iterator is placed after the last row seen: RocksDB reads the same block again and its
    # status() raises the error (a range that really ended costs one seek). The iterators are
    # dropped before the error is raised: its traceback holds this frame, and a live iterator
    # keeps the database open after close().

    def _checked(
        self, items: _Items | None, ro: ReadOptions, start: bytes, end: bytes, reverse: bool
    ) -> _Items:
        last: bytes | None = None
        it: RdictIter | None = None
        try:
            assert items is not None
            for kv in items:
                if reverse and kv[0] < start:
                    return
                last = kv[0]
                yield kv
            if self._closed:
                raise StorageClosedError("storage is closed")
            it = self._cf.iter(ro)
            if reverse:
                it.seek_for_prev(end if last is None else last)
            else:
                it.seek(start if last is None else last)
            if last is not None and it.valid() and it.key() == last:
                it.prev() if reverse else it.next()
            it.status()
            return
        except StorageError:
            raise
        except Exception as e:
            if last is None:
                key, where = (end, "rows before ") if reverse else (start, "rows from ")
            else:
                key, where = last, "row before " if reverse else "row after "
            error = self._damaged(key, e, where)
            error.__cause__ = e
            e.__traceback__ = None
        items = it = None
        raise error

    def write(self, ops: Sequence[Op]) -> None:
        if self._closed:
            raise StorageClosedError("storage is closed")
        # The column family is passed to every call: rocksdict's WriteBatch.delete_range
        # ignores set_default_column_family and would delete from "default".
        cf = self._handle
        wb = WriteBatch(raw_mode=True)
        wb.set_default_column_family(cf)
        put = wb.put
        delete = wb.delete
        for key, value, end in ops:
            if end is not None:
                if key < end:  # RocksDB rejects reversed ranges; an empty one is a no-op
                    wb.delete_range(key, end, cf)
            elif value is not None:
                put(key, value, cf)
            else:
                delete(key, cf)
        try:
            self._db.write(wb)
        except Exception as e:
            name, dkey = self.namer(ops[0][0]) if ops else ("nothing", None)
            core = f" of core {dkey.hex()}" if dkey is not None else ""
            raise StorageError(f"cannot write {len(ops)} rows ({name}{core} ...): {e}") from e

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        del self._cf
        del self._handle
        try:
            self._db.close()
        except Exception as e:  # flushing the memtable on close failed
            raise StorageError(f"cannot close RocksDB: {e}") from e


#: The block cache of each open database (data blocks; index and filter blocks stay loaded).
BLOCK_CACHE_BYTES = 32 * 1024 * 1024


def _column_family_options() -> Options:
    """The options JS ``hypercore-storage`` gives the ``corestore`` column family."""
    o = Options(raw_mode=True)
    # rocksdb-native is built without compression libraries: rocksdict's default (Snappy)
    # would make every table file unreadable to JS.
    o.set_compression_type(DBCompressionType.none())
    o.set_bottommost_compression_type(DBCompressionType.none())
    o.set_blob_compression_type(DBCompressionType.none())
    o.set_enable_blob_files(True)
    o.set_min_blob_size(4096)
    o.set_blob_file_size(256 * 1024 * 1024)
    o.set_enable_blob_gc(True)
    o.set_blob_gc_age_cutoff(0.25)
    o.set_blob_gc_force_threshold(1.0)
    o.set_write_buffer_size(64 * 1024 * 1024)
    t = BlockBasedOptions()
    t.set_block_size(8192)
    # JS caches index and filter blocks but pins every one of them (pinning tier ALL), so a
    # read never reparses them. rocksdict can pin only level 0's; keeping them with the table
    # readers instead is the same in effect. Unpinned, every read of a 200,000-block core
    # re-read its table's index: 40 us per get instead of 2.
    t.set_cache_index_and_filter_blocks(False)
    t.set_block_cache(Cache(BLOCK_CACHE_BYTES))
    t.set_format_version(6)
    t.set_bloom_filter(10, False)
    o.set_block_based_table_factory(t)
    return o
