"""Values of hypercore-storage 3: compact-encoding codecs identical to the hyperschema-generated
ones of JS ``hypercore-storage/encoding/spec/hyperschema`` (schema version 2).

Flags follow JS truthiness: a field that is ``None`` (or ``0`` for the integer hints) is left out
and its flag bit cleared. Unknown flag bits are ignored on decode, as in JS.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from protomux import encoding as c

from ..crypto import TreeNode
from ..manifest import STORED_MANIFEST, Manifest
from ..wire import NODE

__all__ = [
    "AUTH",
    "CORE_HEAD",
    "CORE_RECORD",
    "DEPENDENCY",
    "GROUP",
    "GROUP_POINTER",
    "HINTS",
    "MANIFEST",
    "SESSIONS",
    "STORE_HEAD",
    "TREE_NODE",
    "Alias",
    "Auth",
    "CoreHead",
    "CoreRecord",
    "Dependency",
    "Group",
    "Hints",
    "KeyPairLike",
    "Session",
    "StoreHead",
    "StoredKeyPair",
    "TreeNode",
    "decode_tree_node",
    "encode_tree_node",
]

STORE_VERSION = 2
"""The store head and core record version this module writes (JS ``VERSION``)."""


# --- values ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreHead:
    """Row ``00``: allocation counters, the Corestore seed and the default core.

    Legacy (version 0 and 1) heads decode to the same shape with ``version`` 2, exactly as JS
    maps them; they are rewritten as version 2 on the next head write.
    """

    version: int = STORE_VERSION
    cores: int = 0
    datas: int = 0
    groups: int = 0
    seed: bytes | None = None
    default_discovery_key: bytes | None = None


@dataclass(frozen=True, slots=True)
class Alias:
    """The (namespace, name) a Corestore core was created under."""

    namespace: bytes
    name: str


@dataclass(frozen=True, slots=True)
class CoreRecord:
    """Row ``01 <dkey>``: where a core's rows live. ``version`` < 2 means not migrated yet."""

    version: int
    core_pointer: int
    data_pointer: int
    alias: Alias | None = None


class KeyPairLike(Protocol):
    """Anything with a public key and an optional secret key (e.g. ``crypto.KeyPair``)."""

    @property
    def public_key(self) -> bytes: ...

    @property
    def secret_key(self) -> bytes | None: ...


class StoredKeyPair(NamedTuple):
    """The key pair in an auth row; ``secret_key`` is ``None`` for a read-only core."""

    public_key: bytes
    secret_key: bytes | None = None


@dataclass(frozen=True, slots=True)
class Auth:
    """Row ``03 <corePointer> 00``: what a core is and who may write it."""

    key: bytes
    discovery_key: bytes
    manifest: Manifest | None = None
    key_pair: StoredKeyPair | None = None
    encryption_key: bytes | None = None


@dataclass(frozen=True, slots=True)
class CoreHead:
    """Row ``04 <dataPointer> 00``: the signed tree state.

    ``root_hash`` is the tree hash (``crypto.tree`` of the roots), ``signature`` the bytes the
    verifier checks (the 68-byte multisig container for default v1 cores), ``timestamp`` the
    write time in ms (0 = absent; JS always writes one).
    """

    fork: int
    length: int
    root_hash: bytes
    signature: bytes | None = None
    timestamp: int = 0


@dataclass(frozen=True, slots=True)
class Hints:
    """Row ``04 <dataPointer> 02``."""

    contiguous_length: int = 0
    remote_contiguous_length: int = 0
    recovering: int = 0


@dataclass(frozen=True, slots=True)
class Dependency:
    """Row ``04 <dataPointer> 01``: this data set continues ``data_pointer`` below ``length``."""

    data_pointer: int
    length: int


@dataclass(frozen=True, slots=True)
class Session:
    """One named session of a core (row ``03 <corePointer> 01`` holds a list of them)."""

    name: str
    data_pointer: int


@dataclass(frozen=True, slots=True)
class Group:
    """Row ``03 <corePointer> 02``."""

    key: bytes | None = None
    pointer: int = 0


# --- codecs ---------------------------------------------------------------------------------

_uint = c.uint
_fixed32 = c.fixed32


class _StoreHead(c.Codec[StoreHead]):
    def preencode(self, state: c.State, m: StoreHead) -> None:
        if m.version != STORE_VERSION:
            raise c.EncodeError(f"only store head version {STORE_VERSION} can be written")
        state.end += 1
        _uint.preencode(state, m.cores)
        _uint.preencode(state, m.datas)
        _uint.preencode(state, m.groups)
        state.end += 1
        if m.seed is not None:
            _fixed32.preencode(state, m.seed)
        if m.default_discovery_key is not None:
            _fixed32.preencode(state, m.default_discovery_key)

    def encode(self, state: c.State, m: StoreHead) -> None:
        _uint.encode(state, m.version)
        _uint.encode(state, m.cores)
        _uint.encode(state, m.datas)
        _uint.encode(state, m.groups)
        _uint.encode(
            state,
            (1 if m.seed is not None else 0) | (2 if m.default_discovery_key is not None else 0),
        )
        if m.seed is not None:
            _fixed32.encode(state, m.seed)
        if m.default_discovery_key is not None:
            _fixed32.encode(state, m.default_discovery_key)

    def decode(self, state: c.State) -> StoreHead:
        version = _uint.decode(state)
        if version in (0, 1):
            flags = _uint.decode(state)
            if not flags & 1:
                # JS maps this through ``headLegacyMap``, which throws without the counters.
                raise c.DecodeError("legacy store head without allocation counters")
            cores = _uint.decode(state)
            datas = _uint.decode(state)
            seed = _fixed32.decode(state) if flags & 2 else None
            dkey = _fixed32.decode(state) if flags & 4 else None
            return StoreHead(STORE_VERSION, cores, datas, 0, seed, dkey)
        if version != 2:
            raise c.DecodeError(f"unsupported store head version {version}")
        cores = _uint.decode(state)
        datas = _uint.decode(state)
        groups = _uint.decode(state)
        flags = _uint.decode(state)
        seed = _fixed32.decode(state) if flags & 1 else None
        dkey = _fixed32.decode(state) if flags & 2 else None
        return StoreHead(version, cores, datas, groups, seed, dkey)


class _CoreRecord(c.Codec[CoreRecord]):
    def preencode(self, state: c.State, m: CoreRecord) -> None:
        _uint.preencode(state, m.version)
        _uint.preencode(state, m.core_pointer)
        _uint.preencode(state, m.data_pointer)
        state.end += 1
        if m.alias is not None:
            c.string.preencode(state, m.alias.name)
            _fixed32.preencode(state, m.alias.namespace)

    def encode(self, state: c.State, m: CoreRecord) -> None:
        _uint.encode(state, m.version)
        _uint.encode(state, m.core_pointer)
        _uint.encode(state, m.data_pointer)
        _uint.encode(state, 1 if m.alias is not None else 0)
        if m.alias is not None:
            c.string.encode(state, m.alias.name)
            _fixed32.encode(state, m.alias.namespace)

    def decode(self, state: c.State) -> CoreRecord:
        version = _uint.decode(state)
        core_pointer = _uint.decode(state)
        data_pointer = _uint.decode(state)
        flags = _uint.decode(state)
        alias = None
        if flags & 1:
            name = c.string.decode(state)
            alias = Alias(namespace=_fixed32.decode(state), name=name)
        return CoreRecord(version, core_pointer, data_pointer, alias)


MANIFEST: c.Codec[Manifest] = STORED_MANIFEST
"""A manifest as hypercore-storage stores it (framed inside the auth row). Unlike JS, which
decodes unknown hash or signature ids to null, unknown ids raise."""

_framed_manifest = c.frame(MANIFEST)


class _Auth(c.Codec[Auth]):
    def preencode(self, state: c.State, m: Auth) -> None:
        state.end += 65
        if m.manifest is not None:
            _framed_manifest.preencode(state, m.manifest)
        if m.key_pair is not None:
            c.buffer.preencode(state, m.key_pair.public_key)
            c.optional_buffer.preencode(state, m.key_pair.secret_key)
        if m.encryption_key is not None:
            c.buffer.preencode(state, m.encryption_key)

    def encode(self, state: c.State, m: Auth) -> None:
        flags = (
            (1 if m.manifest is not None else 0)
            | (2 if m.key_pair is not None else 0)
            | (4 if m.encryption_key is not None else 0)
        )
        _fixed32.encode(state, m.key)
        _fixed32.encode(state, m.discovery_key)
        _uint.encode(state, flags)
        if m.manifest is not None:
            _framed_manifest.encode(state, m.manifest)
        if m.key_pair is not None:
            c.buffer.encode(state, m.key_pair.public_key)
            c.optional_buffer.encode(state, m.key_pair.secret_key)
        if m.encryption_key is not None:
            c.buffer.encode(state, m.encryption_key)

    def decode(self, state: c.State) -> Auth:
        key = _fixed32.decode(state)
        dkey = _fixed32.decode(state)
        flags = _uint.decode(state)
        manifest = _framed_manifest.decode(state) if flags & 1 else None
        key_pair = None
        if flags & 2:
            pk = c.buffer.decode(state)
            key_pair = StoredKeyPair(pk, c.optional_buffer.decode(state))
        encryption_key = c.buffer.decode(state) if flags & 4 else None
        return Auth(key, dkey, manifest, key_pair, encryption_key)


class _CoreHead(c.Codec[CoreHead]):
    def preencode(self, state: c.State, m: CoreHead) -> None:
        _uint.preencode(state, m.fork)
        _uint.preencode(state, m.length)
        _fixed32.preencode(state, m.root_hash)
        c.optional_buffer.preencode(state, m.signature)
        state.end += 9 if m.timestamp else 1

    def encode(self, state: c.State, m: CoreHead) -> None:
        _uint.encode(state, m.fork)
        _uint.encode(state, m.length)
        _fixed32.encode(state, m.root_hash)
        c.optional_buffer.encode(state, m.signature)
        _uint.encode(state, 1 if m.timestamp else 0)
        if m.timestamp:
            c.uint64.encode(state, m.timestamp)

    def decode(self, state: c.State) -> CoreHead:
        fork = _uint.decode(state)
        length = _uint.decode(state)
        root_hash = _fixed32.decode(state)
        signature = c.optional_buffer.decode(state)
        flags = _uint.decode(state) if state.start < state.end else 0
        timestamp = c.uint64.decode(state) if flags & 1 else 0
        return CoreHead(fork, length, root_hash, signature, timestamp)


_U16 = struct.Struct("<H")


_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


def _uint_bytes(n: int) -> bytes:
    if 0 <= n <= 0xFC:
        return _SMALL[n]
    if 0xFC < n <= 0xFFFF:
        return b"\xfd" + _U16.pack(n)
    if 0xFFFF < n <= 0xFFFFFFFF:
        return b"\xfe" + _U32.pack(n)
    return c.encode(_uint, n)


_SMALL = [bytes((i,)) for i in range(0xFD)]


def encode_tree_node(node: TreeNode) -> bytes:
    """``c.encode(TREE_NODE, node)``, faster (tree nodes are the most written rows)."""
    h = node.hash
    if type(h) is not bytes or len(h) != 32:
        return c.encode(TREE_NODE, node)
    return _uint_bytes(node.index) + _uint_bytes(node.size) + h


def decode_tree_node(value: bytes) -> TreeNode:
    """``c.decode(TREE_NODE, value)``, faster for the 1- and 3-byte uint forms."""
    n = len(value)
    if n >= 34:
        a = value[0]
        if a <= 0xFC:
            index, p = a, 1
        elif a == 0xFD and (index := _U16.unpack_from(value, 1)[0]) > 0xFC:
            p = 3
        else:
            return c.decode(TREE_NODE, value)
        if n == p + 33:
            b = value[p]
            if b <= 0xFC:
                return TreeNode(index, b, value[p + 1 :])
        elif n == p + 35 and value[p] == 0xFD:
            size = _U16.unpack_from(value, p + 1)[0]
            if size > 0xFC:
                return TreeNode(index, size, value[p + 3 :])
    return c.decode(TREE_NODE, value)


class _Hints(c.Codec[Hints]):
    def preencode(self, state: c.State, m: Hints) -> None:
        state.end += 1
        for v in (m.contiguous_length, m.remote_contiguous_length, m.recovering):
            if v:
                _uint.preencode(state, v)

    def encode(self, state: c.State, m: Hints) -> None:
        values = (m.contiguous_length, m.remote_contiguous_length, m.recovering)
        _uint.encode(state, sum(1 << i for i, v in enumerate(values) if v))
        for v in values:
            if v:
                _uint.encode(state, v)

    def decode(self, state: c.State) -> Hints:
        flags = _uint.decode(state)
        contiguous = _uint.decode(state) if flags & 1 else 0
        remote = _uint.decode(state) if flags & 2 else 0
        recovering = _uint.decode(state) if flags & 4 else 0
        return Hints(contiguous, remote, recovering)


class _Dependency(c.Codec[Dependency]):
    def preencode(self, state: c.State, m: Dependency) -> None:
        _uint.preencode(state, m.data_pointer)
        _uint.preencode(state, m.length)

    def encode(self, state: c.State, m: Dependency) -> None:
        _uint.encode(state, m.data_pointer)
        _uint.encode(state, m.length)

    def decode(self, state: c.State) -> Dependency:
        data_pointer = _uint.decode(state)
        return Dependency(data_pointer, _uint.decode(state))


class _Session(c.Codec[Session]):
    def preencode(self, state: c.State, m: Session) -> None:
        c.string.preencode(state, m.name)
        _uint.preencode(state, m.data_pointer)

    def encode(self, state: c.State, m: Session) -> None:
        c.string.encode(state, m.name)
        _uint.encode(state, m.data_pointer)

    def decode(self, state: c.State) -> Session:
        name = c.string.decode(state)
        return Session(name, _uint.decode(state))


class _Group(c.Codec[Group]):
    def preencode(self, state: c.State, m: Group) -> None:
        state.end += 1
        if m.key is not None:
            _fixed32.preencode(state, m.key)
        if m.pointer:
            _uint.preencode(state, m.pointer)

    def encode(self, state: c.State, m: Group) -> None:
        _uint.encode(state, (1 if m.key is not None else 0) | (2 if m.pointer else 0))
        if m.key is not None:
            _fixed32.encode(state, m.key)
        if m.pointer:
            _uint.encode(state, m.pointer)

    def decode(self, state: c.State) -> Group:
        flags = _uint.decode(state)
        key = _fixed32.decode(state) if flags & 1 else None
        pointer = _uint.decode(state) if flags & 2 else 0
        return Group(key, pointer)


STORE_HEAD: c.Codec[StoreHead] = _StoreHead()
"""``@corestore/head`` (writes version 2, reads 0, 1 and 2)."""
CORE_RECORD: c.Codec[CoreRecord] = _CoreRecord()
"""``@corestore/core``."""
AUTH: c.Codec[Auth] = _Auth()
"""``@core/auth``."""
CORE_HEAD: c.Codec[CoreHead] = _CoreHead()
"""``@core/head``."""
TREE_NODE: c.Codec[TreeNode] = NODE
"""``@core/tree-node``."""
HINTS: c.Codec[Hints] = _Hints()
"""``@core/hints``."""
DEPENDENCY: c.Codec[Dependency] = _Dependency()
"""``@core/dependency``."""
SESSIONS: c.Codec[list[Session]] = c.array(_Session())
"""``@core/sessions``."""
GROUP: c.Codec[Group] = _Group()
"""``@core/group``."""
GROUP_POINTER: c.Codec[int] = c.uint
"""The value of a ``05 <topic>`` row."""
