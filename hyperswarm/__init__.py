"""Hyperswarm for Trio: the networking half of the Holepunch stack.

So far: :mod:`hyperswarm.secret_stream` (JS ``@hyperswarm/secret-stream``), the encrypted
message stream every Hyperswarm connection runs over, and the packet format of
:mod:`hyperswarm.udx`. UDX streams, dht-rpc, HyperDHT and the swarm itself will follow.
"""

from .secret_stream import SecretStream, SecretStreamError

__all__ = ["SecretStream", "SecretStreamError"]
