"""The exceptions of the multiplexer: one root, one subclass per code.

JS protomux throws plain ``Error`` objects; the codes here name the same situations so that a
caller can tell a peer's misbehaviour (``PROTOCOL_ERROR``, ``DECODE_ERROR``) from the normal
life of a channel (``CHANNEL_REJECTED``, ``CHANNEL_CLOSED``).
"""

from __future__ import annotations

__all__ = [
    "ChannelClosedError",
    "ChannelDecodeError",
    "ChannelRejectedError",
    "ProtocolError",
    "ProtomuxError",
]


class ProtomuxError(Exception):
    """Root of the multiplexer's errors; ``code`` is a short upper-case name."""

    code: str = "PROTOMUX_ERROR"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ProtocolError(ProtomuxError):
    """The peer broke the framing or the channel protocol; the whole connection is closed.

    Malformed frames, an ``open`` with a channel id that is neither the next one nor a free
    one, a ``reject`` for a channel that is not waiting for an answer, an oversize message.
    Raising it from a callback also drops the peer (instead of crashing the mux's nursery).
    """

    code = "PROTOCOL_ERROR"


class ChannelDecodeError(ProtomuxError):
    """The remote handshake or a message of a channel could not be decoded with its codec.

    Only that channel is closed (a ``close`` is sent); the cause is the codec's error.
    """

    code = "DECODE_ERROR"


class ChannelRejectedError(ProtomuxError):
    """The remote answered our ``open`` with ``reject`` (no channel for that protocol/id)."""

    code = "CHANNEL_REJECTED"


class ChannelClosedError(ProtomuxError):
    """The channel (or the whole mux) closed before the operation could complete."""

    code = "CHANNEL_CLOSED"
