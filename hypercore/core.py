"""The state of one core, shared by all its sessions: tree head, bitfield, storage, waiters.

Mutations (append, truncate, clear, verified proofs) are computed synchronously, written in
one storage batch, and only then applied to memory, so a failed write changes nothing and
there is no await in the middle of a mutation.

The one exception is replication: proofs verified with ``defer=True`` are applied to memory
at once (blocks and nodes stay readable from there) and written together by the next
:meth:`Core.flush`, which the replicator calls after each burst of messages and every
other mutation, and closing, calls first, so storage sees the same order of writes.

Damaged storage (see :class:`~hypercore.storage.StorageCorruptionError`): a block whose bit is
set but whose row is missing or unreadable is dropped when read (its bit cleared, in memory
and on disk, and peers told, as :meth:`Core.clear` does), so ``has`` turns False, the read
raises, and the block can be downloaded again. Opening (:mod:`hypercore.opening`) repairs
what the other rows determine and fails naming the row for the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, Protocol

from protomux._toolkit import ChangeNotifier

from . import crypto, flat_tree, merkle
from .bitfield import Bitfield
from .crypto import KeyPair, TreeNode
from .encryption import DefaultEncryption
from .errors import (
    BadArgumentError,
    BlockNotAvailableError,
    ForkMismatchError,
    HypercoreError,
    InvalidOperationError,
    InvalidSignatureError,
    SessionNotWritableError,
)
from .manifest import Manifest
from .merkle import TreeHead
from .storage import CoreBatch, CoreStorage, Storage, StorageCorruptionError, StorageError
from .storage.records import CoreHead, Hints
from .verifier import Verifier
from .wire import Data

__all__ = ["Core", "CoreListener", "TreeHead"]

log = logging.getLogger("hypercore")

MAX_CACHED_NODES = 1 << 18
#: Verified blocks kept in memory before a deferred write is forced.
MAX_PENDING_BLOCKS = 1024


class _Pending:
    """Verified proofs not written yet (see :meth:`Core.flush`)."""

    __slots__ = ("batch", "blocks", "head", "hints", "nodes", "pages")

    def __init__(self, batch: CoreBatch) -> None:
        self.batch = batch
        self.blocks: dict[int, bytes] = {}
        self.nodes: dict[int, TreeNode] = {}
        self.pages: set[int] = set()
        self.head = False
        self.hints = False


class CoreListener(Protocol):
    """What a core tells the one that replicates it (its replicator), after each change
    is applied to memory: the core calls back up through this and imports nothing of
    replication."""

    def on_append(self, start: int, length: int) -> None:
        """We appended blocks ``[start, start + length)``."""

    def on_truncate(self, length: int, old_length: int) -> None:
        """The core was cut back from ``old_length`` to ``length`` (a truncate, or a
        reorg to a newer fork that kept ``length`` blocks)."""

    def on_clear(self, start: int, end: int) -> None:
        """Blocks ``[start, end)`` were dropped locally."""

    def on_verified(self, index: int, upgraded: bool) -> None:
        """A remote proof was verified and applied: block ``index`` (or -1), and whether
        it brought a new head."""

    def close(self) -> None:
        """The core is closing."""


class Core:
    """One open core; every session of it holds a reference."""

    def __init__(
        self,
        storage: Storage,
        owns_storage: bool,
        core_storage: CoreStorage,
        key: bytes,
        manifest: Manifest | None,
        key_pair: KeyPair | None,
        encryption: DefaultEncryption | None,
    ) -> None:
        self.storage = storage
        self.owns_storage = owns_storage
        self.cs = core_storage
        self.key = key
        self.discovery_key = crypto.discovery_key(key)
        self.manifest = manifest
        self.verifier = Verifier(key, manifest) if manifest is not None else None
        self.key_pair = key_pair
        self.encryption = encryption
        self.head = TreeHead()
        self.bitfield = Bitfield()
        self.contiguous_length = 0
        self.remote_contiguous_length = 0
        self.sessions = 0
        self.closed = False
        self._changed = ChangeNotifier()
        self._nodes: dict[int, TreeNode] = {}  # stored tree nodes read or written lately
        self._absent: set[int] = set()  # tree nodes storage lately said it lacks
        #: Every stored tree node is in ``_nodes`` (the core was empty when opened, and
        #: nothing was deleted or evicted since): a miss there needs no storage read.
        self._nodes_complete = False
        self._pending: _Pending | None = None
        #: Who replicates this core (its :class:`~hypercore.replication.Replicator`, made on
        #: first use by :func:`~hypercore.replication.replicator_of`): told of every change.
        self.replicator: CoreListener | None = None
        #: Event name -> callbacks (see :meth:`Hypercore.on`).
        self.handlers: dict[str, list[Callable[..., object]]] = {}

    @property
    def compat(self) -> bool:
        """A hypercore 10 style key (the signer's public key itself)."""
        m = self.manifest
        return m is not None and crypto.core_key(m, compat=True) == self.key

    def set_encryption_key(self, encryption_key: bytes | None) -> None:
        """Encrypt blocks with ``encryption_key`` from now on (None: leave as it is); a core
        open with another key refuses it."""
        if encryption_key is None:
            return
        current = self.encryption
        if current is None:
            manifest = self.manifest
            compat = manifest is not None and crypto.core_key(manifest, compat=True) == self.key
            self.encryption = DefaultEncryption(encryption_key, self.key, compat=compat)
        elif current.key != bytes(encryption_key):
            raise BadArgumentError(
                "the core is open with another encryption key", self.discovery_key
            )

    def emit(self, name: str, *args: Any) -> None:
        """Run the callbacks registered for ``name``; their exceptions are logged, never
        raised into the code that changed the core."""
        for fn in list(self.handlers.get(name, ())):
            try:
                fn(*args)
            except Exception:
                log.exception("a %r callback of core %s failed", name, self.discovery_key.hex())

    # --- reading ------------------------------------------------------------------------

    def get_node(self, index: int) -> TreeNode | None:
        node = self._nodes.get(index)
        if node is None:
            if self._pending is not None:
                node = self._pending.nodes.get(index)
                if node is not None:
                    return node
            if self._nodes_complete or index in self._absent:
                return None
            node = self.cs.get_tree_node(index)
            if node is not None:
                self._remember((node,))
            else:
                if len(self._absent) > MAX_CACHED_NODES:
                    self._absent.clear()
                self._absent.add(index)
        return node

    def _remember(self, nodes: Iterable[TreeNode]) -> None:
        """Keep stored tree nodes in memory. Nodes never change while stored; every deletion
        empties both caches. ``_absent`` entries for nodes written since are shadowed by
        ``_nodes``, which is looked at first, so both are emptied together."""
        if len(self._nodes) > MAX_CACHED_NODES:
            self._forget_nodes()
        for n in nodes:
            self._nodes[n.index] = n

    def _forget_nodes(self) -> None:
        self._nodes.clear()
        self._absent.clear()
        self._nodes_complete = False

    @property
    def writable(self) -> bool:
        return (
            self.key_pair is not None
            and self.key_pair.secret_key is not None
            and self.verifier is not None
        )

    @property
    def padding(self) -> int:
        return self.encryption.padding if self.encryption is not None else 0

    def has(self, index: int) -> bool:
        return index < self.head.length and self.bitfield.get(index)

    def read_block(self, index: int) -> bytes | None:
        """The stored (possibly encrypted) block, or None.

        A block whose bit is set but whose row is missing or unreadable raises
        :class:`StorageCorruptionError` naming it, after dropping it (see :meth:`_drop_damaged`).
        """
        if not self.bitfield.get(index):
            return None
        if self._pending is not None:
            value = self._pending.blocks.get(index)
            if value is not None:
                return value
        try:
            value = self.cs.get_block(index)
        except StorageCorruptionError:
            self._drop_damaged(index)
            raise
        if value is None:
            err = self.cs.damaged(self.cs.block_key(index), "missing, but its bitfield bit is set")
            self._drop_damaged(index)
            raise err
        return value

    def _drop_damaged(self, index: int) -> None:
        """Forget a block whose row is damaged as :meth:`clear` forgets blocks: clear its bit
        (and delete the row) on disk, tell peers (a ``range`` drop), so that ``has`` is False
        and the block can be downloaded again. If storage cannot even take that write, the
        bit is cleared in memory only."""
        log.warning("core %s: dropping damaged block %d", self.discovery_key.hex(), index)
        if index < self.head.length:
            try:
                self.clear(index, index + 1)
                return
            except StorageError:
                log.exception("core %s: cannot clear block %d", self.discovery_key.hex(), index)
        self.bitfield.set_range(index, index + 1, False)
        self.contiguous_length = min(self.contiguous_length, index)
        if self.replicator is not None:
            self.replicator.on_clear(index, index + 1)

    def roots_at(self, length: int) -> list[TreeNode]:
        if length == self.head.length:
            return list(self.head.roots)
        return merkle.roots_at(self, length)

    # --- waiting --------------------------------------------------------------------------

    async def wait_changed(self) -> None:
        """Return after the next change: an append, truncate, verified data, close, or news
        from the core's peers (see :meth:`notify`)."""
        await self._changed.wait()

    async def wait_until(self, ready: Callable[[], bool]) -> None:
        """Return once ``ready()`` holds, checking it after each change (a checkpoint even
        when it already holds)."""
        await self._changed.wait_until(ready)

    def notify(self) -> None:
        """Wake every :meth:`wait_changed`: the core changed, or its replication did (a peer
        came, left or told its length; a download ended)."""
        self._changed.notify()

    def close(self) -> None:
        if self.closed:
            return
        try:
            self.flush()
        except Exception:
            log.exception(
                "core %s: the last verified blocks were not stored", self.discovery_key.hex()
            )
        self.closed = True
        if self.replicator is not None:
            self.replicator.close()
        self.notify()
        if self.owns_storage:
            self.storage.close()

    # --- writing --------------------------------------------------------------------------

    def _require_writable(self) -> Verifier:
        if not self.writable or self.verifier is None:
            raise SessionNotWritableError(
                "cannot append to a non-writable core", self.discovery_key
            )
        return self.verifier

    def _signed(
        self, roots: tuple[TreeNode, ...], length: int, byte_length: int, fork: int
    ) -> tuple[TreeHead, CoreHead]:
        """The signed head for these roots, and its storage record (hashing the tree once)."""
        verifier = self._require_writable()
        assert self.key_pair is not None
        tree_hash = crypto.tree(roots)
        signature = verifier.sign(tree_hash, length, fork, self.key_pair)
        head = TreeHead(roots, length, byte_length, fork, signature)
        return head, _head_record(head, tree_hash)

    def append(self, blocks: list[bytes]) -> tuple[int, int]:
        """Append already-encoded blocks; returns the new length and byte length."""
        self._require_writable()
        self.flush()
        if not blocks:
            return self.head.length, self.head.byte_length
        old = self.head
        if self.encryption is not None:
            blocks = [
                self.encryption.encrypt(old.length + i, b, old.fork) for i, b in enumerate(blocks)
            ]
        nodes, roots, length, byte_length = merkle.append(
            old.roots, old.length, old.byte_length, blocks
        )
        new, record = self._signed(tuple(roots), length, byte_length, old.fork)

        batch = self.cs.batch()
        batch.put_tree_nodes(nodes)
        batch.put_head(record)
        batch.put_blocks(old.length, blocks)
        touched = self.bitfield.set_range(old.length, length, True)
        contiguous = self.contiguous_length
        if old.length == contiguous:
            contiguous = self.bitfield.first_unset(length)
            batch.put_hints(Hints(contiguous, self.remote_contiguous_length))
        for p in touched:
            batch.put_bitfield_page(p, self.bitfield.page(p))
        try:
            batch.commit()
        except BaseException:
            self.bitfield.set_range(old.length, length, False)
            raise
        self._remember(nodes)
        self.head = new
        self.contiguous_length = contiguous
        self.notify()
        if self.replicator is not None:
            self.replicator.on_append(old.length, length - old.length)
        self.emit("append")
        return length, byte_length

    def truncate(self, length: int, fork: int) -> None:
        self._require_writable()
        self.flush()
        old = self.head
        if length > old.length:
            raise InvalidOperationError(
                f"Not a truncation, {length} must be less or equal to {old.length}",
                self.discovery_key,
            )
        cut = merkle.truncate(self, old, length, fork)
        cut_head = cut.head
        new, record = self._signed(cut_head.roots, length, cut_head.byte_length, fork)

        batch = self.cs.batch()
        if cut.delete_start < cut.delete_end:
            batch.delete_tree_node_range(cut.delete_start, cut.delete_end)
        for index in cut.delete_nodes:
            batch.delete_tree_node(index)
        batch.delete_block_range(length, old.length)
        batch.put_head(record)
        touched = self.bitfield.set_range(length, old.length, False)
        for p in touched:
            batch.put_bitfield_page(p, self.bitfield.page(p))
        contiguous = self.contiguous_length
        if length < contiguous:
            contiguous = length
            batch.put_hints(Hints(contiguous, min(length, self.remote_contiguous_length)))
        try:
            batch.commit()
        except BaseException:
            self.bitfield.set_range(length, old.length, True)
            raise
        self._forget_nodes()
        self.head = new
        self.contiguous_length = contiguous
        self.notify()
        if self.replicator is not None:
            self.replicator.on_truncate(length, old.length)
        self.emit("truncate", length, fork)

    def clear(self, start: int, end: int) -> None:
        end = min(end, self.head.length)
        if start >= end:
            return
        self.flush()
        batch = self.cs.batch()
        bitfield = self.bitfield

        def has_any(s: int, e: int) -> bool:
            return bitfield.first_set(s, e) != -1

        if not self.writable:
            # A writer keeps every tree node: a later truncate() may need any of them as a
            # root, and without the blocks it could not recompute their hashes.
            for index in merkle.clearable_nodes(self.head.roots, start, end, has_any):
                batch.delete_tree_node(index)
        if end - start == 1:
            batch.delete_block(start)
        else:
            batch.delete_block_range(start, end)
        touched = self.bitfield.set_range(start, end, False)
        for p in touched:
            batch.put_bitfield_page(p, self.bitfield.page(p))
        contiguous = self.contiguous_length
        if start < contiguous:
            contiguous = start
            batch.put_hints(Hints(contiguous, self.remote_contiguous_length))
        try:
            batch.commit()
        except BaseException:
            self.bitfield.set_range(start, end, True)
            raise
        self._forget_nodes()
        self.contiguous_length = contiguous
        if self.replicator is not None:
            self.replicator.on_clear(start, end)

    # --- proofs ---------------------------------------------------------------------------

    def proof(
        self,
        *,
        block: merkle.IndexRequestLike | None = None,
        hash: merkle.IndexRequestLike | None = None,
        seek: merkle.SeekRequestLike | None = None,
        upgrade: merkle.UpgradeRequestLike | None = None,
        manifest: bool = False,
        request: int = 0,
        fork: int | None = None,
    ) -> Data:
        """The ``data`` message that answers a request against this core's current head."""
        value = None
        if block is not None:
            value = self.read_block(block.index) if block.index < self.head.length else None
            if value is None:
                raise BlockNotAvailableError(discovery_key=self.discovery_key)
        verifier = self.verifier
        reader = _ProofReader(self)
        try:
            data = merkle.generate_proof(
                reader,
                self.head,
                block=block,
                hash=hash,
                seek=seek,
                upgrade=upgrade,
                block_value=value,
                prologue=verifier.prologue if verifier is not None else None,
                request=request,
                fork=fork,
            )
        except StorageError:
            raise
        except HypercoreError as e:
            missing = reader.missing
            if missing is not None and self._should_store(missing):
                key = self.cs.tree_node_key(missing)
                detail = "missing, but blocks under it are stored"
                raise self.cs.damaged(key, detail) from None
            e.with_discovery_key(self.discovery_key)
            raise
        if manifest and self.manifest is not None:
            data = replace(data, manifest=self.manifest)
        return data

    def _should_store(self, index: int) -> bool:
        """Whether tree node ``index`` must be stored: it is in the tree and a stored block is
        under it (each verified block stores the nodes on its way to the root)."""
        start, end = flat_tree.spans(index)
        return end < 2 * self.head.length and self.bitfield.first_set(start // 2, end // 2 + 1) >= 0

    def _put_learned_manifest(self, batch: CoreBatch, learned: Manifest | None) -> None:
        """Store a manifest that came with a verified proof (a reader that knew only the key)."""
        if learned is not None:
            auth = self.cs.get_auth()
            if auth is not None:
                batch.put_auth(replace(auth, manifest=learned))

    def _proof_verifier(self, data: Data) -> tuple[Verifier, Manifest | None]:
        """The verifier for a proof, and the manifest it teaches us (if we had none)."""
        if self.verifier is not None:
            return self.verifier, None
        manifest = data.manifest or crypto.default_signer_manifest(self.key)
        if not (
            crypto.manifest_hash(manifest) == self.key
            or crypto.core_key(manifest, compat=True) == self.key
        ):
            raise InvalidSignatureError("Proof contains an invalid manifest", self.discovery_key)
        return Verifier(self.key, manifest), manifest

    def reorg(self, data: Data) -> bool:
        """Follow the writer to a newer fork, from a fork proof (an upgrade from 0, signed
        for a fork above ours), as a reader does when the writer truncated.

        The new tree is verified on its own (roots and signature). Our blocks and nodes are
        kept up to the longest prefix whose subtrees equal the new tree's leading roots;
        everything past it is dropped, and the new head is stored. Returns False when ``data``
        is not such a proof (or we are the writer); raises ``INVALID_*`` errors, changing
        nothing, when it does not verify.
        """
        up = data.upgrade
        old = self.head
        if self.writable or up is None or up.start != 0 or data.fork <= old.fork:
            return False
        verifier, learned = self._proof_verifier(data)
        try:
            verified = merkle.verify_proof(
                merkle.MemoryNodeStore(),
                TreeHead(fork=data.fork),
                data,
                verifier.verify,
                prologue=verifier.prologue,
            )
        except StorageError:
            raise
        except HypercoreError as e:
            e.with_discovery_key(self.discovery_key)
            raise
        new_head = verified.head
        if new_head is None:
            return False
        ancestor = 0
        for r in new_head.roots:
            ours = self.get_node(r.index)
            if ours is None or ours.hash != r.hash or ours.size != r.size:
                break
            ancestor = flat_tree.right_span(r.index) // 2 + 1
        ancestor = min(ancestor, old.length)

        self.flush()
        batch = self.cs.batch()
        touched: list[int] = []
        if ancestor < old.length:
            try:
                cut = merkle.truncate(self, old, ancestor, data.fork)
                doomed: tuple[int, ...] = cut.delete_nodes
            except StorageError:
                raise
            except HypercoreError:
                ancestor, doomed = 0, ()
            batch.delete_tree_node_range(2 * ancestor, 2 * old.length)
            for index in doomed:
                batch.delete_tree_node(index)
            batch.delete_block_range(ancestor, old.length)
            touched = self.bitfield.set_range(ancestor, old.length, False)
            for p in touched:
                batch.put_bitfield_page(p, self.bitfield.page(p))
        batch.put_tree_nodes(verified.nodes)
        batch.put_head(_head_record(new_head))
        contiguous = min(self.contiguous_length, ancestor)
        batch.put_hints(Hints(contiguous, min(ancestor, self.remote_contiguous_length)))
        self._put_learned_manifest(batch, learned)
        try:
            batch.commit()
        except BaseException:
            if touched:
                self.bitfield.set_range(ancestor, old.length, True)
            raise
        self._forget_nodes()
        if learned is not None:
            self.manifest = learned
            self.verifier = verifier
        self.head = new_head
        self.contiguous_length = contiguous
        self.notify()
        if self.replicator is not None:
            self.replicator.on_truncate(ancestor, old.length)
        self.emit("truncate", ancestor, new_head.fork)
        if new_head.length > ancestor:
            self.emit("append")
        return True

    def verify(self, data: Data, *, defer: bool = False, stop_at_stored: bool = True) -> bool:
        """Check a remote ``data`` message and store what it proves.

        Returns False when the proof is for another fork (nothing to apply); raises an
        ``INVALID_*`` error for a proof that does not verify. Either way nothing changes
        unless everything verified. With ``defer``, what it proves is applied to memory at
        once and written by the next :meth:`flush` (together with other deferred proofs).
        ``stop_at_stored``: see :func:`merkle.verify_proof` (False stores every node of the
        proof).
        """
        if data.fork != self.head.fork:
            return False
        verifier, learned = self._proof_verifier(data)
        try:
            verified = merkle.verify_proof(
                self,
                self.head,
                data,
                verifier.verify,
                prologue=verifier.prologue,
                stop_at_stored=stop_at_stored,
            )
        except ForkMismatchError:
            return False
        except StorageError:
            raise
        except HypercoreError as e:
            e.with_discovery_key(self.discovery_key)
            raise
        new_head = verified.head
        if new_head is not None and learned is None and self.manifest is None:
            learned = verifier.manifest

        pending = self._pending
        if not defer:
            if pending is not None:
                self.flush()
                pending = None
        elif pending is None:
            pending = self._pending = _Pending(self.cs.batch())
        batch = pending.batch if pending is not None else self.cs.batch()
        cached = self._nodes
        new_nodes = [n for n in verified.nodes if cached.get(n.index) != n]
        batch.put_tree_nodes(new_nodes)
        self._put_learned_manifest(batch, learned)
        touched: list[int] = []
        index = -1
        if data.block is not None:
            index = data.block.index
            batch.put_block(index, data.block.value)
            touched = self.bitfield.set_range(index, index + 1, True)
        length = new_head.length if new_head is not None else self.head.length
        contiguous = self.contiguous_length
        if index == contiguous:
            contiguous = min(self.bitfield.first_unset(contiguous), length)
        if pending is not None:
            pending.nodes.update((n.index, n) for n in new_nodes)
            if index >= 0:
                pending.blocks[index] = data.block.value  # type: ignore[union-attr]
                pending.pages.update(touched)
            pending.head |= new_head is not None
            pending.hints |= contiguous != self.contiguous_length
        else:
            if new_head is not None:
                batch.put_head(_head_record(new_head))
            for p in touched:
                batch.put_bitfield_page(p, self.bitfield.page(p))
            if contiguous != self.contiguous_length:
                batch.put_hints(Hints(contiguous, self.remote_contiguous_length))
            try:
                batch.commit()
            except BaseException:
                if touched:
                    self.bitfield.set_range(index, index + 1, False)
                raise
        self._remember(new_nodes)
        if learned is not None:
            self.manifest = learned
            self.verifier = verifier
        grew = new_head is not None and new_head.length > self.head.length
        if new_head is not None:
            self.head = new_head
        self.contiguous_length = contiguous
        if pending is None or new_head is not None:
            self.notify()  # deferred blocks: waiters hear of them from flush()
        if self.replicator is not None:
            self.replicator.on_verified(index, new_head is not None)
        if grew:
            self.emit("append")
        if pending is not None and len(pending.blocks) >= MAX_PENDING_BLOCKS:
            self.flush()
        return True

    def flush(self) -> None:
        """Write what deferred :meth:`verify` calls applied (one atomic batch). On a storage
        error what was pending is lost from storage (it stays in memory) and the error is
        raised."""
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        batch = pending.batch
        for p in sorted(pending.pages):
            batch.put_bitfield_page(p, self.bitfield.page(p))
        if pending.head:
            batch.put_head(_head_record(self.head))
        if pending.hints:
            batch.put_hints(Hints(self.contiguous_length, self.remote_contiguous_length))
        batch.commit()
        self.notify()


class _ProofReader:
    """The core's nodes for a proof, noting the last one that was not stored."""

    __slots__ = ("missing", "state")

    def __init__(self, state: Core) -> None:
        self.state = state
        self.missing: int | None = None

    def get_node(self, index: int) -> TreeNode | None:
        node = self.state.get_node(index)
        if node is None:
            self.missing = index
        return node


def _head_record(head: TreeHead, tree_hash: bytes | None = None) -> CoreHead:
    """The storage record of a signed head (``tree_hash``: ``head.hash()`` if known)."""
    return CoreHead(
        head.fork,
        head.length,
        head.hash() if tree_hash is None else tree_hash,
        head.signature,
        int(time.time() * 1000),
    )
