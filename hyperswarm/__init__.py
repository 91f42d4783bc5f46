"""Hyperswarm for Trio: the networking half of the Holepunch stack.

So far: :mod:`hyperswarm.secret_stream` (JS ``@hyperswarm/secret-stream``), the encrypted
message stream every Hyperswarm connection runs over; :mod:`hyperswarm.udx`, reliable streams
over UDP; :mod:`hyperswarm.dht_rpc` and :mod:`hyperswarm.hyperdht`, the DHT peers find each
other through; :mod:`hyperswarm.testnet`, a local DHT. Connections over the DHT and the swarm
itself will follow.
"""

from .secret_stream import SecretStream, SecretStreamError

__all__ = ["SecretStream", "SecretStreamError"]
