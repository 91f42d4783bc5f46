"""The public :class:`Hypercore`: a session on a core, as ``new Hypercore(...)`` is in JS."""

from __future__ import annotations

import math
import os
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import trio

from protomux import Protomux
from protomux import encoding as c
from protomux._toolkit import AsyncResource

from . import crypto, id_encoding, merkle
from .codecs import ValueEncoding, resolve
from .core import Core
from .crypto import KeyPair
from .errors import (
    AssertionFailedError,
    BadArgumentError,
    BlockNotAvailableError,
    HypercoreError,
    RequestTimeoutError,
    SessionClosedError,
    SessionNotWritableError,
    SnapshotNotAvailableError,
)
from .extensions import Extension, ExtensionHandler
from .manifest import Manifest
from .opening import create_core, open_core
from .replication import Download, Peer, ReplicationStream, attach, mux_for_stream, replicator_of
from .storage import RocksDBStorage, Storage
from .wire import Data, RequestIndex, RequestSeek, RequestUpgrade

__all__ = ["AppendResult", "Hypercore", "Info"]

MAX_SUGGESTED_BLOCK_SIZE = 15 * 1024 * 1024

StorageArg = Storage | str | os.PathLike[str]
Encoding = str | c.Codec[Any] | ValueEncoding | None


class AppendResult(NamedTuple):
    length: int
    byte_length: int


@dataclass(frozen=True, slots=True)
class Info:
    key: bytes
    discovery_key: bytes
    length: int
    contiguous_length: int
    byte_length: int
    fork: int
    padding: int


@dataclass(slots=True)
class _Snapshot:
    length: int
    byte_length: int
    fork: int


class Hypercore(AsyncResource):
    """A session on a hypercore: an append-only log signed by its writer.

    ``storage`` is a directory (RocksDB, the layout of JS ``hypercore-storage``) or a
    :class:`~hypercore.storage.Storage` such as ``MemoryStorage()``. Without ``key`` the
    directory's default core is opened, or a new core is created (with ``key_pair`` if given).
    Use it as an async context manager, or call :meth:`ready` and :meth:`aclose`.

    ``core``: a session on a core that is already open (a :class:`~hypercore.core.Core`, from
    :meth:`create_core` or another session), as JS ``new Hypercore(null, null, { core })``;
    ``storage`` and the key options are then ignored.
    """

    create_core = staticmethod(create_core)

    def __init__(
        self,
        storage: StorageArg | None = None,
        key: bytes | str | None = None,
        *,
        key_pair: KeyPair | None = None,
        manifest: Manifest | None = None,
        value_encoding: Encoding = None,
        encryption_key: bytes | None = None,
        compat: bool = False,
        writable: bool = True,
        create_if_missing: bool = True,
        snapshot: bool = False,
        core: Core | None = None,
    ) -> None:
        self._storage_arg = storage
        self._key_arg = id_encoding.decode(key) if key is not None else None
        self._key_pair_arg = key_pair
        self._manifest_arg = manifest
        self._encryption_key_arg = encryption_key
        self._compat = compat
        self._create = create_if_missing
        self._encoding = resolve(value_encoding)
        self._readonly = not writable
        self._want_snapshot = snapshot
        self._snapshot: _Snapshot | None = None
        self._state: Core | None = None
        self._closed = False
        self._handlers: list[tuple[str, Callable[..., object]]] = []
        if core is not None:
            self._attach(core)

    # --- lifecycle --------------------------------------------------------------------------

    def _attach(self, state: Core) -> None:
        self._state = state
        state.sessions += 1
        if self._want_snapshot:
            self._take_snapshot()

    async def ready(self) -> None:
        """Open the core (idempotent)."""
        if self._state is not None:
            return
        if self._closed:
            raise SessionClosedError("the session is closed")
        arg = self._storage_arg
        if arg is None:
            raise BadArgumentError("a storage (directory or Storage) is required")
        if isinstance(arg, Storage):
            storage, owns = arg, False
        else:
            storage, owns = RocksDBStorage.open(os.fspath(arg)), True
        try:
            state = open_core(
                storage,
                owns,
                key=self._key_arg,
                key_pair=self._key_pair_arg,
                manifest=self._manifest_arg,
                encryption_key=self._encryption_key_arg,
                compat=self._compat,
                create_if_missing=self._create,
            )
        except BaseException:
            if owns:
                storage.close()
            raise
        self._attach(state)
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        """Close this session; the core closes with its last session. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        state = self._state
        if state is not None:
            for name, fn in self._handlers:
                fns = state.handlers.get(name)
                if fns is not None and fn in fns:
                    fns.remove(fn)
            self._handlers.clear()
            if state.replicator is not None:
                replicator_of(state).extensions.destroy_owned(self)
            state.sessions -= 1
            if state.sessions == 0:
                state.close()
        await trio.lowlevel.checkpoint()

    async def _open(self, nursery: trio.Nursery) -> None:
        """``async with``: open the core; the block's nursery runs what :meth:`replicate`
        starts."""
        await self.ready()

    def _open_state(self) -> Core:
        if self._closed:
            raise SessionClosedError("the session is closed")
        if self._state is None:
            raise BadArgumentError("the core is not open yet: await ready() or use async with")
        if self._state.closed:
            raise SessionClosedError("the core is closed", self._state.discovery_key)
        return self._state

    def session(
        self, *, value_encoding: Encoding = None, writable: bool = True, snapshot: bool = False
    ) -> Hypercore:
        """A new session on the same core (sharing its state); close it on its own."""
        state = self._open_state()
        return Hypercore(
            value_encoding=value_encoding if value_encoding is not None else self._encoding,
            writable=writable and not self._readonly,
            snapshot=snapshot,
            core=state,
        )

    def snapshot(self, *, value_encoding: Encoding = None) -> Hypercore:
        """A session that keeps seeing the current length until :meth:`update` is called."""
        return self.session(value_encoding=value_encoding, writable=False, snapshot=True)

    def _take_snapshot(self) -> None:
        state = self._open_state()
        head = state.head
        self._snapshot = _Snapshot(head.length, head.byte_length, head.fork)

    async def update(self, *, wait: bool = True, timeout: float | None = None) -> bool:
        """Learn the newest length our peers can prove (waiting, with ``wait``, until every
        connected peer has told us its length and any upgrade it offered arrived), and move a
        snapshot to it. True if the length or fork this session sees changed."""
        state = self._open_state()
        before = (self.length, self.fork)
        if wait and state.replicator is not None and replicator_of(state).peers:
            rep = replicator_of(state)
            with trio.move_on_after(math.inf if timeout is None else timeout):
                while rep.upgrade_pending() and not state.closed:
                    await state.wait_changed()
            state = self._open_state()
        await trio.lowlevel.checkpoint()
        if self._snapshot is not None:
            self._take_snapshot()
        return before != (self.length, self.fork)

    # --- replication ------------------------------------------------------------------------

    def replicate(
        self, stream: ReplicationStream | Protomux, *, nursery: trio.Nursery | None = None
    ) -> Protomux:
        """Replicate this core over ``stream`` (an entered ``SecretStream``, or a running
        :class:`Protomux` over one) and return at once, as JS ``core.replicate(stream)``.

        A Protomux is made for a stream on first use (and shared by every core replicated over
        it); it runs in ``nursery``, or the session's own (``async with core``), until the
        stream ends or the session closes. Returns the Protomux.
        """
        state = self._open_state()
        mux = mux_for_stream(stream, nursery or self._background.nursery)
        attach(state, mux)
        return mux

    def download(
        self, start: int = 0, end: int | None = None, *, blocks: Iterable[int] | None = None
    ) -> Download:
        """Download blocks ``[start, end)`` from peers (``end=None``: everything, including
        blocks appended later), or exactly the listed ``blocks`` (JS ``{blocks}``).
        ``await d.done()`` waits for a bounded range or a list; ``d.cancel()`` stops it."""
        state = self._open_state()
        if blocks is not None:
            if start != 0 or end is not None:
                raise BadArgumentError("download() takes a range or a list of blocks, not both")
            listed = list(blocks)
            for b in listed:
                _check_index(b, "download block")
            return replicator_of(state).download(blocks=listed)
        _check_index(start, "download start")
        if end is not None:
            _check_index(end, "download end")
        return replicator_of(state).download(start, end)

    @property
    def peers(self) -> list[Peer]:
        """The peers we replicate this core with (channel open both ways)."""
        state = self._state
        if state is None or state.replicator is None:
            return []
        return list(replicator_of(state).peers)

    def register_extension(
        self,
        name: str,
        *,
        encoding: Encoding = None,
        on_message: ExtensionHandler | None = None,
    ) -> Extension:
        """Register a replication extension (JS ``registerExtension``): named messages to
        and from the core's peers. ``on_message(message, peer)`` gets them decoded with
        ``encoding`` (default: compact-encoding ``buffer``, as in JS). Registering a name
        again updates its encoding and handler and returns the same extension. It is
        destroyed when this session closes."""
        rep = replicator_of(self._open_state())
        return rep.extensions.register(name, encoding, on_message, self)

    def on(self, event: str, callback: Callable[..., object]) -> None:
        """Call ``callback`` on ``event`` until this session closes: ``append()``,
        ``truncate(length, fork)``, ``peer-add(peer)``, ``peer-remove(peer)``,
        ``download(index, byte_length, peer)``, ``upload(index, byte_length, peer)``,
        ``invalid-data(error, peer)`` (a peer sent data that did not verify and was dropped).
        Callbacks run synchronously inside the library: they must not block."""
        state = self._open_state()
        state.handlers.setdefault(event, []).append(callback)
        self._handlers.append((event, callback))

    def off(self, event: str, callback: Callable[..., object]) -> None:
        state = self._open_state()
        fns = state.handlers.get(event)
        if fns is not None and callback in fns:
            fns.remove(callback)
        if (event, callback) in self._handlers:
            self._handlers.remove((event, callback))

    # --- properties ---------------------------------------------------------------------------

    @property
    def key(self) -> bytes | None:
        return self._state.key if self._state is not None else self._key_arg

    @property
    def discovery_key(self) -> bytes | None:
        key = self.key
        return crypto.discovery_key(key) if key is not None else None

    @property
    def id(self) -> str | None:
        key = self.key
        return id_encoding.encode(key) if key is not None else None

    @property
    def length(self) -> int:
        if self._state is None:
            return 0
        if self._snapshot is not None:
            return self._snapshot.length
        return self._state.head.length

    @property
    def byte_length(self) -> int:
        state = self._state
        if state is None:
            return 0
        if self._snapshot is not None:
            return self._snapshot.byte_length - self._snapshot.length * state.padding
        return state.head.byte_length - state.head.length * state.padding

    @property
    def contiguous_length(self) -> int:
        state = self._state
        return min(state.head.length, state.contiguous_length) if state is not None else 0

    @property
    def fork(self) -> int:
        if self._state is None:
            return 0
        if self._snapshot is not None:
            return self._snapshot.fork
        return self._state.head.fork

    @property
    def padding(self) -> int:
        return self._state.padding if self._state is not None else 0

    @property
    def writable(self) -> bool:
        return self._state is not None and not self._readonly and self._state.writable

    @property
    def readable(self) -> bool:
        return self._state is not None and not self._closed

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def manifest(self) -> Manifest | None:
        return self._state.manifest if self._state is not None else self._manifest_arg

    @property
    def key_pair(self) -> KeyPair | None:
        return self._state.key_pair if self._state is not None else self._key_pair_arg

    @property
    def encryption_key(self) -> bytes | None:
        state = self._state
        if state is None or state.encryption is None:
            return self._encryption_key_arg
        return state.encryption.key

    # --- writing ------------------------------------------------------------------------------

    async def append(self, blocks: Any) -> AppendResult:
        """Append one value or a list of values; returns the new length and byte length."""
        state = self._open_state()
        if self._readonly or self._snapshot is not None or not state.writable:
            raise SessionNotWritableError("cannot append to a readonly core", state.discovery_key)
        values = blocks if isinstance(blocks, list) else [blocks]
        encoded = [self._encoding.encode(v) for v in values]
        for b in encoded:
            if len(b) > MAX_SUGGESTED_BLOCK_SIZE:
                raise BadArgumentError(
                    "Appended block exceeds the maximum suggested block size", state.discovery_key
                )
        length, byte_length = state.append(encoded)
        await trio.lowlevel.checkpoint()
        return AppendResult(length, byte_length - length * state.padding)

    async def truncate(self, new_length: int = 0, *, fork: int | None = None) -> None:
        """Cut the core to ``new_length`` blocks under a new fork (default: fork + 1)."""
        state = self._open_state()
        _check_index(new_length, "truncate length")
        if self._readonly or not state.writable:
            raise SessionNotWritableError("cannot truncate a readonly core", state.discovery_key)
        state.truncate(new_length, state.head.fork + 1 if fork is None else fork)
        await trio.lowlevel.checkpoint()

    async def clear(self, start: int, end: int | None = None) -> None:
        """Drop the local copies of blocks ``[start, end)``; the length stays."""
        state = self._open_state()
        end = start + 1 if end is None else end
        _check_index(start, "clear range")
        _check_index(end, "clear range")
        state.clear(start, end)
        await trio.lowlevel.checkpoint()

    async def set_user_data(self, key: str, value: bytes | str | None) -> None:
        """Store (or with None, delete) a piece of local metadata."""
        state = self._open_state()
        batch = state.cs.batch()
        if value is None:
            batch.delete_user_data(key)
        else:
            batch.put_user_data(key, value.encode() if isinstance(value, str) else bytes(value))
        batch.commit()
        await trio.lowlevel.checkpoint()

    async def get_user_data(self, key: str) -> bytes | None:
        state = self._open_state()
        await trio.lowlevel.checkpoint()
        return state.cs.get_user_data(key)

    # --- reading ------------------------------------------------------------------------------

    async def has(self, start: int, end: int | None = None) -> bool:
        """Whether every block of ``[start, end)`` (default: just ``start``) is stored here."""
        state = self._open_state()
        _check_index(start, "has range")
        await trio.lowlevel.checkpoint()
        if end is None:
            return state.has(start)
        _check_index(end, "has range")
        return state.bitfield.all_set(start, end) and end <= state.head.length

    async def get(
        self,
        index: int,
        *,
        wait: bool = True,
        timeout: float | None = None,
        value_encoding: Encoding = None,
        raw: bool = False,
    ) -> Any:
        """Block ``index``, decoded; waits for it (until ``timeout``) unless ``wait=False``."""
        state = self._open_state()
        _check_index(index, "block index")
        block = state.read_block(index)
        if block is None:
            block = await self._wait_for_block(state, index, wait, timeout)
        else:
            await trio.lowlevel.checkpoint()
        if self._snapshot is not None and index >= self._snapshot.length:
            raise SnapshotNotAvailableError(discovery_key=state.discovery_key)
        if raw:
            return block
        if state.encryption is not None:
            try:
                block = state.encryption.decrypt(index, block)
            except HypercoreError as e:
                e.with_discovery_key(state.discovery_key)
                raise
        encoding = resolve(value_encoding) if value_encoding is not None else self._encoding
        return encoding.decode(block)

    def read_local(self, index: int) -> bytes | None:
        """Block ``index`` as stored here (decrypted, not decoded), or None when it is not
        stored or this snapshot cannot vouch for it: then :meth:`get` tells why or waits.
        Never waits and is not a checkpoint (for readers that fetch many small blocks)."""
        state = self._open_state()
        snap = self._snapshot
        if index < 0:
            return None  # get() says what is wrong with it
        if snap is not None and (index >= snap.length or state.head.fork != snap.fork):
            return None
        block = state.read_block(index)
        if block is None or state.encryption is None:
            return block
        try:
            return state.encryption.decrypt(index, block)
        except HypercoreError as e:
            e.with_discovery_key(state.discovery_key)
            raise

    async def _wait_for_block(
        self, state: Core, index: int, wait: bool, timeout: float | None
    ) -> bytes:
        if self._snapshot is not None and index < self._snapshot.length:
            # Truncated away after the snapshot was taken.
            if state.head.fork != self._snapshot.fork or index >= state.head.length:
                raise SnapshotNotAvailableError(discovery_key=state.discovery_key)
        if not wait:
            raise BlockNotAvailableError(discovery_key=state.discovery_key)
        rep = replicator_of(state)
        rep.want_block(index)
        try:
            with trio.move_on_after(math.inf if timeout is None else timeout):
                while True:
                    await state.wait_changed()
                    state = self._open_state()
                    block = state.read_block(index)
                    if block is not None:
                        return block
        finally:
            rep.unwant_block(index)
        raise RequestTimeoutError(discovery_key=state.discovery_key)

    async def seek(
        self, byte_offset: int, *, wait: bool = True, timeout: float | None = None
    ) -> tuple[int, int] | None:
        """The block holding ``byte_offset`` and the offset inside it (the byte length
        itself gives ``(length, 0)``, as in JS).

        Where the tree nodes that answer it are not stored (a sparse core), or the offset is
        past the length, peers are asked for them (as JS ``seek``) until ``timeout``
        (``REQUEST_TIMEOUT``). With ``wait=False`` nothing is asked: missing nodes raise
        ``BLOCK_NOT_AVAILABLE``, an offset past the length returns None.
        """
        state = self._open_state()
        _check_index(byte_offset, "seek")
        asking = None  # the seek the replicator asks peers about, once needed
        try:
            with trio.move_on_after(math.inf if timeout is None else timeout):
                while True:
                    await trio.lowlevel.checkpoint()
                    beyond = byte_offset > self.byte_length
                    if not beyond:
                        try:
                            found = merkle.seek(state, state.head, byte_offset, state.padding)
                        except HypercoreError as e:
                            e.with_discovery_key(state.discovery_key)
                            raise
                        if isinstance(found, tuple):
                            return found
                    if not wait:
                        if beyond:
                            return None
                        raise BlockNotAvailableError(
                            "the blocks needed to seek are not stored", state.discovery_key
                        )
                    # A snapshot does not grow: past its length only an update() helps.
                    if asking is None and not (beyond and self._snapshot is not None):
                        asking = replicator_of(state).add_seek(byte_offset, state.padding)
                    await state.wait_changed()
                    state = self._open_state()
        finally:
            if asking is not None and state.replicator is not None:
                replicator_of(state).remove_seek(asking)
        raise RequestTimeoutError(discovery_key=state.discovery_key)

    async def tree_hash(self, length: int | None = None) -> bytes:
        """The Merkle tree hash of the first ``length`` blocks (default: all)."""
        state = self._open_state()
        length = self.length if length is None else length
        if length > state.head.length:
            raise BadArgumentError("length is beyond the core", state.discovery_key)
        await trio.lowlevel.checkpoint()
        return crypto.tree(state.roots_at(length))

    async def info(self) -> Info:
        state = self._open_state()
        await trio.lowlevel.checkpoint()
        return Info(
            key=state.key,
            discovery_key=state.discovery_key,
            length=self.length,
            contiguous_length=self.contiguous_length,
            byte_length=self.byte_length,
            fork=self.fork,
            padding=self.padding,
        )

    async def wait_for_append(self, timeout: float | None = None) -> int:
        """Wait until the core grows past its current length; returns the new length."""
        state = self._open_state()
        seen = state.head.length
        with trio.move_on_after(math.inf if timeout is None else timeout):
            while state.head.length <= seen:
                await state.wait_changed()
                state = self._open_state()
            return state.head.length
        raise RequestTimeoutError(discovery_key=state.discovery_key)

    async def read(
        self,
        start: int = 0,
        end: int | None = None,
        *,
        live: bool = False,
        value_encoding: Encoding = None,
    ) -> AsyncIterator[Any]:
        """Blocks ``[start, end)`` in order; ``live`` keeps waiting for appended blocks."""
        index = start
        while True:
            stop = end if end is not None else self.length
            if index >= stop:
                if not live or (end is not None and index >= end):
                    return
                await self.wait_for_append()
                continue
            yield await self.get(index, value_encoding=value_encoding)
            index += 1

    # --- proofs -----------------------------------------------------------------------------

    async def proof(
        self,
        *,
        block: RequestIndex | None = None,
        hash: RequestIndex | None = None,
        seek: RequestSeek | None = None,
        upgrade: RequestUpgrade | None = None,
        manifest: bool = False,
    ) -> Data:
        """A proof (a replication ``data`` message) for these parts of a request, as JS
        ``core.proof``; ``manifest=True`` includes the core's manifest."""
        state = self._open_state()
        data = state.proof(block=block, hash=hash, seek=seek, upgrade=upgrade, manifest=manifest)
        await trio.lowlevel.checkpoint()
        return data

    async def verify(self, proof: Data) -> bool:
        """Verify a proof from another peer and store what it proves (nodes, head, block).

        Only the core's key needs to be known: the manifest can come with the proof. A proof
        that does not verify raises ``INVALID_SIGNATURE``/``INVALID_CHECKSUM``/... and
        changes nothing; one for another fork returns False.
        """
        state = self._open_state()
        ok = state.verify(proof)
        await trio.lowlevel.checkpoint()
        return ok

    async def missing_nodes(self, index: int) -> int:
        """How many tree nodes above block ``index`` a request should ask for."""
        state = self._open_state()
        await trio.lowlevel.checkpoint()
        try:
            return merkle.missing_nodes(state, 2 * index, state.head.length)
        except HypercoreError as e:
            e.with_discovery_key(state.discovery_key)
            raise

    def __repr__(self) -> str:
        ident = self.id or "?"
        return f"<Hypercore {ident} length={self.length} fork={self.fork}>"


def _check_index(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AssertionFailedError(f"{what} is invalid")
