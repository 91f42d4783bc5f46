"""Protomux frames, byte for byte as protomux 3.12.1 writes and reads them (sans-IO).

A frame is one message of the underlying stream: ``uint channel_id`` (the sender's local id;
0 is the control session) + ``uint type`` + payload. Control types:

====  =======  ===========================================================================
type  name     payload
====  =======  ===========================================================================
0     batch    ``uint first_channel`` then entries ``uint len`` + ``len`` bytes (each one is
               ``uint type`` + payload for the current channel); ``len`` 0 is followed by
               ``uint next_channel``
1     open     ``uint local_id``, ``string protocol``, ``optional_buffer id``, handshake
2     reject   ``uint remote_id`` (the id the peer used in its open)
3     close    ``uint local_id``
====  =======  ===========================================================================

Decoders raise only :class:`protomux.encoding.DecodeError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .encoding import Codec, DecodeError, State, optional_buffer, string, uint

__all__ = [
    "BATCH",
    "CLOSE",
    "MAX_BATCH",
    "MAX_BATCH_DEPTH",
    "OPEN",
    "REJECT",
    "BatchBuilder",
    "BatchFrame",
    "CloseFrame",
    "ControlFrame",
    "Frame",
    "MessageFrame",
    "OpenFrame",
    "RejectFrame",
    "UnknownControlFrame",
    "batch_entries",
    "decode_control",
    "decode_frame",
    "encode_close",
    "encode_open",
    "encode_reject",
    "uint_bytes",
]

BATCH = 0
OPEN = 1
REJECT = 2
CLOSE = 3

#: A batch is sent as soon as it holds this many bytes (the next entry starts a new one).
MAX_BATCH = 8 * 1024 * 1024
#: Batches inside batches are legal (JS reads them); deeper nesting than this is refused.
MAX_BATCH_DEPTH = 32

_SMALL = [bytes((i,)) for i in range(0xFD)]


def uint_bytes(n: int) -> bytes:
    """The compact-encoding ``uint`` bytes of ``n`` (0 <= n <= 2^53 - 1)."""
    if 0 <= n <= 0xFC:
        return _SMALL[n]
    if 0xFC < n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if 0xFFFF < n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    state = State(bytearray(9), 0, 9)
    uint.encode(state, n)  # checks the range
    return bytes(state.buffer[: state.start])


# --- encoding control messages ----------------------------------------------------------------


def encode_open(
    local_id: int,
    protocol: str,
    id: bytes | None,
    handshake: Codec[Any] | None = None,
    handshake_value: Any = None,
) -> bytes:
    """The ``open`` frame: ``00 01`` + local id, protocol, id and the encoded handshake."""
    state = State(None, 2, 2)
    uint.preencode(state, local_id)
    string.preencode(state, protocol)
    optional_buffer.preencode(state, id)
    if handshake is not None:
        handshake.preencode(state, handshake_value)
    buf = bytearray(state.end)
    buf[1] = OPEN
    state.buffer = buf
    uint.encode(state, local_id)
    string.encode(state, protocol)
    optional_buffer.encode(state, id)
    if handshake is not None:
        handshake.encode(state, handshake_value)
    return bytes(buf)


def encode_reject(remote_id: int) -> bytes:
    return b"\x00\x02" + uint_bytes(remote_id)


def encode_close(local_id: int) -> bytes:
    return b"\x00\x03" + uint_bytes(local_id)


# --- batches ----------------------------------------------------------------------------------


class BatchBuilder:
    """Collects corked frames the way JS does and writes them as one batch frame.

    ``push(channel, entry)`` takes ``uint type`` + payload (a control frame without its
    leading ``00``; channel 0); a change of channel between entries writes ``00 <channel>``.
    When the batch has reached :data:`MAX_BATCH` bytes, ``push`` returns it as a finished
    frame and starts a new one with the entry. The frame is written as the entries come
    (a batch of a million tiny replies costs its bytes, not a million Python objects).
    """

    __slots__ = ("_buf", "_channel")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._channel = 0

    @property
    def size(self) -> int:
        """The size of the frame so far."""
        return len(self._buf)

    def push(self, channel: int, entry: bytes) -> bytes | None:
        buf = self._buf
        out = None
        if len(buf) >= MAX_BATCH:
            out = bytes(buf)
            buf.clear()
        if not buf:
            buf += b"\x00\x00"
            buf += uint_bytes(channel)
            self._channel = channel
        elif channel != self._channel:
            buf += b"\x00"
            buf += uint_bytes(channel)
            self._channel = channel
        buf += uint_bytes(len(entry))
        buf += entry
        return out

    def build(self) -> bytes | None:
        """The batch frame (``None`` when empty)."""
        return bytes(self._buf) if self._buf else None


# --- decoding ---------------------------------------------------------------------------------


@dataclass(slots=True)  # treat as immutable (frozen would triple the cost of making one)
class MessageFrame:
    """A message of type ``type`` on the sender's channel ``channel``."""

    channel: int
    type: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class OpenFrame:
    remote_id: int
    protocol: str
    id: bytes | None
    handshake: bytes  # the rest of the message, decoded with the channel's handshake codec


@dataclass(frozen=True, slots=True)
class RejectFrame:
    remote_id: int


@dataclass(frozen=True, slots=True)
class CloseFrame:
    remote_id: int


@dataclass(frozen=True, slots=True)
class UnknownControlFrame:
    """A control type this version does not know (ignored, as JS does)."""

    type: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class BatchFrame:
    """The entries of a batch in order, all decoded (:func:`decode_frame` makes it, for tests
    and inspection; a session reads a batch lazily with :func:`batch_entries`). ``corks``:
    something follows the first entry, which is what makes JS cork its own replies until the
    batch has been handled."""

    entries: tuple[Frame, ...]
    corks: bool


ControlFrame = OpenFrame | RejectFrame | CloseFrame | UnknownControlFrame | BatchFrame
Frame = MessageFrame | ControlFrame


def decode_frame(data: bytes) -> Frame | None:
    """Decode one frame (``None`` for an empty message, which protomux ignores)."""
    if not data:
        return None
    if type(data) is not bytes:
        data = bytes(data)
    state = State(data, 0, len(data))
    channel = uint.decode(state)
    typ = uint.decode(state)
    if channel:
        return MessageFrame(channel, typ, data[state.start :])
    return decode_control(typ, state, 0)


def decode_control(typ: int, state: State, depth: int) -> ControlFrame:
    """Decode a control message of type ``typ`` from ``state`` (bounded by ``state.end``)."""
    if typ == OPEN:
        remote_id = uint.decode(state)
        protocol = string.decode(state)
        id = optional_buffer.decode(state)
        return OpenFrame(remote_id, protocol, id, state.buffer[state.start : state.end])
    if typ == REJECT:
        return RejectFrame(uint.decode(state))
    if typ == CLOSE:
        return CloseFrame(uint.decode(state))
    if typ == BATCH:
        return _decode_batch(state, depth)
    return UnknownControlFrame(typ, state.buffer[state.start : state.end])


def batch_entries(state: State, depth: int = 0) -> Iterator[tuple[int, int]]:
    """Read the batch in ``state`` (what follows its ``00 00``) one entry at a time.

    Nothing is decoded or copied ahead: each step reads one entry's header and yields its
    ``(channel, type)`` with ``state`` narrowed to the entry's payload (``state.start`` to
    ``state.end``), which the consumer reads (and may move through) before it asks for the
    next entry. A batch that is a ``depth``-th nested one is refused from
    :data:`MAX_BATCH_DEPTH` on. The first entry that ends before the batch does is what
    makes JS cork its replies. Raises :class:`DecodeError` when it reaches bad bytes (the
    entries before them have been yielded).
    """
    if depth >= MAX_BATCH_DEPTH:
        raise DecodeError("batches nested too deeply")
    buf = state.buffer
    end = state.end
    channel = uint.decode(state)
    while state.start < end:
        pos = state.start
        n = buf[pos]
        if n < 0xFD:  # one-byte uints (the usual case), read in place
            state.start = pos + 1
        else:
            n = uint.decode(state)
        if n == 0:
            channel = uint.decode(state)
            continue
        # A length past the end is cut to the end, as JS does.
        entry_end = min(state.start + n, end)
        state.end = entry_end
        pos = state.start
        typ = buf[pos] if pos < entry_end else 0xFF
        if typ < 0xFD:
            state.start = pos + 1
        else:
            typ = uint.decode(state)
        yield channel, typ
        state.start = entry_end
        state.end = end


def _decode_batch(state: State, depth: int) -> BatchFrame:
    end = state.end
    entries: list[Frame] = []
    corks = False
    for channel, typ in batch_entries(state, depth):
        corks = corks or state.end != end
        if channel:
            entries.append(MessageFrame(channel, typ, state.buffer[state.start : state.end]))
        else:
            entries.append(decode_control(typ, state, depth + 1))
    return BatchFrame(tuple(entries), corks)
