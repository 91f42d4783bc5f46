"""What the connection modules (:mod:`.server`, :mod:`.connect`, :mod:`.announcer`) need of
the node they run on: :class:`ConnectionHost`, which :class:`~hyperswarm.hyperdht.HyperDHT`
is. They name this protocol rather than the node's class, so the node can import them
without an import circle.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any, Protocol

import trio

from hypercore.crypto import KeyPair
from protomux.encoding import Address

from ..dht_rpc.dht import QueryIterator
from ..dht_rpc.io import Peer, Reply, Session
from ..dht_rpc.query import Commit
from ..dht_rpc.timers import TimerQueue
from ..secret_stream import SecretStream
from ..udx import UDX, UDXSocket, UDXStream
from ..udx.socket import Firewall
from .persistent import Persistent
from .router import Router

__all__ = ["ConnectionHost"]


class ConnectionHost(Protocol):
    """The node a server, a connection attempt or an announcer runs on."""

    closed: bool
    timers: TimerQueue
    router: Router
    persistent: Persistent | None
    default_key_pair: KeyPair
    listening: set[Any]  # the servers listening on the node
    connection_paths: collections.Counter[str]
    punches: collections.Counter[str]
    relay_addresses_cache: dict[str, list[Address]]  # public key (hex) -> relays that knew it
    udx: UDX
    random_punches: int
    last_random_punch: float
    random_punch_limit: int
    random_punch_interval: float

    @property
    def nursery(self) -> trio.Nursery: ...

    @property
    def socket(self) -> UDXSocket: ...

    @property
    def server_socket(self) -> UDXSocket: ...

    @property
    def client_socket(self) -> UDXSocket: ...

    @property
    def firewalled(self) -> bool: ...

    @property
    def host(self) -> str | None: ...

    @property
    def port(self) -> int: ...

    def remote_address(self) -> Address | None: ...

    def create_raw_stream(self, *, firewall: Firewall | None = None) -> UDXStream: ...

    def remember_relay_addresses(self, public_key: bytes, addresses: Any) -> None: ...

    def nodes_from_latest(self) -> list[Address]: ...

    async def open_socket(
        self, on_small: Callable[[bytes, Address], None] | None = None
    ) -> tuple[int, UDXSocket]: ...

    def release_socket(self, number: int) -> None: ...

    def socket_number(self, socket: UDXSocket) -> int: ...

    def session(self) -> Session: ...

    def find_peer(self, public_key: bytes, *, hash: bool = True, **opts: Any) -> QueryIterator: ...

    def query(
        self,
        target: bytes,
        command: int,
        value: bytes | None = None,
        *,
        commit: Commit | bool | None = None,
        **opts: Any,
    ) -> QueryIterator: ...

    async def request(
        self,
        *,
        command: int,
        to: Address | tuple[str, int] | Peer,
        token: bytes | None = None,
        target: bytes | None = None,
        value: bytes | None = None,
        internal: bool = False,
        retry: bool = True,
        session: Session | None = None,
        ttl: int = 0,
        socket: UDXSocket | None = None,
    ) -> Reply: ...

    async def connect(self, public_key: bytes) -> SecretStream: ...
    async def ping(self, to: Address | tuple[str, int], *, retry: bool = True) -> Reply: ...
