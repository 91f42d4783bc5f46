"""Errors of the sans-IO secret-stream core.

Bytes from the peer that break the protocol raise :class:`ProtocolError` (a ``ValueError``),
never ``IndexError``, ``struct.error`` or a PyNaCl exception. The Trio adapter turns these into
:class:`hyperswarm.secret_stream.SecretStreamError` (a ``trio.BrokenResourceError``) and cuts
the peer off.

JS secret-stream has no error codes, only messages; ``code`` here is a stable name for each
kind of failure (``HANDSHAKE_FAILED``, ``INVALID_HEADER``, ...), and the message repeats the JS
message where there is one.
"""

from __future__ import annotations

__all__ = ["HandshakeError", "ProtocolError"]


class ProtocolError(ValueError):
    """The peer sent bytes that break the secret-stream protocol."""

    code: str

    def __init__(self, message: str, code: str = "PROTOCOL_ERROR") -> None:
        super().__init__(message)
        self.code = code


class HandshakeError(ProtocolError):
    """A Noise handshake message was malformed or did not authenticate."""

    def __init__(self, message: str, code: str = "HANDSHAKE_FAILED") -> None:
        super().__init__(message, code)
