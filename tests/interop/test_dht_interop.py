"""The Python DHT against the pinned JS hyperdht 6.34.0 / dht-rpc 6.27.0, all on 127.0.0.1.

A persistent Python node is a full member of a JS network (JS nodes route through it with the
right id) and JS nodes join a network made only of Python nodes. Announce, lookup and
unannounce, mutable and immutable values go both ways, with either side storing them; the
error replies JS peers rely on (2 with a fresh token, 1 with closer nodes, 16 and 17) come
from Python nodes as JS sends them; and two JS peers connect to each other through Python
nodes that relay their handshake.

Calls into the JS helper that wait on Python nodes go through a worker thread, so the Trio
loop keeps serving the Python nodes meanwhile.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from hyperswarm import testnet
from hyperswarm.dht_rpc import INVALID_TOKEN, UNKNOWN_COMMAND, node_id
from hyperswarm.hyperdht import COMMANDS, HyperDHT
from hyperswarm.hyperdht import messages as m
from hyperswarm.hyperdht.constants import ERROR_SEQ_REUSED, ERROR_SEQ_TOO_LOW
from hyperswarm.hyperdht.persistent import sign_mutable
from protomux.encoding import Address

from .jsenv import JSHelper

LOCAL = "127.0.0.1"


async def call(js: JSHelper, name: str, *args: Any) -> Any:
    with trio.fail_after(60):
        return await trio.to_thread.run_sync(js, name, *args)


def _bootstrap(entries: list[Any]) -> list[str]:
    return [
        f"{e['host']}:{e['port']}" if isinstance(e, dict) else f"{e[0]}:{e[1]}" for e in entries
    ]


class JSNet:
    """A JS testnet and its handle."""

    def __init__(self, js: JSHelper, info: dict[str, Any]) -> None:
        self.js = js
        self.handle = info["handle"]
        self.bootstrap = _bootstrap(info["bootstrap"])
        self.nodes = info["nodes"]


@pytest.fixture
async def js_testnet(js: JSHelper) -> AsyncIterator[JSNet]:
    net = JSNet(js, await call(js, "dhtnet.testnet", 6))
    try:
        yield net
    finally:
        await call(js, "dhtnet.testnetDestroy", net.handle)


@pytest.fixture
async def py_testnet() -> AsyncIterator[testnet.Testnet]:
    async with testnet.Testnet(6) as net:
        yield net


@pytest.fixture(params=["python", "js"])
async def any_testnet(js: JSHelper, request: pytest.FixtureRequest) -> AsyncIterator[list[str]]:
    """The bootstrap list of a testnet of Python nodes, then of JS nodes (who stores)."""
    if request.param == "python":
        async with testnet.Testnet(6) as net:
            yield net.bootstrap_strings()
    else:
        info = JSNet(js, await call(js, "dhtnet.testnet", 6))
        try:
            yield info.bootstrap
        finally:
            await call(js, "dhtnet.testnetDestroy", info.handle)


async def js_node(js: JSHelper, bootstrap: list[str], **opts: Any) -> int:
    handle: int = await call(js, "dhtnet.node", bootstrap, opts)
    return handle


def py_node(bootstrap: list[str], **opts: Any) -> HyperDHT:
    return HyperDHT(bootstrap=bootstrap, host=LOCAL, port=0, **opts)


async def test_a_persistent_python_node_is_routed_through_by_js(
    js: JSHelper, js_testnet: JSNet
) -> None:
    async with py_node(js_testnet.bootstrap, ephemeral=False) as node:
        await node.fully_bootstrapped()
        assert not node.firewalled and not node.ephemeral
        port = node.server_socket.address()[1]
        assert node.id == node_id(LOCAL, port)
        h = await js_node(js, js_testnet.bootstrap)
        try:
            await call(js, "dhtnet.refresh", h, 200)
            info = await call(js, "dhtnet.info", h)
            assert {"host": LOCAL, "port": port} in info["nodes"]
            entry = await call(js, "dhtnet.tableEntry", h, LOCAL, port)
            assert entry is not None and entry["id"] == node.id
        finally:
            await call(js, "dhtnet.destroy", h)


async def test_js_bootstraps_off_a_python_testnet(
    js: JSHelper, py_testnet: testnet.Testnet
) -> None:
    boot = py_testnet.bootstrap_strings()
    h = await js_node(js, boot, ephemeral=False)
    try:
        info = await call(js, "dhtnet.info", h)
        # PING_NAT answered by Python nodes: JS found itself reachable and persistent
        assert info["firewalled"] is False and info["ephemeral"] is False
        assert info["host"] == LOCAL
        ours = {(a.host, a.port) for a in py_testnet.addresses()}
        assert ours <= {(n["host"], n["port"]) for n in info["nodes"]}
        assert info["id"] == node_id(LOCAL, info["address"]["port"])
        # and Python nodes keep JS in their tables, under its id
        for node in py_testnet.nodes:
            node.refresh()
        with trio.fail_after(10):
            while not any(n.core.table.get(info["id"]) is not None for n in py_testnet.nodes):
                await trio.sleep(0.05)
    finally:
        await call(js, "dhtnet.destroy", h)


async def test_announce_lookup_unannounce_both_ways(js: JSHelper, any_testnet: list[str]) -> None:
    boot = any_testnet
    topic = HyperDHT.hash(b"interop topic " + boot[0].encode())
    h = await js_node(js, boot)
    try:
        async with py_node(boot) as node:
            await node.fully_bootstrapped()
            # JS announces, Python finds it
            js_key = await call(js, "dhtnet.announce", h, topic, bytes(32), [])
            found = [p async for r in node.lookup(topic) for p in r.peers]
            assert js_key in {p.public_key for p in found}
            # Python announces with relay addresses, JS finds them
            kp = HyperDHT.key_pair(b"\x01" * 32)
            relays = (Address(LOCAL, 40001), Address(LOCAL, 40002))
            await node.announce(topic, kp, relay_addresses=relays).finished()
            seen = await call(js, "dhtnet.lookup", h, topic)
            peers = {p["publicKey"]: p for r in seen for p in r["peers"]}
            assert kp.public_key in peers and js_key in peers
            assert peers[kp.public_key]["relayAddresses"] == [
                {"host": a.host, "port": a.port} for a in relays
            ]
            # find_peer both ways: a peer announced under the hash of its own key
            await node.announce(HyperDHT.hash(kp.public_key), kp).finished()
            found_py = await call(js, "dhtnet.findPeer", h, kp.public_key)
            assert found_py and found_py[0]["publicKey"] == kp.public_key
            seed = b"\x07" * 32
            js_self = HyperDHT.key_pair(seed).public_key
            await call(js, "dhtnet.announce", h, HyperDHT.hash(js_self), seed, [])
            hits = [r async for r in node.find_peer(js_self)]
            assert hits and all(r.peer.public_key == js_self for r in hits)
            # both unannounce: nobody finds either any more
            await node.unannounce(topic, kp)
            await call(js, "dhtnet.unannounce", h, topic, bytes(32))
            left = {p.public_key async for r in node.lookup(topic) for p in r.peers}
            assert not left & {kp.public_key, js_key}
            seen = await call(js, "dhtnet.lookup", h, topic)
            assert not {p["publicKey"] for r in seen for p in r["peers"]} & {kp.public_key, js_key}
    finally:
        await call(js, "dhtnet.destroy", h)


async def test_mutable_and_immutable_values_both_ways(js: JSHelper, any_testnet: list[str]) -> None:
    boot = any_testnet
    h = await js_node(js, boot)
    try:
        async with py_node(boot) as node:
            await node.fully_bootstrapped()
            # immutable: Python puts, JS gets; JS puts, Python gets
            put = await node.immutable_put(b"from python " + boot[0].encode())
            got = await call(js, "dhtnet.immutableGet", h, put.hash)
            assert got["value"] == b"from python " + boot[0].encode()
            js_put = await call(js, "dhtnet.immutablePut", h, b"from js")
            assert js_put["hash"] == HyperDHT.hash(b"from js")
            mine = await node.immutable_get(js_put["hash"])
            assert mine is not None and mine.value == b"from js"
            # mutable: Python puts seq 1, JS reads it; JS puts seq 2, Python reads it
            kp = HyperDHT.key_pair(b"\x02" * 32)
            await node.mutable_put(kp, b"one", seq=1)
            got = await call(js, "dhtnet.mutableGet", h, kp.public_key, 0, True)
            assert (got["seq"], got["value"]) == (1, b"one")
            assert got["signature"] == sign_mutable(1, b"one", kp)
            await call(js, "dhtnet.mutablePut", h, b"\x02" * 32, b"two", 2)
            latest = await node.mutable_get(kp.public_key)
            assert latest is not None and (latest.seq, latest.value) == (2, b"two")
    finally:
        await call(js, "dhtnet.destroy", h)


def _put_value(kp: Any, seq: int, value: bytes) -> bytes:
    sig = sign_mutable(seq, value, kp)
    return m.MUTABLE_PUT_REQUEST.encode(m.MutablePutRequest(kp.public_key, seq, value, sig))


async def test_seq_errors_16_and_17_from_python_nodes(
    js: JSHelper, py_testnet: testnet.Testnet
) -> None:
    boot = py_testnet.bootstrap_strings()
    target_node = py_testnet.addresses()[2]
    to = {"host": target_node.host, "port": target_node.port}
    kp = HyperDHT.key_pair(b"\x03" * 32)
    target = HyperDHT.hash(kp.public_key)
    h = await js_node(js, boot)
    try:
        first = await call(
            js,
            "dhtnet.request",
            h,
            {"command": COMMANDS.MUTABLE_GET, "target": target, "value": m.encode_uint(0)},
            to,
        )
        token = first["token"]
        assert token is not None and len(token) == 32

        async def put(seq: int, value: bytes) -> int:
            reply = await call(
                js,
                "dhtnet.request",
                h,
                {
                    "command": COMMANDS.MUTABLE_PUT,
                    "target": target,
                    "token": token,
                    "value": _put_value(kp, seq, value),
                },
                to,
            )
            error: int = reply["error"]
            return error

        assert await put(5, b"five") == 0
        assert await put(5, b"other") == ERROR_SEQ_REUSED == 16
        assert await put(4, b"four") == ERROR_SEQ_TOO_LOW == 17
        # the same value again is not an error (JS: same seq, same value)
        assert await put(5, b"five") == 0
    finally:
        await call(js, "dhtnet.destroy", h)


async def test_seq_errors_16_and_17_from_js_nodes(js: JSHelper, js_testnet: JSNet) -> None:
    kp = HyperDHT.key_pair(b"\x04" * 32)
    target = HyperDHT.hash(kp.public_key)
    to = Address(js_testnet.nodes[2]["host"], js_testnet.nodes[2]["port"])
    async with py_node(js_testnet.bootstrap) as node:
        await node.fully_bootstrapped()
        first = await node.request(
            command=COMMANDS.MUTABLE_GET, to=to, target=target, value=m.encode_uint(0)
        )
        assert first.token is not None

        async def put(seq: int, value: bytes) -> int:
            reply = await node.request(
                command=COMMANDS.MUTABLE_PUT,
                to=to,
                target=target,
                token=first.token,
                value=_put_value(kp, seq, value),
            )
            return reply.error

        assert await put(5, b"five") == 0
        assert await put(5, b"other") == ERROR_SEQ_REUSED
        assert await put(4, b"four") == ERROR_SEQ_TOO_LOW


async def test_a_stale_token_gets_error_2_and_a_fresh_token(
    js: JSHelper, py_testnet: testnet.Testnet
) -> None:
    boot = py_testnet.bootstrap_strings()
    addr = py_testnet.addresses()[1]
    to = {"host": addr.host, "port": addr.port}
    kp = HyperDHT.key_pair(b"\x05" * 32)
    target = HyperDHT.hash(kp.public_key)
    h = await js_node(js, boot)
    try:
        stale = await call(
            js,
            "dhtnet.request",
            h,
            {
                "command": COMMANDS.MUTABLE_PUT,
                "target": target,
                "token": os.urandom(32),
                "value": _put_value(kp, 1, b"x"),
            },
            to,
        )
        assert stale["error"] == INVALID_TOKEN == 2
        assert stale["token"] is not None and len(stale["token"]) == 32
        fresh = await call(
            js,
            "dhtnet.request",
            h,
            {
                "command": COMMANDS.MUTABLE_PUT,
                "target": target,
                "token": stale["token"],
                "value": _put_value(kp, 1, b"x"),
            },
            to,
        )
        assert fresh["error"] == 0
    finally:
        await call(js, "dhtnet.destroy", h)


async def test_lookup_at_an_ephemeral_python_node_gets_error_1_with_closer_nodes(
    js: JSHelper, py_testnet: testnet.Testnet
) -> None:
    boot = py_testnet.bootstrap_strings()
    async with py_node(boot, ephemeral=True) as node:
        await node.fully_bootstrapped()
        assert node.ephemeral
        port = node.server_socket.address()[1]
        h = await js_node(js, boot)
        try:
            reply = await call(
                js,
                "dhtnet.request",
                h,
                {"command": COMMANDS.LOOKUP, "target": HyperDHT.hash(b"some topic")},
                {"host": LOCAL, "port": port},
            )
            assert reply["error"] == UNKNOWN_COMMAND == 1
            assert reply["from"]["id"] is None  # an ephemeral node sends no id
            ours = {(a.host, a.port) for a in py_testnet.addresses()}
            closer = {(a["host"], a["port"]) for a in reply["closerNodes"]}
            assert closer and closer <= ours
        finally:
            await call(js, "dhtnet.destroy", h)


async def test_two_js_peers_connect_through_python_relays(
    js: JSHelper, py_testnet: testnet.Testnet
) -> None:
    boot = py_testnet.bootstrap_strings()
    server = await js_node(js, boot)
    client = await js_node(js, boot)
    try:
        listening = await call(js, "dhtnet.listen", server, b"\x06" * 32)
        relayed_before = sum(n.router.relayed for n in py_testnet.nodes)
        got = await call(js, "dhtnet.connectEcho", client, listening["publicKey"], b"hello py")
        assert got["echoed"] == b"hello py"
        assert got["remotePublicKey"] == listening["publicKey"]
        # the handshake went through a Python node's router
        assert sum(n.router.relayed for n in py_testnet.nodes) > relayed_before
        await call(js, "dhtnet.closeServer", listening["handle"])
    finally:
        await call(js, "dhtnet.destroy", client)
        await call(js, "dhtnet.destroy", server)
