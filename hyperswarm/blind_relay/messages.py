"""The two messages of the ``blind-relay`` protomux protocol (JS blind-relay 1.6.1).

``pair``   flags (a compact-encoding bitfield: bit 0 isInitiator), ``fixed32 token``,
           ``uint id`` (the sender's UDX stream id), ``uint seq`` (always 0)
``unpair`` flags (no bit used), ``fixed32 token``

The flags are one byte when it is at most 0xfc; 0xfd/0xfe/0xff announce 2, 4 or 8 bytes of
flags (decoded, never written). Decoders raise :class:`protomux.encoding.DecodeError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from protomux import encoding as c

__all__ = ["PAIR", "UNPAIR", "Pair", "Unpair"]

_WIDE = {0xFD: 2, 0xFE: 4, 0xFF: 8}


def _decode_flags(state: c.State) -> int:
    """The first byte of a bitfield of up to 7 bits, in any of its widths."""
    first = c.uint8.decode(state)
    width = _WIDE.get(first)
    if width is None:
        return first
    if state.end - state.start < width:
        raise c.DecodeError("out of bounds")
    flags: int = state.buffer[state.start]
    state.start += width
    return flags


@dataclass(frozen=True, slots=True)
class Pair:
    """Asks the relay to pair this end (``id``: the sender's stream) with the other end of
    ``token``; from the relay, says which relay stream to send to."""

    is_initiator: bool
    token: bytes
    id: int
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Unpair:
    """Cancels the pairing (or the link) of ``token``."""

    token: bytes


class _PairCodec(c.Codec[Pair]):
    __slots__ = ()

    def preencode(self, state: c.State, m: Pair) -> None:
        state.end += 1
        c.fixed32.preencode(state, m.token)
        c.uint.preencode(state, m.id)
        c.uint.preencode(state, m.seq)

    def encode(self, state: c.State, m: Pair) -> None:
        c.uint8.encode(state, 1 if m.is_initiator else 0)
        c.fixed32.encode(state, m.token)
        c.uint.encode(state, m.id)
        c.uint.encode(state, m.seq)

    def decode(self, state: c.State) -> Pair:
        flags = _decode_flags(state)
        token = c.fixed32.decode(state)
        id_ = c.uint.decode(state)
        return Pair(bool(flags & 1), token, id_, c.uint.decode(state))


class _UnpairCodec(c.Codec[Unpair]):
    __slots__ = ()

    def preencode(self, state: c.State, m: Unpair) -> None:
        state.end += 1
        c.fixed32.preencode(state, m.token)

    def encode(self, state: c.State, m: Unpair) -> None:
        c.uint8.encode(state, 0)
        c.fixed32.encode(state, m.token)

    def decode(self, state: c.State) -> Unpair:
        _decode_flags(state)
        return Unpair(c.fixed32.decode(state))


PAIR: c.Codec[Pair] = _PairCodec()
UNPAIR: c.Codec[Unpair] = _UnpairCodec()
