"""Hyperswarm for Trio: the networking half of the Holepunch stack.

So far: :mod:`hyperswarm.secret_stream` (JS ``@hyperswarm/secret-stream``), the encrypted
message stream every Hyperswarm connection runs over; :mod:`hyperswarm.udx`, reliable streams
over UDP; :mod:`hyperswarm.dht_rpc` and :mod:`hyperswarm.hyperdht`, the DHT peers find each
other through and connect by public key; :mod:`hyperswarm.swarm`, the swarm itself
(:class:`Hyperswarm`: join a topic, get connections); :mod:`hyperswarm.testnet`, a local DHT.
"""

from .secret_stream import SecretStream, SecretStreamError
from .swarm import Hyperswarm, PeerInfo

__all__ = ["Hyperswarm", "PeerInfo", "SecretStream", "SecretStreamError"]
