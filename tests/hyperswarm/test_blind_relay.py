"""The blind relay on 127.0.0.1 (Python only; tests/interop has it against JS): messages,
connections relayed when punching is vetoed on both ends (the relay passes only ciphertext),
and what a peer can make a relay hold (pair floods, unpaired halves, unpair by strangers)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from hyperswarm import testnet
from hyperswarm.blind_relay import (
    PAIR,
    UNPAIR,
    BlindRelayClient,
    BlindRelayServer,
    Pair,
    Unpair,
)
from hyperswarm.hyperdht import HyperDHT
from hyperswarm.hyperdht.errors import RelayAbortedError
from hyperswarm.secret_stream import SecretStream
from hyperswarm.udx import UDXSocket, UDXStream
from hyperswarm.udx.packet import stream_id_of
from protomux import Protomux
from protomux import encoding as c

LOCAL = "127.0.0.1"
MARKER = b"plaintext-marker-" * 4


def test_pair_and_unpair_bytes() -> None:
    token = bytes(range(32))
    assert c.encode(PAIR, Pair(True, token, 300, 0)) == b"\x01" + token + b"\xfd\x2c\x01\x00"
    assert c.encode(PAIR, Pair(False, token, 5, 0)) == b"\x00" + token + b"\x05\x00"
    assert c.encode(UNPAIR, Unpair(token)) == b"\x00" + token
    # wider flags are read as JS reads them
    assert c.decode(PAIR, b"\xfd\x01\x00" + token + b"\x05\x00") == Pair(True, token, 5, 0)
    assert c.decode(UNPAIR, b"\xfe\x00\x00\x00\x00" + token) == Unpair(token)


@given(st.binary(max_size=64))
def test_pair_and_unpair_decoders_raise_only_decode_errors(data: bytes) -> None:
    try:
        c.decode(PAIR, data)
    except c.DecodeError:
        pass
    try:
        c.decode(UNPAIR, data)
    except c.DecodeError:
        pass


# --- relayed connections ------------------------------------------------------------------


@pytest.fixture
async def net() -> AsyncIterator[testnet.Testnet]:
    async with testnet.Testnet(5) as n:
        yield n


def node(net: testnet.Testnet, **opts: Any) -> HyperDHT:
    return HyperDHT(bootstrap=net.bootstrap_strings(), host=LOCAL, port=0, **opts)


def firewalled(net: testnet.Testnet) -> HyperDHT:
    return node(net, firewalled=True, quick_firewall=False)


async def echo(stream: SecretStream) -> None:
    with trio.fail_after(30):
        async for message in stream:
            await stream.send(message)


def sniff(sock: UDXSocket) -> list[bytes]:
    """Every datagram ``sock`` sends from now on."""
    seen: list[bytes] = []
    send = sock._sendto

    def recording(datagrams: list[bytes], addr: tuple[str, int]) -> None:
        seen.extend(datagrams)
        send(datagrams, addr)

    sock._sendto = recording  # type: ignore[method-assign]
    return seen


@asynccontextmanager
async def running_relay(
    net: testnet.Testnet, **opts: Any
) -> AsyncIterator[tuple[HyperDHT, BlindRelayServer]]:
    """A reachable node serving a blind relay on its key pair."""
    async with (
        node(net, firewalled=False) as relay_node,
        BlindRelayServer(relay_node.create_raw_stream, **opts) as relay,
    ):
        server = relay_node.create_server(on_connection=relay.serve)
        await server.listen()
        yield relay_node, relay


def never(*_: object) -> bool:
    return False


@pytest.mark.parametrize("offered_by", ["client", "server"])
async def test_a_connection_goes_through_the_relay_when_punching_is_vetoed(
    net: testnet.Testnet, offered_by: str
) -> None:
    async with (
        running_relay(net) as (relay_node, relay),
        firewalled(net) as s_node,
        firewalled(net) as c_node,
    ):
        relay_key = relay_node.default_key_pair.public_key
        sent = sniff(relay_node.socket)
        # (a server that shares its LAN address stands by with a punch socket for a client
        # on the same host, and echoes the client's short-lived session: a direct path)
        server = s_node.create_server(
            on_connection=echo,
            holepunch=False,
            share_local_address=False,
            relay_through=relay_key if offered_by == "server" else None,
        )
        await server.listen()
        for i in range(3):
            with trio.fail_after(30):
                stream = await c_node.connect(
                    s_node.default_key_pair.public_key,
                    holepunch=never,
                    local_connection=False,
                    relay_through=relay_key if offered_by == "client" else None,
                )
            async with stream:
                data = MARKER + b"%d" % i
                await stream.send(data)
                with trio.fail_after(10):
                    assert await stream.receive() == data
        assert c_node.connection_paths["client:relayed"] == 3, c_node.connection_paths
        assert s_node.connection_paths["server:relayed"] == 3, s_node.connection_paths
        assert relay.stats.pairings_matched == 3
        assert any(stream_id_of(d) is not None for d in sent)
        assert not any(MARKER[:16] in d for d in sent)  # the relay saw only ciphertext
        # the relayed streams end with their connections; the relay lets them go
        with trio.fail_after(20):
            while relay.stats.streams_active:
                await trio.sleep(0.05)
        assert relay.stats.relayed_packets > 6 * 3  # (each way: header, data, end, acks)


async def test_without_a_relay_the_vetoed_connection_fails(net: testnet.Testnet) -> None:
    async with firewalled(net) as s_node, firewalled(net) as c_node:
        server = s_node.create_server(
            on_connection=echo, holepunch=False, share_local_address=False
        )
        await server.listen()
        unknown_relay = os.urandom(32)
        with trio.fail_after(40), pytest.raises(RelayAbortedError):
            await c_node.connect(
                s_node.default_key_pair.public_key,
                holepunch=never,
                local_connection=False,
                relay_through=unknown_relay,
            )


# --- what a peer can make a relay hold ------------------------------------------------------


async def test_pair_floods_are_bounded_and_unpaired_halves_expire(net: testnet.Testnet) -> None:
    async with (
        running_relay(net, max_pending_per_session=8, pair_timeout=1.0) as (relay_node, relay),
        firewalled(net) as peer,
    ):
        with trio.fail_after(20):
            conn = await peer.connect(relay_node.default_key_pair.public_key)
        async with conn, trio.open_nursery() as nursery:
            mux = Protomux.of(conn, nursery)
            client = BlindRelayClient(mux, id=conn.public_key)
            raw = peer.create_raw_stream()
            for _ in range(1000):
                client.channel.messages[0].send(Pair(True, os.urandom(32), raw.local_id, 0))
            with trio.fail_after(10):
                while relay.stats.pairings_requested + relay.stats.pairings_refused < 1000:
                    await trio.sleep(0.02)
            assert relay.pending == 8 and relay.stats.pairings_refused == 992
            with trio.fail_after(10):
                while relay.pending:
                    await trio.sleep(0.05)
            assert relay.stats.pairings_expired == 8
            assert relay.stats.streams_opened == 0  # no stream was ever made for a half
            # a stranger's unpair of another session's token does nothing
            token = os.urandom(32)
            client.channel.messages[0].send(Pair(True, token, raw.local_id, 0))
            with trio.fail_after(5):
                while not relay.pending:
                    await trio.sleep(0.02)
            client.channel.messages[1].send(Unpair(os.urandom(32)))
            await trio.sleep(0.2)
            assert relay.pending == 1
            client.unpair(token)
            with trio.fail_after(5):
                while relay.pending:
                    await trio.sleep(0.02)
            assert relay.stats.pairings_cancelled == 1
            raw.destroy()
            nursery.cancel_scope.cancel()


async def test_a_relayed_connection_moves_to_the_punched_path(
    net: testnet.Testnet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relay pairs first (the client's hole punching waits for it here); the punch then
    lands, both ends move their stream to the direct path, the data goes on, and the relay
    is let go."""
    from hyperswarm.hyperdht import connect as connect_module

    holepunch = connect_module._holepunch

    async def after_the_relay(c: Any, *args: Any) -> None:
        with trio.fail_after(10):
            await c.connected.wait()
        await holepunch(c, *args)

    monkeypatch.setattr(connect_module, "_holepunch", after_the_relay)
    async with (
        running_relay(net) as (relay_node, relay),
        firewalled(net) as s_node,
        firewalled(net) as c_node,
    ):
        relay_key = relay_node.default_key_pair.public_key
        server = s_node.create_server(on_connection=echo, share_local_address=False)
        await server.listen()
        with trio.fail_after(30):
            stream = await c_node.connect(
                s_node.default_key_pair.public_key,
                local_connection=False,
                relay_through=relay_key,
            )
        async with stream:
            raw = stream.transport_stream
            assert isinstance(raw, UDXStream)
            assert c_node.connection_paths["client:relayed"] == 1, (
                c_node.connection_paths,
                s_node.connection_paths,
            )
            for i in range(200):
                data = MARKER + b"%d" % i
                await stream.send(data)
                with trio.fail_after(10):
                    assert await stream.receive() == data
                if i > 20 and relay.stats.streams_active == 0:
                    break
                await trio.sleep(0.02)
            assert c_node.connection_paths["client:upgraded"] == 1, c_node.connection_paths
            assert s_node.connection_paths["server:upgraded"] == 1, s_node.connection_paths
            assert relay.stats.streams_active == 0  # both ends let the relay go
            assert raw.remote_address != (LOCAL, relay_node.port)
            data = b"after the move"
            await stream.send(data)
            with trio.fail_after(10):
                assert await stream.receive() == data


async def test_a_garbled_pair_message_closes_only_that_peers_channel(net: testnet.Testnet) -> None:
    async with (
        running_relay(net) as (relay_node, relay),
        firewalled(net) as bad,
        firewalled(net) as one,
        firewalled(net) as other,
    ):
        key = relay_node.default_key_pair.public_key
        with trio.fail_after(30):
            conns = [await peer.connect(key) for peer in (bad, one, other)]
        async with conns[0], conns[1], conns[2], trio.open_nursery() as nursery:
            bad_client, one_client, other_client = (
                BlindRelayClient(Protomux.of(conn, nursery), id=conn.public_key) for conn in conns
            )
            for garbage in (b"", b"\x01", b"\xff" * 3, b"\x00" + b"\x01" * 31):
                bad_client.channel.messages[0].send_encoded(garbage)
            with trio.fail_after(10):
                await bad_client.ended.wait()  # the relay closed that channel
            assert relay.stats.pairings_requested == 0
            # the relay goes on for everyone else
            token = os.urandom(32)
            a, b = one.create_raw_stream(), other.create_raw_stream()
            with trio.fail_after(10):
                async with trio.open_nursery() as pairs:
                    pairs.start_soon(one_client.pair, True, token, a)
                    pairs.start_soon(other_client.pair, False, token, b)
            assert relay.stats.pairings_matched == 1
            a.destroy()
            b.destroy()
            nursery.cancel_scope.cancel()


async def test_stream_ids_over_32_bits_and_relinking_a_relayed_token_are_refused(
    net: testnet.Testnet,
) -> None:
    """A peer asking to relay to a stream id no UDX stream can have, or pairing a token whose
    streams are still relayed (to get more links than the cap), is refused; the relay holds
    at most its cap of streams and stays up."""
    async with (
        running_relay(net, max_links_per_session=4) as (relay_node, relay),
        firewalled(net) as peer,
    ):
        with trio.fail_after(20):
            conn = await peer.connect(relay_node.default_key_pair.public_key)
        async with conn, trio.open_nursery() as nursery:
            client = BlindRelayClient(Protomux.of(conn, nursery), id=conn.public_key)
            send = client.channel.messages[0].send
            send(Pair(True, os.urandom(32), 2**40, 0))
            token = os.urandom(32)
            for _ in range(200):  # both halves of one token, again and again
                send(Pair(True, token, 1, 0))
                send(Pair(False, token, 2, 0))
            for _ in range(10):  # and fresh tokens, past the cap
                other = os.urandom(32)
                send(Pair(True, other, 1, 0))
                send(Pair(False, other, 2, 0))
            with trio.fail_after(10):
                while relay.stats.pairings_requested + relay.stats.pairings_refused < 421:
                    await trio.sleep(0.02)
            assert relay.stats.streams_opened <= 4, relay.stats
            assert relay.stats.pairings_refused >= 1 + 199 * 2, relay.stats
            nursery.cancel_scope.cancel()
        with trio.fail_after(10):
            while relay.stats.streams_active:
                await trio.sleep(0.02)  # the session ended: its links with it
        assert not relay_node.closed
