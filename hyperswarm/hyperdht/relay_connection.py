"""A connection carried by a blind relay (JS hyperdht ``relayConnection`` and
``lib/relay-connection.js``), for a client or a server whose direct paths may all fail.

A side that wants a relay (``relay_through=`` a relay's public key) says so in its handshake
payload with a fresh 32-byte token; the other side takes the same relay and token from it.
Each side then connects to the relay (a HyperDHT connection kept alive every 5 s), opens the
``blind-relay`` channel with its own public key as the id, and asks to pair its connection's
UDX stream under the token: the side that chose the relay as the initiator. Once the relay
answers with the id of its half, the UDX stream is connected to that id at the relay's
address, through the socket of the relay connection, and the secret-stream starts over it.
The relay connection lives as long as the relayed stream.

Whatever path connects first wins. A direct one (open server, LAN, punch) that beats the
relay makes the pairing moot. A relayed connection goes on punching: once a punch lands (or
the peer's packets come in on a direct path), the stream moves there
(:meth:`~hyperswarm.udx.UDXStream.change_remote`, then an empty stream message so that the
peer sees the new path too), and the relay connection is let go once the peer's packets come
in on the direct path and none it sent before its move is still due through the relay
(udx-native resends those by the path they first took). A pairing not done within 15 s
gives up (``RELAY_ABORTED`` when nothing else connected).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from typing import TypeAlias

import trio

from protomux import Protomux

from ..blind_relay import BlindRelayClient, BlindRelayError
from ..dht_rpc.errors import DHTError
from ..secret_stream import SecretStream, SecretStreamError
from ..udx import UDXError, UDXSocket, UDXStream
from .errors import HyperDHTError
from .host import ConnectionHost
from .messages import RelayThroughInfo

__all__ = [
    "RELAY_KEEP_ALIVE",
    "RELAY_TIMEOUT",
    "UPGRADE_CONFIRM",
    "RelayLink",
    "RelayThrough",
    "connect_through",
    "relay_token",
    "select_relay",
    "start_upgrade",
]

#: Seconds a relay pairing may take before the side gives up on the relay.
RELAY_TIMEOUT = 15.0
#: Seconds between keep-alives on the connection to the relay (JS ``relayKeepAlive``).
RELAY_KEEP_ALIVE = 5.0

#: A relay's public key, a list to pick one from at random, or a function giving either (or
#: None: no relay), as JS's ``relayThrough``.
RelayThrough: TypeAlias = (
    bytes | Sequence[bytes] | Callable[[], "bytes | Sequence[bytes] | None"] | None
)


def select_relay(relay_through: RelayThrough) -> bytes | None:
    """The relay to use this time (JS ``selectRelay``)."""
    if callable(relay_through):
        relay_through = relay_through()
    if relay_through is None:
        return None
    if isinstance(relay_through, bytes | bytearray):
        return bytes(relay_through)
    if not relay_through:
        return None
    return bytes(random.choice(list(relay_through)))


def relay_token() -> bytes:
    """A fresh pairing token."""
    return os.urandom(32)


class RelayLink:
    """One connection's pairing at a relay, run as a task of the node (:meth:`run`).

    ``on_paired(remote_id, relay_stream)`` is called once the relay paired us: it connects
    the connection's stream through ``relay_stream`` (the UDX stream of the relay connection)
    and returns True, or returns False when another path connected first (the relay is then
    let go). ``on_abort()`` is called when the pairing fails or times out."""

    def __init__(
        self,
        dht: ConnectionHost,
        relay_public_key: bytes,
        *,
        is_initiator: bool,
        token: bytes,
        raw: UDXStream,
        on_paired: Callable[[int, UDXStream], bool],
        on_abort: Callable[[], None],
        keep_alive: float = RELAY_KEEP_ALIVE,
        timeout: float = RELAY_TIMEOUT,
    ) -> None:
        self.dht = dht
        self.public_key = relay_public_key
        self.is_initiator = is_initiator
        self.token = token
        self.raw = raw
        self._on_paired = on_paired
        self._on_abort = on_abort
        self.keep_alive = keep_alive
        self.timeout = timeout
        self.paired = False
        #: The UDX stream of our connection to the relay, once paired (the relayed stream
        #: sends through its socket, to its remote address).
        self.stream: UDXStream | None = None
        self.ended = trio.Event()
        self._scope = trio.CancelScope()

    @classmethod
    def offered(
        cls,
        dht: ConnectionHost,
        server_offer: RelayThroughInfo | None,
        client_offer: RelayThroughInfo | None,
        *,
        is_server: bool,
        raw: UDXStream,
        on_paired: Callable[[int, UDXStream], bool],
        on_abort: Callable[[], None],
        keep_alive: float = RELAY_KEEP_ALIVE,
    ) -> RelayLink:
        """The pairing of a connection at the relay one side offered: the server's offer
        first (as JS), and the side whose offer it is pairs as the initiator."""
        offer, ours = (server_offer, is_server) if server_offer else (client_offer, not is_server)
        if offer is None:
            raise ValueError("neither side offered a relay")
        return cls(
            dht,
            offer.public_key,
            is_initiator=ours,
            token=offer.token,
            raw=raw,
            on_paired=on_paired,
            on_abort=on_abort,
            keep_alive=keep_alive,
        )

    def start(self) -> None:
        self.dht.nursery.start_soon(self.run)

    def close(self) -> None:
        """Let the relay go (the relayed stream ended, or never needed it)."""
        self._scope.cancel()

    def carries(self, socket: UDXSocket, host: str, port: int) -> bool:
        """Whether a packet that came in on ``socket`` from ``host:port`` came through the
        relay (JS ``isRelay``)."""
        stream = self.stream
        return (
            stream is not None
            and stream.socket is socket
            and stream.remote_address is not None
            and stream.remote_address == (host, port)
        )

    async def run(self) -> None:
        try:
            with self._scope:
                await self._run()
        finally:
            self.ended.set()
            if not self.paired:
                self._on_abort()

    async def _run(self) -> None:
        deadline = trio.current_time() + self.timeout
        conn: SecretStream | None = None
        with trio.move_on_at(deadline):
            try:
                conn = await self.dht.connect(self.public_key)
            except _GONE:
                return
        if conn is None:
            return
        if self.raw.connected:  # another path won meanwhile
            await conn.aclose()
            return
        try:
            async with conn, trio.open_nursery() as nursery:
                try:
                    await self._pair(conn, nursery, deadline)
                except _GONE:
                    pass  # the relay went away: the relayed stream times out on its own
                finally:
                    nursery.cancel_scope.cancel()
        except _GONE:
            pass  # (closing the relay connection failed: it is gone all the same)

    async def _pair(self, conn: SecretStream, nursery: trio.Nursery, deadline: float) -> None:
        conn.set_keep_alive(self.keep_alive)
        client = BlindRelayClient(Protomux.of(conn, nursery), id=conn.public_key)
        remote_id: int | None = None
        with trio.move_on_at(deadline):
            remote_id = await client.pair(self.is_initiator, self.token, self.raw)
        relay_stream = conn.transport_stream
        if not isinstance(relay_stream, UDXStream):
            return
        self.stream = relay_stream
        if remote_id is None or not self._on_paired(remote_id, relay_stream):
            client.unpair(self.token)
            return
        self.paired = True
        # hold the relay connection as long as the relayed stream lives
        nursery.start_soon(_cancel_when_ended, client, nursery.cancel_scope)
        await self.raw.wait_closed()


#: What ends a relay connection early: the relay unreachable or gone, the stream broken.
_GONE = (
    HyperDHTError,
    DHTError,
    BlindRelayError,
    SecretStreamError,
    UDXError,
    OSError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
)


def connect_through(raw: UDXStream, remote_id: int, relay_stream: UDXStream) -> bool:
    """Connect ``raw`` to the relay's stream ``remote_id``, at the relay's address through
    the socket of our connection to it (``relay_stream``); False if it cannot be."""
    if relay_stream.remote_address is None:
        return False
    host, port = relay_stream.remote_address
    try:
        raw.connect(remote_id, port, host, socket=relay_stream.socket)
    except UDXError:
        return False  # (the stream ended)
    return True


#: Seconds a relayed connection that moved to a direct path keeps the relay while it waits to
#: hear the peer on the new path (if the peer never comes, the relay stays).
UPGRADE_CONFIRM = 30.0


def start_upgrade(
    dht: ConnectionHost,
    raw: UDXStream,
    relay: RelayLink | None,
    to: tuple[int, UDXSocket, str, int],
    on_moved: Callable[[bool], None],
) -> None:
    """Move a relayed stream to a direct path, ``to`` = (the peer's stream id, our socket,
    its host, its port), then call ``on_moved(whether it moved)``. Not before the peer's
    first data came through the relay: a peer that moves with packets still unacknowledged
    resends them with the relay's stream id, which the direct path does not know. Then tell
    the peer with an empty stream message (it arrives by the new path, so the peer's
    firewall moves its stream too), and let the relay go once the peer's packets come in on
    the new path and none is still due through the relay (JS ``confirmDirectUpgrade``)."""
    dht.nursery.start_soon(_upgrade, raw, relay, to, on_moved)


async def _upgrade(
    raw: UDXStream,
    relay: RelayLink | None,
    to: tuple[int, UDXSocket, str, int],
    on_moved: Callable[[bool], None],
) -> None:
    remote_id, sock, host, port = to
    moved = False
    try:
        with trio.move_on_after(UPGRADE_CONFIRM):
            await raw.wait_data()
        raw.change_remote(remote_id, port, host, socket=sock)
        moved = True
    except UDXError:
        pass  # (the stream ended)
    finally:
        on_moved(moved)
    if not moved:
        return
    try:
        raw.try_send(b"")
    except (UDXError, trio.ClosedResourceError):
        pass
    if relay is not None:
        await _let_relay_go(raw, relay)


async def _let_relay_go(raw: UDXStream, relay: RelayLink) -> None:
    with trio.move_on_after(UPGRADE_CONFIRM):
        try:
            await raw.wait_new_path()
        except UDXError:
            return
        relay.close()


async def _cancel_when_ended(client: BlindRelayClient, scope: trio.CancelScope) -> None:
    await client.ended.wait()
    scope.cancel()
