"""Connections through a blind relay between Python and JS (hyperdht 6.34.0, blind-relay
1.6.1) on 127.0.0.1, over a JS testnet: Python client -> JS server and JS client -> Python
server, through a JS relay and through a Python relay, with punching vetoed on both ends, the
LAN shortcut off and servers sharing no local address, so the relay is the only path (on
127.0.0.1 a server that shares its LAN address stands by with a punch socket for the
same-host case, and would echo the client's short-lived session towards it: a direct path).
Each pair connects twice: once with the relay offered by the server, once by the client.
Data is echoed back; the Python end says it took the relayed path; the relay counts the
pairings; and a packet capture of the loopback interface shows the relay's packets and never
the plaintext (the relay sees ciphertext)."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
import trio

from hyperswarm.blind_relay import BlindRelayServer
from hyperswarm.hyperdht import HyperDHT
from hyperswarm.secret_stream import SecretStream

from .jsenv import JSHelper

LOCAL = "127.0.0.1"
MARKER = b"relay-must-not-read-this:"
ETH_P_ALL = 0x0003


async def call(js: JSHelper, name: str, *args: Any) -> Any:
    with trio.fail_after(90):
        return await trio.to_thread.run_sync(js, name, *args)


class Capture:
    """UDP datagrams on the loopback interface: (source port, destination port, payload)."""

    def __init__(self) -> None:
        self.datagrams: list[tuple[int, int, bytes]] = []

    async def run(self, task_status: trio.TaskStatus[None]) -> None:
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        raw.bind(("lo", 0))
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        sock = trio.socket.from_stdlib_socket(raw)
        with sock:
            task_status.started()
            while True:
                frame = await sock.recv(65536)
                self._take(frame)

    def _take(self, frame: bytes) -> None:
        ip = frame[14:]  # (loopback frames carry an all-zero ethernet header)
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            return
        ihl = (ip[0] & 0x0F) * 4
        udp = ip[ihl:]
        if len(udp) < 8:
            return
        sport, dport = int.from_bytes(udp[0:2], "big"), int.from_bytes(udp[2:4], "big")
        self.datagrams.append((sport, dport, bytes(udp[8:])))

    def of_port(self, port: int) -> list[bytes]:
        return [d for s, t, d in self.datagrams if port in (s, t)]


@asynccontextmanager
async def capture() -> AsyncIterator[Capture]:
    cap = Capture()
    async with trio.open_nursery() as nursery:
        await nursery.start(cap.run)
        yield cap
        await trio.sleep(0.3)  # the last packets
        nursery.cancel_scope.cancel()


class Echo:
    def __init__(self) -> None:
        self.seen: list[bytes] = []

    async def __call__(self, stream: SecretStream) -> None:
        self.seen.append(stream.handshake_hash)
        with trio.fail_after(30):
            async for message in stream:
                await stream.send(message)


def never(*_: object) -> bool:
    return False


@asynccontextmanager
async def python_relay(bootstrap: list[str]) -> AsyncIterator[tuple[bytes, int, Any]]:
    async with (
        HyperDHT(bootstrap=bootstrap, host=LOCAL, port=0, firewalled=False) as relay_node,
        BlindRelayServer(relay_node.create_raw_stream) as relay,
    ):
        server = relay_node.create_server(on_connection=relay.serve)
        await server.listen()
        yield relay_node.default_key_pair.public_key, relay_node.port, relay
        await server.close()


@pytest.mark.parametrize("relay_impl", ["python", "js"])
async def test_python_and_js_connect_through_a_blind_relay(js: JSHelper, relay_impl: str) -> None:
    info = await call(js, "dhtnet.testnet", 5)
    bootstrap = [f"{b['host']}:{b['port']}" for b in info["bootstrap"]]
    js_node = await call(js, "dhtnet.node", bootstrap, {})
    handles: list[int] = []
    try:
        async with capture() as cap, AsyncExitStack() as stack:
            if relay_impl == "js":
                relay_js_node = await call(js, "dhtnet.node", bootstrap, {"firewalled": False})
                handles.append(relay_js_node)
                relay = await call(js, "dhtnet.relay", relay_js_node, b"\x31" * 32)
                relay_key = relay["publicKey"]
                relay_port = (await call(js, "dhtnet.info", relay_js_node))["port"]
            else:
                relay_key, relay_port, py_relay = await stack.enter_async_context(
                    python_relay(bootstrap)
                )
            await _relayed_both_ways(js, js_node, bootstrap, relay_key)
            if relay_impl == "js":
                stats = await call(js, "dhtnet.relayStats", relay["handle"])
                matched = stats["pairings"]["matched"]
            else:
                matched = py_relay.stats.pairings_matched
            assert matched == 4
        through_relay = cap.of_port(relay_port)
        assert len(through_relay) > 40, len(through_relay)
        assert not any(MARKER in d for _, _, d in cap.datagrams)
    finally:
        for h in handles:
            await call(js, "dhtnet.destroy", h)
        await call(js, "dhtnet.destroy", js_node)
        await call(js, "dhtnet.testnetDestroy", info["handle"])


async def _relayed_both_ways(
    js: JSHelper, js_node: int, bootstrap: list[str], relay_key: bytes
) -> None:
    async with HyperDHT(
        bootstrap=bootstrap, host=LOCAL, port=0, firewalled=True, quick_firewall=False
    ) as node:
        await node.fully_bootstrapped()
        # Python client -> JS server: the server offers the relay, then the client does
        for seed, server_offers in ((b"\x41" * 32, True), (b"\x42" * 32, False)):
            opts: dict[str, Any] = {"holepunch": False, "shareLocalAddress": False}
            if server_offers:
                opts["relayThrough"] = relay_key
            listening = await call(js, "dhtnet.listen", js_node, seed, opts)
            with trio.fail_after(40):
                stream = await node.connect(
                    listening["publicKey"],
                    holepunch=never,
                    local_connection=False,
                    relay_through=None if server_offers else relay_key,
                )
                async with stream:
                    data = MARKER + os.urandom(8).hex().encode()
                    await stream.send(data)
                    assert await stream.receive() == data
            await call(js, "dhtnet.closeServer", listening["handle"])
        assert node.connection_paths["client:relayed"] == 2, node.connection_paths
        # JS client -> Python server
        echo = Echo()
        for server_offers in (True, False):
            server = node.create_server(
                on_connection=echo,
                holepunch=False,
                share_local_address=False,
                relay_through=relay_key if server_offers else None,
            )
            await server.listen()
            opts = {"holepunch": False, "localConnection": False}
            if not server_offers:
                opts["relayThrough"] = relay_key
            data = MARKER + os.urandom(8).hex().encode()
            got = await call(
                js, "dhtnet.connectEcho", js_node, node.default_key_pair.public_key, data, opts
            )
            assert got["echoed"] == data
            assert got["handshakeHash"] == echo.seen[-1]
            await server.close()
        assert node.connection_paths["server:relayed"] == 2, node.connection_paths


async def test_relayed_connections_with_js_move_to_the_punched_path(
    js: JSHelper, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relay pairs first (the Python end holds its punching back until then), then the
    punch lands: both ends move to the direct path, data goes on, and the relay is let go.
    Python client -> JS server, then JS client -> Python server."""
    from hyperswarm.hyperdht import connect as connect_module
    from hyperswarm.hyperdht.server import Server

    holepunch = connect_module._holepunch

    async def client_after_the_relay(c: Any, *args: Any) -> None:
        with trio.fail_after(10):
            await c.connected.wait()
        await holepunch(c, *args)

    holepunch_round = Server._holepunch_round

    async def server_after_the_relay(self: Server, hs: Any, *args: Any) -> Any:
        with trio.fail_after(10):
            while hs.relayed is None:
                await trio.sleep(0.005)
        return await holepunch_round(self, hs, *args)

    monkeypatch.setattr(connect_module, "_holepunch", client_after_the_relay)
    monkeypatch.setattr(Server, "_holepunch_round", server_after_the_relay)
    info = await call(js, "dhtnet.testnet", 5)
    bootstrap = [f"{b['host']}:{b['port']}" for b in info["bootstrap"]]
    js_node = await call(js, "dhtnet.node", bootstrap, {})
    try:
        async with (
            python_relay(bootstrap) as (relay_key, _, relay),
            HyperDHT(
                bootstrap=bootstrap, host=LOCAL, port=0, firewalled=True, quick_firewall=False
            ) as node,
        ):
            await node.fully_bootstrapped()
            listening = await call(
                js, "dhtnet.listen", js_node, b"\x51" * 32, {"shareLocalAddress": False}
            )
            with trio.fail_after(30):
                stream = await node.connect(
                    listening["publicKey"], local_connection=False, relay_through=relay_key
                )
            async with stream:
                for i in range(300):
                    data = MARKER + b"%d" % i
                    await stream.send(data)
                    with trio.fail_after(10):
                        assert await stream.receive() == data
                    if relay.stats.streams_active == 0 and i > 10:
                        break
                    await trio.sleep(0.02)
                assert node.connection_paths["client:relayed"] == 1, node.connection_paths
                assert node.connection_paths["client:upgraded"] == 1, node.connection_paths
                assert relay.stats.streams_active == 0
            await call(js, "dhtnet.closeServer", listening["handle"])
            echo = Echo()
            server = node.create_server(on_connection=echo, share_local_address=False)
            await server.listen()
            data = MARKER + b"from js"
            got = await call(
                js,
                "dhtnet.connectEcho",
                js_node,
                node.default_key_pair.public_key,
                data,
                {
                    "localConnection": False,
                    "fastOpen": False,
                    "relayThrough": relay_key,
                    "holdMs": 3000,
                },
            )
            assert got["echoed"] == data
            assert got["holdEchoed"] >= 20 * len(data), got  # (the 30 or so sent while held)
            assert node.connection_paths["server:relayed"] == 1, node.connection_paths
            assert node.connection_paths["server:upgraded"] == 1, node.connection_paths
            await server.close()
    finally:
        await call(js, "dhtnet.destroy", js_node)
        await call(js, "dhtnet.testnetDestroy", info["handle"])
