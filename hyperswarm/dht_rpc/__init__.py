"""dht-rpc for Trio: the Kademlia DHT over UDP that HyperDHT is built on (JS ``dht-rpc`` 6).

- :class:`DHT` is a node on two :class:`~hyperswarm.udx.UDXSocket` sockets (a server socket on
  the configured port, a client socket on a random one), as an async context manager;
- :class:`DHTCore` is the same node without I/O: packets leave through a transport and time is a
  :class:`~hyperswarm.dht_rpc.timers.TimerQueue` (the simulator drives thousands of them);
- :mod:`~hyperswarm.dht_rpc.messages` is the packet codec, :mod:`~hyperswarm.dht_rpc.table` the
  routing table, :mod:`~hyperswarm.dht_rpc.query` the iterative query with its commit phase.
"""

from .core import DELAYED_PING, DOWN_HINT, FIND_NODE, PING, PING_NAT, DHTCore, NodeInfo
from .dht import DHT, QueryIterator, parse_bootstrap
from .errors import (
    INVALID_TOKEN,
    UNKNOWN_COMMAND,
    DHTDecodeError,
    DHTError,
    IOSuspendedError,
    NodeDestroyedError,
    QueryError,
    RequestDestroyedError,
    RequestTimeoutError,
)
from .io import IncomingRequest, Peer, Reply
from .peer import node_id
from .query import Query

__all__ = [
    "DELAYED_PING",
    "DHT",
    "DOWN_HINT",
    "FIND_NODE",
    "INVALID_TOKEN",
    "PING",
    "PING_NAT",
    "UNKNOWN_COMMAND",
    "DHTCore",
    "DHTDecodeError",
    "DHTError",
    "IOSuspendedError",
    "IncomingRequest",
    "NodeDestroyedError",
    "NodeInfo",
    "Peer",
    "Query",
    "QueryError",
    "QueryIterator",
    "Reply",
    "RequestDestroyedError",
    "RequestTimeoutError",
    "node_id",
    "parse_bootstrap",
]
