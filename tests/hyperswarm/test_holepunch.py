"""Hole punching without NATs: the NAT sampler's verdicts (as hyperdht's lib/nat.js), the
sealed holepunch payloads, punches between Python peers on 127.0.0.1 with the LAN shortcut
off (both sides sample a consistent "NAT" there, so the consistent strategy runs for real),
and what bad holepunch messages get: silence or an abort, nothing raised, nothing kept."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyperswarm import testnet
from hyperswarm.dht_rpc.io import SERVER, IncomingRequest, Peer
from hyperswarm.hyperdht import HyperDHT
from hyperswarm.hyperdht import messages as m
from hyperswarm.hyperdht.constants import ERROR, FIREWALL
from hyperswarm.hyperdht.nat import Nat, skip_newest
from hyperswarm.hyperdht.router import HolepunchReply
from hyperswarm.hyperdht.secure_payload import SecurePayload
from hyperswarm.secret_stream import SecretStream
from protomux.encoding import Address

LOCAL = "127.0.0.1"
FUZZ = int(os.environ.get("HYPERTRIO_FUZZ_EXAMPLES", "200"))


def nat_after(*seen: tuple[str, int], firewalled: bool = True) -> Nat:
    """A sampler that got one sample per node, node i having seen us at ``seen[i]``."""
    nat = Nat(firewalled=firewalled)
    for i, (host, port) in enumerate(seen):
        nat.add(Address(host, port), Address("23.0.0.1", 10000 + i))
    return nat


A = ("23.0.0.11", 4000)
A2 = ("23.0.0.11", 4001)
A3 = ("23.0.0.11", 4002)
A4 = ("23.0.0.11", 4003)
B = ("23.0.0.12", 5000)


@pytest.mark.parametrize(
    ("seen", "firewall", "addresses"),
    [
        ((A, A), FIREWALL.UNKNOWN, None),  # fewer than 3 samples: no verdict
        ((A, A, A), FIREWALL.CONSISTENT, [A]),
        ((A, A2, A3), FIREWALL.RANDOM, [("23.0.0.11", 0)]),
        ((A, A, A2), FIREWALL.UNKNOWN, None),  # one hit twice of 3: wait for more
        ((A, A, A2, A3), FIREWALL.RANDOM, [("23.0.0.11", 0)]),  # one host, two strays
        ((A, A, B, B), FIREWALL.CONSISTENT, [A, B]),  # two addresses, each twice
        ((A, A, B), FIREWALL.UNKNOWN, None),
        ((A, A, B, A2), FIREWALL.UNKNOWN, None),
        ((A, A, B, A2, A3), FIREWALL.RANDOM, [("23.0.0.11", 0)]),  # 5 samples, no answer
        ((A, A, A, B), FIREWALL.CONSISTENT, [A, B]),  # at least two addresses
        ((A2, A, A, A, A4), FIREWALL.CONSISTENT, [A, A2]),
    ],
)
def test_nat_verdicts(
    seen: tuple[tuple[str, int], ...], firewall: int, addresses: list[tuple[str, int]] | None
) -> None:
    nat = nat_after(*seen)
    assert nat.firewall == firewall
    want = None if addresses is None else [Address(h, p) for h, p in addresses]
    assert nat.addresses == want


def test_nat_details() -> None:
    assert nat_after(A, firewalled=False).firewall == FIREWALL.OPEN
    # a node's second report counts once
    nat = Nat(firewalled=True)
    for _ in range(3):
        nat.add(Address(*A), Address("23.0.0.1", 1))
    assert nat.sampled == 1 and nat.firewall == FIREWALL.UNKNOWN
    # analyzing: at once when consistent, else after four samples
    assert nat_after(A, A, A).analyzing.is_set()
    assert not nat_after(A, A2, A3).analyzing.is_set()
    assert nat_after(A, A2, A3, A4).analyzing.is_set()
    # frozen: what was told the other side stays
    nat = nat_after(A, A, A)
    nat.freeze()
    for i, addr in enumerate((A2, A3, A4, B, B)):
        nat.add(Address(*addr), Address("23.0.0.2", i))
    assert nat.firewall == FIREWALL.CONSISTENT and nat.addresses == [Address(*A)]
    nat.unfreeze()
    assert nat.firewall == FIREWALL.CONSISTENT  # A still leads with 3 hits
    # the newest nodes are skipped once the table is big enough
    assert [skip_newest(n) for n in (0, 7, 8, 20)] == [0, 0, 5, 5]


def test_sealed_payloads() -> None:
    secret = os.urandom(32)
    a, b = SecurePayload(secret), SecurePayload(secret)
    payload = m.HolepunchPayload(
        firewall=FIREWALL.CONSISTENT, round=2, punching=True, addresses=(Address(*A),)
    )
    assert b.decrypt(a.encrypt(payload)) == payload
    assert a.encrypt(payload) != a.encrypt(payload)  # a fresh nonce each time
    # tokens: per host, per side
    assert a.token(Address(*A)) == a.token(Address(*A2)) != a.token(Address(*B))
    assert a.token(Address(*A)) != b.token(Address(*A))
    with pytest.raises(ValueError):
        SecurePayload(b"short")


@settings(max_examples=FUZZ, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=200))
def test_forged_sealed_payloads_open_to_nothing(data: bytes) -> None:
    assert SecurePayload(bytes(32)).decrypt(data) is None


# --- punching on 127.0.0.1 ------------------------------------------------------------------


@pytest.fixture
async def net() -> AsyncIterator[testnet.Testnet]:
    async with testnet.Testnet(5) as n:
        yield n


def firewalled_node(net: testnet.Testnet, **opts: Any) -> HyperDHT:
    return HyperDHT(
        bootstrap=net.bootstrap_strings(),
        host=LOCAL,
        port=0,
        firewalled=True,
        quick_firewall=False,
        **opts,
    )


async def echo(stream: SecretStream) -> None:
    with trio.fail_after(30):
        async for message in stream:
            await stream.send(message)


async def test_python_peers_punch_and_leak_no_sockets(net: testnet.Testnet) -> None:
    async with firewalled_node(net) as s_node, firewalled_node(net) as c_node:
        server = s_node.create_server(on_connection=echo)
        await server.listen()
        fds = len(os.listdir("/proc/self/fd"))
        for i in range(20):
            with trio.fail_after(20):
                stream = await c_node.connect(
                    s_node.default_key_pair.public_key, local_connection=False
                )
                async with stream:
                    await stream.send(b"punched %d" % i)
                    assert await stream.receive() == b"punched %d" % i
        assert c_node.connection_paths["client:punched"] == 20
        assert s_node.connection_paths["server:punched"] == 20
        assert s_node.punches["consistent"] >= 1
        # every punch socket closes once its connection has ended
        with trio.fail_after(10):
            while s_node.open_sockets or c_node.open_sockets:
                await trio.sleep(0.05)
        assert len(os.listdir("/proc/self/fd")) <= fds + 2


class _Req:
    def __init__(self, port: int, socket: int = SERVER) -> None:
        self.from_ = Peer(LOCAL, port)
        self.socket = socket
        self.to: Address | None = None


async def test_bad_holepunch_messages_get_silence_or_an_abort(net: testnet.Testnet) -> None:
    async with firewalled_node(net) as s_node:
        server = s_node.create_server(on_connection=echo)
        await server.listen()
        req = cast(IncomingRequest, _Req(40000))
        # unknown sessions, at any id
        for slot in (-1, 0, 1, 2**32):
            assert server._on_holepunch(slot, b"\x00" * 64, Address(LOCAL, 1), req) is None
        # a real session (a client handshake relayed to the server), then forged payloads
        from hyperswarm.hyperdht.noise_wrap import NoiseWrap

        client = NoiseWrap(HyperDHT.key_pair(b"\x41" * 32), s_node.default_key_pair.public_key)
        msg1 = client.send(
            m.NoisePayload(udx=m.UdxInfo(id=7, seq=0), secret_stream=m.SecretStreamInfo())
        )
        answer = server._on_handshake(msg1, Address(LOCAL, 41000), req)
        assert answer is not None and not isinstance(answer, m.NoisePayload)
        if not hasattr(answer, "noise"):
            with trio.fail_after(10):
                answer = await answer  # type: ignore[misc]
        assert server.pending == 1
        slot = 0
        for forged in (b"", b"\x00" * 40, os.urandom(100)):
            assert server._on_holepunch(slot, forged, Address(LOCAL, 1), req) is None
        # sealed under the right secret but saying "aborted": the server gives up the session
        client.recv(answer.noise)  # type: ignore[union-attr]
        sealed = SecurePayload(client.final().holepunch_secret).encrypt(
            m.HolepunchPayload(error=ERROR.ABORTED, round=1)
        )
        reply = server._on_holepunch(slot, sealed, Address(LOCAL, 1), req)
        with trio.fail_after(10):
            reply = await reply  # type: ignore[misc]
        assert isinstance(reply, HolepunchReply)
        with trio.fail_after(10):
            while s_node.open_sockets:
                await trio.sleep(0.05)
        # a flood of sessions is bounded: the rest are answered without punching
        for i in range(80):
            c = NoiseWrap(HyperDHT.key_pair(bytes([i]) * 32), s_node.default_key_pair.public_key)
            a = server._on_handshake(
                c.send(
                    m.NoisePayload(udx=m.UdxInfo(id=i, seq=0), secret_stream=m.SecretStreamInfo())
                ),
                Address(LOCAL, 42000 + i),
                req,
            )
            if a is not None and not hasattr(a, "noise"):
                a.close()  # type: ignore[union-attr]
        await trio.sleep(0.5)
        from hyperswarm.hyperdht.server import MAX_PUNCHING

        assert s_node.open_sockets <= MAX_PUNCHING
        assert s_node.punches["too_many"] > 0
