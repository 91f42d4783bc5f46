"""HyperDHT connections between Python and JS (hyperdht 6.34.0) on 127.0.0.1, over a JS
testnet of 5 nodes and over a Python one: Python client -> JS server, JS client -> Python
server, Python -> Python, 20 connections each. Each connection is checked by data echoed back
(not by an open event) and by both ends reporting the same handshake hash and each other's
public key. A JS server's firewall refusing a Python client makes it fail with
PEER_CONNECTION_FAILED, and the other way round."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from hyperswarm import testnet
from hyperswarm.hyperdht import HyperDHT
from hyperswarm.hyperdht.errors import PeerConnectionFailedError
from hyperswarm.secret_stream import SecretStream

from .jsenv import JSHelper

LOCAL = "127.0.0.1"
RUNS = 20
SERVER_SEED = b"\x07" * 32
CLIENT_SEED = b"\x08" * 32


async def call(js: JSHelper, name: str, *args: Any) -> Any:
    with trio.fail_after(60):
        return await trio.to_thread.run_sync(js, name, *args)


@pytest.fixture(params=["python", "js"])
async def bootstrap(js: JSHelper, request: pytest.FixtureRequest) -> AsyncIterator[list[str]]:
    """A testnet of 5 Python nodes, then of 5 JS nodes."""
    if request.param == "python":
        async with testnet.Testnet(5) as net:
            yield net.bootstrap_strings()
        return
    info = await call(js, "dhtnet.testnet", 5)
    try:
        yield [f"{b['host']}:{b['port']}" for b in info["bootstrap"]]
    finally:
        await call(js, "dhtnet.testnetDestroy", info["handle"])


def py_node(bootstrap: list[str], seed: bytes | None = None, **opts: Any) -> HyperDHT:
    return HyperDHT(bootstrap=bootstrap, host=LOCAL, port=0, seed=seed, **opts)


#: JS nodes on 127.0.0.1 stay firewalled; whether a Python node finds itself reachable there
#: depends on timing, so the tests say which they want: a reachable Python peer is connected
#: to (or connects) at once, a firewalled one takes the same-host (LAN) path.
PY_OPTS: dict[str, dict[str, Any]] = {
    "reachable": {"firewalled": False},
    "firewalled": {"quick_firewall": False},
}


def _testnet(request: pytest.FixtureRequest) -> str:
    """Which testnet the test runs on. On a Python testnet a JS node finds itself reachable
    (on a JS one it stays firewalled), so the path a connection takes depends on it."""
    return str(request.node.callspec.params["bootstrap"])


class Echo:
    """A Python server's handler: echoes, and records what each connection reports."""

    def __init__(self) -> None:
        self.seen: list[tuple[bytes, bytes]] = []

    async def __call__(self, stream: SecretStream) -> None:
        self.seen.append((stream.remote_public_key, stream.handshake_hash))
        with trio.fail_after(30):
            async for message in stream:
                await stream.send(message)


async def echo_once(stream: SecretStream, data: bytes) -> None:
    with trio.fail_after(30):
        async with stream:
            await stream.send(data)
            assert await stream.receive() == data


@pytest.mark.parametrize("kind", PY_OPTS)
async def test_python_clients_connect_to_a_js_server(
    js: JSHelper, bootstrap: list[str], kind: str, request: pytest.FixtureRequest
) -> None:
    server_node = await call(js, "dhtnet.node", bootstrap, {})
    try:
        listening = await call(js, "dhtnet.listen", server_node, SERVER_SEED, {})
        public_key = listening["publicKey"]
        async with py_node(bootstrap, CLIENT_SEED, **PY_OPTS[kind]) as node:
            await node.fully_bootstrapped()
            with trio.fail_after(10):  # the NAT sampler may need a few replies more
                while (node.remote_address() is None) != (kind == "firewalled"):
                    await trio.sleep(0.02)
            for i in range(RUNS):
                with trio.fail_after(30):
                    stream = await node.connect(public_key)
                assert stream.is_initiator
                assert stream.remote_public_key == public_key
                hash_ = stream.handshake_hash
                await echo_once(stream, b"python to js %d" % i)
                seen = await call(js, "dhtnet.serverSeen", listening["handle"])
                assert len(seen) == i + 1
                assert seen[-1]["handshakeHash"] == hash_
                assert seen[-1]["remotePublicKey"] == node.default_key_pair.public_key
            paths = node.connection_paths
            assert sum(paths.values()) == RUNS, paths
            if _testnet(request) == "js":  # JS nodes (the server too) are firewalled there
                if kind == "firewalled":
                    assert paths["client:lan"] == RUNS, paths
                else:  # the JS server connects to us
                    assert paths["client:early"] + paths["client:client-open"] == RUNS, paths
        await call(js, "dhtnet.closeServer", listening["handle"])
    finally:
        await call(js, "dhtnet.destroy", server_node)


@pytest.mark.parametrize("kind", PY_OPTS)
async def test_js_clients_connect_to_a_python_server(
    js: JSHelper, bootstrap: list[str], kind: str, request: pytest.FixtureRequest
) -> None:
    echo = Echo()
    client = await call(js, "dhtnet.node", bootstrap, {})
    try:
        async with py_node(bootstrap, SERVER_SEED, **PY_OPTS[kind]) as node:
            await node.fully_bootstrapped()
            with trio.fail_after(10):  # the NAT sampler may need a few replies more
                while (node.remote_address() is None) != (kind == "firewalled"):
                    await trio.sleep(0.02)
            server = node.create_server(on_connection=echo)
            await server.listen()
            public_key = node.default_key_pair.public_key
            for i in range(RUNS):
                data = b"js to python %d" % i
                got = await call(js, "dhtnet.connectEcho", client, public_key, data)
                assert got["echoed"] == data
                assert got["remotePublicKey"] == public_key
                with trio.fail_after(10):
                    while len(echo.seen) < i + 1:
                        await trio.sleep(0.01)
                remote_key, hash_ = echo.seen[-1]
                assert hash_ == got["handshakeHash"]
                info = await call(js, "dhtnet.info", client)
                assert remote_key == info["publicKey"]
            assert server.connections == RUNS
            paths = node.connection_paths
            assert sum(paths.values()) == RUNS, paths
            if _testnet(request) == "js" and kind == "firewalled":
                # the JS client (firewalled there) came to our LAN address
                assert paths["server:first-packet"] == RUNS, paths
            await server.close()
    finally:
        await call(js, "dhtnet.destroy", client)


async def test_python_clients_connect_to_a_python_server(bootstrap: list[str]) -> None:
    echo = Echo()
    async with (
        py_node(bootstrap, SERVER_SEED) as server_node,
        py_node(bootstrap, CLIENT_SEED) as client,
    ):
        await server_node.fully_bootstrapped()
        await client.fully_bootstrapped()
        server = server_node.create_server(on_connection=echo)
        await server.listen()
        for i in range(RUNS):
            with trio.fail_after(30):
                stream = await client.connect(server_node.default_key_pair.public_key)
            hash_ = stream.handshake_hash
            await echo_once(stream, b"python to python %d" % i)
            assert echo.seen[-1] == (client.default_key_pair.public_key, hash_)
        assert server.connections == RUNS
        await server.close()


async def test_a_js_firewall_refuses_a_python_client(js: JSHelper, bootstrap: list[str]) -> None:
    server_node = await call(js, "dhtnet.node", bootstrap, {})
    try:
        listening = await call(js, "dhtnet.listen", server_node, SERVER_SEED, {"refuse": True})
        async with py_node(bootstrap, CLIENT_SEED) as node:
            await node.fully_bootstrapped()
            with trio.fail_after(60), pytest.raises(PeerConnectionFailedError):
                await node.connect(listening["publicKey"])
        assert await call(js, "dhtnet.serverSeen", listening["handle"]) == []
        await call(js, "dhtnet.closeServer", listening["handle"])
    finally:
        await call(js, "dhtnet.destroy", server_node)


async def test_a_python_firewall_refuses_a_js_client(js: JSHelper, bootstrap: list[str]) -> None:
    echo = Echo()
    asked: list[bytes] = []

    def refuse(remote_public_key: bytes, payload: Any, address: Any) -> bool:
        asked.append(remote_public_key)
        return True

    client = await call(js, "dhtnet.node", bootstrap, {})
    try:
        async with py_node(bootstrap, SERVER_SEED) as node:
            await node.fully_bootstrapped()
            server = node.create_server(on_connection=echo, firewall=refuse)
            await server.listen()
            code = await call(
                js, "dhtnet.connectError", client, node.default_key_pair.public_key, 50000
            )
            assert code == "PEER_CONNECTION_FAILED"
            info = await call(js, "dhtnet.info", client)
            assert set(asked) == {info["publicKey"]}
            assert echo.seen == [] and server.connections == 0
    finally:
        await call(js, "dhtnet.destroy", client)


async def test_punching_both_ways_with_js_on_loopback(js: JSHelper) -> None:
    """With the LAN shortcut off, a Python client and a JS server (and the other way round)
    punch: on 127.0.0.1 every node sees a socket at one address, so both samplers say
    CONSISTENT and the probe and punch rounds run through the JS testnet's relays."""
    info = await call(js, "dhtnet.testnet", 5)
    bootstrap = [f"{b['host']}:{b['port']}" for b in info["bootstrap"]]
    js_node = await call(js, "dhtnet.node", bootstrap, {})
    echo = Echo()
    try:
        listening = await call(js, "dhtnet.listen", js_node, SERVER_SEED, {})
        async with py_node(bootstrap, CLIENT_SEED, firewalled=True, quick_firewall=False) as node:
            await node.fully_bootstrapped()
            for i in range(5):
                with trio.fail_after(30):
                    stream = await node.connect(listening["publicKey"], local_connection=False)
                await echo_once(stream, b"punched python to js %d" % i)
            assert node.connection_paths["client:punched"] == 5, node.connection_paths
            server = node.create_server(on_connection=echo)
            await server.listen()
            for i in range(5):
                data = b"punched js to python %d" % i
                got = await call(
                    js,
                    "dhtnet.connectEcho",
                    js_node,
                    node.default_key_pair.public_key,
                    data,
                    {"localConnection": False},
                )
                assert got["echoed"] == data
                assert got["handshakeHash"] == echo.seen[-1][1]
            assert node.connection_paths["server:punched"] == 5, node.connection_paths
            await server.close()
        await call(js, "dhtnet.closeServer", listening["handle"])
    finally:
        await call(js, "dhtnet.destroy", js_node)
        await call(js, "dhtnet.testnetDestroy", info["handle"])
