"""Errors of :mod:`hyperswarm.hyperdht`: one root, one subclass per code.

:class:`HyperDHTDecodeError` (also a ``ValueError``) is a message from a peer that does not
decode; the rest carry the codes of the JS hyperdht ``DHTError`` (``lib/errors.js``), plus
:class:`SeqReusedError` and :class:`SeqTooLowError` for the two mutable-put reply error codes
(:data:`~hyperswarm.hyperdht.constants.ERROR_SEQ_REUSED` and
:data:`~hyperswarm.hyperdht.constants.ERROR_SEQ_TOO_LOW`).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AlreadyListeningError",
    "BadHandshakeReplyError",
    "BadHolepunchReplyError",
    "CannotHolepunchError",
    "DuplicateConnectionError",
    "HandshakeInvalidError",
    "HandshakeUnfinishedError",
    "HolepunchAbortedError",
    "HolepunchDoubleRandomizedNatsError",
    "HolepunchInvalidError",
    "HolepunchProbeTimeoutError",
    "HyperDHTDecodeError",
    "HyperDHTError",
    "KeypairAlreadyUsedError",
    "NodeDestroyedError",
    "PeerConnectionFailedError",
    "PeerNotFoundError",
    "RelayAbortedError",
    "RemoteAbortedError",
    "RemoteNotHolepunchableError",
    "RemoteNotHolepunchingError",
    "SeqReusedError",
    "SeqTooLowError",
    "ServerErrorError",
    "ServerIncompatibleError",
    "StreamNotConnectedError",
    "SuspendedError",
]


class HyperDHTError(Exception):
    """Root of the hyperdht errors; ``str(e)`` is ``"CODE: message"`` like the JS."""

    code: str = "HYPERDHT_ERROR"
    default_message: ClassVar[str] = "HyperDHT error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message if message is not None else self.default_message
        super().__init__(f"{self.code}: {self.message}")


class HyperDHTDecodeError(HyperDHTError, ValueError):
    """Bytes that are not a valid encoding of the hyperdht message they were read as."""

    code = "DECODE_ERROR"
    default_message = "Could not decode message"


# --- mutable put replies ---------------------------------------------------------------------


class SeqReusedError(HyperDHTError):
    """A mutable put with the stored seq but another value (reply error code 16)."""

    code = "SEQ_REUSED"
    default_message = "Sequence number was reused with a different value"


class SeqTooLowError(HyperDHTError):
    """A mutable put with a seq below the stored one (reply error code 17)."""

    code = "SEQ_TOO_LOW"
    default_message = "Sequence number is lower than the stored one"


# --- the JS DHTError codes -------------------------------------------------------------------


class BadHandshakeReplyError(HyperDHTError):
    code = "BAD_HANDSHAKE_REPLY"
    default_message = "Bad handshake reply"


class BadHolepunchReplyError(HyperDHTError):
    code = "BAD_HOLEPUNCH_REPLY"
    default_message = "Bad holepunch reply"


class HolepunchAbortedError(HyperDHTError):
    code = "HOLEPUNCH_ABORTED"
    default_message = "Holepunch aborted"


class HolepunchInvalidError(HyperDHTError):
    code = "HOLEPUNCH_INVALID"
    default_message = "Invalid holepunch payload"


class HolepunchProbeTimeoutError(HyperDHTError):
    code = "HOLEPUNCH_PROBE_TIMEOUT"
    default_message = "Holepunching probe did not finish in time"


class HolepunchDoubleRandomizedNatsError(HyperDHTError):
    code = "HOLEPUNCH_DOUBLE_RANDOMIZED_NATS"
    default_message = "Both remote and local NATs are randomized"


class CannotHolepunchError(HyperDHTError):
    code = "CANNOT_HOLEPUNCH"
    default_message = "Cannot holepunch to remote"


class RemoteNotHolepunchingError(HyperDHTError):
    code = "REMOTE_NOT_HOLEPUNCHING"
    default_message = "Remote is not holepunching"


class RemoteNotHolepunchableError(HyperDHTError):
    code = "REMOTE_NOT_HOLEPUNCHABLE"
    default_message = "Remote is not holepunchable"


class RemoteAbortedError(HyperDHTError):
    code = "REMOTE_ABORTED"
    default_message = "Remote aborted"


class HandshakeUnfinishedError(HyperDHTError):
    code = "HANDSHAKE_UNFINISHED"
    default_message = "Handshake did not finish"


class HandshakeInvalidError(HyperDHTError):
    code = "HANDSHAKE_INVALID"
    default_message = "Received invalid handshake"


class AlreadyListeningError(HyperDHTError):
    code = "ALREADY_LISTENING"
    default_message = "Already listening"


class KeypairAlreadyUsedError(HyperDHTError):
    code = "KEYPAIR_ALREADY_USED"
    default_message = "Keypair already used"


class NodeDestroyedError(HyperDHTError):
    code = "NODE_DESTROYED"
    default_message = "Node destroyed"


class PeerConnectionFailedError(HyperDHTError):
    code = "PEER_CONNECTION_FAILED"
    default_message = "Could not connect to peer"


class PeerNotFoundError(HyperDHTError):
    code = "PEER_NOT_FOUND"
    default_message = "Peer not found"


class StreamNotConnectedError(HyperDHTError):
    code = "STREAM_NOT_CONNECTED"
    default_message = "Stream is not connected"


class ServerIncompatibleError(HyperDHTError):
    code = "SERVER_INCOMPATIBLE"
    default_message = "Server is using an incompatible version"


class ServerErrorError(HyperDHTError):
    code = "SERVER_ERROR"
    default_message = "Server returned an error"


class DuplicateConnectionError(HyperDHTError):
    code = "DUPLICATE_CONNECTION"
    default_message = "Duplicate connection"


class RelayAbortedError(HyperDHTError):
    code = "RELAY_ABORTED"
    default_message = "Relay aborted"


class SuspendedError(HyperDHTError):
    code = "SUSPENDED"
    default_message = "Suspended"
