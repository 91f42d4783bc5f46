"""Wire messages of the hypercore replication protocol (JS ``hypercore/lib/messages.js``).

Field order is the format. Optional parts of a message are gated by a leading flags
``uint``; unknown flag bits are ignored, as the JS does, so newer peers can add parts.
"""

from __future__ import annotations

from dataclasses import dataclass

from protomux import encoding as c

from .crypto import TreeNode
from .manifest import MANIFEST, Manifest

__all__ = [
    "DATA",
    "NODE",
    "NODES",
    "Data",
    "DataBlock",
    "DataHash",
    "DataSeek",
    "DataUpgrade",
]


def _uint_size(n: int) -> int:
    return 1 if n <= 0xFC else 3 if n <= 0xFFFF else 5 if n <= 0xFFFFFFFF else 9


_uint_encode = c.uint.encode
_uint_decode = c.uint.decode


class _Node(c.Codec[TreeNode]):
    """``uint index, uint size, fixed32 hash`` (unrolled: proofs carry many nodes)."""

    __slots__ = ()

    def preencode(self, state: c.State, value: TreeNode) -> None:
        try:
            state.end += 32 + _uint_size(value.index) + _uint_size(value.size)
        except TypeError:
            raise c.EncodeError(f"not a tree node: {value!r}") from None

    def encode(self, state: c.State, value: TreeNode) -> None:
        hash_ = value.hash
        _uint_encode(state, value.index)
        _uint_encode(state, value.size)
        if len(hash_) != 32:
            raise c.EncodeError("a tree node hash is 32 bytes")
        s = state.start
        state.buffer[s : s + 32] = hash_
        state.start = s + 32

    def decode(self, state: c.State) -> TreeNode:
        index = _uint_decode(state)
        size = _uint_decode(state)
        s = state.start
        if state.end - s < 32:
            raise c.DecodeError("out of bounds")
        state.start = s + 32
        return TreeNode(index, size, state.buffer[s : s + 32])


NODE: c.Codec[TreeNode] = _Node()
NODES = c.array(NODE)


@dataclass(slots=True)  # treat as immutable (frozen would triple the cost of making one)
class DataBlock:
    index: int
    value: bytes
    nodes: tuple[TreeNode, ...] = ()


@dataclass(frozen=True, slots=True)
class DataHash:
    index: int
    nodes: tuple[TreeNode, ...] = ()


@dataclass(frozen=True, slots=True)
class DataSeek:
    bytes: int
    nodes: tuple[TreeNode, ...] = ()


@dataclass(frozen=True, slots=True)
class DataUpgrade:
    start: int
    length: int
    nodes: tuple[TreeNode, ...] = ()
    additional_nodes: tuple[TreeNode, ...] = ()
    signature: bytes | None = None


@dataclass(slots=True)  # treat as immutable (frozen would triple the cost of making one)
class Data:
    """A ``data`` message: a block and/or hash, seek and upgrade proofs for one request."""

    request: int
    fork: int
    block: DataBlock | None = None
    hash: DataHash | None = None
    seek: DataSeek | None = None
    upgrade: DataUpgrade | None = None
    manifest: Manifest | None = None


def _pre_nodes(state: c.State, nodes: tuple[TreeNode, ...]) -> None:
    c.uint.preencode(state, len(nodes))
    pre = NODE.preencode
    for n in nodes:
        pre(state, n)


def _enc_nodes(state: c.State, nodes: tuple[TreeNode, ...]) -> None:
    c.uint.encode(state, len(nodes))
    enc = NODE.encode
    for n in nodes:
        enc(state, n)


def _dec_nodes(state: c.State) -> tuple[TreeNode, ...]:
    return tuple(NODES.decode(state))


class _Data(c.Codec[Data]):
    __slots__ = ()

    def preencode(self, state: c.State, m: Data) -> None:
        state.end += 1  # flags
        c.uint.preencode(state, m.request)
        c.uint.preencode(state, m.fork)
        if m.block is not None:
            c.uint.preencode(state, m.block.index)
            c.buffer.preencode(state, m.block.value)
            _pre_nodes(state, m.block.nodes)
        if m.hash is not None:
            c.uint.preencode(state, m.hash.index)
            _pre_nodes(state, m.hash.nodes)
        if m.seek is not None:
            c.uint.preencode(state, m.seek.bytes)
            _pre_nodes(state, m.seek.nodes)
        if m.upgrade is not None:
            u = m.upgrade
            c.uint.preencode(state, u.start)
            c.uint.preencode(state, u.length)
            _pre_nodes(state, u.nodes)
            _pre_nodes(state, u.additional_nodes)
            c.optional_buffer.preencode(state, u.signature)
        if m.manifest is not None:
            MANIFEST.preencode(state, m.manifest)

    def encode(self, state: c.State, m: Data) -> None:
        flags = (
            (1 if m.block is not None else 0)
            | (2 if m.hash is not None else 0)
            | (4 if m.seek is not None else 0)
            | (8 if m.upgrade is not None else 0)
            | (16 if m.manifest is not None else 0)
        )
        c.uint.encode(state, flags)
        c.uint.encode(state, m.request)
        c.uint.encode(state, m.fork)
        if m.block is not None:
            c.uint.encode(state, m.block.index)
            c.buffer.encode(state, m.block.value)
            _enc_nodes(state, m.block.nodes)
        if m.hash is not None:
            c.uint.encode(state, m.hash.index)
            _enc_nodes(state, m.hash.nodes)
        if m.seek is not None:
            c.uint.encode(state, m.seek.bytes)
            _enc_nodes(state, m.seek.nodes)
        if m.upgrade is not None:
            u = m.upgrade
            c.uint.encode(state, u.start)
            c.uint.encode(state, u.length)
            _enc_nodes(state, u.nodes)
            _enc_nodes(state, u.additional_nodes)
            c.optional_buffer.encode(state, u.signature)
        if m.manifest is not None:
            MANIFEST.encode(state, m.manifest)

    def decode(self, state: c.State) -> Data:
        flags = c.uint.decode(state)
        request = c.uint.decode(state)
        fork = c.uint.decode(state)
        block = hash_ = seek = upgrade = manifest = None
        if flags & 1:
            index = c.uint.decode(state)
            value = c.buffer.decode(state)
            block = DataBlock(index, value, _dec_nodes(state))
        if flags & 2:
            index = c.uint.decode(state)
            hash_ = DataHash(index, _dec_nodes(state))
        if flags & 4:
            nbytes = c.uint.decode(state)
            seek = DataSeek(nbytes, _dec_nodes(state))
        if flags & 8:
            start = c.uint.decode(state)
            length = c.uint.decode(state)
            nodes = _dec_nodes(state)
            additional = _dec_nodes(state)
            upgrade = DataUpgrade(start, length, nodes, additional, c.optional_buffer.decode(state))
        if flags & 16:
            manifest = MANIFEST.decode(state)
        return Data(request, fork, block, hash_, seek, upgrade, manifest)


DATA: c.Codec[Data] = _Data()
"""The ``data`` message codec (JS ``messages.wire.data``)."""
