"""The Merkle tree of a hypercore without I/O: heads, appends, reads, seeks and truncation.

Every function here is synchronous and pure: stored nodes come from a :class:`NodeReader`
(anything with ``get_node(index) -> TreeNode | None``) and results are returned for the
caller to store. Node indices, sizes and hashes are those of JS hypercore 11
(``lib/merkle-tree.js``), so a tree built here can be read by the JS and the other way round.

Indices are flat-tree indices (block ``i`` is node ``2 * i``) unless a name says "block".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, TypeVar

from .. import crypto
from .. import flat_tree as flat
from ..crypto import TreeNode
from ..errors import (
    AssertionFailedError,
    BadArgumentError,
    InvalidOperationError,
    MissingNodeError,
)

_P = TypeVar("_P")

__all__ = [
    "AppendResult",
    "HeadLike",
    "MemoryNodeStore",
    "NodeReader",
    "SeekPending",
    "TreeHead",
    "TruncateResult",
    "append",
    "block_byte_offset",
    "block_node",
    "byte_offset",
    "byte_range",
    "clearable_nodes",
    "head_at",
    "max_missing_nodes",
    "missing_nodes",
    "missing_nodes_until",
    "parent_node",
    "roots_at",
    "seek",
    "total_size",
    "total_span",
    "tree_hash",
    "truncate",
]

# Walks are bounded by the tree depth; JS gives up after 1024 steps, and so do we.
MAX_STEPS = 1024


class NodeReader(Protocol):
    """Where stored tree nodes come from."""

    def get_node(self, index: int) -> TreeNode | None: ...


class HeadLike(Protocol):
    """The fields of a tree head that the functions of this package read."""

    @property
    def roots(self) -> Sequence[TreeNode]: ...

    @property
    def length(self) -> int: ...

    @property
    def byte_length(self) -> int: ...

    @property
    def fork(self) -> int: ...

    @property
    def signature(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class TreeHead:
    """A tree state: its full roots (left to right), length, byte length, fork, signature."""

    roots: tuple[TreeNode, ...] = ()
    length: int = 0
    byte_length: int = 0
    fork: int = 0
    signature: bytes | None = None

    @classmethod
    def from_roots(
        cls, roots: Iterable[TreeNode], fork: int = 0, signature: bytes | None = None
    ) -> TreeHead:
        """The head whose length and byte length follow from its roots."""
        r = tuple(roots)
        return cls(r, total_span(r) // 2, total_size(r), fork, signature)

    def hash(self) -> bytes:
        """The tree hash that signatures cover."""
        return crypto.tree(self.roots)


@dataclass(slots=True)
class MemoryNodeStore:
    """A dict of nodes by index: the simplest :class:`NodeReader`, for tests and tools."""

    nodes: dict[int, TreeNode] = field(default_factory=dict)

    def get_node(self, index: int) -> TreeNode | None:
        return self.nodes.get(index)

    def put_nodes(self, nodes: Iterable[TreeNode]) -> None:
        for n in nodes:
            self.nodes[n.index] = n

    def delete_range(self, start: int, end: int) -> None:
        """Drop the nodes with ``start <= index < end``."""
        for i in [i for i in self.nodes if start <= i < end]:
            del self.nodes[i]

    def delete_nodes(self, indices: Iterable[int]) -> None:
        for i in indices:
            self.nodes.pop(i, None)

    def copy(self) -> MemoryNodeStore:
        return MemoryNodeStore(dict(self.nodes))


# --- nodes and hashes ------------------------------------------------------------------------


def tree_hash(roots: Sequence[TreeNode]) -> bytes:
    """The hash over a tree's full roots (``crypto.tree``)."""
    return crypto.tree(roots)


def block_node(index: int, value: bytes) -> TreeNode:
    """The leaf node at tree index ``index`` for a stored block."""
    return TreeNode(index, len(value), crypto.data(value))


def parent_node(index: int, a: TreeNode, b: TreeNode) -> TreeNode:
    """The parent at ``index`` of two sibling nodes (in either order)."""
    return TreeNode(index, a.size + b.size, crypto.parent(a, b))


def total_size(nodes: Iterable[TreeNode]) -> int:
    """Sum of the sizes: the byte length of a tree given its roots."""
    return sum(n.size for n in nodes)


def total_span(roots: Iterable[TreeNode]) -> int:
    """``2 * length`` of a tree given its roots (the leaf index right after the last root)."""
    s = 0
    for n in roots:
        s += 2 * (n.index - s + 1)
    return s


def _get(reader: NodeReader, index: int) -> TreeNode:
    node = reader.get_node(index)
    if node is None:
        raise MissingNodeError(index)
    return node


# --- append ----------------------------------------------------------------------------------


class AppendResult(NamedTuple):
    """What an append makes: every node to store, and the new roots, length and byte length."""

    nodes: list[TreeNode]
    roots: list[TreeNode]
    length: int
    byte_length: int


def append(
    roots: Sequence[TreeNode], length: int, byte_length: int, blocks: Iterable[bytes]
) -> AppendResult:
    """Append stored blocks to a tree of ``length`` blocks with these ``roots``.

    Nodes come in the order JS ``MerkleTreeBatch.append`` makes them: each leaf, then the
    parents it completes, bottom up.
    """
    new_roots = list(roots)
    nodes: list[TreeNode] = []
    index = flat.index
    data = crypto.data
    par = crypto.parent
    for block in blocks:
        node = TreeNode(2 * length, len(block), data(block))
        nodes.append(node)
        new_roots.append(node)
        byte_length += node.size
        depth = 0
        off = length
        # Merge while the new root is a right child whose left sibling is the previous root.
        while off & 1 and len(new_roots) > 1 and new_roots[-2].index == index(depth, off - 1):
            right = new_roots.pop()
            left = new_roots.pop()
            off >>= 1
            depth += 1
            node = TreeNode(index(depth, off), left.size + right.size, par(left, right))
            nodes.append(node)
            new_roots.append(node)
        length += 1
    return AppendResult(nodes, new_roots, length, byte_length)


# --- reading ---------------------------------------------------------------------------------


def roots_at(reader: NodeReader, length: int) -> list[TreeNode]:
    """The full roots of the tree of ``length`` blocks, from stored nodes."""
    return [_get(reader, i) for i in flat.full_roots(2 * length)]


def head_at(
    reader: NodeReader, length: int, fork: int = 0, signature: bytes | None = None
) -> TreeHead:
    """The :class:`TreeHead` of ``length`` blocks, from stored nodes."""
    return TreeHead.from_roots(roots_at(reader, length), fork, signature)


def _offset_of(reader: NodeReader, roots: Sequence[TreeNode], index: int) -> int:
    if index & 1:
        index = flat.left_span(index)
    head = 0
    offset = 0
    for root in roots:
        head += 2 * (root.index - head + 1)
        if index >= head:
            offset += root.size
            continue
        ite = flat.Iterator(root.index)
        steps = 0
        while ite.index != index:
            steps += 1
            if steps >= MAX_STEPS or ite.factor == 2:
                raise AssertionFailedError(f"Bad byte offset index={index}")
            if index < ite.index:
                ite.left_child()
            else:
                offset += _get(reader, ite.left_child()).size
                ite.sibling()
        return offset
    raise BadArgumentError(f"Index {index} is out of bounds")


def byte_offset(reader: NodeReader, head: HeadLike, index: int) -> int:
    """Byte offset of the first block under tree node ``index``.

    What JS ``MerkleTree.byteOffset`` means to compute; the JS itself returns NaN for nodes
    past the first root (it adds ``.size`` of a number), and hypercore never calls it.
    """
    if index == 2 * head.length:
        return head.byte_length
    return _offset_of(reader, head.roots, index)


def block_byte_offset(reader: NodeReader, head: HeadLike, block: int) -> int:
    """Byte offset of block ``block``; ``block == length`` gives the byte length."""
    if not 0 <= block <= head.length:
        raise BadArgumentError(f"Block {block} is out of bounds")
    return byte_offset(reader, head, 2 * block)


def byte_range(reader: NodeReader, head: HeadLike, index: int) -> tuple[int, int]:
    """``(offset, size)`` in bytes of tree node ``index`` (JS ``byteRange``, without its NaN
    past the first root)."""
    last = index if not index & 1 else flat.right_span(index)
    if last >= 2 * head.length:
        raise BadArgumentError("Index is out of bounds")
    return _offset_of(reader, head.roots, index), _get(reader, index).size


# --- seek ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeekPending:
    """A seek that stored nodes cannot answer: the blocks ``[start, end)`` to fetch first.

    ``start >= length`` (with ``end == 0``) means the byte offset is past the end of the tree:
    only an upgrade can answer it.
    """

    start: int
    end: int


def _unpadded(size: int, padding: int, leaves: int) -> int:
    return size - padding * leaves if padding else size


def seek(
    reader: NodeReader, head: HeadLike, offset: int, padding: int = 0
) -> tuple[int, int] | SeekPending:
    """The block holding byte ``offset`` and the offset inside it, as JS ``seek``.

    ``padding`` is the per-block overhead not counted in byte offsets (encryption). At a
    boundary between blocks the answer is ``(block, 0)`` for the block that starts there, as
    the JS finds it: the block right after the largest stored subtree ending at that offset
    (with zero-length blocks this need not be the first block starting there). The byte
    length itself gives ``(length, 0)``.
    """
    if not offset:
        return 0, 0
    found = _seek(reader, head.roots, offset, padding)
    if found is None:
        size = head.byte_length - head.length * padding
        beyond = offset >= size
        return SeekPending(head.length if beyond else 0, 0 if beyond else head.length)
    index, rest = found
    if not index & 1:
        return index // 2, rest
    left, right = flat.spans(index)
    return SeekPending(left // 2, right // 2 + 1)


def _seek(
    reader: NodeReader, roots: Sequence[TreeNode], remaining: int, padding: int
) -> tuple[int, int] | None:
    for root in roots:
        size = _unpadded(root.size, padding, flat.count_leaves(root.index))
        if remaining == size:
            return flat.right_span(root.index) + 2, 0
        if remaining > size:
            remaining -= size
            continue
        ite = flat.Iterator(root.index)
        while ite.index & 1:
            left = reader.get_node(ite.left_child())
            if left is None:
                ite.parent()
                return ite.index, remaining
            size = _unpadded(left.size, padding, ite.count_leaves())
            if size == remaining:
                return ite.peek_right_span() + 2, 0
            if size > remaining:
                continue
            remaining -= size
            ite.sibling()
        return ite.index, remaining
    return None


# --- truncation and clearing -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TruncateResult:
    """A truncated tree: the new (unsigned) head, and the stored nodes to delete.

    Delete every node with ``delete_start <= index < delete_end``, and the nodes in
    ``delete_nodes`` (parents below ``delete_start`` that spanned past the new end).
    """

    head: TreeHead
    delete_start: int
    delete_end: int
    delete_nodes: tuple[int, ...]


def truncate(
    reader: NodeReader, head: HeadLike, length: int, fork: int | None = None
) -> TruncateResult:
    """Cut the tree back to ``length`` blocks (JS ``MerkleTree.truncate`` and its commit).

    Every stored node that covers a block at or past ``length`` is to be deleted.
    ``fork`` defaults to ``head.fork + 1`` as in JS ``Hypercore.truncate``. The new head has no
    signature: sign ``(head.hash(), length, fork)`` and store it.
    """
    if not 0 <= length <= head.length:
        raise InvalidOperationError(
            f"Not a truncation, {length} must be less or equal to {head.length}"
        )
    if fork is None:
        fork = head.fork + 1
    roots = list(head.roots)
    wanted = flat.full_roots(2 * length)
    for i, index in enumerate(wanted):
        if i < len(roots) and roots[i].index == index:
            continue
        del roots[i:]
        roots.append(_get(reader, index))
    del roots[len(wanted) :]
    new = TreeHead.from_roots(roots, fork)

    doomed: list[int] = []
    if length < head.length and length > 0:
        # Parents of the new last block that also cover blocks past it. (JS stops climbing
        # at the leftmost node of a level and so leaves some of these behind, stale.)
        end = 2 * length
        ite = flat.Iterator(end - 2)
        while ite.factor // 2 - 1 < end:
            if ite.index < end and ite.contains(end):
                doomed.append(ite.index)
            ite.parent()
    if length < head.length:
        return TruncateResult(new, 2 * length, 2 * head.length, tuple(doomed))
    return TruncateResult(new, 0, 0, ())


def clearable_nodes(
    roots: Sequence[TreeNode], start: int, end: int, has_any: Callable[[int, int], bool]
) -> list[int]:
    """Tree nodes that clearing blocks ``[start, end)`` makes useless.

    ``has_any(s, e)`` tells whether any block in ``[s, e)`` is still stored. Walks up from
    ``start`` while the sibling subtree holds no stored block (or only cleared ones), as JS
    ``SessionState.clear`` does, and returns both nodes of each such pair.
    """
    root_indices = {r.index for r in roots}
    if not roots or 2 * start >= total_span(roots):
        return []
    out: list[int] = []
    ite = flat.Iterator(2 * start)
    while ite.index not in root_indices:
        a = ite.index
        b = ite.sibling()
        ite.parent()
        left, right = flat.spans(b)
        s = left // 2
        e = right // 2 + 1
        if not (start <= s and e <= end) and has_any(s, e):
            break
        out.append(a)
        out.append(b)
    return out


# --- requester side --------------------------------------------------------------------------


def missing_nodes(reader: NodeReader, index: int, length: int) -> int:
    """How many nodes, from ``index`` up, a requester lacks below the roots of ``length``.

    JS ``MerkleTree.missingNodes``: the ``nodes`` field of a block (``index = 2 * block``) or
    hash request. 0 when ``index`` is not inside the tree of ``length`` blocks.
    """
    return missing_nodes_until(reader, index, length, None)[0]


def missing_nodes_until(
    reader: NodeReader, index: int, length: int, promised: Mapping[int, _P] | None
) -> tuple[int, _P | None]:
    """:func:`missing_nodes`, also stopping at a node in ``promised`` (nodes that proofs
    already asked for will store): the count, and the promise it stopped at (or None)."""
    head = 2 * length
    ite = flat.Iterator(index)
    if ite.index + ite.factor // 2 - 1 >= head:
        return 0, None
    count = 0
    while not ite.contains(head) and reader.get_node(ite.index) is None:
        if promised:
            p = promised.get(ite.index)
            if p is not None:
                return count, p
        count += 1
        if count >= MAX_STEPS:
            raise AssertionFailedError(
                f"Bad arguments to missingNodes index={index} at length={length}"
            )
        ite.parent()
    return count, None


def max_missing_nodes(index: int, length: int) -> int:
    """How many nodes above ``index`` lie below the roots of ``length`` (JS
    ``MerkleTree.maxMissingNodes``); 0 for a root or a node outside the tree."""
    head = 2 * length
    ite = flat.Iterator(index)
    if ite.index + ite.factor // 2 - 1 >= head:
        return 0
    if index in flat.full_roots(head):
        return 0
    ite.parent()
    count = 0
    while not ite.contains(head):
        count += 1
        ite.parent()
    return count
