"""HyperDHT for Trio (JS ``hyperdht`` 6, without connections yet): a dht-rpc node that stores
signed announce records and mutable/immutable values for others, finds them, and relays other
peers' PEER_HANDSHAKE/PEER_HOLEPUNCH messages.

>>> async with HyperDHT(bootstrap=["127.0.0.1:49737"]) as dht:  # doctest: +SKIP
...     await dht.announce(topic, HyperDHT.key_pair()).finished()
...     async for reply in dht.lookup(topic):
...         print(reply.peers)
"""

from .constants import BOOTSTRAP_NODES, COMMANDS, DEFAULT_PORT
from .dht import (
    FindPeerReply,
    HyperDHT,
    ImmutableGetResult,
    ImmutablePutResult,
    LookupReply,
    MutableGetResult,
    MutablePutResult,
)
from .errors import HyperDHTDecodeError, HyperDHTError

__all__ = [
    "BOOTSTRAP_NODES",
    "COMMANDS",
    "DEFAULT_PORT",
    "FindPeerReply",
    "HyperDHT",
    "HyperDHTDecodeError",
    "HyperDHTError",
    "ImmutableGetResult",
    "ImmutablePutResult",
    "LookupReply",
    "MutableGetResult",
    "MutablePutResult",
]
