"""A bee's ranges, history and diffs (JS ``hyperbee/iterators/range.js``, ``history.js`` and
``diff.js``), over any :class:`~hyperbee.nodes.BlockLoader` (a batch).

A range walks the tree in key order with a stack of positions; history walks blocks by seq; a
diff walks two versions' trees side by side and skips every subtree both share (same block and
offset), so it reads only what changed.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import trio

from hypercore.codecs import ValueEncoding

from .codecs import DiffEntry, Encodings, Entry, HistoryEntry, enc
from .errors import BadArgumentError, DecodingError
from .nodes import MAX_DEPTH, BlockEntry, BlockLoader, TreeNode, too_deep

__all__ = ["Bounds", "diff", "encode_range", "history", "read_range"]

#: Yield to the scheduler this often while iterating over cached blocks.
_CHECKPOINT_EVERY = 256

SEP = b"\x00"

#: ``gt, gte, lt, lte`` as encoded keys.
Bounds = tuple[bytes | None, bytes | None, bytes | None, bytes | None]


def bump(key: bytes | None) -> bytes:
    """``key`` with its last byte incremented (wrapping, as a JS byte does)."""
    assert key is not None
    if not key:
        return key
    return key[:-1] + bytes([(key[-1] + 1) & 0xFF])


def encode_range(
    encoding: ValueEncoding | None, sub: bool, gt: Any, gte: Any, lt: Any, lte: Any
) -> Bounds:
    """``gt, gte, lt, lte`` encoded as keys; in a sub, a missing lower bound is its prefix
    and a zero byte (exclusive) and a missing upper bound the prefix bumped, as JS
    ``encRange``."""
    egt, egte, elt, elte = (
        enc(encoding, gt),
        enc(encoding, gte),
        enc(encoding, lt),
        enc(encoding, lte),
    )
    if sub:
        if egt is None and egte is None:
            egt = enc(encoding, SEP)
        if elt is None and elte is None:
            elt = bump(enc(encoding, b""))
    return egt, egte, elt, elte


async def read_range(
    loader: BlockLoader,
    gt: bytes | None,
    gte: bytes | None,
    lt: bytes | None,
    lte: bytes | None,
    reverse: bool,
    limit: int | None,
    encoding: Encodings,
) -> AsyncIterator[Entry]:
    """Entries in key order (``reverse``: descending) within the encoded bounds, at most
    ``limit``, as JS ``RangeIterator``."""
    await trio.lowlevel.checkpoint()
    left = -1 if limit is None else limit
    if left == 0:
        return
    g_incl = gt is None
    g_key = gt if gt is not None else gte
    l_incl = lt is None
    l_key = lt if lt is not None else lte
    stack: list[list[Any]] = []  # [node, position]: even = child, odd = key
    node = await loader.get_root(False)
    if node is None:
        return
    incl = l_incl if reverse else g_incl
    start = l_key if reverse else g_key
    if start is None:
        stack.append([node, len(node.keys) << 1 if reverse else 0])
    else:
        for _ in range(MAX_DEPTH):
            entry: list[Any] = [node, len(node.keys) << 1 if reverse else 0]
            found, i = await node.search(start)
            if found >= 0:
                entry[1] = found * 2 + 1 if incl else found * 2 + (0 if reverse else 2)
                stack.append(entry)
                break
            entry[1] = 2 * i + (-1 if reverse else 1)
            if 0 <= entry[1] <= len(node.keys) << 1:
                stack.append(entry)
            if not node.children:
                break
            node = await node.get_child_node(i)
        else:
            raise too_deep()

    end = g_key if reverse else l_key
    end_incl = g_incl if reverse else l_incl
    committed = loader.committed
    count = 0
    # A valid tree has fewer nodes than blocks: more visits means a cycle in bad data.
    visited, budget = 0, loader.version
    while stack and left != 0:
        top = stack[-1]
        node, pos = top
        is_key = pos & 1 == 1
        if reverse:
            if pos < 0:
                n = len(node.keys)
            else:
                n = pos >> 1
                top[1] = pos - 1
        else:
            n = pos >> 1
            top[1] = pos + 1
        if not is_key:
            if not node.children:
                continue
            child = await node.get_child_node(n)
            if node.block is not None and node.block.seq < committed:
                node.children[n].value = None  # let visited subtrees go
            visited += 1
            if len(stack) >= MAX_DEPTH or visited > budget:
                raise too_deep()
            stack.append([child, len(child.keys) << 1 if reverse else 0])
            continue
        if n >= len(node.keys):
            stack.pop()
            continue
        block = await loader.get_tree_block(node.keys[n].seq)
        if end is not None:
            k = block.key
            c = (k > end) - (k < end)
            if (not end_incl) if c == 0 else (c < 0 if reverse else c > 0):
                return
        if left > 0:
            left -= 1
        count += 1
        if count % _CHECKPOINT_EVERY == 0:
            await trio.lowlevel.checkpoint()
        yield block.final(encoding)


def _history_start(gt: int | None, gte: int | None, version: int) -> int:
    if gt:
        return (gt + version if gt < 0 else gt) + 1
    start = gte or 1
    return start + version if start < 0 else start


def _history_end(lt: int | None, lte: int | None, version: int) -> int:
    if lte == 0 or lt == 0:
        return 0
    if lte:
        return (lte + version if lte < 0 else lte) + 1
    end = lt or version
    return end + version if end < 0 else end


async def history(
    loader: BlockLoader,
    *,
    live: bool,
    reverse: bool,
    gt: int | None,
    gte: int | None,
    lt: int | None,
    lte: int | None,
    limit: int | None,
    encoding: Encodings,
) -> AsyncIterator[HistoryEntry]:
    """Every block from ``gte`` (default 1) up to ``lt`` (default: the version; never, with
    ``live``); negative bounds count back from the version."""
    if live and reverse:
        raise BadArgumentError("a history cannot be both live and reversed")
    await loader.get_root(False)
    version = loader.version
    start = _history_start(gt, gte, version)
    end: float = math.inf if live else min(version, _history_end(lt, lte, version))
    left = -1 if limit is None else limit
    while left != 0 and start < end:
        if left > 0:
            left -= 1
        if reverse:
            if end <= 1:
                return
            end -= 1
            block = await loader.get_block(int(end))
        else:
            block = await loader.get_block(start)
            start += 1
        await trio.lowlevel.checkpoint()
        entry = block.final(encoding)
        yield HistoryEntry(
            "del" if block.is_deletion() else "put", entry.seq, entry.key, entry.value
        )


def _cmp(a: bytes | None, b: bytes | None) -> int:
    """Keys in order, a missing key (past the end) after all."""
    if a is None:
        return 0 if b is None else 1
    if b is None:
        return -1
    return (a > b) - (a < b)


class _SubTree:
    """A position inside one node: odd ``i`` a key, even ``i`` a child."""

    __slots__ = ("i", "is_key", "n", "node", "offset", "parent", "seq")

    def __init__(self, node: TreeNode, parent: _SubTree | None) -> None:
        self.node = node
        self.parent = parent
        self.is_key = not node.children
        self.i = 1 if self.is_key else 0
        self.n = 0
        if self.is_key:
            if not node.keys:
                raise DecodingError("an empty tree node below the root")
            self.seq = node.keys[0].seq
            self.offset = 0
        else:
            child = node.children[0]
            self.seq = child.seq
            self.offset = child.offset

    def next(self) -> bool:
        self.i += 1
        self.is_key = self.i & 1 == 1
        if not self.is_key and not self.node.children:
            self.i += 1
        return self.update()

    async def bisect(self, key: bytes, incl: bool) -> bool:
        node = self.node
        s, e, c = 0, len(node.keys), 0
        while s < e:
            mid = (s + e) >> 1
            c = _cmp(key, await node.get_key(mid))
            if c == 0:
                self.i = mid * 2 + 1 if incl else mid * 2 + (2 if node.children else 3)
                return True
            if c < 0:
                e = mid
            else:
                s = mid + 1
        i = e if c < 0 else s
        self.i = 2 * i + (0 if node.children else 1)
        return not node.children

    def update(self) -> bool:
        self.is_key = self.i & 1 == 1
        self.n = n = self.i >> 1
        node = self.node
        if self.is_key:
            if n >= len(node.keys):
                return False
            self.seq = node.keys[n].seq
            self.offset = 0
        else:
            if n >= len(node.children):
                return False
            child = node.children[n]
            self.seq = child.seq
            self.offset = child.offset
        return True

    async def key(self) -> bytes | None:
        tree: _SubTree | None = self
        for _ in range(MAX_DEPTH + 1):
            if tree is None:
                return None
            if tree.n < len(tree.node.keys):
                return await tree.node.get_key(tree.n)
            tree = tree.parent
        raise too_deep()

    async def compare(self, other: _SubTree) -> int:
        return _cmp(await self.key(), await other.key())


class _TreeIterator:
    def __init__(
        self,
        loader: BlockLoader,
        gt: bytes | None,
        gte: bytes | None,
        lt: bytes | None,
        lte: bytes | None,
        encoding: Encodings,
    ) -> None:
        self.loader = loader
        self.stack: list[_SubTree] = []
        self.lt = lt if lt is not None else lte
        self.lte = lte is not None
        self.gt = gt if gt is not None else gte
        self.gte = gte is not None
        self.seeking = self.gt is not None
        self.encoding = encoding
        self.visited = 0  # nodes entered: a valid tree has fewer than its blocks

    async def open(self) -> None:
        node = await self.loader.get_root(False)
        if node is None or not node.keys:
            return
        tree = _SubTree(node, None)
        if self.seeking and not await self._seek(tree):
            return
        self.stack.append(tree)

    async def _seek(self, tree: _SubTree) -> bool:
        assert self.gt is not None
        done = await tree.bisect(self.gt, self.gte)
        oob = not tree.update()
        if done or oob:
            self.seeking = False
            if oob:
                return False
        return True

    def peek(self) -> _SubTree | None:
        return self.stack[-1] if self.stack else None

    def skip(self) -> None:
        if self.stack and not self.stack[-1].next():
            self.stack.pop()

    async def next_key(self) -> BlockEntry | None:
        block = None
        while self.stack and block is None:
            block = await self.next()
        if block is None:
            return None
        if self.lt is None:
            return block
        c = _cmp(block.key, self.lt)
        if c <= 0 if self.lte else c < 0:
            return block
        self.stack = []
        return None

    async def next(self) -> BlockEntry | None:
        if not self.stack:
            return None
        top = self.stack[-1]
        is_key, n, seq = top.is_key, top.n, top.seq
        if not top.next():
            self.stack.pop()
        if is_key:
            self.seeking = False
            return await self.loader.get_tree_block(seq)
        child = await top.node.get_child_node(n)
        tree = _SubTree(child, top)
        if self.seeking and not await self._seek(tree):
            return None
        self.visited += 1
        if len(self.stack) >= MAX_DEPTH or self.visited > self.loader.version:
            raise too_deep()
        self.stack.append(tree)
        return None


async def diff(
    left: BlockLoader,
    right: BlockLoader,
    *,
    gt: bytes | None,
    gte: bytes | None,
    lt: bytes | None,
    lte: bytes | None,
    limit: int | None,
    encoding: Encodings,
) -> AsyncIterator[DiffEntry]:
    """Keys whose entries differ between two versions, in key order."""
    a = _TreeIterator(left, gt, gte, lt, lte, encoding)
    b = _TreeIterator(right, gt, gte, lt, lte, encoding)
    await trio.lowlevel.checkpoint()
    await a.open()
    await b.open()
    remaining = -1 if limit is None else limit

    def out(x: BlockEntry | None, y: BlockEntry | None) -> DiffEntry:
        return DiffEntry(
            None if x is None else x.final(encoding), None if y is None else y.final(encoding)
        )

    while remaining != 0:
        res: tuple[BlockEntry | None, BlockEntry | None] | None = None
        while res is None:
            lt_, rt = a.peek(), b.peek()
            if lt_ is None and rt is None:
                return
            if lt_ is None:
                res = (None, await b.next_key())
            elif rt is None:
                res = (await a.next_key(), None)
            elif lt_.seq == rt.seq and lt_.is_key == rt.is_key and lt_.offset == rt.offset:
                a.skip()
                b.skip()
            else:
                c = await lt_.compare(rt)
                if lt_.is_key and not rt.is_key:
                    await b.next()
                elif not lt_.is_key and rt.is_key:
                    await a.next()
                elif lt_.is_key and rt.is_key:
                    if c == 0:
                        res = (await a.next_key(), await b.next_key())
                    elif c < 0:
                        res = (await a.next_key(), None)
                    else:
                        res = (None, await b.next_key())
                elif c == 0:
                    await a.next()
                    await b.next()
                elif c < 0:
                    await b.next()
                else:
                    await a.next()
        if res[0] is None and res[1] is None:
            return
        remaining -= 1
        yield out(*res)
