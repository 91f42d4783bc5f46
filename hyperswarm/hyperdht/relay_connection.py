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

Whatever path connects first wins: a direct one (open server, LAN, punch) that beats the
relay makes the pairing moot; a relay pairing that comes first ends the punching. A pairing
not done within 15 s gives up (``RELAY_ABORTED`` when nothing else connected).
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
from ..udx import UDXStream
from .errors import HyperDHTError
from .host import ConnectionHost

__all__ = [
    "RELAY_KEEP_ALIVE",
    "RELAY_TIMEOUT",
    "RelayLink",
    "RelayThrough",
    "relay_token",
    "select_relay",
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
        self.ended = trio.Event()
        self._scope = trio.CancelScope()

    def start(self) -> None:
        self.dht.nursery.start_soon(self.run)

    def close(self) -> None:
        """Let the relay go (the relayed stream ended, or never needed it)."""
        self._scope.cancel()

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
            except (HyperDHTError, DHTError):
                return
        if conn is None:
            return
        if self.raw.connected:  # another path won meanwhile
            await conn.aclose()
            return
        try:
            async with conn, trio.open_nursery() as nursery:
                conn.set_keep_alive(self.keep_alive)
                mux = Protomux.of(conn, nursery)
                client = BlindRelayClient(mux, id=conn.public_key)
                remote_id: int | None = None
                with trio.move_on_at(deadline):
                    remote_id = await client.pair(self.is_initiator, self.token, self.raw)
                relay_stream = conn.transport_stream
                if (
                    remote_id is None
                    or not isinstance(relay_stream, UDXStream)
                    or not self._on_paired(remote_id, relay_stream)
                ):
                    client.unpair(self.token)
                    nursery.cancel_scope.cancel()
                    return
                self.paired = True
                # hold the relay connection as long as the relayed stream lives
                done = trio.Event()
                self.raw.on_close = done.set
                nursery.start_soon(_set_when_closed, client, done)
                await done.wait()
                nursery.cancel_scope.cancel()
        except (BlindRelayError, SecretStreamError, trio.BrokenResourceError):
            pass  # the relay went away: the relayed stream times out on its own


async def _set_when_closed(client: BlindRelayClient, done: trio.Event) -> None:
    await client.ended.wait()
    done.set()
