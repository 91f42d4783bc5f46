"""Errors of :mod:`hyperswarm.blind_relay`: one root, one subclass per JS blind-relay code."""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AlreadyPairingError",
    "BlindRelayError",
    "ChannelClosedError",
    "ChannelDestroyedError",
    "DuplicateChannelError",
    "PairingCancelledError",
]


class BlindRelayError(Exception):
    """The root of the blind relay's errors; ``code`` is the JS code."""

    code: ClassVar[str] = "BLIND_RELAY_ERROR"


class DuplicateChannelError(BlindRelayError):
    code = "DUPLICATE_CHANNEL"


class ChannelClosedError(BlindRelayError):
    code = "CHANNEL_CLOSED"


class ChannelDestroyedError(BlindRelayError):
    code = "CHANNEL_DESTROYED"


class AlreadyPairingError(BlindRelayError):
    code = "ALREADY_PAIRING"


class PairingCancelledError(BlindRelayError):
    code = "PAIRING_CANCELLED"
