"""The hypercore replication messages (JS ``hypercore/lib/messages.js``, ``wire.*``, 11.37.1).

One frozen dataclass and one compact-encoding :class:`~protomux.encoding.Codec` per message.
:data:`MESSAGES` lists the codecs in protomux type order (the ``messages`` array of the JS
``Replicator._makePeer``); :data:`HANDSHAKE` is the channel open payload.

===  ============  ===========================================================================
 #   codec         layout
===  ============  ===========================================================================
 0   SYNC          ``uint flags`` (1 canUpgrade, 2 uploading, 4 downloading, 8 hasManifest,
                   16 allowPush), ``uint fork``, ``uint length``, ``uint remoteLength``
 1   REQUEST       ``uint flags`` (1 block, 2 hash, 4 seek, 8 upgrade, 16 manifest, 32
                   priority), ``uint id``, ``uint fork``, ``[uint index, uint nodes]`` (block),
                   ``[uint index, uint nodes]`` (hash), ``[uint bytes, uint padding]`` (seek),
                   ``[uint start, uint length]`` (upgrade), ``[uint priority]``
 2   CANCEL        ``uint request``
 3   DATA          ``uint flags`` (1 block, 2 hash, 4 seek, 8 upgrade, 16 manifest), ``uint
                   request``, ``uint fork``, then the parts the flags name, each with its
                   proof nodes (``uint index, uint size, fixed32 hash``)
 4   NO_DATA       ``uint request``, then optional ``uint flags`` (1: ``uint reason`` follows)
 5   WANT          ``uint start``, ``uint length``, then optional ``uint flags`` (1 any)
 6   UNWANT        as WANT
 7   BITFIELD      ``uint start``, ``uint32array`` (``uint`` word count + u32le words)
 8   RANGE         ``uint flags`` (1 drop, 2 length is one), ``uint start``, ``[uint length]``
 9   EXTENSION     ``string name``, ``raw message`` (the rest of the message)
 -   HANDSHAKE     ``uint flags`` (1 seeks), ``fixed32 capability``
===  ============  ===========================================================================

Encoders write exactly what the JS writes: the flags of NO_DATA are always written (``00``
when there is no reason), those of WANT/UNWANT only when ``any`` is set, a priority only when
it is not 0, a range length only when it is not 1. Decoders read what the JS reads: trailing
optional fields may be absent (NO_DATA, WANT, UNWANT), unknown flag bits are ignored, and a
part whose flag is set is read even when it carries a default (a priority of 0 behind flag 32,
a length of 1 without flag 2, a reason of 0 behind flag 1). So ``decode(encode(m)) == m``
always, while re-encoding a decoded message gives the canonical bytes, which may differ from
non-canonical input; the decoded values are never ambiguous. Like the other decoders of this
package, and unlike the JS, these raise :class:`~protomux.encoding.DecodeError` on
non-canonical varints, integers above 2^53 - 1 and invalid UTF-8 in an extension name (the JS
substitutes U+FFFD), and they bound a bitfield by the message (the JS only by the whole buffer,
so inside a protomux batch it could read into the next message). Bytes after the last field
are left to the caller, as in the JS: :func:`protomux.encoding.decode` rejects them, protomux
ignores them.

The bitfield of :class:`Bitfield` is the tuple of u32 words: bit ``k`` of the range that starts
at block ``start`` is ``(bitfield[k >> 5] >> (k & 31)) & 1`` (the JS ``Uint32Array``).
:func:`make_bitfield` and :func:`bitfield_bytes` convert from and to the little-endian bytes of
those words, which are the bytes of a stored bitfield page.

:class:`Range` and :class:`Handshake` are keyword-only: their JS field order puts a flag
first, where a positional call would silently swap a bool and an int.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from protomux import encoding as c

from .crypto import TreeNode
from .manifest import MANIFEST, Manifest

__all__ = [
    "BITFIELD",
    "CANCEL",
    "DATA",
    "EXTENSION",
    "HANDSHAKE",
    "INVALID_REQUEST",
    "MESSAGES",
    "NODE",
    "NODES",
    "NOT_AVAILABLE",
    "NO_DATA",
    "RANGE",
    "REQUEST",
    "SYNC",
    "UNWANT",
    "WANT",
    "Bitfield",
    "Cancel",
    "Data",
    "DataBlock",
    "DataHash",
    "DataSeek",
    "DataUpgrade",
    "Extension",
    "Handshake",
    "NoData",
    "Range",
    "Request",
    "RequestIndex",
    "RequestSeek",
    "RequestUpgrade",
    "Sync",
    "Unwant",
    "Want",
    "bitfield_bytes",
    "make_bitfield",
]

NOT_AVAILABLE = 1
"""``NoData.reason``: the responder does not have what was asked for."""
INVALID_REQUEST = 2
"""``NoData.reason``: the request made no sense to the responder."""

_uint = c.uint


# --- tree nodes and the data message ------------------------------------------------------------


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


# --- request parts ------------------------------------------------------------------------------


@dataclass(slots=True)  # treat as immutable (frozen would triple the cost of making one)
class RequestIndex:
    """The ``block`` or ``hash`` part of a request."""

    index: int
    nodes: int = 0


@dataclass(frozen=True, slots=True)
class RequestSeek:
    """The ``seek`` part of a request."""

    bytes: int
    padding: int = 0


@dataclass(frozen=True, slots=True)
class RequestUpgrade:
    """The ``upgrade`` part of a request."""

    start: int
    length: int


# --- messages -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sync:
    """Type 0: the sender's fork and length, and what it can and wants to do."""

    fork: int = 0
    length: int = 0
    remote_length: int = 0
    can_upgrade: bool = False
    uploading: bool = False
    downloading: bool = False
    has_manifest: bool = False
    allow_push: bool = False


@dataclass(slots=True)  # treat as immutable (frozen would triple the cost of making one)
class Request:
    """Type 1: ask for a block and/or hash, seek and upgrade proof (and maybe the manifest).

    ``priority``: 0 normal, 1 high, 2 very high; it travels only when not 0.
    """

    id: int
    fork: int = 0
    block: RequestIndex | None = None
    hash: RequestIndex | None = None
    seek: RequestSeek | None = None
    upgrade: RequestUpgrade | None = None
    manifest: bool = False
    priority: int = 0


@dataclass(frozen=True, slots=True)
class Cancel:
    """Type 2: the request with this id is no longer wanted."""

    request: int


@dataclass(frozen=True, slots=True)
class NoData:
    """Type 4: the answer to a request that cannot be served; ``reason`` 0 means none given."""

    request: int
    reason: int = 0


@dataclass(frozen=True, slots=True)
class Want:
    """Type 5: please report which blocks of ``[start, start + length)`` you have."""

    start: int
    length: int
    any: bool = False


@dataclass(frozen=True, slots=True)
class Unwant:
    """Type 6: withdraw a :class:`Want` of the same range."""

    start: int
    length: int
    any: bool = False


@dataclass(frozen=True, slots=True)
class Bitfield:
    """Type 7: which blocks from ``start`` on the sender has, as u32 words (see the module)."""

    start: int
    bitfield: tuple[int, ...] = ()


def make_bitfield(start: int, data: bytes | bytearray | memoryview) -> Bitfield:
    """A :class:`Bitfield` of the little-endian u32 words in ``data`` (a multiple of 4 bytes)."""
    if len(data) % 4:
        raise ValueError(f"a bitfield is whole u32 words, got {len(data)} bytes")
    return Bitfield(start, struct.unpack(f"<{len(data) >> 2}I", data))


def bitfield_bytes(m: Bitfield) -> bytes:
    """The words of ``m.bitfield`` as little-endian bytes (4 per word)."""
    try:
        return struct.pack(f"<{len(m.bitfield)}I", *m.bitfield)
    except struct.error as e:
        raise ValueError(f"not a bitfield of u32 words: {e}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Range:
    """Type 8: the sender has (with ``drop``: dropped) blocks ``[start, start + length)``."""

    drop: bool = False
    start: int
    length: int


@dataclass(frozen=True, slots=True)
class Extension:
    """Type 9: a message of a named extension; an empty name repeats the previous one."""

    name: str
    message: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class Handshake:
    """The channel open payload: seek support (the JS always sets it) and the capability."""

    seeks: bool = True
    capability: bytes


# --- codecs -------------------------------------------------------------------------------------


class _Sync(c.Codec[Sync]):
    __slots__ = ()

    def preencode(self, state: c.State, m: Sync) -> None:
        state.end += 1  # flags
        _uint.preencode(state, m.fork)
        _uint.preencode(state, m.length)
        _uint.preencode(state, m.remote_length)

    def encode(self, state: c.State, m: Sync) -> None:
        flags = (
            (1 if m.can_upgrade else 0)
            | (2 if m.uploading else 0)
            | (4 if m.downloading else 0)
            | (8 if m.has_manifest else 0)
            | (16 if m.allow_push else 0)
        )
        _uint.encode(state, flags)
        _uint.encode(state, m.fork)
        _uint.encode(state, m.length)
        _uint.encode(state, m.remote_length)

    def decode(self, state: c.State) -> Sync:
        flags = _uint.decode(state)
        fork = _uint.decode(state)
        length = _uint.decode(state)
        remote_length = _uint.decode(state)
        return Sync(
            fork,
            length,
            remote_length,
            can_upgrade=bool(flags & 1),
            uploading=bool(flags & 2),
            downloading=bool(flags & 4),
            has_manifest=bool(flags & 8),
            allow_push=bool(flags & 16),
        )


class _Request(c.Codec[Request]):
    __slots__ = ()

    @staticmethod
    def _flags_and_fields(m: Request) -> tuple[int, list[int]]:
        """The flags and the uints that follow them, in wire order."""
        fields = [m.id, m.fork]
        flags = 16 if m.manifest else 0
        for bit, part in ((1, m.block), (2, m.hash)):
            if part is not None:
                flags |= bit
                fields += (part.index, part.nodes)
        if m.seek is not None:
            flags |= 4
            fields += (m.seek.bytes, m.seek.padding)
        if m.upgrade is not None:
            flags |= 8
            fields += (m.upgrade.start, m.upgrade.length)
        if m.priority:
            flags |= 32
            fields.append(m.priority)
        return flags, fields

    def preencode(self, state: c.State, m: Request) -> None:
        state.end += 1  # flags (below 64: one byte)
        for v in self._flags_and_fields(m)[1]:
            _uint.preencode(state, v)

    def encode(self, state: c.State, m: Request) -> None:
        flags, fields = self._flags_and_fields(m)
        _uint.encode(state, flags)
        for v in fields:
            _uint.encode(state, v)

    def decode(self, state: c.State) -> Request:
        flags = _uint.decode(state)
        id_ = _uint.decode(state)
        fork = _uint.decode(state)
        block: RequestIndex | None = None
        hash_: RequestIndex | None = None
        seek: RequestSeek | None = None
        upgrade: RequestUpgrade | None = None
        if flags & 1:
            index = _uint.decode(state)
            block = RequestIndex(index, _uint.decode(state))
        if flags & 2:
            index = _uint.decode(state)
            hash_ = RequestIndex(index, _uint.decode(state))
        if flags & 4:
            nbytes = _uint.decode(state)
            seek = RequestSeek(nbytes, _uint.decode(state))
        if flags & 8:
            start = _uint.decode(state)
            upgrade = RequestUpgrade(start, _uint.decode(state))
        priority = _uint.decode(state) if flags & 32 else 0
        return Request(id_, fork, block, hash_, seek, upgrade, bool(flags & 16), priority)


class _Cancel(c.Codec[Cancel]):
    __slots__ = ()

    def preencode(self, state: c.State, m: Cancel) -> None:
        _uint.preencode(state, m.request)

    def encode(self, state: c.State, m: Cancel) -> None:
        _uint.encode(state, m.request)

    def decode(self, state: c.State) -> Cancel:
        return Cancel(_uint.decode(state))


class _NoData(c.Codec[NoData]):
    __slots__ = ()

    def preencode(self, state: c.State, m: NoData) -> None:
        _uint.preencode(state, m.request)
        state.end += 1  # flags, always written
        if m.reason:
            _uint.preencode(state, m.reason)

    def encode(self, state: c.State, m: NoData) -> None:
        _uint.encode(state, m.request)
        _uint.encode(state, 1 if m.reason else 0)
        if m.reason:
            _uint.encode(state, m.reason)

    def decode(self, state: c.State) -> NoData:
        request = _uint.decode(state)
        flags = _uint.decode(state) if state.start < state.end else 0
        return NoData(request, _uint.decode(state) if flags & 1 else 0)


_W = TypeVar("_W", Want, Unwant)


class _WantLike(c.Codec[_W], Generic[_W]):
    """WANT and UNWANT: the same layout, two message types."""

    __slots__ = ("cls",)
    cls: type[_W]

    def __init__(self, cls: type[_W]) -> None:
        self.cls = cls

    def preencode(self, state: c.State, m: _W) -> None:
        _uint.preencode(state, m.start)
        _uint.preencode(state, m.length)
        if m.any:
            state.end += 1  # flags, only written when not 0

    def encode(self, state: c.State, m: _W) -> None:
        _uint.encode(state, m.start)
        _uint.encode(state, m.length)
        if m.any:
            _uint.encode(state, 1)

    def decode(self, state: c.State) -> _W:
        start = _uint.decode(state)
        length = _uint.decode(state)
        flags = _uint.decode(state) if state.start < state.end else 0
        return self.cls(start, length, bool(flags & 1))


class _Bitfield(c.Codec[Bitfield]):
    __slots__ = ()

    def preencode(self, state: c.State, m: Bitfield) -> None:
        _uint.preencode(state, m.start)
        c.uint32array.preencode(state, m.bitfield)

    def encode(self, state: c.State, m: Bitfield) -> None:
        _uint.encode(state, m.start)
        words = m.bitfield
        n = len(words)
        _uint.encode(state, n)
        try:
            struct.pack_into(f"<{n}I", state.buffer, state.start, *words)
        except struct.error as e:
            raise c.EncodeError(f"not a bitfield of u32 words: {e}") from None
        state.start += 4 * n

    def decode(self, state: c.State) -> Bitfield:
        start = _uint.decode(state)
        return Bitfield(start, tuple(c.uint32array.decode(state)))


class _Range(c.Codec[Range]):
    __slots__ = ()

    def preencode(self, state: c.State, m: Range) -> None:
        state.end += 1  # flags
        _uint.preencode(state, m.start)
        if m.length != 1:
            _uint.preencode(state, m.length)

    def encode(self, state: c.State, m: Range) -> None:
        _uint.encode(state, (1 if m.drop else 0) | (2 if m.length == 1 else 0))
        _uint.encode(state, m.start)
        if m.length != 1:
            _uint.encode(state, m.length)

    def decode(self, state: c.State) -> Range:
        flags = _uint.decode(state)
        start = _uint.decode(state)
        length = 1 if flags & 2 else _uint.decode(state)
        return Range(drop=bool(flags & 1), start=start, length=length)


class _Extension(c.Codec[Extension]):
    __slots__ = ()

    def preencode(self, state: c.State, m: Extension) -> None:
        c.string.preencode(state, m.name)
        c.raw.preencode(state, m.message)

    def encode(self, state: c.State, m: Extension) -> None:
        c.string.encode(state, m.name)
        c.raw.encode(state, m.message)

    def decode(self, state: c.State) -> Extension:
        name = c.string.decode(state)
        return Extension(name, bytes(c.raw.decode(state)))


class _Handshake(c.Codec[Handshake]):
    __slots__ = ()

    def preencode(self, state: c.State, m: Handshake) -> None:
        state.end += 1  # flags
        c.fixed32.preencode(state, m.capability)

    def encode(self, state: c.State, m: Handshake) -> None:
        _uint.encode(state, 1 if m.seeks else 0)
        c.fixed32.encode(state, m.capability)

    def decode(self, state: c.State) -> Handshake:
        flags = _uint.decode(state)
        return Handshake(seeks=bool(flags & 1), capability=bytes(c.fixed32.decode(state)))


SYNC: c.Codec[Sync] = _Sync()
REQUEST: c.Codec[Request] = _Request()
CANCEL: c.Codec[Cancel] = _Cancel()
NO_DATA: c.Codec[NoData] = _NoData()
WANT: c.Codec[Want] = _WantLike(Want)
UNWANT: c.Codec[Unwant] = _WantLike(Unwant)
BITFIELD: c.Codec[Bitfield] = _Bitfield()
RANGE: c.Codec[Range] = _Range()
EXTENSION: c.Codec[Extension] = _Extension()
HANDSHAKE: c.Codec[Handshake] = _Handshake()
"""The channel open payload (JS ``wire.handshake``)."""

MESSAGES: tuple[c.Codec[Any], ...] = (
    SYNC,
    REQUEST,
    CANCEL,
    DATA,
    NO_DATA,
    WANT,
    UNWANT,
    BITFIELD,
    RANGE,
    EXTENSION,
)
"""The channel's message codecs; a codec's position is its protomux message type."""
