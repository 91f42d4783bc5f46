"""HyperDHT connections between Python nodes on a local testnet (127.0.0.1): refusals, forged
and retransmitted handshakes, closing and listening again, many clients at once, the shape of
a forwarded handshake on the wire, and bad input (fuzzed handshake and holepunch messages, a
flood of handshakes)."""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, cast

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypercore.crypto import key_pair
from hyperswarm import testnet
from hyperswarm.dht_rpc.errors import DHTDecodeError
from hyperswarm.dht_rpc.io import SERVER, IncomingRequest, Peer
from hyperswarm.dht_rpc.messages import Request, Response, decode_packet, encode_response
from hyperswarm.hyperdht import COMMANDS, HyperDHT
from hyperswarm.hyperdht import messages as m
from hyperswarm.hyperdht import server as server_module
from hyperswarm.hyperdht.constants import FIREWALL
from hyperswarm.hyperdht.errors import (
    HandshakeInvalidError,
    PeerConnectionFailedError,
    PeerNotFoundError,
)
from hyperswarm.hyperdht.noise_wrap import NoiseWrap
from hyperswarm.hyperdht.router import FROM_CLIENT, FROM_SERVER, REPLY, Router
from hyperswarm.hyperdht.server import Server
from hyperswarm.secret_stream import SecretStream
from protomux.encoding import Address

LOCAL = "127.0.0.1"
FUZZ = int(os.environ.get("HYPERTRIO_FUZZ_EXAMPLES", "200"))


@pytest.fixture
async def net() -> AsyncIterator[testnet.Testnet]:
    async with testnet.Testnet(5) as n:
        yield n


def node(net: testnet.Testnet, seed: int | None = None) -> HyperDHT:
    s = bytes([seed]) * 32 if seed is not None else None
    return HyperDHT(bootstrap=net.bootstrap_strings(), host=LOCAL, port=0, seed=s)


async def echo(stream: SecretStream) -> None:
    with trio.fail_after(30):
        async for message in stream:
            await stream.send(message)


async def check_echo(stream: SecretStream, data: bytes) -> None:
    with trio.fail_after(30):
        async with stream:
            await stream.send(data)
            assert await stream.receive() == data


async def test_a_refused_client_hears_nothing_and_fails(net: testnet.Testnet) -> None:
    asked: list[tuple[bytes, Address]] = []

    def refuse(remote_key: bytes, payload: m.NoisePayload, client: Address) -> bool:
        asked.append((remote_key, client))
        return True

    async with node(net, 1) as s_node, node(net, 2) as c_node:
        server = s_node.create_server(on_connection=echo, firewall=refuse)
        await server.listen()
        relayed = sum(n.router.relayed for n in net.nodes)
        with trio.fail_after(60), pytest.raises(PeerConnectionFailedError):
            await c_node.connect(s_node.default_key_pair.public_key)
        # asked once: every retransmission, through any relay, met the remembered refusal
        assert [k for k, _ in asked] == [c_node.default_key_pair.public_key]
        assert server.connections == 0 and not any(server._slots)
        # relays forwarded the client's handshakes to the server, which sent nothing back
        assert sum(n.router.relayed for n in net.nodes) > relayed


async def test_a_reply_from_a_node_never_asked_is_ignored() -> None:
    server_kp = key_pair(b"\x05" * 32)
    for forge in (True, False):
        async with HyperDHT(bootstrap=[], host=LOCAL, port=0) as client:
            relay = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
            other = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
            await relay.bind((LOCAL, 0))
            await other.bind((LOCAL, 0))
            relay_addr = Address(LOCAL, relay.getsockname()[1])

            async def fake_relay(
                relay: trio.socket.SocketType = relay,
                other: trio.socket.SocketType = other,
                forge: bool = forge,
            ) -> None:
                while True:
                    data, src = await relay.recvfrom(65536)
                    try:
                        packet = decode_packet(data)
                    except DHTDecodeError:
                        continue  # the client's UDX packets (it connects to the node it asked)
                    if not isinstance(packet, Request) or packet.internal or not packet.value:
                        continue
                    if packet.command != COMMANDS.PEER_HANDSHAKE:
                        continue
                    hs = m.HANDSHAKE.decode(packet.value)
                    wrap = NoiseWrap(server_kp)
                    wrap.recv(hs.noise)
                    msg2 = wrap.send(
                        m.NoisePayload(
                            firewall=FIREWALL.OPEN,
                            addresses4=(Address(LOCAL, other.getsockname()[1]),),
                            udx=m.UdxInfo(id=99, seq=0),
                            secret_stream=m.SecretStreamInfo(),
                        )
                    )
                    reply = Response(
                        packet.tid,
                        Address(src[0], src[1]),
                        None,
                        None,
                        (),
                        0,
                        m.HANDSHAKE.encode(m.Handshake(REPLY, msg2)),
                    )
                    # the answer comes from another address than the one asked (forged), or
                    # from the one asked
                    await (other if forge else relay).sendto(encode_response(reply), src)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(fake_relay)
                with trio.fail_after(60):
                    if forge:
                        with pytest.raises(PeerConnectionFailedError):
                            await client.connect(server_kp.public_key, relay_addresses=[relay_addr])
                    else:  # the same answer from the node asked is taken
                        stream = await client.connect(
                            server_kp.public_key, relay_addresses=[relay_addr]
                        )
                        assert stream.remote_public_key == server_kp.public_key
                        await stream.aclose()
                nursery.cancel_scope.cancel()
            relay.close()
            other.close()


async def _request_handshake(
    client: HyperDHT, to: Address, target: bytes, noise: bytes
) -> m.Handshake:
    reply = await client.request(
        command=COMMANDS.PEER_HANDSHAKE,
        to=to,
        target=target,
        value=m.HANDSHAKE.encode(m.Handshake(FROM_CLIENT, noise)),
    )
    assert reply.value is not None
    return m.HANDSHAKE.decode(reply.value)


async def test_a_retransmitted_first_message_yields_one_connection(net: testnet.Testnet) -> None:
    async with node(net, 1) as s_node, node(net, 2) as c_node:
        server = s_node.create_server(on_connection=echo)
        await server.listen()
        pk = s_node.default_key_pair.public_key
        msg1 = NoiseWrap(c_node.default_key_pair, pk).send(
            m.NoisePayload(udx=m.UdxInfo(id=1234, seq=0), secret_stream=m.SecretStreamInfo())
        )
        to = Address(LOCAL, s_node.server_socket.address()[1])
        with trio.fail_after(20):
            answers = [
                await _request_handshake(c_node, to, s_node.hash(pk), msg1) for _ in range(3)
            ]
        assert all(a.mode == REPLY and a.peer_address is None for a in answers)
        assert answers[0].noise == answers[1].noise == answers[2].noise
        # the handshake came straight to the server's node: it connected at once, once
        assert server.connections == 1 and server.pending == 1


async def test_after_close_the_record_is_gone_and_a_restart_is_reachable(
    net: testnet.Testnet,
) -> None:
    async with node(net, 1) as s_node, node(net, 2) as c_node:
        pk = s_node.default_key_pair.public_key

        async def holders() -> int:
            found = 0
            with trio.fail_after(30):
                async for _ in c_node.find_peer(pk):
                    found += 1
            return found

        server = s_node.create_server(on_connection=echo)
        await server.listen()
        assert await holders() > 0
        await check_echo(await c_node.connect(pk), b"first")
        await server.close()
        assert not server.listening and await holders() == 0
        again = s_node.create_server(on_connection=echo)
        await again.listen(s_node.default_key_pair)
        assert await holders() > 0
        with trio.fail_after(30):
            await check_echo(await c_node.connect(pk), b"second")
        assert again.connections == 1


async def test_twenty_clients_connect_at_once(net: testnet.Testnet) -> None:
    async with node(net, 1) as s_node, node(net, 2) as c_node:
        server = s_node.create_server(on_connection=echo)
        await server.listen()
        pk = s_node.default_key_pair.public_key
        done: list[int] = []

        async def one(i: int) -> None:
            kp = key_pair(bytes([100 + i]) * 32)
            stream = await c_node.connect(pk, key_pair=kp)
            assert stream.remote_public_key == pk and stream.public_key == kp.public_key
            await check_echo(stream, b"client %d" % i)
            done.append(i)

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for i in range(20):
                    nursery.start_soon(one, i)
        assert sorted(done) == list(range(20)) and server.connections == 20


async def test_a_forwarded_handshake_is_a_request_with_the_clients_tid(
    net: testnet.Testnet,
) -> None:
    seen: list[tuple[int, bytes, Address]] = []  # (relay index, datagram, source)
    for i, relay in enumerate(net.nodes):
        core = relay.core
        inner = core.on_message

        def record(
            socket: int,
            data: bytes,
            host: str,
            port: int,
            i: int = i,
            inner: Callable[[int, bytes, str, int], None] = inner,
        ) -> None:
            seen.append((i, data, Address(host, port)))
            inner(socket, data, host, port)

        core.on_message = record  # type: ignore[method-assign]
    async with node(net, 1) as s_node, node(net, 2) as c_node:
        server = s_node.create_server(on_connection=echo)
        await server.listen()
        with trio.fail_after(30):
            await check_echo(await c_node.connect(s_node.default_key_pair.public_key), b"x")
        client_ports = {c_node.server_socket.address()[1], c_node.client_socket.address()[1]}
        server_ports = {s_node.server_socket.address()[1], s_node.client_socket.address()[1]}
        from_client: dict[tuple[int, int], bytes] = {}
        from_server: list[tuple[int, bytes]] = []
        for i, data, src in seen:
            try:
                packet = decode_packet(data)
            except DHTDecodeError:
                continue
            if not isinstance(packet, Request) or packet.internal:
                continue
            if packet.command != COMMANDS.PEER_HANDSHAKE:
                continue
            assert packet.value is not None
            hs = m.HANDSHAKE.decode(packet.value)
            if src.port in client_ports and hs.mode == FROM_CLIENT:
                from_client[(i, packet.tid)] = data
            elif src.port in server_ports and hs.mode == FROM_SERVER:
                from_server.append((i, data))
        assert from_server, "no relayed handshake reply seen"
        for i, data in from_server:
            assert data[0] == 0x03  # a request packet, not a response (0x13)
            tid = int.from_bytes(data[2:4], "little")
            assert (i, tid) in from_client  # the tid of the client's request to that relay


# --- bad input -------------------------------------------------------------------------------


@dataclass
class _Req:
    from_: Peer
    socket: int = SERVER
    to: Address | None = None


def _req(port: int = 40000) -> IncomingRequest:
    return cast(IncomingRequest, _Req(Peer(LOCAL, port)))


async def _listening(net: testnet.Testnet, s_node: HyperDHT) -> Server:
    server = s_node.create_server(on_connection=echo)
    await server.listen()
    return server


async def test_garbage_handshakes_and_holepunches_get_silence(net: testnet.Testnet) -> None:
    async with node(net, 1) as s_node:
        server = await _listening(net, s_node)
        pk = s_node.default_key_pair.public_key
        good = NoiseWrap(key_pair(b"\x09" * 32), pk).send(
            m.NoisePayload(udx=m.UdxInfo(id=1, seq=0))
        )
        other = NoiseWrap(key_pair(b"\x09" * 32), key_pair(b"\x0a" * 32).public_key).send(
            m.NoisePayload(udx=m.UdxInfo(id=1, seq=0))
        )
        bad = [b"", good[:1], good[:31], good[:-1], good[:-17], other, bytes(len(good))]
        bad += [good[:i] + bytes([good[i] ^ 1]) + good[i + 1 :] for i in range(0, len(good), 7)]
        for noise in bad:
            assert server._on_handshake(noise, Address(LOCAL, 40001), _req()) is None
        assert server._on_holepunch(0, os.urandom(64), Address(LOCAL, 1), _req()) is None
        assert server.connections == 0 and not any(server._slots)


_FUZZ_KEY = key_pair(b"\x0b" * 32)


class _FakeRequest:
    """What the router needs of a request; what it sends is kept."""

    def __init__(self, value: bytes) -> None:
        self.value = value
        self.target = bytes(32)
        self.from_ = Peer(LOCAL, 40000)
        self.socket = SERVER
        self.sent: list[Any] = []

    def reply(self, *args: Any, **kwargs: Any) -> None:
        self.sent.append(("reply", args, kwargs))

    def relay(self, *args: Any, **kwargs: Any) -> None:
        self.sent.append(("relay", args, kwargs))


@settings(max_examples=FUZZ, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300), mode=st.integers(0, 6))
def test_fuzzed_handshake_messages_never_raise_anything_else(data: bytes, mode: int) -> None:
    with pytest.raises(HandshakeInvalidError):
        NoiseWrap(_FUZZ_KEY).recv(data)
    router = Router()
    for value in (data, m.HANDSHAKE.encode(m.Handshake(mode % 5, data))):
        req = _FakeRequest(value)
        router.on_peer_handshake(cast(IncomingRequest, req))
        router.on_peer_holepunch(cast(IncomingRequest, req))
        assert all(kind == "reply" for kind, _, _ in req.sent)  # no route: nothing relayed


async def test_a_handshake_flood_is_bounded_and_forgotten(
    net: testnet.Testnet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_module, "MAX_PENDING", 64)
    async with node(net, 1) as s_node:
        server = await _listening(net, s_node)
        pk = s_node.default_key_pair.public_key
        payload = m.NoisePayload(udx=m.UdxInfo(id=1, seq=0), secret_stream=m.SecretStreamInfo())
        answered = 0
        for i in range(200):
            msg1 = NoiseWrap(key_pair(i.to_bytes(32, "big")), pk).send(payload)
            # relayed, from a client that is not reachable: each waits for the client's packet
            answer = server._on_handshake(msg1, Address(LOCAL, 41000 + i), _req())
            if inspect.iscoroutine(answer):
                answer.close()  # (it waits for a punch socket: the router would await it)
            if answer is not None:
                answered += 1
        assert answered == 64 and server.pending == 64
        streams = len(s_node.udx._streams) if hasattr(s_node.udx, "_streams") else None
        timers = s_node.timers
        timers.advance(timers.now() + server_module.HANDSHAKE_INITIAL_TIMEOUT + 1)
        timers.advance(timers.now() + server.handshake_clear_wait + 1)
        assert server.pending == 0 and not any(server._slots)
        if streams is not None:
            assert len(s_node.udx._streams) <= streams - 64
        assert server.connections == 0
        # and it answers again
        msg1 = NoiseWrap(key_pair(b"\x0c" * 32), pk).send(payload)
        answer = server._on_handshake(msg1, Address(LOCAL, 42000), _req())
        assert answer is not None
        if inspect.iscoroutine(answer):
            answer.close()


async def test_the_announcer_moves_the_record_off_relays_that_went_away() -> None:
    async with testnet.Testnet(8) as net8:
        async with node(net8, 1) as s_node, node(net8, 2) as c_node:
            server = s_node.create_server(on_connection=echo)
            await server.listen()
            announcer = server._announcer
            assert announcer is not None
            first = {(r.relay_address.host, r.relay_address.port) for r in announcer.relays}
            assert len(first) == 3
            # two of the three relays leave the network
            gone = [n for n in net8.nodes if n.address()[1] in {p for _, p in first}][:2]
            gone_ports = {n.server_socket.address()[1] for n in gone}
            for n in gone:
                await n.aclose()
            with trio.fail_after(30):
                while any(r.relay_address.port in gone_ports for r in announcer.relays):
                    await trio.sleep(0.1)
            assert len(announcer.relays) == 3
            # the record is on live nodes and the server is reachable through them
            with trio.fail_after(30):
                await check_echo(await c_node.connect(s_node.default_key_pair.public_key), b"y")


async def test_refresh_announces_again(net: testnet.Testnet) -> None:
    async with node(net, 1) as s_node:
        server = s_node.create_server(on_connection=echo)
        await server.listen()
        announces = 0
        for relay in net.nodes:
            persistent = relay.persistent
            assert persistent is not None
            inner = persistent.on_announce

            def counted(req: IncomingRequest, inner: Any = inner) -> None:
                nonlocal announces
                announces += 1
                inner(req)

            persistent.on_announce = counted  # type: ignore[method-assign]
        server.refresh()
        with trio.fail_after(10):
            while announces < 3:
                await trio.sleep(0.05)


async def settled(n: HyperDHT, *, firewalled: bool) -> None:
    """Wait for the firewall check to say what the test needs (it may end after bootstrap)."""
    with trio.move_on_after(10):
        while n.firewalled != firewalled or (n.remote_address() is None) != firewalled:
            await trio.sleep(0.02)
    assert n.firewalled == firewalled, (firewalled, n.firewalled, n.remote_address())
    assert (n.remote_address() is None) == firewalled, (n.firewalled, n.remote_address())


# Whether a node on 127.0.0.1 finds itself reachable depends on timing (the quick firewall
# check races the bootstrap): the tests say which they want.
FIREWALLED = {"quick_firewall": False}
REACHABLE = {"firewalled": False}


@pytest.mark.parametrize(
    ("path", "server_opts", "client_opts", "client_path", "server_path"),
    [
        # (an ephemeral server: a persistent one may be asked straight, being a DHT node)
        (
            "server reachable",
            {**REACHABLE, "ephemeral": True},
            FIREWALLED,
            {"client:server-open"},
            "server:first-packet",
        ),
        (
            "client reachable",
            FIREWALLED,
            REACHABLE,
            {"client:client-open", "client:early"},
            "server:client-open",
        ),
        ("same host", FIREWALLED, FIREWALLED, {"client:lan"}, "server:first-packet"),
        # (the server connects at once too: its packet may come before its answer)
        ("direct", FIREWALLED, FIREWALLED, {"client:direct", "client:early"}, "server:direct"),
        ("no holepunch", FIREWALLED, FIREWALLED, {"client:no-holepunch"}, "server:first-packet"),
    ],
)
async def test_each_path_without_hole_punching(
    net: testnet.Testnet,
    path: str,
    server_opts: dict[str, Any],
    client_opts: dict[str, Any],
    client_path: set[str],
    server_path: str,
) -> None:
    boot = net.bootstrap_strings()
    async with (
        HyperDHT(bootstrap=boot, host=LOCAL, port=0, seed=b"\x01" * 32, **server_opts) as s_node,
        HyperDHT(bootstrap=boot, host=LOCAL, port=0, seed=b"\x02" * 32, **client_opts) as c_node,
    ):
        for n, opts in ((s_node, server_opts), (c_node, client_opts)):
            await n.fully_bootstrapped()
            await settled(n, firewalled=opts is FIREWALLED)
        server = s_node.create_server(on_connection=echo)
        await server.listen()
        relays = None
        if path == "direct":  # ask the server's own node
            relays = [Address(LOCAL, s_node.socket.address()[1])]
        if path == "no holepunch":  # the server knows no relays to punch through
            assert server._announcer is not None
            server._announcer.relays = []
        with trio.fail_after(30):
            stream = await c_node.connect(
                s_node.default_key_pair.public_key, relay_addresses=relays
            )
            await check_echo(stream, path.encode())
        assert sum(c_node.connection_paths[p] for p in client_path) == 1, c_node.connection_paths
        assert s_node.connection_paths[server_path] == 1, s_node.connection_paths


async def test_a_key_nobody_announced_is_not_found(net: testnet.Testnet) -> None:
    async with node(net, 2) as c_node:
        await c_node.fully_bootstrapped()
        with trio.fail_after(60), pytest.raises(PeerNotFoundError) as info:
            await c_node.connect(key_pair(b"\x33" * 32).public_key)
        assert info.value.code == "PEER_NOT_FOUND"
