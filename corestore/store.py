"""The :class:`Corestore`: many hypercores in one storage, named cores keyed from one primary
key, namespaces, sessions and replication of every core over one stream (JS ``corestore``
7.12.5).

Registry and lifecycle
======================

A root store (``Corestore(storage)``) and every view made from it (``namespace()``,
``session()``) share the storage, the primary key and one registry ``discovery key ->
Core``. ``get()`` attaches a new :class:`~hypercore.Hypercore` session to the registered
state of that core, opening the state from storage (or creating the core) only if there is
none. Hypercore closes a state when its last session closes; a closed state stays in the
registry until the next lookup of its discovery key, which drops it and opens a fresh one.

Each store (root or view) remembers the sessions it handed out: closing it closes them. Closing
the root closes every view, every session they handed out, every state still open (sessions
made with ``core.session()`` then fail with ``SESSION_CLOSED``), and the storage if the root
opened it (a path was given).

Differences from JS
===================

* ``get()`` opens the core at once (storage is synchronous here), so it needs an open store
  and raises its errors itself (``STORAGE_EMPTY`` for an unknown discovery key, ...) where JS
  rejects the session's ``ready()``. A positional argument is a name (JS: a key).
* A core state closes as soon as its last session closes (JS lingers idle cores a few
  seconds before closing them).
* Block encryption lives on the core state shared by every session (JS: per session).
* Inputs that contradict each other (a key and a discovery key or manifest that do not match,
  a name together with a key pair) raise ``BAD_ARGUMENT``; JS picks one silently.
* A :class:`~hypercore.storage.Storage` passed in is not closed by :meth:`Corestore.aclose`
  (JS closes it); a directory opened by the store is.
* Views inherit ``writable`` from the store they are made from (JS views default to
  writable).
* ``list()`` returns a list, ``create_key_pair()`` is synchronous (JS: a stream, a promise).
* Not ported: groups and ``notifyGroup``,
  ``suspend``/``resume``, ``audit``, ``staticify``, ``findingPeers``, ``manifestVersion``,
  ``exclusive``/``wait``/``timeout``/``preload`` session options, ``readOnly`` storage.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterator
from typing import Any, Self

import trio

from hypercore import Core, Hypercore, KeyPair, crypto, id_encoding
from hypercore.codecs import ValueEncoding
from hypercore.errors import (
    AssertionFailedError,
    BadArgumentError,
)
from hypercore.manifest import Manifest
from hypercore.replication import PROTOCOL, ReplicationStream, attach, mux_for_stream
from hypercore.storage import Alias, Auth, RocksDBStorage, Storage
from protomux import Protomux
from protomux import encoding as c
from protomux._toolkit import AsyncResource

from .errors import CorestoreClosedError, PrimaryKeyMismatchError
from .keys import DEFAULT_NAMESPACE, create_key_pair, generate_namespace

__all__ = ["Corestore", "StorageArg", "Watcher"]

StorageArg = Storage | str | os.PathLike[str]
"""A :class:`~hypercore.storage.Storage` (e.g. ``MemoryStorage()``) or a directory path."""

Watcher = Callable[[Core], None]
"""A callback of :meth:`Corestore.watch`, given each core state the store opens."""

_Encoding = str | c.Codec[Any] | ValueEncoding | None
_Key = bytes | str

_UNSAFE_PRIMARY_KEY = (
    "Passing the primary key is unsafe unless you know what you are doing. "
    "Set unsafe: true to acknowledge that"
)


class _Shared:
    """What a root store and all its views share."""

    __slots__ = (
        "closing",
        "cores",
        "muxes",
        "nursery",
        "opened",
        "owns_storage",
        "primary_key",
        "root",
        "storage",
        "storage_arg",
        "views",
        "watching",
    )

    def __init__(self, root: Corestore, storage_arg: StorageArg, primary_key: bytes | None):
        self.root = root
        self.storage_arg = storage_arg
        self.storage: Storage | None = None
        self.owns_storage = False
        self.primary_key = primary_key
        self.opened = False
        self.closing = False
        self.cores: dict[bytes, Core] = {}
        self.views: set[Corestore] = set()  # open views, the root excluded
        self.watching: builtins.list[Corestore] = []  # stores with watchers
        # Protomuxes we replicate over -> sessions opened for cores the remote asked for.
        self.muxes: dict[Protomux, builtins.list[Hypercore]] = {}
        self.nursery: trio.Nursery | None = None  # the root's block's, for replicate()

    def open(self) -> None:
        arg = self.storage_arg
        if isinstance(arg, Storage):
            storage, owns = arg, False
        else:
            storage, owns = RocksDBStorage.open(os.fspath(arg)), True
        try:
            seed = storage.seed()
            if seed is None:
                seed = storage.set_seed(self.primary_key or crypto.random_bytes(32))
            if self.primary_key is not None and seed != self.primary_key:
                raise PrimaryKeyMismatchError()
        except BaseException:
            if owns:
                storage.close()
            raise
        self.storage = storage
        self.owns_storage = owns
        self.primary_key = seed
        self.opened = True

    def lookup(self, discovery_key: bytes) -> Core | None:
        state = self.cores.get(discovery_key)
        if state is not None and state.closed:
            del self.cores[discovery_key]
            return None
        return state

    def register(self, state: Core) -> None:
        self.cores[state.discovery_key] = state
        for mux in builtins.list(self.muxes):
            attach(state, mux)
        for store in builtins.list(self.watching):
            for fn in builtins.list(store._watchers):
                fn(state)


class Corestore(AsyncResource):
    """Many hypercores in one storage; named cores get key pairs derived from the primary key.

    ``storage`` is a directory (RocksDB in the layout of JS ``hypercore-storage``, which Node's
    corestore opens too) or a :class:`~hypercore.storage.Storage` such as ``MemoryStorage()``.
    The primary key is read from the storage, or created at random on first open;
    ``primary_key`` (32 bytes) is only accepted with ``unsafe=True``, as in JS, and must match
    the one stored. ``writable=False`` makes the sessions it hands out read-only by default.

    Use it as an async context manager, or call :meth:`ready` and :meth:`aclose`.
    :meth:`get` needs the store to be open (views of an open root are open at once).
    """

    _shared: _Shared
    _ns: bytes
    _writable: bool
    _closed: bool
    _sessions: set[Hypercore]
    _prune_at: int
    _watchers: builtins.list[Watcher]

    def __init__(
        self,
        storage: StorageArg,
        *,
        primary_key: bytes | None = None,
        unsafe: bool = False,
        writable: bool = True,
    ) -> None:
        if primary_key is not None:
            if not unsafe:
                raise AssertionFailedError(_UNSAFE_PRIMARY_KEY)
            if len(primary_key) != 32:
                raise BadArgumentError("the primary key must be 32 bytes")
            primary_key = bytes(primary_key)
        if not isinstance(storage, (Storage, str, os.PathLike)):
            raise BadArgumentError("storage must be a directory path or a hypercore Storage")
        self._setup(_Shared(self, storage, primary_key), DEFAULT_NAMESPACE, writable)

    def _setup(self, shared: _Shared, ns: bytes, writable: bool) -> None:
        self._shared = shared
        self._ns = ns
        self._writable = writable
        self._closed = False
        self._sessions = set()
        self._prune_at = 64
        self._watchers = []

    def _view(self, ns: bytes, writable: bool | None) -> Corestore:
        self._check_not_closed()
        view = type(self).__new__(type(self))
        view._setup(self._shared, ns, self._writable if writable is None else writable)
        self._shared.views.add(view)
        return view

    # --- lifecycle ----------------------------------------------------------------------------

    async def ready(self) -> None:
        """Open the storage and load (or create) the primary key. Idempotent; on a view, opens
        its root."""
        self._check_not_closed()
        shared = self._shared
        if not shared.opened:
            shared.open()
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        """Close the sessions this store handed out; on the root also every view, every open
        core and the storage if the root opened it. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        shared = self._shared
        with trio.CancelScope(shield=True):
            try:
                sessions = builtins.list(self._sessions)
                self._sessions.clear()
                for session in sessions:
                    await session.aclose()
            finally:
                self._watchers.clear()
                if self in shared.watching:
                    shared.watching.remove(self)
                shared.views.discard(self)
                if shared.root is self:
                    shared.closing = True
                    try:
                        for view in builtins.list(shared.views):
                            await view.aclose()
                    finally:
                        states = builtins.list(shared.cores.values())
                        shared.cores.clear()
                        for state in states:
                            state.close()
                        if shared.owns_storage and shared.storage is not None:
                            shared.storage.close()

    async def __aenter__(self) -> Self:
        nursery = self._background.nursery
        if nursery is not None:  # entered again inside its own block: share that block's
            await self._open(nursery)
            return self
        return await super().__aenter__()

    async def _open(self, nursery: trio.Nursery) -> None:
        """``async with``: open; the root's block runs what :meth:`replicate` starts."""
        await self.ready()
        if self._shared.root is self:
            self._shared.nursery = nursery

    async def _exit(self, exc: BaseException | None) -> None:
        try:
            await self.aclose()
        finally:
            if self._shared.root is self:
                self._shared.nursery = None

    # --- replication ------------------------------------------------------------------------

    def replicate(
        self, stream: ReplicationStream | Protomux, *, nursery: trio.Nursery | None = None
    ) -> Protomux:
        """Replicate every core of the store over one ``stream`` (an entered
        ``SecretStream``, or a running Protomux over one) and return at once, as JS
        ``store.replicate(stream)``.

        Every open core, and every core opened later, gets a ``hypercore/alpha`` channel; when
        the remote opens a channel for a core we have stored but not open, it is opened (and
        kept open until the stream ends); for cores we do not have the open is rejected. The
        Protomux runs in ``nursery``, or the root store's own (``async with store``).
        """
        self._check_not_closed()
        shared = self._shared
        runner = nursery or shared.nursery
        mux = mux_for_stream(stream, runner)
        if mux in shared.muxes:
            return mux
        shared.muxes[mux] = []
        with mux.corked():
            for state in builtins.list(shared.cores.values()):
                if not state.closed:
                    attach(state, mux)
        mux.pair(PROTOCOL, None, lambda dkey: self._on_pair(mux, dkey))
        if runner is not None:
            runner.start_soon(self._release_when_closed, mux)
        return mux

    def _on_pair(self, mux: Protomux, discovery_key: bytes | None) -> None:
        shared = self._shared
        if discovery_key is None or shared.closing or mux not in shared.muxes:
            return
        state = shared.lookup(discovery_key)
        if state is not None:
            attach(state, mux)
            return
        storage = shared.storage
        if storage is None or not storage.has_core(discovery_key):
            return  # not ours: protomux rejects the open
        core = self.get(discovery_key=discovery_key)  # registering attaches it to the mux
        shared.muxes[mux].append(core)

    async def _release_when_closed(self, mux: Protomux) -> None:
        try:
            await mux.wait_closed()
        finally:
            sessions = self._shared.muxes.pop(mux, [])
            with trio.CancelScope(shield=True):
                for core in sessions:
                    await core.aclose()

    def _check_not_closed(self) -> None:
        if self._closed or self._shared.closing:
            raise CorestoreClosedError()

    def _usable(self) -> tuple[Storage, bytes]:
        self._check_not_closed()
        shared = self._shared
        if not shared.opened:
            raise BadArgumentError("the Corestore is not open yet: await ready() or use async with")
        assert shared.storage is not None and shared.primary_key is not None
        return shared.storage, shared.primary_key

    # --- properties ---------------------------------------------------------------------------

    @property
    def primary_key(self) -> bytes | None:
        """The 32-byte primary key (``None`` before the first :meth:`ready` unless given)."""
        return self._shared.primary_key

    @property
    def ns(self) -> bytes:
        """This store's 32-byte namespace (zeros for the root)."""
        return self._ns

    @property
    def storage(self) -> Storage | None:
        """The storage, once open."""
        return self._shared.storage

    @property
    def root(self) -> Corestore:
        """The store this one is a view of (itself for a root)."""
        return self._shared.root

    @property
    def opened(self) -> bool:
        return self._shared.opened and not self.closed

    @property
    def closed(self) -> bool:
        return self._closed or self._shared.closing

    @property
    def writable(self) -> bool:
        """Whether sessions from :meth:`get` are writable unless told otherwise."""
        return self._writable

    # --- views --------------------------------------------------------------------------------

    def session(self, *, writable: bool | None = None) -> Corestore:
        """Another store on the same namespace, registry and storage; closing it closes only
        the sessions it handed out. ``writable`` defaults to this store's."""
        return self._view(self._ns, writable)

    def namespace(self, name: str | bytes, *, writable: bool | None = None) -> Corestore:
        """A view whose namespace is ``H(ns || utf8(name))``; chains compose."""
        return self._view(generate_namespace(self._ns, name), writable)

    # --- cores --------------------------------------------------------------------------------

    def get(
        self,
        name: str | None = None,
        *,
        key: _Key | None = None,
        discovery_key: _Key | None = None,
        key_pair: KeyPair | None = None,
        manifest: Manifest | None = None,
        value_encoding: _Encoding = None,
        encryption_key: bytes | None = None,
        writable: bool | None = None,
        create_if_missing: bool = True,
    ) -> Hypercore:
        """A new session on a core, opened (``async with`` it, or ``await core.ready()`` which
        returns at once, and close it when done).

        * ``name``: the core named so in this namespace. Its key pair is derived from the
          primary key; the first ``get`` creates it and records the (namespace, name) alias.
        * ``key`` (bytes, hex or z-base32): the core with this key, created (not writable)
          if missing; with ``key_pair`` it is writable.
        * ``key_pair`` or ``manifest`` alone: the core they define (key = manifest hash).
        * ``discovery_key`` alone: a core that must already be stored, else
          ``STORAGE_EMPTY`` (as JS, raised here rather than by ``ready()``).

        ``create_if_missing=False`` raises ``STORAGE_EMPTY`` instead of creating a core.
        ``encryption_key`` enables block encryption; Python keeps it on the core state that
        all sessions share, so it applies to every session of an open core, and a different
        key for an open core raises ``BAD_ARGUMENT``.
        """
        storage, primary_key = self._usable()
        state = self._resolve(
            storage,
            primary_key,
            name,
            key,
            discovery_key,
            key_pair,
            manifest,
            encryption_key,
            create_if_missing,
        )
        session = Hypercore(
            value_encoding=value_encoding,
            writable=self._writable if writable is None else writable,
            core=state,
        )
        self._track(session)
        return session

    def _resolve(
        self,
        storage: Storage,
        primary_key: bytes,
        name: str | None,
        key_arg: _Key | None,
        discovery_key_arg: _Key | None,
        key_pair: KeyPair | None,
        manifest: Manifest | None,
        encryption_key: bytes | None,
        create_if_missing: bool,
    ) -> Core:
        key = _decode_id(key_arg, "key")
        given_dkey = _decode_id(discovery_key_arg, "discovery key")
        alias: Alias | None = None
        alias_dkey: bytes | None = None
        if name is not None:
            if not isinstance(name, str) or not name:
                raise BadArgumentError("a core name is a non-empty str")
            if key_pair is not None:
                raise BadArgumentError("pass a name or a key pair, not both")
            key_pair = create_key_pair(primary_key, self._ns, name)
            alias_dkey = storage.get_alias(self._ns, name)
            if alias_dkey is None:
                alias = Alias(self._ns, name)
        # Only a discovery key: the core must exist (JS checks storage before opening).
        must_exist = name is None and key is None and manifest is None and given_dkey is not None
        if manifest is None and key_pair is not None and alias_dkey is None:
            manifest = crypto.default_signer_manifest(key_pair.public_key)
        if manifest is not None:
            manifest_key = crypto.core_key(manifest)
            if key is None:
                key = manifest_key
            elif key != manifest_key:
                raise BadArgumentError("the manifest does not hash to the key")
        derived = crypto.discovery_key(key) if key is not None else None
        dkey = alias_dkey or given_dkey or derived
        if dkey is None:
            raise BadArgumentError("Could not derive discovery from input")
        for other in (alias_dkey, given_dkey, derived):
            if other is not None and other != dkey:
                raise BadArgumentError("the discovery key does not match the core", dkey)

        state = self._shared.lookup(dkey)
        if state is not None:
            state.set_encryption_key(encryption_key)
            return state
        state = Hypercore.create_core(
            storage,
            dkey,
            key=key,
            key_pair=key_pair,
            manifest=manifest,
            encryption_key=encryption_key,
            create_if_missing=create_if_missing and not must_exist,
            alias=alias,
        )
        self._shared.register(state)
        return state

    def _track(self, session: Hypercore) -> None:
        sessions = self._sessions
        sessions.add(session)
        if len(sessions) >= self._prune_at:
            self._sessions = {s for s in sessions if not s.closed}
            self._prune_at = max(64, 2 * len(self._sessions))

    def create_key_pair(self, name: str | bytes, namespace: bytes | None = None) -> KeyPair:
        """The key pair of core ``name`` in ``namespace`` (default: this store's), derived
        from the primary key (JS ``createKeyPair``)."""
        _, primary_key = self._usable()
        return create_key_pair(primary_key, self._ns if namespace is None else namespace, name)

    def list(self, namespace: bytes | None = None) -> builtins.list[bytes]:
        """The discovery keys of every stored core, in key order; with a 32-byte
        ``namespace``, of the named cores created in that namespace (by alias order).

        As JS ``store.list(namespace)``: no namespace means every core of the storage, not
        this store's namespace (pass ``store.ns`` for that)."""
        storage, _ = self._usable()
        if namespace is not None and len(namespace) != 32:
            raise BadArgumentError("a namespace is 32 bytes")
        return builtins.list(storage.discovery_keys(namespace))

    def get_auth(self, discovery_key: bytes) -> Auth | None:
        """The stored auth record (key, manifest, key pair) of a core, or ``None``."""
        storage, _ = self._usable()
        return storage.get_auth(discovery_key)

    # --- for replication ----------------------------------------------------------------------

    async def find_core(self, discovery_key: bytes) -> Core | None:
        """The open state of the core with this discovery key, opened from storage if it is
        stored there; ``None`` if it is not, or if the store is closed (JS ``_attachMaybe``'s
        lookup).

        Waits for the store to open. A state opened here has no session: it stays open until
        the root closes, or until a session attached to it (``Hypercore(core=state)`` or
        :meth:`get`) is the last to close. It is registered, so :meth:`get` shares it, and
        the watchers see it.
        """
        if self.closed:
            return None
        await self.ready()
        if self.closed:
            return None
        storage, _ = self._usable()
        dkey = bytes(discovery_key)
        state = self._shared.lookup(dkey)
        if state is not None:
            return state
        record = storage.get_core_record(dkey)
        if record is None or record.version == 0:
            return None
        auth = storage.get_auth(dkey)
        if auth is None:
            return None
        state = Hypercore.create_core(storage, dkey, key=auth.key, create_if_missing=False)
        self._shared.register(state)
        return state

    def cores(self) -> Iterator[Core]:
        """The core states open right now (shared by the root and all its views)."""
        shared = self._shared
        for dkey in [d for d, s in shared.cores.items() if s.closed]:
            del shared.cores[dkey]
        return iter(builtins.list(shared.cores.values()))

    def watch(self, fn: Watcher) -> None:
        """Call ``fn(state)`` (synchronously) whenever any store of this root opens a core
        state, until :meth:`unwatch` or until this store closes (JS ``store.watch``)."""
        self._check_not_closed()
        if fn not in self._watchers:
            self._watchers.append(fn)
        if self not in self._shared.watching:
            self._shared.watching.append(self)

    def unwatch(self, fn: Watcher) -> None:
        if fn in self._watchers:
            self._watchers.remove(fn)
        if not self._watchers and self in self._shared.watching:
            self._shared.watching.remove(self)

    def __repr__(self) -> str:
        kind = "root" if self._shared.root is self else "view"
        status = "closed" if self.closed else "open" if self._shared.opened else "not ready"
        return f"<Corestore {kind} ns={self._ns.hex()[:16]}... {status}>"


def _decode_id(value: _Key | None, what: str) -> bytes | None:
    if value is None:
        return None
    try:
        return id_encoding.decode(value)
    except (ValueError, TypeError, AttributeError):
        raise BadArgumentError(f"invalid {what}") from None
