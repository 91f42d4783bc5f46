"""Hypercore for Python on Trio: the signed append-only log, wire- and disk-compatible with JS
hypercore 11.

:class:`Hypercore` is the log itself (a session on a core stored in a directory, in the
RocksDB layout of JS ``hypercore-storage``, or in memory). Below it: :mod:`hypercore.crypto`
(hashes, keys, v11 capabilities and manifest hashing), :mod:`hypercore.flat_tree`,
:mod:`hypercore.merkle` (the tree and its proofs), :mod:`hypercore.wire` (the replication
messages),
:mod:`hypercore.storage`, :mod:`hypercore.encryption` and :mod:`hypercore.errors`.
"""

from . import crypto, errors, flat_tree, manifest, merkle, wire
from .core import Core
from .crypto import KeyPair
from .extensions import Extension
from .session import AppendResult, Hypercore, Info
from .storage import MemoryStorage, RocksDBStorage, Storage
from .wire import RequestIndex, RequestSeek, RequestUpgrade

__all__ = [
    "AppendResult",
    "Core",
    "Extension",
    "Hypercore",
    "Info",
    "KeyPair",
    "MemoryStorage",
    "RequestIndex",
    "RequestSeek",
    "RequestUpgrade",
    "RocksDBStorage",
    "Storage",
    "crypto",
    "errors",
    "flat_tree",
    "manifest",
    "merkle",
    "wire",
]
