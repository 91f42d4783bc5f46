"""Reading a Hyperbee 2 B-tree from its blocks (JS ``hyperbee/index.js`` ``Batch._get`` and
the in-order walk of its range iterators).

The tree of version ``v`` has its root at ``levels[0]`` of block ``v - 1``; a node's keys are
the seqs of the blocks holding them, its children ``(seq, offset)`` pairs naming
``levels[offset]`` of block ``seq``. Blocks come from ``get_block(seq)`` (raw bytes), so the
same code reads a local core, a remote sparse one, or a list of blocks in a test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from .errors import DecodingError
from .messages import Level, decode_node, decode_yolo_index

__all__ = ["BlockGetter", "Entry", "TreeReader"]

BlockGetter = Callable[[int], Awaitable[bytes]]

#: Deeper than any real tree (T = 5 gives depth ~log5(n)): a cycle in bad data ends here.
MAX_DEPTH = 64


@dataclass(slots=True)
class Entry:
    """A stored key: the seq of its block, the key and the value (both as stored)."""

    seq: int
    key: bytes
    value: bytes | None


class _Block:
    __slots__ = ("_levels", "index", "key", "seq", "value")

    def __init__(self, seq: int, data: bytes) -> None:
        node = decode_node(data)
        self.seq = seq
        self.key = node.key
        self.value = node.value
        self.index = node.index
        self._levels: list[Level] | None = None

    @property
    def levels(self) -> list[Level]:
        if self._levels is None:
            self._levels = decode_yolo_index(self.index).levels
        return self._levels

    def level(self, offset: int) -> Level:
        levels = self.levels
        if not 0 <= offset < len(levels):
            raise DecodingError(f"block {self.seq} has no tree node at offset {offset}")
        level = levels[offset]
        if len(level.children) & 1:
            raise DecodingError(f"block {self.seq}: odd children list at offset {offset}")
        return level

    def is_deletion(self) -> bool:
        if self.value is not None:
            return False
        return not any(self.seq in lv.keys for lv in self.levels)


class TreeReader:
    """The tree of one version, reading blocks through ``get_block`` (decoded blocks are
    cached per reader)."""

    def __init__(self, get_block: BlockGetter, version: int) -> None:
        self._get_block = get_block
        self.version = version
        self._blocks: dict[int, _Block] = {}

    async def block(self, seq: int) -> _Block:
        b = self._blocks.get(seq)
        if b is None:
            if not 1 <= seq < self.version:
                raise DecodingError(
                    f"the tree points at block {seq}, outside 1..{self.version - 1}"
                )
            b = _Block(seq, await self._get_block(seq))
            self._blocks[seq] = b
        return b

    async def _key(self, seq: int) -> bytes:
        return (await self.block(seq)).key

    async def get(self, key: bytes) -> Entry | None:
        """The entry of ``key``, or None (JS ``get``, including its shortcut for the key of
        the block that holds the node being searched)."""
        if self.version < 2:
            return None
        block = await self.block(self.version - 1)
        level = block.level(0)
        for _ in range(MAX_DEPTH):
            if block.key == key:
                return None if block.is_deletion() else Entry(block.seq, block.key, block.value)
            keys = level.keys
            s, e, c = 0, len(keys), 0
            while s < e:
                mid = (s + e) >> 1
                k = await self._key(keys[mid])
                c = (key > k) - (key < k)
                if c == 0:
                    found = await self.block(keys[mid])
                    return Entry(found.seq, found.key, found.value)
                if c < 0:
                    e = mid
                else:
                    s = mid + 1
            if not level.children:
                return None
            i = e if c < 0 else s
            if 2 * i + 1 >= len(level.children):
                raise DecodingError(f"block {block.seq}: no child {i}")
            block = await self.block(level.children[2 * i])
            level = block.level(level.children[2 * i + 1])
        raise DecodingError("the tree is deeper than any valid bee")

    async def entries(self) -> AsyncIterator[Entry]:
        """Every entry in key order."""
        if self.version < 2:
            return
        root = await self.block(self.version - 1)
        async for entry in self._walk(root.level(0), 0):
            yield entry

    async def _walk(self, level: Level, depth: int) -> AsyncIterator[Entry]:
        if depth >= MAX_DEPTH:
            raise DecodingError("the tree is deeper than any valid bee")
        children = level.children
        for i, seq in enumerate(level.keys):
            if 2 * i + 1 < len(children):
                child = await self.block(children[2 * i])
                async for entry in self._walk(child.level(children[2 * i + 1]), depth + 1):
                    yield entry
            b = await self.block(seq)
            yield Entry(b.seq, b.key, b.value)
        last = len(level.keys)
        if 2 * last + 1 < len(children):
            child = await self.block(children[2 * last])
            async for entry in self._walk(child.level(children[2 * last + 1]), depth + 1):
                yield entry
