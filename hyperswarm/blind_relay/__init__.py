"""The blind relay (JS ``blind-relay``): peers that cannot reach each other connect their UDX
streams through a third peer that passes the packets on unread. See :mod:`.relay`."""

from .errors import (
    AlreadyPairingError,
    BlindRelayError,
    ChannelClosedError,
    ChannelDestroyedError,
    DuplicateChannelError,
    PairingCancelledError,
)
from .messages import PAIR, UNPAIR, Pair, Unpair
from .relay import (
    MAX_LINKS_PER_SESSION,
    MAX_PENDING,
    MAX_PENDING_PER_SESSION,
    PAIR_TIMEOUT,
    PROTOCOL,
    BlindRelayClient,
    BlindRelayServer,
    RelaySession,
    RelayStats,
)

__all__ = [
    "MAX_LINKS_PER_SESSION",
    "MAX_PENDING",
    "MAX_PENDING_PER_SESSION",
    "PAIR",
    "PAIR_TIMEOUT",
    "PROTOCOL",
    "UNPAIR",
    "AlreadyPairingError",
    "BlindRelayClient",
    "BlindRelayError",
    "BlindRelayServer",
    "ChannelClosedError",
    "ChannelDestroyedError",
    "DuplicateChannelError",
    "Pair",
    "PairingCancelledError",
    "RelaySession",
    "RelayStats",
    "Unpair",
]
