"""Errors of secret-stream: one root, one subclass per code.

:class:`SecretStreamError` is the root, a ``trio.BrokenResourceError``: the stream was cut
off and is unusable. (This module imports trio for that base class; the sans-IO modules that
raise its subclasses, ``box``, ``noise`` and ``protocol``, do not use trio themselves.)

The peer sent garbage: bytes that break the protocol raise a :class:`SecretStreamProtocolError`
(also a ``ValueError``) in the sans-IO layer, never ``IndexError``, ``struct.error`` or a PyNaCl
exception; the Trio adapter records the same class as the stream's error, cuts the peer off and
raises it from every later call. The adapter adds the failures only it can see:
:class:`HandshakeTimeoutError`, :class:`TruncatedFrameError`, :class:`StreamTimeoutError`
(the peer stalled or ended mid-frame) and :class:`SendCancelledError` (the caller cancelled a
write part-way). Calling the stream wrong (sending before the handshake, an oversize message)
raises ``RuntimeError``/``ValueError``, not these, with one exception:
:class:`UnorderedUnsupportedError` (also a ``TypeError``), unordered messages asked of a
stream whose transport cannot carry them (not a UDX stream).

JS secret-stream has no error codes, only messages; ``code`` here is a stable name for each
kind of failure (``HANDSHAKE_FAILED``, ``INVALID_HEADER``, ...), a class attribute, and the
message repeats the JS message where there is one.
"""

from __future__ import annotations

from typing import Self

import trio

__all__ = [
    "DecryptionFailedError",
    "FrameTooLargeError",
    "HandshakeError",
    "HandshakeTimeoutError",
    "InvalidHeaderError",
    "InvalidMessageError",
    "SecretStreamError",
    "SecretStreamProtocolError",
    "SendCancelledError",
    "StreamTimeoutError",
    "TruncatedFrameError",
    "UnorderedUnsupportedError",
]


class SecretStreamError(trio.BrokenResourceError):
    """Root of the secret-stream errors: the stream was cut off (the peer broke the protocol,
    stalled or timed out); ``code`` names the failure."""

    code = "SECRET_STREAM_ERROR"

    def copy(self) -> Self:
        """A new error of the same class and message (raised again by each later call)."""
        return type(self)(*self.args)


# --- the peer sent garbage (raised by the sans-IO core) --------------------------------------


class SecretStreamProtocolError(SecretStreamError, ValueError):
    """The peer sent bytes that break the secret-stream protocol."""

    code = "PROTOCOL_ERROR"


class HandshakeError(SecretStreamProtocolError):
    """The Noise handshake failed: a handshake message was malformed or did not authenticate
    (also: the peer closed or broke the connection during the handshake)."""

    code = "HANDSHAKE_FAILED"


class InvalidHeaderError(SecretStreamProtocolError):
    """The peer's secretstream header message (the first after the handshake) is invalid."""

    code = "INVALID_HEADER"


class InvalidMessageError(SecretStreamProtocolError):
    """A data frame too short to be a secretstream message."""

    code = "INVALID_MESSAGE"


class DecryptionFailedError(SecretStreamProtocolError):
    """A data frame that did not authenticate."""

    code = "DECRYPTION_FAILED"


class FrameTooLargeError(SecretStreamProtocolError):
    """A frame header announcing more bytes than the stream accepts."""

    code = "FRAME_TOO_LARGE"


# --- failures the Trio adapter sees ----------------------------------------------------------


class HandshakeTimeoutError(SecretStreamError):
    """The handshake did not complete within ``handshake_timeout`` (the peer stalled)."""

    code = "HANDSHAKE_TIMEOUT"


class TruncatedFrameError(SecretStreamError):
    """The transport ended in the middle of a frame (the peer cut its stream short)."""

    code = "TRUNCATED"


class StreamTimeoutError(SecretStreamError):
    """Nothing arrived for ``timeout`` seconds (JS ``Stream timed out``)."""

    code = "TIMED_OUT"


class SendCancelledError(SecretStreamError):
    """A write was cancelled part-way (by the caller), so the sending side is unusable."""

    code = "SEND_CANCELLED"


# --- the caller's mistake --------------------------------------------------------------------


class UnorderedUnsupportedError(SecretStreamError, TypeError):
    """Unordered messages (``send_udp``, ``try_send_udp``, ``receive_udp``) need a transport
    that carries datagrams beside the stream (a UDX stream: ``send``, ``try_send``,
    ``receive_message``); JS silently does nothing then ("udx-stream expected")."""

    code = "UNORDERED_UNSUPPORTED"
