"""The store (Corestore-level rows) and per-core storage over a :mod:`~hypercore.storage.kv`
backend: the logic of JS ``hypercore-storage`` 3 ``CorestoreStorage`` / ``HypercoreStorage``,
synchronous.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from protomux import encoding as c

from .. import flat_tree
from ..crypto import TreeNode
from ..crypto import discovery_key as _discovery_key
from ..manifest import Manifest
from . import keys as k
from .device import DeviceFile
from .errors import StorageCorruptionError, StorageError
from .kv import KV, MemoryKV, Op, RocksKV, name_row
from .records import (
    AUTH,
    CORE_HEAD,
    CORE_RECORD,
    DEPENDENCY,
    GROUP,
    HINTS,
    SESSIONS,
    STORE_HEAD,
    STORE_VERSION,
    Alias,
    Auth,
    CoreHead,
    CoreRecord,
    Dependency,
    Group,
    Hints,
    KeyPairLike,
    Session,
    StoredKeyPair,
    StoreHead,
    decode_tree_node,
    encode_tree_node,
)

__all__ = [
    "BITFIELD_PAGE_SIZE",
    "CoreBatch",
    "CoreStorage",
    "MemoryStorage",
    "RocksDBStorage",
    "Storage",
]

BITFIELD_PAGE_SIZE = 4096
"""Bytes per bitfield page; page ``p`` covers blocks ``[32768 p, 32768 (p + 1))``."""

#: Pointers whose core the store remembers for naming it in errors (the cores looked up lately;
#: beyond it the memory is emptied, never grown).
MAX_NAMED_POINTERS = 1 << 16

_encode_uint = k.encode_uint
_INF = k.UINT_INFINITY


_T = TypeVar("_T")


class Storage:
    """A store: the rows of one Corestore (or of one standalone Hypercore directory).

    Use :class:`RocksDBStorage` for a directory JS can open, :class:`MemoryStorage` for tests
    and RAM-only cores; both share this code and write the same keys and values.
    """

    def __init__(self, kv: KV, *, read_only: bool = False) -> None:
        self._kv = kv
        self.read_only = read_only
        self.closed = False
        #: ``(03 or 04, core or data pointer) -> discovery key`` of the cores looked up so far:
        #: the errors of damaged rows name the core they belong to.
        self._owners: dict[tuple[int, int], bytes] = {}
        kv.namer = self.name_row
        if not read_only and kv.get(k.store_head()) is None:
            # What JS writes on first open of an empty store (its "migration 0" with nothing
            # to migrate): a version 2 head with zero counters.
            kv.write([(k.store_head(), c.encode(STORE_HEAD, StoreHead()), None)])

    # --- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the backend; further use raises :class:`StorageClosedError`."""
        if self.closed:
            return
        self.closed = True
        self._kv.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def rows(self, start: bytes = b"", end: bytes = b"\xff") -> Iterator[tuple[bytes, bytes]]:
        """Every raw ``(key, value)`` in ``[start, end)``, in key order (for dumps and tests)."""
        return self._kv.iterate(start, end)

    def _write(self, ops: Sequence[Op]) -> None:
        if self.read_only:
            raise StorageError("storage is read-only")
        self._kv.write(ops)

    # --- damaged rows -------------------------------------------------------------------------

    def name_row(self, key: bytes) -> tuple[str, bytes | None]:
        """``(row name, discovery key of its core or None)`` of a key, for error messages."""
        return name_row(key, self._owners)

    def damaged(
        self, key: bytes, detail: str, discovery_key: bytes | None = None
    ) -> StorageCorruptionError:
        """The error for the row of ``key`` (of the core ``discovery_key``, if given): missing,
        undecodable or unreadable."""
        if discovery_key is None:
            name, discovery_key = self.name_row(key)
        else:
            name = k.describe_key(key).name
        return StorageCorruptionError(name, discovery_key, detail, key)

    def _decode(
        self,
        decoder: c.Codec[_T] | Callable[[bytes], _T],
        key: bytes,
        value: bytes | None,
        discovery_key: bytes | None = None,
    ) -> _T | None:
        """Decode the value of a row (None stays None) with a codec or a function: every
        decoding failure, whatever it raised, becomes a :class:`StorageCorruptionError`
        naming the row."""
        if value is None:
            return None
        try:
            if isinstance(decoder, c.Codec):
                return c.decode(decoder, value)
            return decoder(value)
        except Exception as e:
            detail = f"cannot decode its {len(value)} bytes: {e}"
            raise self.damaged(key, detail, discovery_key) from e

    def _read(
        self, codec: c.Codec[_T], key: bytes, discovery_key: bytes | None = None
    ) -> _T | None:
        """Read and decode one row."""
        return self._decode(codec, key, self._kv.get(key), discovery_key)

    def _own(self, discovery_key: bytes, record: CoreRecord) -> None:
        owners = self._owners
        if len(owners) >= MAX_NAMED_POINTERS:
            owners.clear()  # errors of older cores' rows name only their pointers then
        owners[k.TL_CORE, record.core_pointer] = discovery_key
        owners[k.TL_DATA, record.data_pointer] = discovery_key

    # --- store head ---------------------------------------------------------------------------

    def get_head(self) -> StoreHead | None:
        """The store head (counters, seed, default discovery key); ``None`` if never written."""
        return self._read(STORE_HEAD, k.store_head())

    def _head_or_init(self) -> StoreHead:
        return self.get_head() or StoreHead()

    def seed(self) -> bytes | None:
        """The Corestore primary key (32 bytes) or ``None``."""
        head = self.get_head()
        return None if head is None else head.seed

    def set_seed(self, seed: bytes, *, overwrite: bool = True) -> bytes:
        """Store the Corestore primary key; keeps an existing one unless ``overwrite``."""
        head = self._head_or_init()
        if head.seed is None or overwrite:
            head = replace(head, seed=bytes(seed))
        self._write([(k.store_head(), c.encode(STORE_HEAD, head), None)])
        assert head.seed is not None
        return head.seed

    def default_discovery_key(self) -> bytes | None:
        """The discovery key of the core ``new Hypercore(dir)`` opens without a key."""
        head = self.get_head()
        return None if head is None else head.default_discovery_key

    def set_default_discovery_key(self, discovery_key: bytes, *, overwrite: bool = True) -> bytes:
        head = self._head_or_init()
        if head.default_discovery_key is None or overwrite:
            head = replace(head, default_discovery_key=bytes(discovery_key))
        self._write([(k.store_head(), c.encode(STORE_HEAD, head), None)])
        assert head.default_discovery_key is not None
        return head.default_discovery_key

    # --- cores --------------------------------------------------------------------------------

    def get_core_record(self, discovery_key: bytes) -> CoreRecord | None:
        """The core record (pointers, alias) of a core."""
        record = self._read(CORE_RECORD, k.core_by_discovery_key(discovery_key))
        if record is not None:
            self._own(bytes(discovery_key), record)
        return record

    def has_core(self, discovery_key: bytes) -> bool:
        return self._kv.get(k.core_by_discovery_key(discovery_key)) is not None

    def get_alias(self, namespace: bytes, name: str) -> bytes | None:
        """The discovery key of the core created as ``name`` in ``namespace``."""
        return self._kv.get(k.core_by_alias(namespace, name))

    def get_auth(self, discovery_key: bytes) -> Auth | None:
        record = self.get_core_record(discovery_key)
        if record is None:
            return None
        return self._read(AUTH, k.core_auth(record.core_pointer), discovery_key)

    def cores(self) -> Iterator[tuple[bytes, CoreRecord]]:
        """Every ``(discovery key, core record)``, in discovery key order."""
        start, end = k.core_range()
        for key, value in self._kv.iterate(start, end):
            record = self._decode(CORE_RECORD, key, value)
            assert record is not None
            yield key[1:], record

    def discovery_keys(self, namespace: bytes | None = None) -> Iterator[bytes]:
        """Discovery keys of every core, or of the named cores of one namespace."""
        if namespace is None:
            yield from (dkey for dkey, _ in self.cores())
        else:
            yield from (value for _, value in self._kv.iterate(*k.alias_range(namespace)))

    def aliases(self, namespace: bytes | None = None) -> Iterator[tuple[Alias, bytes]]:
        """Every ``(alias, discovery key)``, optionally of one namespace."""
        start, end = k.alias_range(namespace)
        for key, value in self._kv.iterate(start, end):
            alias = self._decode(_alias_of_key, key, key)
            assert alias is not None
            yield alias, value

    def get_core(self, discovery_key: bytes | None = None) -> CoreStorage | None:
        """The storage of an existing core, or ``None``; no key means the default core.

        Follows the data dependency chain like JS ``resumeCore``. A version 1 core record is
        bumped to version 2 (JS migration 1 does only that); version 0 records come from the
        hypercore 10 file layout and need the JS migration.
        """
        if discovery_key is None:
            discovery_key = self.default_discovery_key()
            if discovery_key is None:
                return None
        record = self.get_core_record(discovery_key)
        if record is None:
            return None
        if record.version < STORE_VERSION:
            if record.version == 0:
                raise StorageError("core has a version 0 record: open the store with JS once")
            if not self.read_only:
                record = CoreRecord(
                    STORE_VERSION, record.core_pointer, record.data_pointer, record.alias
                )
                self._write([(k.core_by_discovery_key(discovery_key), _enc_record(record), None)])
        return self._core_storage(discovery_key, record.core_pointer, record.data_pointer)

    def _core_storage(self, dkey: bytes, core_pointer: int, data_pointer: int) -> CoreStorage:
        deps: list[Dependency] = []
        ptr = data_pointer
        while True:
            dep = self._read(DEPENDENCY, k.data_dependency(ptr), dkey)
            if dep is None:
                break
            deps.append(dep)
            ptr = dep.data_pointer
            if len(deps) > 1 << 16:
                raise StorageError("dependency cycle")
        return CoreStorage(self, dkey, core_pointer, data_pointer, deps)

    def create_core(
        self,
        key: bytes,
        *,
        discovery_key: bytes | None = None,
        manifest: Manifest | None = None,
        key_pair: KeyPairLike | None = None,
        encryption_key: bytes | None = None,
        alias: Alias | None = None,
        user_data: Mapping[str, bytes | str] | Iterable[tuple[str, bytes | str]] = (),
        pointers: tuple[int, int] | None = None,
    ) -> CoreStorage:
        """Create a core (or return the existing one with this discovery key), as JS
        ``createCore``, in one atomic write:

        * the store head with ``cores``/``datas`` incremented (the new core gets the old
          values as its core/data pointers, unless ``pointers`` gives them) and, if the store
          had none, ``default_discovery_key`` set to this core;
        * the core record (version 2, pointers, alias), the alias row if any;
        * the auth row (key, discovery key, manifest, key pair, encryption key);
        * one user data row per ``user_data`` item.
        """
        dkey = bytes(discovery_key) if discovery_key is not None else _discovery_key(key)
        existing = self.get_core_record(dkey)
        if existing is not None:
            core = self.get_core(dkey)
            assert core is not None
            return core
        head = self._head_or_init()
        if pointers is None:
            core_pointer, data_pointer = head.cores, head.datas
            cores, datas = head.cores + 1, head.datas + 1
        else:
            core_pointer, data_pointer = pointers
            cores, datas = head.cores, head.datas
        default = head.default_discovery_key
        head = replace(head, cores=cores, datas=datas, default_discovery_key=default or dkey)
        record = CoreRecord(STORE_VERSION, core_pointer, data_pointer, alias)
        kp = None
        if key_pair is not None:
            sk = key_pair.secret_key
            kp = StoredKeyPair(bytes(key_pair.public_key), None if sk is None else bytes(sk))
        auth = Auth(
            bytes(key),
            dkey,
            manifest,
            kp,
            None if encryption_key is None else bytes(encryption_key),
        )
        ops: list[Op] = [
            (k.store_head(), c.encode(STORE_HEAD, head), None),
            (k.core_by_discovery_key(dkey), _enc_record(record), None),
        ]
        if alias is not None:
            ops.append((k.core_by_alias(alias.namespace, alias.name), dkey, None))
        ops.append((k.core_auth(core_pointer), c.encode(AUTH, auth), None))
        self._own(dkey, record)
        items = user_data.items() if isinstance(user_data, Mapping) else user_data
        for name, value in items:
            ops.append((k.data_user_data(data_pointer, name), _user_value(value), None))
        self._write(ops)
        return CoreStorage(self, dkey, core_pointer, data_pointer, [])

    def alloc_data(self) -> int:
        """Allocate a data pointer (for a named session), as JS ``_allocData``."""
        head = self._head_or_init()
        value = c.encode(STORE_HEAD, replace(head, datas=head.datas + 1))
        self._write([(k.store_head(), value, None)])
        return head.datas


def _alias_of_key(key: bytes) -> Alias:
    ns, name = k.decode_alias_key(key)
    return Alias(ns, name)


def _enc_record(record: CoreRecord) -> bytes:
    return c.encode(CORE_RECORD, record)


def _user_value(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


class MemoryStorage(Storage):
    """A store in memory, with the same rows as on disk."""

    def __init__(self) -> None:
        super().__init__(MemoryKV())


class RocksDBStorage(Storage):
    """A store directory shared with JS: ``<path>/CORESTORE`` + ``<path>/db`` (RocksDB)."""

    def __init__(
        self, kv: KV, path: Path, device: DeviceFile | None, *, read_only: bool = False
    ) -> None:
        self.path = path
        self._device = device
        try:
            super().__init__(kv, read_only=read_only)
        except BaseException:
            kv.close()
            if device is not None:
                device.close()
            raise

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, read_only: bool = False) -> RocksDBStorage:
        """Open (creating if needed) the store at ``path``, as JS ``new CorestoreStorage(path)``.

        Takes the ``CORESTORE`` lock first: :class:`StorageLockedError` if the store is open in
        another process (JS or Python) or in this one; :class:`DeviceFileError` if the device
        file says the directory was copied or moved. ``read_only`` opens the database
        read-only without the device file or its lock (like JS ``readOnly``), and may run
        while JS has the store open.
        """
        root = Path(path)
        if read_only:
            if not (root / "db").is_dir():
                raise StorageError(f"no store at {root}")
            return cls(RocksKV(root / "db", read_only=True), root, None, read_only=True)
        root.mkdir(parents=True, exist_ok=True)
        device = DeviceFile.open(root / "CORESTORE", lock=True)
        try:
            if not (root / "db").exists() and (
                (root / "primary-key").exists() or (root / "cores").is_dir()
            ):
                raise StorageError(f"{root} is a hypercore 10 store: open it with JS once")
            kv = RocksKV(root / "db")
        except BaseException:
            device.close()
            raise
        return cls(kv, root, device)

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()
        finally:
            if self._device is not None:
                self._device.close()
                self._device = None


class CoreStorage:
    """The rows of one core: bound to its core pointer (auth, sessions, group) and data
    pointer (head, hints, blocks, tree nodes, bitfield, user data).

    Point reads are one backend ``get``. Writes go through :meth:`batch`.
    """

    def __init__(
        self,
        storage: Storage,
        discovery_key: bytes,
        core_pointer: int,
        data_pointer: int,
        dependencies: Sequence[Dependency] = (),
    ) -> None:
        self.storage = storage
        self.discovery_key = discovery_key
        self.core_pointer = core_pointer
        self.data_pointer = data_pointer
        self.dependencies: tuple[Dependency, ...] = tuple(dependencies)
        self._kv = storage._kv
        self._decode = storage._decode
        data = k.data_prefix(data_pointer)
        self._data = data
        self._block = data + b"\x03"
        self._tree = data + b"\x04"
        self._bitfield = data + b"\x05"
        self._user = data + b"\x06"

    def __repr__(self) -> str:
        return (
            f"CoreStorage(dkey={self.discovery_key.hex()[:16]}..., "
            f"core={self.core_pointer}, data={self.data_pointer})"
        )

    # --- reads --------------------------------------------------------------------------------

    def _read(self, codec: c.Codec[_T], key: bytes) -> _T | None:
        return self._decode(codec, key, self._kv.get(key), self.discovery_key)

    def damaged(self, key: bytes, detail: str) -> StorageCorruptionError:
        """The error for a row of this core that is missing, undecodable or unreadable."""
        return self.storage.damaged(key, detail, self.discovery_key)

    def get_auth(self) -> Auth | None:
        return self._read(AUTH, k.core_auth(self.core_pointer))

    def get_sessions(self) -> list[Session] | None:
        return self._read(SESSIONS, k.core_sessions(self.core_pointer))

    def get_group(self) -> Group | None:
        return self._read(GROUP, k.core_group(self.core_pointer))

    def get_head(self) -> CoreHead | None:
        """The tree head; ``None`` for a core that never had data (length 0)."""
        return self._read(CORE_HEAD, self._data + b"\x00")

    def get_dependency(self) -> Dependency | None:
        return self._read(DEPENDENCY, self._data + b"\x01")

    def get_hints(self) -> Hints | None:
        return self._read(HINTS, self._data + b"\x02")

    def block_key(self, index: int) -> bytes:
        """The key of block ``index`` (in the data set of a dependency below its length)."""
        for dep in self.dependencies:
            if index < dep.length:
                return k.data_block(dep.data_pointer, index)
        return self._block + _encode_uint(index)

    def tree_node_key(self, index: int) -> bytes:
        """The key of tree node ``index`` (in the data set of a dependency that has it)."""
        if self.dependencies:
            span = flat_tree.right_span(index)
            for dep in self.dependencies:
                if span <= (dep.length - 1) * 2:
                    return k.data_tree(dep.data_pointer, index)
        return self._tree + _encode_uint(index)

    def get_block(self, index: int) -> bytes | None:
        """The stored bytes of block ``index`` (still encrypted for encrypted cores)."""
        if self.dependencies:
            return self._kv.get(self.block_key(index))
        return self._kv.get(self._block + _encode_uint(index))

    def get_tree_node(self, index: int) -> TreeNode | None:
        """The Merkle tree node at flat-tree ``index``."""
        key = self.tree_node_key(index) if self.dependencies else self._tree + _encode_uint(index)
        return self._node(key, self._kv.get(key), index)

    def _node(self, key: bytes, value: bytes | None, index: int | None) -> TreeNode | None:
        """Decode a tree node row; one whose index is not that of its key is damaged too."""
        node = self._decode(decode_tree_node, key, value, self.discovery_key)
        if node is not None and index is not None and node.index != index:
            raise self.damaged(key, f"it holds tree node {node.index}")
        return node

    def get_bitfield_page(self, page: int) -> bytes | None:
        """The 4096-byte bitfield page ``page`` (bit ``b & 7`` of byte ``(b % 32768) >> 3``)."""
        key = self._bitfield + _encode_uint(page) + b"\x00"
        return self._page(key, self._kv.get(key))

    def _page(self, key: bytes, value: bytes | None) -> bytes | None:
        if value is not None and len(value) != BITFIELD_PAGE_SIZE:
            raise self.damaged(key, f"{len(value)} bytes, not {BITFIELD_PAGE_SIZE}")
        return value

    def get_user_data(self, key: str) -> bytes | None:
        return self._kv.get(self._user + k.encode_string(key))

    def user_data(self) -> Iterator[tuple[str, bytes]]:
        """Every user data ``(key, value)``, in key order."""
        n = len(self._user)
        for key, value in self._kv.iterate(self._user, self._data + b"\x07"):
            name, _ = k.decode_string(key, n)
            yield name, value

    def blocks(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Stored ``(index, block)`` in ``[start, end)`` of this data pointer only."""
        n = len(self._block)
        for key, value in self._kv.iterate(*self._range(self._block, start, end)):
            yield k.decode_uint(key, n)[0], value

    def tree_nodes(self, start: int = 0, end: int | None = None) -> Iterator[TreeNode]:
        """Stored tree nodes with flat-tree index in ``[start, end)`` of this data pointer."""
        n = len(self._tree)
        for key, value in self._kv.iterate(*self._range(self._tree, start, end)):
            node = self._node(key, value, k.decode_uint(key, n)[0] if len(key) > n else None)
            assert node is not None
            yield node

    def bitfield_pages(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Stored ``(page number, page)`` in ``[start, end)``."""
        n = len(self._bitfield)
        s = self._bitfield + _encode_uint(start) + b"\x00"
        e = self._bitfield + (_INF if end is None else _encode_uint(end)) + b"\x00"
        for key, value in self._kv.iterate(s, e):
            page, i = k.decode_uint(key, n)
            if key[i:] == b"\x00":
                self._page(key, value)
                yield page, value

    @staticmethod
    def _range(prefix: bytes, start: int, end: int | None) -> tuple[bytes, bytes]:
        return prefix + _encode_uint(start), prefix + (_INF if end is None else _encode_uint(end))

    # --- writes -------------------------------------------------------------------------------

    def batch(self) -> CoreBatch:
        """A write batch; nothing is written until :meth:`CoreBatch.commit`."""
        return CoreBatch(self)


class CoreBatch:
    """Writes to one core, applied by :meth:`commit` as one atomic write (in call order, so a
    put after a range delete of the same key wins). Usable as a context manager that commits
    on success and drops everything on an exception.
    """

    def __init__(self, core: CoreStorage) -> None:
        self.core = core
        self._ops: list[Op] | None = []

    def _list(self) -> list[Op]:
        ops = self._ops
        if ops is None:
            raise StorageError("batch already committed")
        return ops

    def __len__(self) -> int:
        return len(self._ops or ())

    # blocks
    def put_block(self, index: int, data: bytes) -> None:
        self._list().append((self.core._block + _encode_uint(index), bytes(data), None))

    def put_blocks(self, start: int, blocks: Iterable[bytes]) -> None:
        """Blocks ``start``, ``start + 1``, ...; the cheap way to append many."""
        prefix = self.core._block
        enc = _encode_uint
        self._list().extend(
            [(prefix + enc(start + i), bytes(b), None) for i, b in enumerate(blocks)]
        )

    def delete_block(self, index: int) -> None:
        self._list().append((self.core._block + _encode_uint(index), None, None))

    def delete_block_range(self, start: int, end: int | None = None) -> None:
        """Delete blocks ``[start, end)``; ``end=None`` means to the end (JS ``-1``)."""
        self._list().append(self._range(self.core._block, start, end))

    # tree
    def put_tree_node(self, node: TreeNode) -> None:
        self._list().append(
            (self.core._tree + _encode_uint(node.index), encode_tree_node(node), None)
        )

    def put_tree_nodes(self, nodes: Iterable[TreeNode]) -> None:
        prefix = self.core._tree
        enc = _encode_uint
        self._list().extend([(prefix + enc(n.index), encode_tree_node(n), None) for n in nodes])

    def delete_tree_node(self, index: int) -> None:
        self._list().append((self.core._tree + _encode_uint(index), None, None))

    def delete_tree_node_range(self, start: int, end: int | None = None) -> None:
        self._list().append(self._range(self.core._tree, start, end))

    # bitfield
    def put_bitfield_page(self, page: int, data: bytes) -> None:
        if len(data) != BITFIELD_PAGE_SIZE:
            raise ValueError(f"a bitfield page is {BITFIELD_PAGE_SIZE} bytes, not {len(data)}")
        key = self.core._bitfield + _encode_uint(page) + b"\x00"
        self._list().append((key, bytes(data), None))

    def delete_bitfield_page(self, page: int) -> None:
        self._list().append((self.core._bitfield + _encode_uint(page) + b"\x00", None, None))

    def delete_bitfield_page_range(self, start: int, end: int | None = None) -> None:
        prefix = self.core._bitfield
        s = prefix + _encode_uint(start) + b"\x00"
        e = prefix + (_INF if end is None else _encode_uint(end)) + b"\x00"
        self._list().append((s, None, e))

    # single rows
    def put_head(self, head: CoreHead) -> None:
        self._list().append((self.core._data + b"\x00", c.encode(CORE_HEAD, head), None))

    def delete_head(self) -> None:
        self._list().append((self.core._data + b"\x00", None, None))

    def put_dependency(self, dependency: Dependency) -> None:
        self._list().append((self.core._data + b"\x01", c.encode(DEPENDENCY, dependency), None))

    def put_hints(self, hints: Hints) -> None:
        self._list().append((self.core._data + b"\x02", c.encode(HINTS, hints), None))

    def put_auth(self, auth: Auth) -> None:
        self._list().append((k.core_auth(self.core.core_pointer), c.encode(AUTH, auth), None))

    def put_sessions(self, sessions: Sequence[Session]) -> None:
        key = k.core_sessions(self.core.core_pointer)
        self._list().append((key, c.encode(SESSIONS, list(sessions)), None))

    def put_group(self, group: Group) -> None:
        self._list().append((k.core_group(self.core.core_pointer), c.encode(GROUP, group), None))

    def delete_group(self) -> None:
        self._list().append((k.core_group(self.core.core_pointer), None, None))

    # user data
    def put_user_data(self, key: str, value: bytes | str | None) -> None:
        """Set user data ``key``; a str value is stored as UTF-8, ``None`` deletes (as JS)."""
        v = None if value is None else _user_value(value)
        self._list().append((self.core._user + k.encode_string(key), v, None))

    def delete_user_data(self, key: str) -> None:
        self._list().append((self.core._user + k.encode_string(key), None, None))

    @staticmethod
    def _range(prefix: bytes, start: int, end: int | None) -> Op:
        return (
            prefix + _encode_uint(start),
            None,
            prefix + (_INF if end is None else _encode_uint(end)),
        )

    # --- commit -------------------------------------------------------------------------------

    def commit(self) -> None:
        """Apply every change as one atomic write; the batch cannot be used afterwards."""
        ops = self._list()
        self._ops = None
        if ops:
            self.core.storage._write(ops)

    def discard(self) -> None:
        """Drop every change."""
        self._ops = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()
