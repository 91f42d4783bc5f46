"""The on-disk layout of JS ``hypercore-storage`` 3 (3.3.1, as used by hypercore 11.37.1 and
corestore 7.12.5), in Python: the same directory, RocksDB rows and values, so JS and Python can
open each other's stores (one at a time: the ``CORESTORE`` lock keeps them apart).

Modules: :mod:`.keys` (index-encoder and key builders), :mod:`.records` (value codecs),
:mod:`.kv` (RocksDB and in-memory backends), :mod:`.device` (``CORESTORE`` + lock),
:mod:`.store` (:class:`Storage`, :class:`CoreStorage`, :class:`CoreBatch`).

Every failure is a :class:`StorageError`. A row RocksDB cannot read (a checksum mismatch in a
table or blob file, an I/O error) or whose bytes do not decode raises
:class:`StorageCorruptionError`, naming the row (``block 6``, ``tree node 12``, ``head``,
``auth`` ...) and the discovery key of its core; an iteration RocksDB stops on such an error
raises it instead of ending early. What hypercore does about a damaged row (drop a block,
repair a bitfield page or a root node, refuse to open) is in :mod:`hypercore.core`.

Layout
======

``<dir>/CORESTORE`` is the device/lock file (:mod:`.device`), ``<dir>/db/`` a RocksDB whose
rows all live in column family ``corestore``. ``D`` = discovery key (32 raw bytes), ``C`` /
``P`` = core / data pointer as index-encoder ``UINT`` (1 byte below 252), ``STRING(s)`` =
``00 <utf8, 00 escaped as 00 02> 00 01``. Values are compact-encoding (little-endian varints).

=============================  ==============================================================
``00``                         store head: ``02 cores datas groups flags [seed32] [D32]``
                               (flags 1 seed, 2 default discovery key)
``01 D``                       core record: ``02 C P flags [str name, ns32]`` (flags 1 alias)
``02 ns32 STRING(name)``       alias -> D (Corestore named cores only)
``03 C 00``                    auth: ``key32 D32 flags [frame(manifest)] [buf pk, optbuf sk]
                               [buf encryptionKey]`` (flags 1 manifest, 2 key pair, 4 enc key)
``03 C 01`` / ``03 C 02``      named sessions / group
``04 P 00``                    head: ``fork length rootHash32 optbuf(signature) flags [u64le ms]``
``04 P 01``                    dependency ``dataPointer length`` (session data sets)
``04 P 02``                    hints: ``flags [contiguous] [remoteContiguous] [recovering]``
``04 P 03 UINT(i)``            block ``i``, raw stored bytes
``04 P 04 UINT(i)``            tree node at flat-tree index ``i``: ``index size hash32``
``04 P 05 UINT(p) 00``         bitfield page ``p`` (4096 bytes, blocks ``32768 p ..``, LSB first)
``04 P 06 STRING(key)``        user data, raw bytes
=============================  ==============================================================

What JS writes, and when (checked by dumping real stores with rocksdict)
=====================================================================================

Every operation below is ONE atomic RocksDB write batch, except where a second write is
noted. ``new Hypercore(dir, opts)`` opens ``dir`` as its own store (``compat`` is off unless
``compat: true``, so key = manifest hash).

* **First open of an empty directory**: ``CORESTORE`` is written (and locked until close), then
  ``00 -> 02 00 00 00 00`` (version 2, all counters 0, no flags). JS does this from its store
  "migration 0"; :class:`Storage` does the same on open.

* **Which core** ``new Hypercore(dir)`` **opens**: with no key, the store head's
  ``defaultDiscoveryKey``; with a key, its discovery key. It reads ``01 D`` for the pointers and
  follows ``04 P 01`` dependency rows. If there is no such core it creates one (a random key
  pair when neither ``key`` nor ``keyPair`` is given). The default discovery key is set by the
  first core ever created in the store and never changed by Hypercore afterwards.

* **Creation** (``new Hypercore(dir, {keyPair})``, core absent):

  - ``00``: ``cores`` and ``datas`` incremented (the core gets the old values as ``C``/``P``, so
    the first core is 0/0, the next 1/1), and, if the head had none, ``defaultDiscoveryKey`` =
    D (flag 2). The seed is not touched (only Corestore writes it, with ``setSeed``).
  - ``01 D -> 02 C P 00`` (no alias; Corestore named cores: ``01 <str name> <ns32>`` + alias row).
  - ``03 C 00`` auth: key, D, flags ``03``, ``46`` + the 70-byte default signer manifest
    (``01 00 00 01 01 00 <DEFAULT_NAMESPACE> <pk>``), ``20 <pk>``, ``40 <sk 64>``.
    With only ``{key}`` (no key pair, no manifest): flags ``00``, nothing after the dkey.
    JS then writes this same row again, alone (same bytes: the open re-saves the manifest).
  - no head, hints or bitfield row: a length-0 core has none. User data rows only if the
    storage caller passes ``userData`` (hypercore's constructor never does).

* **append(values)** from length L to L+n:

  - ``04 P 04 UINT(i)`` for every node the append creates: leaves ``2(L+j)`` and each parent
    completed by them (e.g. 3 blocks from 0: nodes 0, 1, 2, 4);
  - ``04 P 00`` head: fork, L+n, tree hash of the roots, ``44`` + 68-byte signature container
    ``01 00 <ed25519 sig over crypto.tree_signable(manifest_hash, tree_hash, L+n, fork)> 00 00``
    (default v1 manifest), flags ``01``, u64le ``Date.now()``;
  - ``04 P 05 UINT(p) 00`` for every page touched by ``[L, L+n)``: the whole 4096-byte page,
    read-modify-written, bits set;
  - ``04 P 02`` hints ``{contiguousLength: L+n, remoteContiguousLength}`` only if the old
    ``contiguousLength`` was L (``01 <L+n>``; the remote value only when non-zero;
    ``recovering`` is never written here);
  - ``04 P 03 UINT(L+j)`` the blocks;
  - then, as a second write, the hints row again with the in-memory contiguous length
    (``flushHints``; the same bytes unless ``recovering`` is set). Truncate and clear end with
    the same second hints write.

* **setUserData(key, value)**: ``04 P 06 STRING(key) -> value`` (a str value as UTF-8);
  ``value = null`` deletes the row. ``"k\\0z"`` is stored under ``... 06 00 6b 00 02 7a 00 01``.

* **truncate(len)** (fork defaults to fork + 1), from length ``old``:

  - delete blocks ``[len, old)`` (a range delete);
  - head: new fork, ``len``, tree hash of the roots at ``len``, new signature, timestamp;
  - delete tree nodes ``[2 len, 2 old)`` (range), then each node on the way up from leaf
    ``2 len - 2`` whose span contains ``2 len`` and whose index is below it, stopping after
    the first node with flat-tree offset 0. Parents left of the cut can therefore survive as
    stale rows (truncate 3 -> 1 keeps node 1); no new nodes are written;
  - the touched bitfield pages with bits ``[len, old)`` cleared;
  - hints ``{contiguousLength: len, remoteContiguousLength: min(len, remote)}`` if
    ``len < contiguousLength``.

  Observed 3 -> 1: ``04 P 00 -> 01 01 <hash> 44 <sig> 01 <ts>``, blocks 1-2 and nodes 2, 4 gone,
  node 1 kept, hints ``01 01``, bitfield byte 0 = ``01``.

* **clear(start, end)**: the head is untouched; blocks deleted (one key if ``end - start == 1``,
  else a range); bitfield bits ``[start, end)`` cleared (whole pages rewritten); hints set to
  ``{contiguousLength: start, remote}`` if ``start < contiguousLength``; tree nodes: walking up
  from ``2 start`` until a root, the node and its sibling are deleted while the JS test
  ``sibling_span_start <= start and sibling_span_end <= end`` or "no block set under the
  sibling" holds. Observed clear(1, 3) on length 2 and clear(1) on length 3: block 1 and
  nodes 0 and 2 deleted (node 0 although block 0 is kept), hints ``01 01``. A later append
  then does not rewrite hints (the contiguous length is no longer the length).

* **encryptionKey** (``new Hypercore(dir, {keyPair, encryptionKey})``): nothing extra is stored
  (auth flags stay ``03``; the auth ``encryptionKey`` field is never written by hypercore
  11.37.1 or corestore 7.12.5). Each block row is 8 bytes of padding + ciphertext (a 6-byte
  block is stored as 14 bytes) and tree leaves hash and size the stored bytes.

* **Opening an existing core** writes nothing when its rows are consistent (checked: the rows
  of a Python-written core are unchanged after JS opens and closes it). It rewrites hints if
  ``contiguousLength`` differs from the first unset bitfield bit at or after it, and the auth
  row if the open supplies a manifest the row lacked. A head with ``length > 0`` whose root
  nodes are missing puts the core in "repair mode".

Writing a core JS accepts: create it (:meth:`Storage.create_core`), then in one batch put every
tree node, the blocks, the head (tree hash + signature as above, timestamp in ms), the
bitfield pages and hints ``Hints(contiguous_length=length)``.
"""

from .device import DeviceFile
from .errors import (
    DeviceFileError,
    StorageClosedError,
    StorageCorruptionError,
    StorageError,
    StorageLockedError,
)
from .kv import KV, MemoryKV, RocksKV
from .records import (
    Alias,
    Auth,
    CoreHead,
    CoreRecord,
    Dependency,
    Group,
    Hints,
    Session,
    StoredKeyPair,
    StoreHead,
)
from .store import (
    BITFIELD_PAGE_SIZE,
    CoreBatch,
    CoreStorage,
    MemoryStorage,
    RocksDBStorage,
    Storage,
)

__all__ = [
    "BITFIELD_PAGE_SIZE",
    "KV",
    "Alias",
    "Auth",
    "CoreBatch",
    "CoreHead",
    "CoreRecord",
    "CoreStorage",
    "Dependency",
    "DeviceFile",
    "DeviceFileError",
    "Group",
    "Hints",
    "MemoryKV",
    "MemoryStorage",
    "RocksDBStorage",
    "RocksKV",
    "Session",
    "Storage",
    "StorageClosedError",
    "StorageCorruptionError",
    "StorageError",
    "StorageLockedError",
    "StoreHead",
    "StoredKeyPair",
]
