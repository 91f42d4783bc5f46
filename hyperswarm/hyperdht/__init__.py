"""HyperDHT for Trio (JS ``hyperdht`` 6): a dht-rpc node that stores signed announce records
and mutable/immutable values for others, finds them, relays other peers' PEER_HANDSHAKE/
PEER_HOLEPUNCH messages, and connects peers by public key (servers that listen on a key pair,
clients that connect to one, through NATs by hole punching).

>>> async with HyperDHT(bootstrap=["127.0.0.1:49737"]) as dht:  # doctest: +SKIP
...     await dht.announce(topic, HyperDHT.key_pair()).finished()
...     async for reply in dht.lookup(topic):
...         print(reply.peers)
...     server = dht.create_server(on_connection=handler)  # async def handler(stream)
...     await server.listen(key_pair)
...     stream = await dht.connect(other_public_key)  # a SecretStream
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
from .server import Server, ServerAddress

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
    "Server",
    "ServerAddress",
]
