"""The B-tree of a Hyperbee 2 in memory (JS ``hyperbee/index.js``: ``TreeNode``,
``BlockEntry``, ``BatchEntry``, ``rebalance``, ``setKeyToNearestLeaf``, ``deflate``).

A block holds a key, a value and the tree nodes that write changed (its index: a list of
levels). A :class:`TreeNode` is one level read out of a block, made mutable for a write: its
keys are :class:`Key` (a block seq, and the key bytes once loaded), its children are
:class:`Child` (a block seq and level offset, and the node once loaded). A write changes the
nodes on its path and serialises the changed ones in pre-order into the index of the block it
appends (:meth:`TreeNode.index_changes`); the rest keep pointing at older blocks.

Nodes load what they point at through their block's :class:`BlockLoader` (the batch that
read it), and a put passes :meth:`TreeNode.insert_key` a :data:`Replace` that decides whether
an existing key is overwritten; the tree code knows nothing else of its owner.

The algorithms mirror JS step for step, because the bytes they write must be the same.
Everything read from blocks is checked: bad levels, pointers out of the version and trees
deeper than :data:`MAX_DEPTH` raise :class:`~hyperbee.errors.DecodingError`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from .codecs import Encodings, Entry, dec
from .errors import DecodingError, HyperbeeError
from .messages import Level, YoloIndex, decode_node, decode_yolo_index, encode_yolo_index

__all__ = [
    "MAX_CHILDREN",
    "MAX_DEPTH",
    "MIN_KEYS",
    "Block",
    "BlockEntry",
    "BlockLoader",
    "Child",
    "Key",
    "Replace",
    "TreeNode",
    "deflate",
    "rebalance",
    "set_key_to_nearest_leaf",
]

T = 5
MIN_KEYS = T - 1
MAX_CHILDREN = MIN_KEYS * 2 + 1

#: Deeper than any real tree (depth grows as log5 of the entries): a cycle in bad data ends here.
MAX_DEPTH = 64


def too_deep() -> DecodingError:
    return DecodingError("the tree is deeper than any valid bee (a cycle in its blocks?)")


class BlockLoader(Protocol):
    """What the tree and its iterators need from their owner (a
    :class:`~hyperbee.batch.Batch`): one version of the bee, its blocks by seq and its root.
    """

    @property
    def version(self) -> int:
        """The length of the core this view reads: its blocks are ``1 .. version - 1``."""
        ...

    @property
    def committed(self) -> int:
        """How many of those blocks are stored (a batch's pending ones come after)."""
        ...

    async def get_block(self, seq: int) -> BlockEntry:
        """Block ``seq``, as this view sees it."""
        ...

    async def get_tree_block(self, seq: int) -> BlockEntry:
        """Block ``seq`` that the tree points at: a pointer outside the version is a
        :class:`~hyperbee.errors.DecodingError`."""
        ...

    async def get_key(self, seq: int) -> bytes:
        """The key bytes of block ``seq`` (checked as :meth:`get_tree_block`)."""
        ...

    async def get_root(self, ensure_header: bool) -> TreeNode | None:
        """The root node of the version (None for an empty bee); with ``ensure_header`` a new
        writable bee first writes its header."""
        ...


#: ``replace(node, index)``: whether a put may overwrite key ``index`` of ``node`` with the
#: same key (the writer decides: its compare-and-swap, an unchanged value).
Replace = Callable[["TreeNode", int], Awaitable[bool]]


class Key:
    """A key slot: the seq of the block holding the key, and its bytes once loaded."""

    __slots__ = ("seq", "value")

    def __init__(self, seq: int, value: bytes | None) -> None:
        self.seq = seq
        self.value = value


class Child:
    """A child slot: the node at ``levels[offset]`` of block ``seq``, and the node once
    loaded."""

    __slots__ = ("offset", "seq", "value")

    def __init__(self, seq: int, offset: int, value: TreeNode | None) -> None:
        self.seq = seq
        self.offset = offset
        self.value = value


class Block:
    """A stored block, decoded (shared by every reader of the bee at the same fork). Its
    levels are decoded and checked on first use."""

    __slots__ = ("_index", "_levels", "key", "seq", "value")

    def __init__(self, seq: int, data: bytes) -> None:
        node = decode_node(data)
        self.seq = seq
        self.key = node.key
        self.value = node.value
        self._index: bytes | None = node.index
        self._levels: list[Level] | None = None

    def levels(self) -> list[Level]:
        levels = self._levels
        if levels is None:
            assert self._index is not None
            levels = decode_yolo_index(self._index).levels
            for offset, level in enumerate(levels):
                if len(level.children) & 1:
                    raise DecodingError(f"block {self.seq}: odd children list at {offset}")
            self._levels = levels
            self._index = None
        return levels


class BlockEntry:
    """A block as one batch sees it: each of its levels becomes mutable :class:`TreeNode`
    keys and children on first use, shared by every node read out of it in that batch (as in
    JS)."""

    __slots__ = ("_pointers", "block", "key", "loader", "seq", "value")

    def __init__(self, seq: int, loader: BlockLoader, key: bytes, value: bytes | None) -> None:
        self.seq = seq
        self.loader = loader
        self.key = key
        self.value = value
        self.block: Block | None = None
        self._pointers: list[tuple[list[Key], list[Child]] | None] | None = None

    @classmethod
    def of(cls, block: Block, loader: BlockLoader) -> BlockEntry:
        entry = cls(block.seq, loader, block.key, block.value)
        entry.block = block
        return entry

    def final(self, encoding: Encodings) -> Entry:
        """The entry this block wrote, decoded with ``encoding``."""
        value = self.value
        return Entry(
            self.seq,
            dec(encoding.key, self.key),
            None if value is None else dec(encoding.value, value),
        )

    def _level_keys(self) -> list[list[int]]:
        """The key seqs of every level, as the batch sees them now."""
        assert self.block is not None
        levels = self.block.levels()
        pointers = self._pointers
        out = []
        for i, lv in enumerate(levels):
            level = None if pointers is None else pointers[i]
            out.append(lv.keys if level is None else [k.seq for k in level[0]])
        return out

    def is_target(self, key: bytes) -> bool:
        return self.key == key

    def release(self) -> None:
        """Let go of the nodes read out of this block (they point back at it)."""
        self._pointers = None

    def is_deletion(self) -> bool:
        """A tombstone: no value, and its own key is in none of its nodes."""
        if self.value is not None:
            return False
        seq = self.seq
        return not any(seq in keys for keys in self._level_keys())

    def get_tree_node(self, offset: int) -> TreeNode:
        assert self.block is not None
        pointers = self._pointers
        if pointers is None:
            pointers = self._pointers = [None] * len(self.block.levels())
        if not 0 <= offset < len(pointers):
            raise DecodingError(f"block {self.seq} has no tree node at offset {offset}")
        level = pointers[offset]
        if level is None:
            lv = self.block.levels()[offset]
            c = lv.children
            level = pointers[offset] = (
                [Key(s, None) for s in lv.keys],
                [Child(c[i], c[i + 1], None) for i in range(0, len(c), 2)],
            )
        return TreeNode(self, level[0], level[1], offset)


class BatchEntry(BlockEntry):
    """A block written by a batch and not yet flushed: its nodes are the live ones."""

    __slots__ = ("pending_index",)

    def __init__(
        self,
        seq: int,
        loader: BlockLoader,
        key: bytes,
        value: bytes | None,
        index: list[Child | None],
    ) -> None:
        super().__init__(seq, loader, key, value)
        self.pending_index = index

    def _level_keys(self) -> list[list[int]]:
        return [[k.seq for k in c.value.keys] for c in self.pending_index if c and c.value]

    def release(self) -> None:
        self.pending_index = []

    def is_target(self, key: bytes) -> bool:
        return False

    def get_tree_node(self, offset: int) -> TreeNode:
        index = self.pending_index
        child = index[offset] if 0 <= offset < len(index) else None
        if child is None or child.value is None:
            raise HyperbeeError(f"pending block {self.seq} has no tree node at {offset}")
        return child.value


class TreeNode:
    """One node of the tree, as a write or a read sees it."""

    __slots__ = ("block", "changed", "children", "keys", "offset")

    def __init__(
        self, block: BlockEntry | None, keys: list[Key], children: list[Child], offset: int
    ) -> None:
        self.block = block
        self.offset = offset
        self.keys = keys
        self.children = children
        self.changed = False

    @staticmethod
    def create(block: BlockEntry | None) -> TreeNode:
        node = TreeNode(block, [], [], 0)
        node.changed = True
        return node

    def _loader(self) -> BlockLoader:
        block = self.block
        if block is None:
            raise HyperbeeError("a new tree node has nothing to load")
        return block.loader

    async def get_key(self, index: int) -> bytes:
        key = self.keys[index]
        value = key.value
        if value is not None:
            return value
        block = self.block
        if block is not None and key.seq == block.seq:
            value = block.key
        else:
            value = await self._loader().get_key(key.seq)
        key.value = value
        return value

    async def get_key_node(self, index: int) -> BlockEntry:
        return await self._loader().get_tree_block(self.keys[index].seq)

    async def get_child_node(self, index: int) -> TreeNode:
        children = self.children
        if not 0 <= index < len(children):
            raise DecodingError(f"a tree node has {len(children)} children, not child {index}")
        child = children[index]
        node = child.value
        if node is not None:
            return node
        block = self.block
        if block is None or child.seq != block.seq:
            block = await self._loader().get_tree_block(child.seq)
        node = child.value = block.get_tree_node(child.offset)
        return node

    async def search(self, key: bytes) -> tuple[int, int]:
        """Binary search: ``(i, -1)`` when key ``i`` is ``key``, else ``(-1, j)`` with ``j``
        the child to descend into (and where ``key`` would be inserted)."""
        keys = self.keys
        s, e = 0, len(keys)
        while s < e:
            mid = (s + e) >> 1
            k = keys[mid].value
            if k is None:
                k = await self.get_key(mid)
            if key == k:
                return mid, -1
            if key < k:
                e = mid
            else:
                s = mid + 1
        return -1, s

    def set_key(self, index: int, key: Key) -> None:
        self.keys[index] = key
        self.changed = True

    async def insert_key(self, key: Key, child: TreeNode | None, replace: Replace) -> bool:
        """Insert ``key`` (or replace the same key, if ``replace`` lets it); False when the
        node is now too full."""
        target = key.value
        assert target is not None
        keys = self.keys
        found, i = await self.search(target)
        if found >= 0:
            if await replace(self, found):
                self.changed = True
                keys[found] = key
            return True
        keys.insert(i, key)
        if child is not None:
            self.children.insert(i + 1, Child(0, 0, child))
        self.changed = True
        return len(keys) < MAX_CHILDREN

    def remove_key(self, index: int) -> None:
        del self.keys[index]
        if self.children:
            self.children[index + 1].seq = 0  # freed
            del self.children[index + 1]
        self.changed = True

    async def siblings(self, parent: TreeNode) -> tuple[TreeNode | None, int, TreeNode | None]:
        children = parent.children
        for i, child in enumerate(children):
            if child.value is self:
                left = await parent.get_child_node(i - 1) if i else None
                right = await parent.get_child_node(i + 1) if i < len(children) - 1 else None
                return left, i, right
        raise DecodingError("a tree node is not a child of its parent")

    def merge(self, node: TreeNode, median: Key) -> None:
        self.changed = True
        self.keys.append(median)
        self.keys.extend(node.keys)
        self.children.extend(node.children)

    async def split(self) -> tuple[Key, TreeNode]:
        """Move the upper half to a new right node; returns the median and that node."""
        half = len(self.keys) >> 1
        right = TreeNode.create(self.block)
        right.keys = self.keys[len(self.keys) - half :]
        del self.keys[len(self.keys) - half :]
        await self.get_key(len(self.keys) - 1)  # the median's bytes go up with it
        median = self.keys.pop()
        if self.children:
            cut = len(self.children) - (half + 1)
            right.children = self.children[cut:]
            del self.children[cut:]
        self.changed = True
        return median, right

    def index_changes(self, index: list[Child | None], seq: int) -> int:
        """Append this node and its changed descendants, pre-order, to ``index``; their
        child slots now point into block ``seq``. Returns this node's offset."""
        offset = len(index)
        index.append(None)
        self.changed = False
        for child in self.children:
            node = child.value
            if node is None or not node.changed:
                continue
            child.seq = seq
            child.offset = node.index_changes(index, seq)
            index[child.offset] = child
        return offset

    def update_children(self, seq: int, block: BlockEntry) -> None:
        for child in self.children:
            node = child.value
            if node is None or child.seq != seq:
                continue
            node.block = block
            node.update_children(seq, block)


def deflate(index: list[Child | None]) -> bytes:
    """The index bytes of a block: each listed node's key seqs and child pointers."""
    levels = []
    for slot in index:
        if slot is None or slot.value is None:
            raise HyperbeeError("a hole in a block's index")
        node = slot.value
        children: list[int] = []
        for c in node.children:
            children.append(c.seq)
            children.append(c.offset)
        levels.append(Level([k.seq for k in node.keys], children))
    return encode_yolo_index(YoloIndex(levels))


async def _leaf_size(node: TreeNode, go_left: bool) -> int:
    for _ in range(MAX_DEPTH):
        if not node.children:
            return len(node.keys)
        node = await node.get_child_node(0 if go_left else len(node.children) - 1)
    raise too_deep()


async def set_key_to_nearest_leaf(node: TreeNode, index: int, stack: list[TreeNode]) -> None:
    """Replace key ``index`` of an inner node by its in-order neighbour, taken from the
    fuller of the two nearest leaves; the path down to that leaf joins ``stack``."""
    left = await node.get_child_node(index)
    right = await node.get_child_node(index + 1)
    ls = await _leaf_size(left, False)
    rs = await _leaf_size(right, True)
    if ls < rs:
        stack.append(right)
        while right.children:
            nxt = right.children[0].value
            assert nxt is not None  # loaded by _leaf_size
            right = nxt
            stack.append(right)
        node.keys[index] = right.keys.pop(0)
    else:
        stack.append(left)
        while left.children:
            nxt = left.children[-1].value
            assert nxt is not None
            left = nxt
            stack.append(left)
        node.keys[index] = left.keys.pop()


async def rebalance(stack: list[TreeNode]) -> TreeNode:
    """Restore the minimum fill up ``stack`` (root first) after a removal: borrow from the
    left sibling, else the right, else merge. Returns the (possibly new) root."""
    root = stack[0]
    while len(stack) > 1:
        node = stack.pop()
        parent = stack[-1]
        if len(node.keys) >= MIN_KEYS:
            return root
        left, index, right = await node.siblings(parent)
        if left is not None and len(left.keys) > MIN_KEYS:
            left.changed = True
            node.keys.insert(0, parent.keys[index - 1])
            if left.children:
                node.children.insert(0, left.children.pop())
            parent.keys[index - 1] = left.keys.pop()
            return root
        if right is not None and len(right.keys) > MIN_KEYS:
            right.changed = True
            node.keys.append(parent.keys[index])
            if right.children:
                node.children.append(right.children.pop(0))
            parent.keys[index] = right.keys.pop(0)
            return root
        if left is not None:
            index -= 1
            right = node
        else:
            left = node
        if right is None:
            raise DecodingError("a tree node without siblings below the root")
        left.merge(right, parent.keys[index])
        parent.remove_key(index)
    if not root.keys and root.children:
        return await root.get_child_node(0)
    return root
