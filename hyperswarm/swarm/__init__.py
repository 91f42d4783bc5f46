"""Hyperswarm (JS ``hyperswarm`` 4): join topics, find peers on the DHT, keep one encrypted
connection per peer. See :mod:`.swarm`."""

from .discovery import PeerDiscovery, PeerDiscoverySession
from .errors import SwarmDestroyedError, SwarmError
from .peer_info import PeerInfo
from .swarm import ConnectionHandler, Firewall, Hyperswarm, SwarmStats

__all__ = [
    "ConnectionHandler",
    "Firewall",
    "Hyperswarm",
    "PeerDiscovery",
    "PeerDiscoverySession",
    "PeerInfo",
    "SwarmDestroyedError",
    "SwarmError",
    "SwarmStats",
]
