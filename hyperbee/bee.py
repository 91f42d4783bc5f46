"""The :class:`Hyperbee`: a sorted key/value store over a Hypercore, block-for-block the same
as JS hyperbee 2 (``hyperbee/index.js`` ``Hyperbee``)."""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import trio

from hypercore.codecs import BINARY
from hypercore.session import Hypercore

from . import iterators
from .batch import Batch
from .codecs import (
    Cas,
    DiffEntry,
    Encoding,
    Encodings,
    Entry,
    HistoryEntry,
    PrefixEncoding,
    resolve_encoding,
)
from .errors import BadArgumentError, BeeClosedError, BeeNotOpenError, DecodingError
from .iterators import encode_range
from .messages import Header, Metadata, decode_header
from .nodes import Block

if TYPE_CHECKING:
    from hypercore.codecs import ValueEncoding

    from .watch import EntryWatcher, Watcher

__all__ = ["Hyperbee"]

SEP = b"\x00"

#: Decoded blocks kept per bee (all its subs, checkouts and snapshots share them).
DEFAULT_CACHE_SIZE = 65536


class _BlockCache:
    """Decoded blocks by seq, valid for one fork of the core; oldest out first."""

    __slots__ = ("blocks", "fork", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.fork = -1
        self.blocks: OrderedDict[int, Block] = OrderedDict()

    def put(self, seq: int, block: Block) -> None:
        blocks = self.blocks
        if len(blocks) >= self.size:
            if self.size <= 0:
                return
            blocks.popitem(last=False)
        blocks[seq] = block

    def truncated(self, length: int, fork: int) -> None:
        self.fork = fork
        for seq in [s for s in self.blocks if s >= length]:
            del self.blocks[seq]


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


class Hyperbee(trio.abc.AsyncResource):
    """A B-tree of keys and values stored in ``core``.

    Keys are sorted by their encoded bytes. ``key_encoding``/``value_encoding`` are names
    (``"binary"``, ``"utf-8"``, ``"json"``), compact-encoding codecs or objects with
    ``encode``/``decode``; without one, bytes and str are stored as given and bytes come back.
    ``metadata`` goes into the header a new bee writes first. ``prefix`` is put before every
    key (as in a :meth:`sub`). With ``always_duplicate=False`` a put of the value already
    stored appends nothing (its subs still append, as JS's do). Use it as an async context
    manager (closing the bee closes ``core``, as in JS), or call :meth:`ready` and
    :meth:`aclose`.
    """

    def __init__(
        self,
        core: Hypercore,
        *,
        key_encoding: Encoding = None,
        value_encoding: Encoding = None,
        metadata: Metadata | None = None,
        prefix: bytes | str | None = None,
        sep: bytes | str = SEP,
        readonly: bool = False,
        always_duplicate: bool = True,
        cache_size: int = DEFAULT_CACHE_SIZE,
        checkout: int = 0,
    ) -> None:
        self.core = core
        self.metadata = metadata
        self.readonly = readonly
        self.always_duplicate = always_duplicate
        self.sep = _as_bytes(sep)
        self.prefix = _as_bytes(prefix) if prefix else None
        self._key_encoding = resolve_encoding(key_encoding)
        self._value_encoding = resolve_encoding(value_encoding)
        self._sub = self.prefix is not None
        self._encodings = self._make_encodings(self._key_encoding, self._value_encoding)
        self._checkout = checkout
        self._root = self
        self._lock = trio.Semaphore(1)
        self._cache = _BlockCache(cache_size)
        self._owns_core = True  # closing this bee closes core
        self._view = False
        self._opened = False
        self._closed = False
        self._watchers: list[Watcher] = []
        self._entry_watchers: list[EntryWatcher] = []

    def _make_encodings(self, key: ValueEncoding | None, value: ValueEncoding | None) -> Encodings:
        if self.prefix is not None:
            return Encodings(PrefixEncoding(self.prefix, key), value)
        return Encodings(key, value)

    def _derive(
        self,
        core: Hypercore,
        *,
        prefix: bytes | None,
        checkout: int,
        encodings: tuple[ValueEncoding | None, ValueEncoding | None],
        owns_core: bool,
    ) -> Hyperbee:
        """A sub, a checkout or a snapshot: a copy sharing the metadata, separator, root bee,
        write lock and block cache, with its own core, prefix, version and encodings."""
        bee = copy.copy(self)
        bee.core = core
        bee.readonly = self.readonly or checkout != 0
        # JS gives subs and checkouts the default (true) whatever the bee's own setting:
        # the same operations must append the same blocks.
        bee.always_duplicate = True
        bee.prefix = prefix
        bee._key_encoding, bee._value_encoding = encodings
        bee._sub = prefix is not None
        bee._encodings = bee._make_encodings(*encodings)
        bee._checkout = checkout
        bee._owns_core = owns_core
        bee._view = True
        bee._opened = True
        bee._closed = False
        bee._watchers = []
        bee._entry_watchers = []
        return bee

    # --- lifecycle --------------------------------------------------------------------------

    async def ready(self) -> None:
        """Open the core (idempotent). A new bee writes its header with its first write."""
        if self._opened:
            return
        if self._closed:
            raise BeeClosedError("the bee is closed")
        await self.core.ready()
        self._opened = True
        self._cache.fork = self.core.fork
        self.core.on("append", self._on_append)
        self.core.on("truncate", self._on_truncate)
        if self._checkout == -1:
            self._checkout = max(1, self.core.length)

    async def aclose(self) -> None:
        """Close the bee, its watchers, and the core it owns (a checkout or snapshot owns its
        own session; a sub owns nothing)."""
        if self._closed:
            return
        self._closed = True
        for w in list(self._watchers):
            await w.aclose()
        for ew in list(self._entry_watchers):
            await ew.aclose()
        if not self._view and self._opened:
            self.core.off("append", self._on_append)
            self.core.off("truncate", self._on_truncate)
        if self._owns_core:
            await self.core.aclose()

    async def __aenter__(self) -> Hyperbee:
        await self.ready()
        return self

    def _on_append(self) -> None:
        for w in self._watchers:
            w._notify(False)
        for ew in self._entry_watchers:
            ew._notify(False)

    def _on_truncate(self, length: int, fork: int) -> None:
        self._cache.truncated(length, fork)
        for w in self._watchers:
            w._notify(True)
        for ew in self._entry_watchers:
            ew._notify(True)

    def _require_open(self) -> None:
        if self._closed:
            raise BeeClosedError("the bee is closed")
        if not self._opened:
            raise BeeNotOpenError("the bee is not open yet: await ready() or use async with")

    # --- properties ---------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """The length of the core this bee reads (at least 1): a checkout's own version."""
        return max(1, self._checkout or self.core.length)

    @property
    def key(self) -> bytes | None:
        return self.core.key

    @property
    def discovery_key(self) -> bytes | None:
        return self.core.discovery_key

    @property
    def id(self) -> str | None:
        return self.core.id

    @property
    def writable(self) -> bool:
        return self.core.writable and not self.readonly

    @property
    def readable(self) -> bool:
        return self.core.readable

    # --- reads and writes ---------------------------------------------------------------------

    def _encoding(self, key_encoding: Encoding, value_encoding: Encoding) -> Encodings:
        if key_encoding is None and value_encoding is None:
            return self._encodings
        key, value = self._resolve(key_encoding, value_encoding)
        return self._make_encodings(key, value)

    def _resolve(
        self, key_encoding: Encoding, value_encoding: Encoding
    ) -> tuple[ValueEncoding | None, ValueEncoding | None]:
        """The given encodings, or this bee's where not given (both without the prefix)."""
        return (
            resolve_encoding(key_encoding) if key_encoding is not None else self._key_encoding,
            resolve_encoding(value_encoding)
            if value_encoding is not None
            else self._value_encoding,
        )

    def _batch(
        self,
        key_encoding: Encoding = None,
        value_encoding: Encoding = None,
        *,
        wait: bool = True,
        update: bool = True,
        cache: bool = True,
    ) -> Batch:
        self._require_open()
        return Batch(
            self,
            self.core,
            wait=wait,
            update=update,
            cache=cache,
            encoding=self._encoding(key_encoding, value_encoding),
        )

    async def get(
        self,
        key: Any,
        *,
        wait: bool = True,
        update: bool = True,
        key_encoding: Encoding = None,
        value_encoding: Encoding = None,
    ) -> Entry | None:
        """The entry of ``key`` (``seq``, ``key``, ``value``), or None."""
        return await self._batch(key_encoding, value_encoding, wait=wait, update=update).get(key)

    async def get_by_seq(
        self, seq: int, *, key_encoding: Encoding = None, value_encoding: Encoding = None
    ) -> Entry:
        """The key and value written by block ``seq`` (no value for a deletion)."""
        return await self._batch(key_encoding, value_encoding).get_by_seq(seq)

    async def put(
        self,
        key: Any,
        value: Any = None,
        *,
        cas: Cas | None = None,
        key_encoding: Encoding = None,
        value_encoding: Encoding = None,
    ) -> None:
        """Write ``key`` = ``value`` as one block. With ``cas(previous, new)``, an existing
        key is replaced only if it returns true."""
        await self._batch(key_encoding, value_encoding).put(key, value, cas=cas)

    async def delete(
        self,
        key: Any,
        *,
        cas: Cas | None = None,
        key_encoding: Encoding = None,
        value_encoding: Encoding = None,
    ) -> None:
        """Delete ``key`` (a missing key writes nothing). With ``cas(previous, tombstone)``,
        only if it returns true."""
        await self._batch(key_encoding, value_encoding).delete(key, cas=cas)

    def batch(self, *, key_encoding: Encoding = None, value_encoding: Encoding = None) -> Batch:
        """A batch: its puts and deletes stay pending (and visible to its own reads) until
        :meth:`Batch.flush` appends them at once. It holds the bee's write lock from its first
        write until flushed or closed. ``async with bee.batch() as b:`` flushes on success and
        drops everything on an error."""
        self._require_open()
        return Batch(
            self,
            self.core,
            batch_lock=trio.Semaphore(1),
            encoding=self._encoding(key_encoding, value_encoding),
        )

    def read(
        self,
        *,
        gt: Any = None,
        gte: Any = None,
        lt: Any = None,
        lte: Any = None,
        reverse: bool = False,
        limit: int | None = None,
        key_encoding: Encoding = None,
        value_encoding: Encoding = None,
    ) -> AsyncIterator[Entry]:
        """Entries in key order (``reverse``: descending) within the bounds, at most
        ``limit``: ``async for entry in bee.read(gte="a", lt="b")``."""
        batch = self._batch(key_encoding, value_encoding, cache=False)
        return batch.read(gt=gt, gte=gte, lt=lt, lte=lte, reverse=reverse, limit=limit)

    async def peek(
        self,
        *,
        gt: Any = None,
        gte: Any = None,
        lt: Any = None,
        lte: Any = None,
        reverse: bool = False,
        key_encoding: Encoding = None,
        value_encoding: Encoding = None,
    ) -> Entry | None:
        """The first entry of the range, or None."""
        it = self.read(
            gt=gt,
            gte=gte,
            lt=lt,
            lte=lte,
            reverse=reverse,
            limit=1,
            key_encoding=key_encoding,
            value_encoding=value_encoding,
        )
        async for entry in it:
            return entry
        return None

    def history(
        self,
        *,
        live: bool = False,
        reverse: bool = False,
        gt: int | None = None,
        gte: int | None = None,
        lt: int | None = None,
        lte: int | None = None,
        limit: int | None = None,
        key_encoding: Encoding = None,
        value_encoding: Encoding = None,
    ) -> AsyncIterator[HistoryEntry]:
        """Every write in seq order (``type`` ``"put"`` or ``"del"``), between seq bounds
        (negative ones count back from the version); ``live`` goes on with new writes."""
        batch = self._batch(key_encoding, value_encoding, cache=False)
        return iterators.history(
            batch,
            live=live,
            reverse=reverse,
            gt=gt,
            gte=gte,
            lt=lt,
            lte=lte,
            limit=limit,
            encoding=batch.encoding,
        )

    def diff(
        self,
        other: int | Hyperbee,
        *,
        gt: Any = None,
        gte: Any = None,
        lt: Any = None,
        lte: Any = None,
        limit: int | None = None,
        key_encoding: Encoding = None,
        value_encoding: Encoding = None,
    ) -> AsyncIterator[DiffEntry]:
        """The keys whose entries differ between this version (``left``) and ``other`` (a
        version, or another view of this bee: ``right``), in key order."""
        self._require_open()
        encoding = self._encoding(key_encoding, value_encoding)
        egt, egte, elt, elte = encode_range(encoding.key, self._sub, gt, gte, lt, lte)
        if isinstance(other, Hyperbee):
            right_version, right_core = other.version, other.core
        else:
            right_version, right_core = max(1, other), self.core
        left_version = self.version
        left = Batch(self, self.core, cache=False, checkout=left_version, encoding=encoding)
        right = Batch(self, right_core, cache=False, checkout=right_version, encoding=encoding)
        return iterators.diff(
            left, right, gt=egt, gte=egte, lt=elt, lte=elte, limit=limit, encoding=encoding
        )

    # --- views --------------------------------------------------------------------------------

    def sub(
        self,
        prefix: bytes | str,
        *,
        sep: bytes | str | None = None,
        key_encoding: Encoding = None,
        value_encoding: Encoding = None,
    ) -> Hyperbee:
        """The bee of the keys under ``prefix``: they are stored as this bee's prefix, then
        ``prefix``, then ``sep`` (default the bee's, a zero byte), and read without it."""
        self._require_open()
        s = _as_bytes(sep) if sep is not None else self.sep
        full = (self.prefix or b"") + _as_bytes(prefix) + s
        bee = self._derive(
            self.core,
            prefix=full,
            checkout=self._checkout,
            encodings=self._resolve(key_encoding, value_encoding),
            owns_core=False,
        )
        bee.readonly = self.readonly
        return bee

    def checkout(
        self, version: int, *, key_encoding: Encoding = None, value_encoding: Encoding = None
    ) -> Hyperbee:
        """A read-only bee of ``version`` (a past length of the core; a later one waits for
        it). It has its own session on the core: close it."""
        self._require_open()
        version = max(1, version)
        core = self.core
        session = core.snapshot() if version <= core.length else core.session(writable=False)
        return self._derive(
            session,
            prefix=self.prefix,
            checkout=version,
            encodings=self._resolve(key_encoding, value_encoding),
            owns_core=True,
        )

    def snapshot(
        self, *, key_encoding: Encoding = None, value_encoding: Encoding = None
    ) -> Hyperbee:
        """A read-only bee of the current version (close it)."""
        return self.checkout(self.version, key_encoding=key_encoding, value_encoding=value_encoding)

    # --- header, updates, watching ------------------------------------------------------------

    async def get_header(self, *, wait: bool = True) -> Header | None:
        """The header block (protocol and metadata), or None for an empty core."""
        self._require_open()
        if self.core.length == 0 and not (wait and self.core.peers):
            return None
        block = await self.core.get(0, wait=wait, value_encoding=BINARY)
        return decode_header(block)

    async def update(self, *, wait: bool = True) -> bool:
        """Learn the newest length the core's peers have (as ``core.update()``)."""
        return await self.core.update(wait=wait)

    def watch(
        self,
        *,
        gt: Any = None,
        gte: Any = None,
        lt: Any = None,
        lte: Any = None,
        eager: bool = False,
    ) -> Watcher:
        """Changes to the range: ``async with bee.watch(...) as w: async for current,
        previous in w:`` yields a snapshot of the new version and of the one before, each
        time a write (local or replicated) or a truncation changes an entry in the range. The
        snapshots stay open until the next step."""
        from .watch import Watcher

        self._require_open()
        if self._checkout != 0:
            raise BadArgumentError("only a live bee can be watched, not a checkout")
        return Watcher(self, dict(gt=gt, gte=gte, lt=lt, lte=lte), eager=eager)

    def get_and_watch(
        self, key: Any, *, key_encoding: Encoding = None, value_encoding: Encoding = None
    ) -> EntryWatcher:
        """The entry of ``key``, kept current: ``async with bee.get_and_watch(k) as w``, then
        ``w.node`` is its entry (or None) and ``async for node in w`` yields every change."""
        from .watch import EntryWatcher

        self._require_open()
        return EntryWatcher(self, key, self._encoding(key_encoding, value_encoding))

    @staticmethod
    async def is_hyperbee(core: Hypercore, *, wait: bool = True) -> bool:
        """Whether block 0 of ``core`` is a hyperbee header."""
        await core.ready()
        block = await core.get(0, wait=wait)
        try:
            return decode_header(block).protocol == "hyperbee"
        except DecodingError:
            return False

    def __repr__(self) -> str:
        return f"<Hyperbee {self.id} version={self.version} prefix={self.prefix!r}>"
