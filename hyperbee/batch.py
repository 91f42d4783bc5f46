"""Reading and writing one version of a bee (JS ``hyperbee/index.js`` ``Batch``).

Every read and write goes through a :class:`Batch`: a single ``put`` is a batch that appends
its one block at once; ``bee.batch()`` keeps its blocks pending, readable by its own later
operations, and appends them all with one ``append`` on :meth:`Batch.flush` (only the last
block then carries the root; the earlier ones keep just the nodes later blocks still point at,
as JS ``toBlocks`` lays them out).

A batch is the :class:`~hyperbee.nodes.BlockLoader` of the tree code: :mod:`hyperbee.nodes`
and :mod:`hyperbee.iterators` read blocks and roots through it, and a put tells
:meth:`~hyperbee.nodes.TreeNode.insert_key` whether it may replace a key.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import trio

from hypercore.codecs import BINARY
from hypercore.session import Hypercore

from .codecs import Cas, Encodings, Entry, enc
from .errors import BadArgumentError, BeeReadOnlyError, BlockNotAvailableError, DecodingError
from .iterators import encode_range, read_range
from .messages import Header, Node, encode_header, encode_node
from .nodes import (
    MAX_DEPTH,
    BatchEntry,
    Block,
    BlockEntry,
    Child,
    Key,
    TreeNode,
    deflate,
    rebalance,
    set_key_to_nearest_leaf,
    too_deep,
)

if TYPE_CHECKING:
    from .bee import Hyperbee

__all__ = ["Batch", "Cas", "Encodings"]

#: ``_put``/``_del``: ``(key, value, cas)``, as the user gave them.
_Op = Callable[[Any, Any, "Cas | None"], Awaitable[None]]


def _check_pointer(seq: int, version: int) -> None:
    """A block the tree of ``version`` points at must be one of its own."""
    if not 1 <= seq < version:
        raise DecodingError(f"the tree points at block {seq}, outside 1..{version - 1}")


class Batch:
    """A view of one version of ``bee`` through ``core``; with ``batch_lock`` its writes stay
    pending until :meth:`flush`."""

    def __init__(
        self,
        bee: Hyperbee,
        core: Hypercore,
        *,
        batch_lock: trio.Semaphore | None = None,
        cache: bool = True,
        checkout: int = -1,
        update: bool = True,
        wait: bool = True,
        encoding: Encodings | None = None,
    ) -> None:
        self.bee = bee
        self.core = core
        self.blocks: dict[int, BlockEntry] | None = {} if cache else None
        self.auto_flush = batch_lock is None
        self.max_blocks_cached = 128
        self.length = 0
        self.checkout = checkout
        self.locked = False
        self.batch_lock = batch_lock
        self.should_update = update
        self.updated = False
        self.wait = wait
        self.encoding = encoding if encoding is not None else bee._encodings
        self._appending: list[bytes] | None = None

    # --- blocks -------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        if self.checkout != -1:
            return max(1, self.checkout)
        return max(1, self.bee._checkout or self.core.length + self.length)

    @property
    def committed(self) -> int:
        """The blocks in the core; the pending ones of this batch come after them."""
        return self.core.length

    async def _load(self, seq: int) -> Block:
        cache = self.bee._cache
        core = self.core
        if core.fork == cache.fork:
            block = cache.blocks.get(seq)
            if block is not None:
                return block
        data = core.read_local(seq)
        if data is None:
            data = await core.get(seq, value_encoding=BINARY, wait=self.wait)
        if not isinstance(data, bytes):
            raise BlockNotAvailableError(f"block {seq} is not available")
        block = Block(seq, data)
        if core.fork == cache.fork:
            cache.put(seq, block)
        return block

    async def get_block(self, seq: int) -> BlockEntry:
        blocks = self.blocks
        if blocks is not None:
            entry = blocks.get(seq)
            if entry is not None:
                return entry
        entry = BlockEntry.of(await self._load(seq), self)
        if blocks is not None:
            got = blocks.get(seq)
            if got is not None:
                return got
            if len(blocks) - self.length < self.max_blocks_cached:
                blocks[seq] = entry
        return entry

    async def get_tree_block(self, seq: int) -> BlockEntry:
        """A block the tree points at: it must be inside this version."""
        _check_pointer(seq, self.version)
        return await self.get_block(seq)

    async def get_key(self, seq: int) -> bytes:
        _check_pointer(seq, self.version)
        blocks = self.blocks
        if blocks is not None:
            entry = blocks.get(seq)
            if entry is not None:
                return entry.key
        return (await self._load(seq)).key

    async def get_root(self, ensure_header: bool) -> TreeNode | None:
        bee = self.bee
        core = self.core
        if ensure_header and core.length == 0 and core.writable and not bee.readonly:
            await core.append(encode_header(Header(metadata=bee.metadata)))
        if bee._checkout == 0 and self.checkout == -1 and self.should_update and not self.updated:
            self.updated = True
            if core.peers:
                await core.update()
        version = self.version
        if version < 2:
            return None
        return (await self.get_block(version - 1)).get_tree_node(0)

    # --- reads --------------------------------------------------------------------------------

    async def get(self, key: Any) -> Entry | None:
        target = enc(self.encoding.key, key)
        assert target is not None
        block = await self._find(target)
        await trio.lowlevel.checkpoint()  # cached blocks are read without one
        return None if block is None else block.final(self.encoding)

    async def _find(self, key: bytes) -> BlockEntry | None:
        if self.length == 0:
            return await self._find_stored(key)
        node = await self.get_root(False)
        if node is None:
            return None
        for _ in range(MAX_DEPTH):
            block = node.block
            assert block is not None
            if block.is_target(key):
                return None if block.is_deletion() else block
            found, i = await node.search(key)
            if found >= 0:
                return await self.get_tree_block(node.keys[found].seq)
            if not node.children:
                return None
            node = await node.get_child_node(i)
        raise too_deep()

    async def _find_stored(self, key: bytes) -> BlockEntry | None:
        """:meth:`_find` on stored blocks only (no pending writes): the same walk, over the
        decoded levels themselves instead of mutable tree nodes."""
        await self.get_root(False)  # the header and update steps
        version = self.version
        if version < 2:
            return None
        core = self.core
        cache = self.bee._cache
        cached = cache.blocks if core.fork == cache.fork else {}

        async def load(seq: int) -> Block:
            _check_pointer(seq, version)
            b = cached.get(seq)
            return b if b is not None else await self._load(seq)

        block = await load(version - 1)
        offset = 0
        for _ in range(MAX_DEPTH):
            levels = block.levels()
            if not 0 <= offset < len(levels):
                raise DecodingError(f"block {block.seq} has no tree node at offset {offset}")
            if block.key == key:
                if block.value is None and not any(block.seq in lv.keys for lv in levels):
                    return None  # a deletion
                return BlockEntry.of(block, self)
            level = levels[offset]
            keys = level.keys
            s, e, c = 0, len(keys), 0
            while s < e:
                mid = (s + e) >> 1
                found = cached.get(keys[mid])
                if found is None or keys[mid] >= version:
                    found = await load(keys[mid])
                k = found.key
                c = (key > k) - (key < k)
                if c == 0:
                    return BlockEntry.of(found, self)
                if c < 0:
                    e = mid
                else:
                    s = mid + 1
            children = level.children
            if not children:
                return None
            i = e if c < 0 else s
            if 2 * i + 1 >= len(children):
                raise DecodingError(f"a tree node has {len(children) // 2} children, not {i}")
            block = await load(children[2 * i])
            offset = children[2 * i + 1]
        raise too_deep()

    async def get_by_seq(self, seq: int) -> Entry:
        """The key and value block ``seq`` wrote (a deletion has no value)."""
        if seq < 1:
            raise BadArgumentError("block 0 is the header, not an entry")
        block = await self.get_block(seq)
        await trio.lowlevel.checkpoint()
        return block.final(self.encoding)

    async def call_cas(self, cas: Cas, prev: BlockEntry, new: Entry) -> bool:
        result = cas(prev.final(self.encoding), new)
        if inspect.isawaitable(result):
            result = await result
        return bool(result)

    async def may_replace(
        self, node: TreeNode, index: int, value: bytes | None, new: Entry | None, cas: Cas | None
    ) -> bool:
        """Whether a put may replace key ``index`` of ``node``: ``cas`` agrees, and the
        value changes unless the bee always duplicates."""
        if cas is not None:
            assert new is not None
            prev = await node.get_key_node(index)
            if not await self.call_cas(cas, prev, new):
                return False
        if not self.bee.always_duplicate:
            prev = await node.get_key_node(index)
            if prev.value == value:
                return False
        return True

    def read(
        self,
        *,
        gt: Any = None,
        gte: Any = None,
        lt: Any = None,
        lte: Any = None,
        reverse: bool = False,
        limit: int | None = None,
        encoding: Encodings | None = None,
    ) -> AsyncIterator[Entry]:
        """Entries in key order within the bounds (keys, encoded with the key encoding; a
        sub's range never leaves the sub), as JS ``RangeIterator``."""
        encoding = encoding or self.encoding
        bounds = encode_range(encoding.key, self.bee._sub, gt, gte, lt, lte)
        return read_range(self, *bounds, reverse, limit, encoding)

    # --- writes -------------------------------------------------------------------------------

    async def _lock(self) -> None:
        if self.bee.readonly:
            raise BeeReadOnlyError("the bee is read-only")
        if not self.locked:
            await self.bee._lock.acquire()
            self.locked = True

    def _unlock(self) -> None:
        if self.locked:
            self.locked = False
            self.bee._lock.release()

    async def put(self, key: Any, value: Any = None, *, cas: Cas | None = None) -> None:
        await self._write(self._put, key, value, cas)

    async def delete(self, key: Any, *, cas: Cas | None = None) -> None:
        await self._write(self._del, key, None, cas)

    async def _write(self, op: _Op, key: Any, value: Any, cas: Cas | None) -> None:
        if self.batch_lock is None:
            await self._lock()
            try:
                await op(key, value, cas)
            finally:
                self._unlock()
                self._drop_blocks()
            return
        async with self.batch_lock:
            await self._lock()
            await op(key, value, cas)

    async def _put(self, key_in: Any, value_in: Any, cas: Cas | None) -> None:
        encoding = self.encoding
        new_entry = Entry(0, key_in, value_in)
        key = enc(encoding.key, key_in)
        value = enc(encoding.value, value_in)
        assert key is not None

        async def replace(node: TreeNode, index: int) -> bool:
            return await self.may_replace(node, index, value, new_entry, cas)

        async def replace_median(node: TreeNode, index: int) -> bool:
            return await self.may_replace(node, index, value, None, None)

        stack: list[TreeNode] = []
        node = await self.get_root(True)
        if node is None:
            node = TreeNode.create(None)
        root = node
        seq = new_entry.seq = self.core.length + self.length
        target = Key(seq, key)
        while node.children:
            if len(stack) >= MAX_DEPTH:
                raise too_deep()
            stack.append(node)
            node.changed = True  # on the path: rewritten
            found, i = await node.search(key)
            if found >= 0:
                if await replace(node, found):
                    node.set_key(found, target)
                    await self._append(root, seq, key, value)
                return
            node = await node.get_child_node(i)

        needs_split = not await node.insert_key(target, None, replace)
        if not node.changed:
            return
        while needs_split:
            parent = stack.pop() if stack else None
            median, right = await node.split()
            if parent is not None:
                needs_split = not await parent.insert_key(median, right, replace_median)
                node = parent
            else:
                root = TreeNode.create(node.block)
                root.keys.append(median)
                root.children.append(Child(0, 0, node))
                root.children.append(Child(0, 0, right))
                needs_split = False
        await self._append(root, seq, key, value)

    async def _del(self, key_in: Any, _value: None, cas: Cas | None) -> None:
        del_entry = Entry(0, key_in, None)
        key = enc(self.encoding.key, key_in)
        assert key is not None
        stack: list[TreeNode] = []
        node = await self.get_root(True)
        if node is None:
            return
        seq = del_entry.seq = self.core.length + self.length
        for _ in range(MAX_DEPTH):
            stack.append(node)
            found, i = await node.search(key)
            if found >= 0:
                if cas is not None:
                    prev = await node.get_key_node(found)
                    if not await self.call_cas(cas, prev, del_entry):
                        return
                if node.children:
                    await set_key_to_nearest_leaf(node, found, stack)
                else:
                    node.remove_key(found)
                for n in stack:  # marked late: a missing key rewrites nothing
                    n.changed = True
                await self._append(await rebalance(stack), seq, key, None)
                return
            if not node.children:
                return
            node = await node.get_child_node(i)
        raise too_deep()

    async def _append(self, root: TreeNode, seq: int, key: bytes, value: bytes | None) -> None:
        index: list[Child | None] = []
        root.index_changes(index, seq)
        index[0] = Child(seq, 0, root)
        if not self.auto_flush:
            block = BatchEntry(seq, self, key, value, index)
            root.block = block
            self.length += 1
            assert self.blocks is not None
            self.blocks[seq] = block
            root.update_children(seq, block)
            return
        await self.core.append(encode_node(Node(deflate(index), key, value)))

    def to_blocks(self) -> list[bytes]:
        """The pending blocks, encoded: every block but the last keeps only the nodes that
        no later block rewrote (renumbered in place, as JS compacts them)."""
        if self._appending is not None:
            return self._appending
        assert self.blocks is not None
        out = []
        base = self.core.length
        for i in range(self.length):
            seq = base + i
            entry = self.blocks[seq]
            assert isinstance(entry, BatchEntry)
            pending = entry.pending_index
            if i < self.length - 1:
                pending[0] = None
                j = 0
                while j < len(pending):
                    slot = pending[j]
                    if slot is not None and slot.seq == seq:
                        slot.offset = j
                        j += 1
                        continue
                    if j == len(pending) - 1:
                        pending.pop()
                    else:
                        pending[j] = pending.pop()
            out.append(encode_node(Node(deflate(pending), entry.key, entry.value)))
        self._appending = out
        return out

    async def flush(self) -> None:
        """Append every pending block at once (and let other writers go on)."""
        if not self.length:
            await self.aclose()
            return
        blocks = self.to_blocks()
        self._drop_blocks()
        self.length = 0
        try:
            await self.core.append(blocks)
        finally:
            self._appending = None
            self._unlock()

    def _drop_blocks(self) -> None:
        """Forget the blocks read or written, breaking the node <-> block reference cycles so
        that they are freed at once instead of by the cyclic collector."""
        blocks = self.blocks
        if blocks is None:
            return
        for entry in blocks.values():
            entry.release()
        blocks.clear()

    async def aclose(self) -> None:
        """Drop what is pending and let other writers go on."""
        self._drop_blocks()
        self.length = 0
        self._appending = None
        self._unlock()
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> Batch:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.flush()
        else:
            await self.aclose()
