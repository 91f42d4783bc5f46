"""Errors of :mod:`hyperswarm.udx`: one root, one subclass per code.

Which side is at fault:

- the caller: :class:`UDXError` itself, for a call the socket or stream cannot take in its
  state (not bound, closed, already connected, a stream id in use);
- the peer: :class:`UDXDecodeError` (also a ``ValueError``), a datagram that is not a UDX
  packet (the socket drops it); :class:`UDXResetError` and :class:`UDXTimeoutError`, why a
  stream ended (they are the cause of the ``trio.BrokenResourceError`` the stream raises).

The codes of the two stream endings are the libuv error names udx-native gives them.
"""

from __future__ import annotations

__all__ = ["UDXDecodeError", "UDXError", "UDXResetError", "UDXTimeoutError"]


class UDXError(Exception):
    """Root of the UDX errors; raised itself when a socket or stream is used in a state that
    cannot take the call (the caller's mistake), or closed under a stream."""

    code = "UDX_ERROR"


class UDXDecodeError(UDXError, ValueError):
    """A datagram that is not a well-formed UDX packet (the peer's garbage; it is dropped)."""

    code = "INVALID_PACKET"


class UDXResetError(UDXError):
    """The peer destroyed the stream (libudx closes it with ``UV_ECONNRESET``)."""

    code = "ECONNRESET"


class UDXTimeoutError(UDXError):
    """The peer stopped answering: six retransmission timeouts in a row (libudx closes the
    stream with ``UV_ETIMEDOUT``)."""

    code = "ETIMEDOUT"
