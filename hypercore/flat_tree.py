"""Flat-tree: in-order numbering of a binary tree laid over a list of blocks.

Block ``i`` is node ``2 * i``; parents have odd indices. ``depth(x)`` is the number of
trailing one bits of ``x``. Indices are Python ints, so there is no upper bound (the JS
package works up to 2^53).
"""

from __future__ import annotations

__all__ = [
    "Iterator",
    "children",
    "count",
    "count_leaves",
    "depth",
    "full_roots",
    "future_roots",
    "index",
    "iterator",
    "left_child",
    "left_span",
    "next_leaf",
    "offset",
    "parent",
    "patch",
    "right_child",
    "right_span",
    "sibling",
    "spans",
]


def index(depth: int, offset: int) -> int:
    """The node at ``depth`` and ``offset`` (position among the nodes of that depth)."""
    return ((offset << 1) + 1 << depth) - 1


_index = index  # the functions below take a parameter named ``index``


def depth(index: int) -> int:
    """Depth of a node: 0 for leaves."""
    # Trailing ones of index == trailing zeros of index + 1.
    n = index + 1
    return (n & -n).bit_length() - 1


def offset(index: int, depth_: int | None = None) -> int:
    """Position of a node among the nodes of its depth."""
    if not index & 1:
        return index >> 1
    if depth_ is None:
        depth_ = depth(index)
    return (index + 1 >> depth_) - 1 >> 1


def parent(index: int, depth_: int | None = None) -> int:
    """Parent of a node."""
    if depth_ is None:
        depth_ = depth(index)
    return _index(depth_ + 1, offset(index, depth_) >> 1)


def sibling(index: int, depth_: int | None = None) -> int:
    """The other child of this node's parent."""
    if depth_ is None:
        depth_ = depth(index)
    return _index(depth_, offset(index, depth_) ^ 1)


def left_child(index: int, depth_: int | None = None) -> int:
    """Left child of a parent node, or -1 for a leaf."""
    if not index & 1:
        return -1
    if depth_ is None:
        depth_ = depth(index)
    return _index(depth_ - 1, offset(index, depth_) << 1)


def right_child(index: int, depth_: int | None = None) -> int:
    """Right child of a parent node, or -1 for a leaf."""
    if not index & 1:
        return -1
    if depth_ is None:
        depth_ = depth(index)
    return _index(depth_ - 1, (offset(index, depth_) << 1) + 1)


def children(index: int, depth_: int | None = None) -> tuple[int, int] | None:
    """Both children of a parent node, or None for a leaf."""
    if not index & 1:
        return None
    if depth_ is None:
        depth_ = depth(index)
    o = offset(index, depth_) << 1
    return _index(depth_ - 1, o), _index(depth_ - 1, o + 1)


def left_span(index: int, depth_: int | None = None) -> int:
    """The leftmost leaf under a node."""
    if not index & 1:
        return index
    if depth_ is None:
        depth_ = depth(index)
    return offset(index, depth_) << depth_ + 1


def right_span(index: int, depth_: int | None = None) -> int:
    """The rightmost leaf under a node."""
    if not index & 1:
        return index
    if depth_ is None:
        depth_ = depth(index)
    return (offset(index, depth_) + 1 << depth_ + 1) - 2


def spans(index: int, depth_: int | None = None) -> tuple[int, int]:
    """The leftmost and rightmost leaves under a node."""
    if not index & 1:
        return index, index
    if depth_ is None:
        depth_ = depth(index)
    o = offset(index, depth_)
    return o << depth_ + 1, (o + 1 << depth_ + 1) - 2


def count(index: int, depth_: int | None = None) -> int:
    """Number of nodes in the subtree rooted at a node (itself included)."""
    if not index & 1:
        return 1
    if depth_ is None:
        depth_ = depth(index)
    return (2 << depth_) - 1


def count_leaves(index: int) -> int:
    """Number of leaves under a node."""
    return (count(index) + 1) >> 1


def next_leaf(index: int) -> int:
    """The first leaf to the right of the subtree rooted at ``index``."""
    factor = 1
    r = index
    while r & 1:
        r = (r - 1) >> 1
        factor <<= 1
    return index + factor + 1


def full_roots(index: int) -> list[int]:
    """Roots of the perfect subtrees covering the leaves before leaf node ``index``.

    ``index`` is a leaf node index (even): ``full_roots(2 * length)`` gives the roots of a
    tree of ``length`` blocks, left to right.
    """
    if index & 1:
        raise ValueError("You can only look up roots for depth(0) blocks")
    result = []
    remaining = index >> 1
    base = 0
    while remaining:
        factor = 1 << remaining.bit_length() - 1
        result.append(base + factor - 1)
        base += 2 * factor
        remaining -= factor
    return result


def future_roots(index: int) -> list[int]:
    """The roots that the tree ending at leaf node ``index`` is still missing to be perfect."""
    if index & 1:
        raise ValueError("You can only look up future roots for depth(0) blocks")
    result: list[int] = []
    factor = 1
    while factor * 2 <= index:
        factor *= 2
    if factor * 2 - 2 == index:
        return result
    # factor is a power of two >= 2 here, so the halvings below stay exact.
    pos = factor // 2 - 1
    while pos + factor // 2 - 1 != index:
        pos += factor
        while pos + factor // 2 - 1 > index:
            factor //= 2
            pos -= factor // 2
        result.append(pos - factor // 2)
    return result


def patch(from_: int, to: int) -> list[int]:
    """Nodes that turn the roots of leaf index ``from_`` into the roots of leaf index ``to``."""
    if from_ == 0 or from_ >= to:
        return []
    roots = full_roots(from_)
    target = full_roots(to)
    i = 0
    while i < len(target):
        if i >= len(roots) or roots[i] != target[i]:
            break
        i += 1
    out: list[int] = []
    if i < len(roots):
        prev = len(roots) - 1
        ite = Iterator(roots[prev])
        prev -= 1
        while ite.index != target[i]:
            ite.sibling()
            if prev >= 0 and ite.index == roots[prev]:
                prev -= 1
            else:
                out.append(ite.index)
            out.append(ite.parent())
        i += 1
    out.extend(target[i:])
    return out


class Iterator:
    """A cursor that walks the tree without recomputing depths.

    ``factor`` is ``2 ** (depth + 1)``: the width in node indices of the current subtree.
    """

    __slots__ = ("factor", "index", "offset")

    def __init__(self, index: int = 0) -> None:
        self.index = 0
        self.offset = 0
        self.factor = 0
        self.seek(index)

    def __repr__(self) -> str:
        return f"Iterator(index={self.index}, offset={self.offset}, factor={self.factor})"

    def seek(self, index: int) -> None:
        self.index = index
        if index & 1:
            self.offset = offset(index)
            self.factor = 2 << depth(index)
        else:
            self.offset = index >> 1
            self.factor = 2

    def is_left(self) -> bool:
        return not self.offset & 1

    def is_right(self) -> bool:
        return bool(self.offset & 1)

    def is_root(self, length: int) -> bool:
        """Whether the current node is a root of a tree of ``length`` blocks."""
        half = self.factor >> 1
        current_length = 1 + (self.index + half - 1) // 2
        if length < current_length:
            return False
        parent_index = self.index - half if self.offset & 1 else self.index + half
        parent_length = 1 + (parent_index + self.factor - 1) // 2
        return parent_length > length

    def contains(self, index: int) -> bool:
        """Whether ``index`` is in the subtree rooted at the current node."""
        half = self.factor >> 1
        if index > self.index:
            return index < self.index + half
        if index < self.index:
            return index > self.index - half
        return True

    def prev(self) -> int:
        if not self.offset:
            return self.index
        self.offset -= 1
        self.index -= self.factor
        return self.index

    def next(self) -> int:
        self.offset += 1
        self.index += self.factor
        return self.index

    def count(self) -> int:
        if not self.index & 1:
            return 1
        return self.factor - 1

    def count_leaves(self) -> int:
        return (self.count() + 1) >> 1

    def sibling(self) -> int:
        return self.next() if self.is_left() else self.prev()

    def parent(self) -> int:
        half = self.factor >> 1
        if self.offset & 1:
            self.index -= half
            self.offset = (self.offset - 1) >> 1
        else:
            self.index += half
            self.offset >>= 1
        self.factor <<= 1
        return self.index

    def left_span(self) -> int:
        self.index = self.index - (self.factor >> 1) + 1
        self.offset = self.index >> 1
        self.factor = 2
        return self.index

    def peek_left_span(self) -> int:
        return self.index - (self.factor >> 1) + 1

    def right_span(self) -> int:
        self.index = self.index + (self.factor >> 1) - 1
        self.offset = self.index >> 1
        self.factor = 2
        return self.index

    def peek_right_span(self) -> int:
        return self.index + (self.factor >> 1) - 1

    def left_child(self) -> int:
        if self.factor == 2:
            return self.index
        self.factor >>= 1
        self.index -= self.factor >> 1
        self.offset <<= 1
        return self.index

    def right_child(self) -> int:
        if self.factor == 2:
            return self.index
        self.factor >>= 1
        self.index += self.factor >> 1
        self.offset = (self.offset << 1) + 1
        return self.index

    def next_tree(self) -> int:
        self.index = self.index + (self.factor >> 1) + 1
        self.offset = self.index >> 1
        self.factor = 2
        return self.index

    def prev_tree(self) -> int:
        if not self.offset:
            self.index = 0
            self.factor = 2
        else:
            self.index = self.index - (self.factor >> 1) - 1
            self.offset = self.index >> 1
            self.factor = 2
        return self.index

    def full_root(self, index: int) -> bool:
        """Grow the current leaf into the largest full root that ends before leaf ``index``.

        Returns False when there is none (the current node is past ``index`` or not a leaf).
        """
        if index <= self.index or self.index & 1:
            return False
        while index > self.index + self.factor + (self.factor >> 1):
            self.index += self.factor >> 1
            self.factor <<= 1
            self.offset >>= 1
        return True


def iterator(index: int = 0) -> Iterator:
    """A new :class:`Iterator` positioned at ``index``."""
    return Iterator(index)
