"""Connecting to a server by its public key (JS hyperdht ``lib/connect.js``, without hole
punching).

The client finds the nodes holding the server's record (a FIND_PEER query for
``H(publicKey)``, after any relay addresses it was given or remembers), and sends the first
Noise IK message through them, two at a time, until one relays the server's answer back
(:class:`~hyperswarm.hyperdht.router.Router`). The answer says where the server's UDX stream
is; the client then connects its own stream:

* straight to the node it asked, when that node is the server itself (not relayed);
* to the server's public address when the server is reachable (OPEN), or to the address the
  relay saw it at when the server sent no hole-punch relays;
* when the client itself is reachable, it waits (10 s) for the server to connect to it;
* on the same host or LAN (the relay saw both at the same IP), to the server's LAN address
  that best matches its own, once that address answers a ping.

Anything else needs hole punching, which this module does not do yet: the connection fails
with :class:`~hyperswarm.hyperdht.errors.CannotHolepunchError`. Failures use JS's codes:
``PEER_NOT_FOUND`` (nobody holds the record), ``PEER_CONNECTION_FAILED`` (nobody relayed an
answer: the server refused or is gone), ``SERVER_ERROR``/``SERVER_INCOMPATIBLE`` (the server
answered with an error), ``HOLEPUNCH_ABORTED`` (the direct path did not open).
"""

from __future__ import annotations

import trio

from hypercore import crypto
from hypercore.crypto import KeyPair
from protomux.encoding import Address

from ..dht_rpc.errors import DHTError
from ..secret_stream import SecretStream
from ..udx import UDXSocket, UDXStream
from . import messages as m
from .addresses import is_bogon, is_reserved, local_addresses, match_address
from .constants import COMMANDS, ERROR, FIREWALL
from .errors import (
    BadHandshakeReplyError,
    CannotHolepunchError,
    HandshakeInvalidError,
    HolepunchAbortedError,
    HyperDHTDecodeError,
    HyperDHTError,
    PeerConnectionFailedError,
    PeerNotFoundError,
    ServerErrorError,
    ServerIncompatibleError,
)
from .host import ConnectionHost
from .noise_wrap import ConnectionKeys, NoiseWrap
from .router import FROM_CLIENT, REPLY
from .server import connection_stream

__all__ = ["connect"]

#: Seconds a reachable client waits for the server to connect to it.
PASSIVE_CONNECT_TIMEOUT = 10.0
#: Handshakes sent at once through different nodes.
PARALLEL = 2


class _Answer:
    """What the server answered, and the route the answer took."""

    __slots__ = ("client_address", "keys", "node", "payload", "relayed", "server_address", "socket")

    def __init__(
        self,
        node: Address,
        socket: UDXSocket | None,
        payload: m.NoisePayload,
        keys: ConnectionKeys,
        relayed: bool,
        server_address: Address,
        client_address: Address,
    ) -> None:
        self.node = node
        self.socket = socket
        self.payload = payload
        self.keys = keys
        self.relayed = relayed
        self.server_address = server_address
        self.client_address = client_address


class _Connector:
    def __init__(self, dht: ConnectionHost, public_key: bytes, key_pair: KeyPair) -> None:
        self.dht = dht
        self.public_key = public_key
        self.target = crypto.hash(public_key)
        self.wrap = NoiseWrap(key_pair, public_key)
        self.request: bytes | None = None
        self.firewall = FIREWALL.UNKNOWN  # what we told the server of ourselves
        self.answer: _Answer | None = None
        self.error: HyperDHTError | None = None
        self.attempts = 0
        self.session = dht.session()
        self.raw: UDXStream = dht.create_raw_stream(firewall=self._on_first_packet)
        self.connected = trio.Event()
        self.answered = trio.Event()
        # a packet from the server that came before its answer: (socket, host, port)
        self._early: tuple[UDXSocket, str, int] | None = None

    # --- the stream -----------------------------------------------------------------------

    def _on_first_packet(self, sock: UDXSocket, host: str, port: int) -> bool:
        if not 0 < port < 65536:
            return True
        if self.answer is None:
            self._early = (sock, host, port)  # connected once the answer is in
            return False
        if not self.connected.is_set():
            self.dht.connection_paths["client:client-open"] += 1  # the server came to us
        self._on_socket(sock, host, port)
        return False

    def _on_socket(self, sock: UDXSocket, host: str, port: int) -> None:
        answer = self.answer
        if self.connected.is_set() or answer is None or answer.payload.udx is None:
            return
        self.raw.connect(answer.payload.udx.id, port, host, socket=sock)
        self.connected.set()

    # --- finding the server -----------------------------------------------------------------

    def _payload(self) -> m.NoisePayload:
        ours = self.dht.remote_address()
        addresses = [ours] if ours is not None else []
        addresses.extend(local_addresses(self.dht.server_socket.address()))
        self.firewall = FIREWALL.OPEN if ours is not None else FIREWALL.UNKNOWN
        return m.NoisePayload(
            error=ERROR.NONE,
            firewall=self.firewall,
            addresses4=tuple(addresses),
            udx=m.UdxInfo(id=self.raw.local_id, seq=0),
            secret_stream=m.SecretStreamInfo(),
        )

    async def through(self, node: Address, socket: UDXSocket | None = None) -> None:
        """Send the handshake through ``node``; take the answer if it is the first."""
        if self.answer is not None or self.error is not None:
            return
        if self.request is None:
            self.request = self.wrap.send(self._payload())
        self.attempts += 1
        value = m.HANDSHAKE.encode(m.Handshake(FROM_CLIENT, self.request))
        try:
            reply = await self.dht.request(
                command=COMMANDS.PEER_HANDSHAKE,
                to=node,
                target=self.target,
                value=value,
                session=self.session,
                socket=socket,
            )
        except DHTError:
            return
        if self.answer is not None or self.error is not None:
            return
        try:
            hs = m.HANDSHAKE.decode(reply.value or b"")
        except HyperDHTDecodeError:
            return
        if hs.mode != REPLY or not hs.noise or reply.from_.address != node:
            return  # BAD_HANDSHAKE_REPLY: try the next node
        try:
            payload = self.wrap.recv(hs.noise)
        except HandshakeInvalidError:
            self.error = BadHandshakeReplyError("the server's answer does not decrypt")
            self.answered.set()
            return
        if payload.version != 1:
            self.error = ServerIncompatibleError("the server speaks another version")
        elif payload.error != ERROR.NONE:
            self.error = ServerErrorError(f"the server answered error {payload.error}")
        elif payload.udx is None:
            self.error = ServerErrorError("Server did not send UDX data")
        if self.error is not None:
            self.answered.set()
            return
        self.answer = _Answer(
            node,
            socket,
            payload,
            self.wrap.final(),
            hs.peer_address is not None,
            hs.peer_address or node,
            reply.to,
        )
        self.answered.set()
        if self._early is not None:
            self.dht.connection_paths["client:early"] += 1
            self._on_socket(*self._early)
        elif not self.answer.relayed:
            self.dht.connection_paths["client:direct"] += 1
            self._on_socket(socket or self.dht.socket, node.host, node.port)

    async def find(self, relay_addresses: list[Address]) -> None:
        """Try the given nodes, then the nodes a FIND_PEER query finds holding the record,
        :data:`PARALLEL` at a time, until the server's answer (or an error) is in."""
        limiter = trio.CapacityLimiter(PARALLEL)

        async def attempt(node: Address, task_status: trio.TaskStatus[None]) -> None:
            async with limiter:
                task_status.started()
                await self.through(node)

        async with trio.open_nursery() as outer:
            outer.start_soon(_cancel_when_set, self.answered, outer.cancel_scope)
            async with trio.open_nursery() as attempts:
                for addr in relay_addresses:
                    await attempts.start(attempt, addr)
                q = self.dht.find_peer(
                    self.public_key, nodes=relay_addresses or None, session=self.session, retries=3
                )
                try:
                    async for found in q:
                        if found.from_.address not in relay_addresses:
                            await attempts.start(attempt, found.from_.address)
                except DHTError:
                    pass
                finally:
                    q.destroy()
            outer.cancel_scope.cancel()  # every attempt is over


async def _cancel_when_set(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def connect(
    dht: ConnectionHost,
    public_key: bytes,
    *,
    key_pair: KeyPair | None = None,
    relay_addresses: list[Address] | None = None,
) -> SecretStream:
    """A connection to the server listening on ``public_key``: a secret-stream over a UDX
    stream whose header exchange is done (see the module docstring)."""
    c = _Connector(dht, public_key, key_pair or dht.default_key_pair)
    try:
        return await _connect(c, relay_addresses)
    except BaseException:
        c.raw.destroy()
        raise
    finally:
        c.session.destroy()


async def _connect(c: _Connector, relay_addresses: list[Address] | None) -> SecretStream:
    dht = c.dht
    key = c.public_key.hex()
    nodes = list(relay_addresses or dht.relay_addresses_cache.get(key) or [])
    if dht.persistent is not None:
        route = dht.router.get(c.target)
        if route is not None and route.relay is not None:
            nodes = [route.relay]
    await c.find(nodes)
    if c.error is not None:
        raise c.error
    answer = c.answer
    if answer is None:
        if c.attempts:
            raise PeerConnectionFailedError("no node relayed an answer from the server")
        raise PeerNotFoundError("no node knows the server")
    if answer.payload.relay_addresses:
        dht.remember_relay_addresses(c.public_key, answer.payload.relay_addresses)
    if not c.connected.is_set():
        await _open_direct(c, answer)
    stream = connection_stream(c.raw, answer.keys)
    await stream.do_handshake()  # our header goes out; the server's comes with its first data
    return stream


async def _open_direct(c: _Connector, answer: _Answer) -> None:
    """Connect the stream without hole punching, or fail."""
    dht = c.dht
    payload = answer.payload
    holepunchable = payload.holepunch is not None and bool(payload.holepunch.relays)
    if payload.firewall == FIREWALL.OPEN or (answer.relayed and not holepunchable):
        public = [a for a in payload.addresses4 if not is_bogon(a.host)]
        addr = public[0] if public else answer.server_address
        path = "server-open" if payload.firewall == FIREWALL.OPEN else "no-holepunch"
        dht.connection_paths["client:" + path] += 1
        c._on_socket(dht.socket, addr.host, addr.port)
        return
    if c.firewall == FIREWALL.OPEN:  # we said we are reachable: the server connects to us
        with trio.move_on_after(PASSIVE_CONNECT_TIMEOUT):
            await c.connected.wait()
        if not c.connected.is_set():
            raise HolepunchAbortedError("the server did not connect")
        return
    if answer.relayed and answer.client_address.host == answer.server_address.host:
        lan = [a for a in payload.addresses4 if not is_reserved(a.host)]
        if lan:
            mine = local_addresses(dht.server_socket.address())
            addr = match_address(mine, lan) or lan[0]
            try:
                await dht.ping(addr)
            except DHTError:
                raise HolepunchAbortedError("the server's LAN address does not answer") from None
            dht.connection_paths["client:lan"] += 1
            c._on_socket(dht.server_socket, addr.host, addr.port)
            return
    raise CannotHolepunchError("the server is only reachable by hole punching (not supported yet)")
