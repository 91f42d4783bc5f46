"""Connecting to a server by its public key (JS hyperdht ``lib/connect.js``).

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

Anything else needs hole punching (:mod:`.holepuncher`), raced by the LAN try when both
sit behind one NAT. The client opens a punch socket, samples its NAT, and runs a *probe
round* with the server through one of the server's relays (PEER_HOLEPUNCH, sealed with the
handshake's holepunch secret): each side learns the other's NAT kind and addresses, and the
server proves the address the relay saw it at with a token. A *punch round* through the
relay the handshake went through then tells the server to punch, echoing its token, and both
sides start sending punches. The first punch that reaches the client connects its stream.

Failures use JS's codes: ``PEER_NOT_FOUND`` (nobody holds the record),
``PEER_CONNECTION_FAILED`` (nobody relayed an answer: the server refused or is gone),
``SERVER_ERROR``/``SERVER_INCOMPATIBLE`` (the server answered with an error),
``CANNOT_HOLEPUNCH`` (the server is not reachable and gave no relays to punch through),
``HOLEPUNCH_PROBE_TIMEOUT`` (a side has no NAT verdict), ``HOLEPUNCH_DOUBLE_RANDOMIZED_NATS``
(both behind random NATs), ``REMOTE_ABORTED``/``REMOTE_NOT_HOLEPUNCHING``/
``REMOTE_NOT_HOLEPUNCHABLE`` (the server stopped or cannot punch), ``HOLEPUNCH_INVALID``/
``BAD_HOLEPUNCH_REPLY`` (a reply that does not decrypt or comes from elsewhere) and
``HOLEPUNCH_ABORTED`` (no path opened in time, a veto, or a random punch too soon after the
last one: one per 20 s per node, as JS).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import NoReturn

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
    BadHolepunchReplyError,
    CannotHolepunchError,
    HandshakeInvalidError,
    HolepunchAbortedError,
    HolepunchDoubleRandomizedNatsError,
    HolepunchInvalidError,
    HolepunchProbeTimeoutError,
    HyperDHTDecodeError,
    HyperDHTError,
    PeerConnectionFailedError,
    PeerNotFoundError,
    RelayAbortedError,
    RemoteAbortedError,
    RemoteNotHolepunchableError,
    RemoteNotHolepunchingError,
    ServerErrorError,
    ServerIncompatibleError,
)
from .holepuncher import Holepuncher, Sleeper, random_punch_blocked
from .host import ConnectionHost
from .noise_wrap import ConnectionKeys, NoiseWrap
from .relay_connection import (
    RELAY_KEEP_ALIVE,
    RelayLink,
    RelayThrough,
    connect_through,
    relay_token,
    select_relay,
    start_upgrade,
)
from .router import FROM_CLIENT, REPLY
from .secure_payload import SecurePayload
from .server import HolepunchVeto, connection_stream

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
    def __init__(
        self,
        dht: ConnectionHost,
        public_key: bytes,
        key_pair: KeyPair,
        *,
        holepunch: HolepunchVeto | None = None,
        fast_open: bool = True,
        local_connection: bool = True,
        relay_through: RelayThrough = None,
        relay_keep_alive: float = RELAY_KEEP_ALIVE,
    ) -> None:
        self.dht = dht
        self.holepunch: HolepunchVeto = holepunch or (lambda *_: True)
        self.fast_open = fast_open
        self.lan = local_connection
        self.puncher: Holepuncher | None = None
        self.secure: SecurePayload | None = None
        self.sleeper = Sleeper()
        self.round = 0
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
        self.connected = trio.Event()  # by any path, the relay included
        self.direct = trio.Event()  # by a direct path (first, or moved to from the relay)
        self.upgrading = False  # a relayed stream is moving to a direct path
        self.direct_error: Exception | None = None  # the direct paths failed unexpectedly
        self.answered = trio.Event()
        # a packet from the server that came before its answer: (socket, host, port)
        self._early: tuple[UDXSocket, str, int] | None = None
        # the blind relay we offer (if any), the pairing at whichever relay is used
        relay_key = select_relay(relay_through)
        self.relay_offer = (
            m.RelayThroughInfo(public_key=relay_key, token=relay_token())
            if relay_key is not None
            else None
        )
        self.relay_keep_alive = relay_keep_alive
        self.relay: RelayLink | None = None

    # --- the stream -----------------------------------------------------------------------

    def _on_first_packet(self, sock: UDXSocket, host: str, port: int) -> bool:
        if not 0 < port < 65536:
            return True
        if self.relay is not None and self.relay.carries(sock, host, port):
            return False  # the peer, through the relay
        if self.answer is None:
            self._early = (sock, host, port)  # connected once the answer is in
            return False
        if not self.connected.is_set():
            self.dht.connection_paths["client:client-open"] += 1  # the server came to us
        self._on_socket(sock, host, port)
        return False

    def _on_socket(self, sock: UDXSocket, host: str, port: int) -> None:
        answer = self.answer
        if self.direct.is_set() or answer is None or answer.payload.udx is None:
            return
        if self.connected.is_set():  # relayed so far: move to the direct path
            self._upgrade(answer.payload.udx.id, sock, host, port)
            return
        self.raw.connect(answer.payload.udx.id, port, host, socket=sock)
        self.connected.set()
        self.direct.set()
        self.sleeper.resume()
        self._stop_punching()

    def _stop_punching(self) -> None:
        p = self.puncher
        if p is not None:  # (the socket a stream runs on stays open with it)
            p.on_abort = None
            p.destroy()

    def _upgrade(self, remote_id: int, sock: UDXSocket, host: str, port: int) -> None:
        if self.upgrading:
            return
        self.upgrading = True

        def on_moved(moved: bool) -> None:
            if moved:
                self.direct.set()
                self.dht.connection_paths["client:upgraded"] += 1
            self._stop_punching()  # (its socket stays open with the stream on it)

        start_upgrade(self.dht, self.raw, self.relay, (remote_id, sock, host, port), on_moved)

    def start_relay(self, answer: _Answer) -> None:
        """Pair our stream at the relay one side offered."""
        self.relay = RelayLink.offered(
            self.dht,
            answer.payload.relay_through,
            self.relay_offer,
            is_server=False,
            raw=self.raw,
            on_paired=self._on_relayed,
            on_abort=self.sleeper.resume,
            keep_alive=self.relay_keep_alive,
        )
        self.relay.start()

    def _on_relayed(self, remote_id: int, relay_stream: UDXStream) -> bool:
        """The relay paired us: connect through it (the punch goes on meanwhile)."""
        if self.connected.is_set() or not connect_through(self.raw, remote_id, relay_stream):
            return False
        self.dht.connection_paths["client:relayed"] += 1
        self.connected.set()
        return True

    def _on_punched(self, sock: UDXSocket, host: str, port: int) -> None:
        if not self.direct.is_set():
            self.dht.connection_paths["client:punched"] += 1
        self._on_socket(sock, host, port)

    def next_round(self) -> int:
        self.round += 1
        return self.round - 1

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
            relay_through=self.relay_offer,
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
    holepunch: HolepunchVeto | None = None,
    fast_open: bool = True,
    local_connection: bool = True,
    relay_through: RelayThrough = None,
    relay_keep_alive: float = RELAY_KEEP_ALIVE,
) -> SecretStream:
    """A connection to the server listening on ``public_key``: a secret-stream over a UDX
    stream whose header exchange is done (see the module docstring). ``holepunch(remote
    firewall, our firewall, remote addresses, our addresses)`` may veto a punch; JS's
    ``fastOpen`` and ``localConnection`` options are ``fast_open`` and ``local_connection``.
    ``relay_through``: a blind relay's public key (or a list, or a function, see
    :data:`~hyperswarm.hyperdht.relay_connection.RelayThrough`) to fall back on."""
    c = _Connector(
        dht,
        public_key,
        key_pair or dht.default_key_pair,
        holepunch=holepunch,
        fast_open=fast_open,
        local_connection=local_connection,
        relay_through=relay_through,
        relay_keep_alive=relay_keep_alive,
    )
    try:
        return await _connect(c, relay_addresses)
    except BaseException:
        if c.relay is not None:
            c.relay.close()
        c.raw.destroy()
        if c.puncher is not None:
            c.puncher.on_abort = None
            c.puncher.destroy()
        raise
    finally:
        if c.relay is None:  # (else the direct paths' task cleans up when it ends)
            c.sleeper.resume()
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
        if answer.payload.relay_through is not None or c.relay_offer is not None:
            c.start_relay(answer)
            await _open_direct_or_relayed(c, answer)
        else:
            await _open_direct(c, answer)
    stream = connection_stream(c.raw, answer.keys)
    await stream.do_handshake()  # our header goes out; the server's comes with its first data
    return stream


async def _open_direct(c: _Connector, answer: _Answer) -> None:
    """Connect the stream: straight to a reachable server, by waiting for the server when we
    are reachable, over the LAN when both sit behind one NAT, or by hole punching."""
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
            await c.direct.wait()
        if not c.direct.is_set():
            raise HolepunchAbortedError("the server did not connect")
        return
    lan = _lan_candidate(c, answer) if c.lan else None
    if not holepunchable:
        if lan is None:
            raise CannotHolepunchError("the server cannot be reached and does not punch")
        await _try_lan(c, lan, raise_on_failure=True)  # the LAN is the only way
        return
    error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_cancel_when_set, c.direct, nursery.cancel_scope)
        if lan is not None:  # raced with the punch, which it does not hold up
            nursery.start_soon(_try_lan, c, lan)
        try:
            await _holepunch(c, answer)
            assert c.puncher is not None
            await c.puncher.ended.wait()  # (a connection by any path ends the puncher)
        except (HyperDHTError, DHTError) as e:
            error = e  # (moot if another path connected meanwhile)
        nursery.cancel_scope.cancel()
    if c.direct.is_set():
        return
    raise error or HolepunchAbortedError("no punch got through")


async def _open_direct_or_relayed(c: _Connector, answer: _Answer) -> None:
    """The direct paths raced with the relay pairing: the first to connect wins. The direct
    paths run in a task of the node, so that a connection the relay carries first goes on
    punching after this returns (and moves to the direct path if a punch lands)."""
    relay = c.relay
    assert relay is not None
    direct_over = trio.Event()
    c.dht.nursery.start_soon(_direct_paths, c, answer, direct_over)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_cancel_when_set, c.connected, nursery.cancel_scope)
        await direct_over.wait()  # every direct path failed: the relay is the last hope
        await relay.ended.wait()
        nursery.cancel_scope.cancel()
    if not c.connected.is_set():
        if c.direct_error is not None:
            raise c.direct_error
        raise RelayAbortedError("neither a direct path nor the relay connected")


async def _direct_paths(c: _Connector, answer: _Answer, over: trio.Event) -> None:
    """The direct paths, until one connects, all fail, or the connection ends."""
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_when_closed, c.raw, nursery.cancel_scope)
            try:
                await _open_direct(c, answer)
            except (HyperDHTError, DHTError):
                pass
            except Exception as e:  # (out of sockets, a veto callback that raised...)
                c.direct_error = e  # raised by connect() if nothing else connects
            nursery.cancel_scope.cancel()
    finally:
        over.set()
        if not c.direct.is_set() and not c.upgrading:
            c._stop_punching()
        c.sleeper.resume()
        c.session.destroy()


async def _cancel_when_closed(raw: UDXStream, scope: trio.CancelScope) -> None:
    await raw.wait_closed()
    scope.cancel()


def _lan_candidate(c: _Connector, answer: _Answer) -> Address | None:
    """The server's LAN address to try when the relay saw us both at one host."""
    if not answer.relayed or answer.client_address.host != answer.server_address.host:
        return None
    lan = [a for a in answer.payload.addresses4 if not is_reserved(a.host)]
    if not lan:
        return None
    mine = local_addresses(c.dht.server_socket.address())
    return match_address(mine, lan) or lan[0]


async def _try_lan(c: _Connector, addr: Address, *, raise_on_failure: bool = False) -> None:
    try:
        await c.dht.ping(addr)
    except DHTError:
        if raise_on_failure:
            raise HolepunchAbortedError("the server's LAN address does not answer") from None
        return
    if not c.direct.is_set():
        c.dht.connection_paths["client:lan"] += 1
        c._on_socket(c.dht.server_socket, addr.host, addr.port)


# --- hole punching ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _HolepunchAnswer:
    """The server's sealed answer to a PEER_HOLEPUNCH round, and how the relay routed it."""

    payload: m.HolepunchPayload
    peer_address: Address  # the server, as the relay saw it
    from_: Address  # the relay
    to: Address | None  # us, as the relay saw us
    try_later: bool = False  # the server cannot punch a random NAT now: ask again later


def _pick_server_relay(relays: tuple[m.RelayInfo, ...], client_relay: Address) -> m.RelayInfo:
    """The server's relay that our handshake went through, if it is one; else its first."""
    for r in relays:
        if r.relay_address == client_relay:
            return r
    return relays[0]


async def _holepunch(c: _Connector, answer: _Answer) -> None:
    """Probe and punch rounds with the server through DHT relays (JS ``connect.js``); the
    punching itself then runs in the background (see :mod:`.holepuncher`)."""
    payload = answer.payload
    assert payload.holepunch is not None
    c.secure = SecurePayload(answer.keys.holepunch_secret)
    p = await Holepuncher.open(c.dht, c.session, True, payload.firewall)
    c.puncher = p
    p.on_connect = c._on_punched
    server_relay = _pick_server_relay(payload.holepunch.relays, answer.node)
    server_address = answer.server_address
    try:
        probe = await _probe_round(
            c, server_address if c.fast_open else None, server_relay, retry=True
        )
        token, peer_address = probe
        # the server may have moved to another socket: the relay we share with it knows
        if server_relay.relay_address == answer.node and server_address != peer_address:
            server_address = peer_address
            await p.open_session(server_address)
        remote = [a.address for a in p.remote_addresses]
        if not c.holepunch(p.remote_firewall, p.nat.firewall, remote, p.nat.addresses):
            await _abort(c, server_relay, HolepunchAbortedError("Client aborted holepunch"))
        await _round_punch(c, server_address, token, answer.node, server_relay)
    except BaseException:
        if not c.upgrading:  # (a relayed stream is about to move onto the punched socket)
            p.destroy()
        raise


async def _update_holepunch(
    c: _Connector, peer_address: Address, relay: Address, payload: m.HolepunchPayload
) -> _HolepunchAnswer:
    """One PEER_HOLEPUNCH round trip through ``relay`` to the server at ``peer_address``,
    from the punch socket."""
    p, sealed = c.puncher, c.secure
    assert p is not None and sealed is not None and c.answer is not None
    hp_info = c.answer.payload.holepunch
    assert hp_info is not None
    value = m.HOLEPUNCH.encode(
        m.Holepunch(FROM_CLIENT, hp_info.id, sealed.encrypt(payload), peer_address)
    )
    reply = await c.dht.request(
        command=COMMANDS.PEER_HOLEPUNCH,
        to=relay,
        target=c.target,
        value=value,
        session=c.session,
        socket=p.socket,
    )
    try:
        hp = m.HOLEPUNCH.decode(reply.value or b"")
    except HyperDHTDecodeError:
        raise BadHolepunchReplyError("the relay's holepunch reply does not decode") from None
    if hp.mode != REPLY or reply.from_.address != relay:
        raise BadHolepunchReplyError("the holepunch reply is not from the relay asked")
    remote = sealed.decrypt(hp.payload)
    if remote is None:
        raise HolepunchInvalidError("the server's holepunch payload does not decrypt")
    peer = hp.peer_address or relay
    if remote.error == ERROR.TRY_LATER and c.relay is not None and payload.punching:
        return _HolepunchAnswer(remote, peer, reply.from_.address, reply.to, try_later=True)
    if remote.error != ERROR.NONE:  # TRY_LATER too, without a relay to fall back on
        raise RemoteAbortedError(f"Remote aborted with error code {remote.error}")
    echoed = remote.remote_token is not None and remote.remote_token == payload.token
    p.update_remote(
        punching=remote.punching,
        firewall=remote.firewall,
        addresses=remote.addresses,
        verified=peer.host if echoed else None,
    )
    return _HolepunchAnswer(remote, peer, reply.from_.address, reply.to)


async def _probe_round(
    c: _Connector, server_address: Address | None, server_relay: m.RelayInfo, *, retry: bool
) -> tuple[bytes | None, Address]:
    p = c.puncher
    assert p is not None
    if server_address is not None:  # a short-lived session towards where we think it is
        await p.open_session(server_address)
    reply = await _update_holepunch(
        c,
        server_relay.peer_address,
        server_relay.relay_address,
        m.HolepunchPayload(
            error=ERROR.NONE,
            firewall=p.nat.firewall,
            round=c.next_round(),
            addresses=tuple(p.nat.addresses) if p.nat.addresses is not None else None,
            remote_address=server_address,
        ),
    )
    token = reply.payload.token
    if reply.to is not None:
        p.nat.add(reply.to, reply.from_)
    if p.remote_firewall == FIREWALL.UNKNOWN:
        await c.sleeper.pause(1000)  # the server is still sampling: give it a moment
    stable = await p.analyze(False)
    if not stable:
        stable = await p.analyze(True)
        if stable:
            return await _probe_round(c, server_address, server_relay, retry=False)
    if (p.remote_firewall == FIREWALL.UNKNOWN or token is None) and retry:
        return await _probe_round(c, server_address, server_relay, retry=False)
    if p.remote_firewall == FIREWALL.UNKNOWN or p.nat.firewall == FIREWALL.UNKNOWN:
        await _abort(c, server_relay, HolepunchProbeTimeoutError("no NAT verdict in time"))
    if p.remote_firewall >= FIREWALL.RANDOM and p.nat.firewall >= FIREWALL.RANDOM:
        await _abort(
            c, server_relay, HolepunchDoubleRandomizedNatsError("both sides are behind random NATs")
        )
    return token, reply.peer_address


async def _round_punch(
    c: _Connector,
    server_address: Address,
    remote_token: bytes | None,
    client_relay: Address,
    server_relay: m.RelayInfo,
    *,
    delayed: bool = False,
) -> None:
    p, sealed, dht = c.puncher, c.secure, c.dht
    assert p is not None and sealed is not None
    p.nat.freeze()  # what we tell the server now must stay true
    is_random = p.remote_firewall >= FIREWALL.RANDOM or p.nat.firewall >= FIREWALL.RANDOM
    if is_random:
        # one random punch at a time per node, one per interval: with a relay to fall back
        # on, wait for a turn (the relay may connect meanwhile); without one, stop
        while random_punch_blocked(dht):
            if c.relay is None:
                raise HolepunchAbortedError("a random punch ran too recently")
            if not delayed:
                delayed = True
                await _update_holepunch(
                    c,
                    server_address,
                    client_relay,
                    _punch_payload(
                        c,
                        punching=False,
                        token=sealed.token(server_address),
                        remote_token=remote_token,
                    ),
                )
            await _try_later(c)
        dht.random_punches += 1
    try:
        # once delayed, through the server's own relay (whose address it proved)
        reply = await _update_holepunch(
            c,
            server_relay.peer_address if delayed else server_address,
            server_relay.relay_address if delayed else client_relay,
            _punch_payload(
                c,
                punching=True,
                token=None if delayed else sealed.token(server_address),
                remote_token=remote_token,
            ),
        )
    finally:
        if is_random:
            dht.random_punches -= 1
    if reply.try_later:
        await _try_later(c)
        await _round_punch(
            c, server_address, remote_token, client_relay, server_relay, delayed=True
        )
        return
    if not p.remote_holepunching:
        raise RemoteNotHolepunchingError("the server does not punch")
    if not await p.punch():
        raise RemoteNotHolepunchableError("the pair of NATs cannot be punched")


def _punch_payload(
    c: _Connector, *, punching: bool, token: bytes | None, remote_token: bytes | None
) -> m.HolepunchPayload:
    p = c.puncher
    assert p is not None
    return m.HolepunchPayload(
        error=ERROR.NONE,
        firewall=p.nat.firewall,
        round=c.next_round(),
        punching=punching,
        addresses=tuple(p.nat.addresses) if p.nat.addresses is not None else None,
        token=token,
        remote_token=remote_token,
    )


async def _try_later(c: _Connector) -> None:
    """Wait 10 to 20 s before asking to punch again (only with a relay to fall back on)."""
    if c.relay is None:
        raise HolepunchAbortedError("the server cannot punch now and there is no relay")
    await c.sleeper.pause(10_000 + random.randint(0, 10_000))


async def _abort(c: _Connector, relay: m.RelayInfo, error: HyperDHTError) -> NoReturn:
    """Tell the server we stop (best effort), stop punching, and fail with ``error``."""
    p = c.puncher
    assert p is not None
    try:
        await _update_holepunch(
            c,
            relay.peer_address,
            relay.relay_address,
            m.HolepunchPayload(
                error=ERROR.ABORTED, firewall=FIREWALL.UNKNOWN, round=c.next_round()
            ),
        )
    except (DHTError, HyperDHTError):
        pass
    p.destroy()
    raise error
