"""Hyperswarm between Python and JS (hyperswarm 4.17.2) on 127.0.0.1 over a JS testnet of 5
nodes: a Python and a JS swarm join a topic at the same moment, 50 times, and each ends with
exactly one connection to the other (same handshake hash, hellos both ways), with no churn for
30 s; leave unannounces; a killed and restarted JS peer is connected again; join_peer, flush,
the firewall (with bans) and max_peers behave the same on both sides."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from tests.hyperswarm.swarmpeer import Peer, until

from .jsenv import INTEROP_JS, JSHelper, require_node

RUNS = 50
CHURN_WATCH = 30.0


async def call(js: JSHelper, name: str, *args: Any) -> Any:
    with trio.fail_after(60):
        return await trio.to_thread.run_sync(js, name, *args)


@pytest.fixture
async def bootstrap(js: JSHelper) -> AsyncIterator[list[str]]:
    info = await call(js, "dhtnet.testnet", 5)
    try:
        yield [f"{b['host']}:{b['port']}" for b in info["bootstrap"]]
    finally:
        await call(js, "dhtnet.testnetDestroy", info["handle"])


class JSSwarm:
    """A JS swarm in the helper process."""

    def __init__(self, js: JSHelper, handle: int, public_key: bytes) -> None:
        self.js = js
        self.handle = handle
        self.key = public_key

    @classmethod
    async def create(
        cls, js: JSHelper, bootstrap: list[str], seed: bytes | None = None, **opts: Any
    ) -> JSSwarm:
        info = await call(js, "swarm.create", bootstrap, seed, opts)
        return cls(js, info["handle"], info["publicKey"])

    async def __call__(self, fn: str, *args: Any) -> Any:
        return await call(self.js, f"swarm.{fn}", self.handle, *args)

    async def open_connections(self) -> list[dict[str, Any]]:
        state = await self("state")
        return [c for c in state["connections"] if not c["closed"]]

    async def linked_to(self, py: Peer) -> bool:
        """Exactly one open connection on each side, the same one, hellos both ways."""
        conns = await self.open_connections()
        mine = py.open.get(self.key)
        return (
            len(conns) == 1
            and len(py.swarm.connections) == 1
            and mine is not None
            and conns[0]["remotePublicKey"] == py.key
            and conns[0]["handshakeHash"] == mine.handshake_hash
            and f"hello {py.key.hex()}" in conns[0]["received"]
            and py.greeted_by_key(self.key)
        )

    async def wait_linked(self, py: Peer, timeout: float = 20.0) -> None:
        with trio.fail_after(timeout):
            while not await self.linked_to(py):
                await trio.sleep(0.05)

    async def destroy(self) -> None:
        await self("destroy")


async def test_python_and_js_swarms_meet_on_a_topic(js: JSHelper, bootstrap: list[str]) -> None:
    for run in range(RUNS):
        topic = os.urandom(32)
        other = await JSSwarm.create(js, bootstrap)
        py = Peer(bootstrap)
        async with py.swarm:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(other, "join", topic, {})
                py.swarm.join(topic)
            await other.wait_linked(py)
            if run < RUNS - 1:
                await other.destroy()
                continue
            # The last pair: nothing churns for a while.
            js_before = len((await other("state"))["connections"])
            py_before = len(py.seen)
            await trio.sleep(CHURN_WATCH)
            assert await other.linked_to(py)
            assert len((await other("state"))["connections"]) == js_before
            assert len(py.seen) == py_before
            await other.destroy()


async def test_leave_unannounces_from_the_view_of_js(js: JSHelper, bootstrap: list[str]) -> None:
    topic = os.urandom(32)
    observer = await JSSwarm.create(js, bootstrap)
    py = Peer(bootstrap)
    try:
        async with py.swarm:
            await py.swarm.join(topic, client=False).flushed()
            assert py.key.hex() in await observer("lookup", topic)
            await py.swarm.leave(topic)
            assert py.key.hex() not in await observer("lookup", topic)
    finally:
        await observer.destroy()


async def test_join_peer_both_ways(js: JSHelper, bootstrap: list[str]) -> None:
    other = await JSSwarm.create(js, bootstrap)
    py = Peer(bootstrap)
    try:
        async with py.swarm:
            await other("listen")
            py.swarm.join_peer(other.key)  # Python dials JS by key
            await other.wait_linked(py)
    finally:
        await other.destroy()
    other = await JSSwarm.create(js, bootstrap)
    py = Peer(bootstrap)
    try:
        async with py.swarm:
            await py.swarm.listen()
            await other("joinPeer", py.key)  # JS dials Python by key
            await other.wait_linked(py)
            assert not py.swarm.peers[other.key].client
    finally:
        await other.destroy()


async def test_flush_waits_for_the_peers_found(js: JSHelper, bootstrap: list[str]) -> None:
    topic = os.urandom(32)
    servers = [await JSSwarm.create(js, bootstrap) for _ in range(3)]
    try:
        for s in servers:
            await s("join", topic, {"client": False, "flush": True})
        py = Peer(bootstrap)
        async with py.swarm:
            py.swarm.join(topic, server=False)
            assert await py.swarm.flush()
            assert len(py.swarm.connections) == 3
    finally:
        for s in servers:
            await s.destroy()
    # and a JS client's flush over Python servers
    topic = os.urandom(32)
    pys = [Peer(bootstrap) for _ in range(3)]
    client = await JSSwarm.create(js, bootstrap)
    try:
        async with pys[0].swarm, pys[1].swarm, pys[2].swarm:
            for p in pys:
                await p.swarm.join(topic, client=False).flushed()
            await client("join", topic, {"server": False})
            assert await client("flush")
            assert (await client("state"))["open"] == 3
    finally:
        await client.destroy()


async def test_firewall_refusals_ban_the_peer_both_ways(js: JSHelper, bootstrap: list[str]) -> None:
    # JS refuses Python
    topic = os.urandom(32)
    py = Peer(bootstrap)
    other = await JSSwarm.create(js, bootstrap, refuse=[py.key.hex()])
    try:
        async with py.swarm:
            py.swarm.join(topic)
            await other("join", topic, {"refreshMs": 1000})
            with trio.fail_after(20):
                while py.key not in (await other("state"))["bans"]:
                    await trio.sleep(0.1)
            await trio.sleep(3.0)
            assert not py.open and not await other.open_connections()
    finally:
        await other.destroy()
    # Python refuses JS
    topic = os.urandom(32)
    other = await JSSwarm.create(js, bootstrap)
    py = Peer(bootstrap, firewall=lambda key, _payload: key == other.key)
    try:
        async with py.swarm:
            py.swarm.join(topic)
            await other("join", topic, {"refreshMs": 1000})
            await until(lambda: other.key in py.swarm.peers and py.swarm.peers[other.key].banned)
            await trio.sleep(3.0)
            assert not py.open and not await other.open_connections()
    finally:
        await other.destroy()


async def test_max_peers_caps_the_dials_both_ways(js: JSHelper, bootstrap: list[str]) -> None:
    topic = os.urandom(32)
    servers = [await JSSwarm.create(js, bootstrap) for _ in range(4)]
    try:
        for s in servers:
            await s("join", topic, {"client": False, "flush": True})
        py = Peer(bootstrap, max_peers=2)
        async with py.swarm:
            py.swarm.join(topic, server=False)
            assert await py.swarm.flush()
            await trio.sleep(1.0)
            assert len(py.swarm.connections) == 2
    finally:
        for s in servers:
            await s.destroy()
    topic = os.urandom(32)
    pys = [Peer(bootstrap) for _ in range(4)]
    client = await JSSwarm.create(js, bootstrap, maxPeers=2)
    try:
        async with pys[0].swarm, pys[1].swarm, pys[2].swarm, pys[3].swarm:
            for p in pys:
                await p.swarm.join(topic, client=False).flushed()
            await client("join", topic, {"server": False})
            assert await client("flush")
            await trio.sleep(1.0)
            assert (await client("state"))["open"] == 2
            assert sum(len(p.swarm.connections) for p in pys) == 2
    finally:
        await client.destroy()


class JSPeerProcess:
    """swarm_peer.js in a process of its own, read line by line."""

    def __init__(self, bootstrap: list[str], seed: bytes, topic: bytes) -> None:
        node, _ = require_node()
        args = {"bootstrap": bootstrap, "seed": seed.hex(), "topic": topic.hex()}
        self.proc = subprocess.Popen(
            [node, str(INTEROP_JS / "swarm_peer.js"), json.dumps(args)],
            stdout=subprocess.PIPE,
            cwd=INTEROP_JS,
        )
        self.events: list[dict[str, Any]] = []

    async def next_event(self, kind: str, timeout: float = 30.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        with trio.fail_after(timeout):
            while True:
                line = await trio.to_thread.run_sync(stdout.readline, abandon_on_cancel=True)
                if not line:
                    raise AssertionError(f"the JS peer ended before {kind!r}")
                event = json.loads(line)
                self.events.append(event)
                if event["event"] == kind:
                    return dict(event)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


async def test_a_killed_and_restarted_js_peer_is_connected_again(
    js: JSHelper, bootstrap: list[str]
) -> None:
    topic = os.urandom(32)
    seed = os.urandom(32)
    py = Peer(bootstrap)
    async with py.swarm:
        py.swarm.join(topic)
        first = JSPeerProcess(bootstrap, seed, topic)
        try:
            key = bytes.fromhex((await first.next_event("ready"))["publicKey"])
            data = await first.next_event("data")
            assert data["data"] == f"hello {py.key.hex()}"
            await until(lambda: py.greeted_by_key(key))
        finally:
            first.kill()
        hellos = len(py.heard[key])
        second = JSPeerProcess(bootstrap, seed, topic)
        try:
            await second.next_event("ready")
            # within the retry intervals (S/M/L are 1/5/15 s in JS)
            data = await second.next_event("data", timeout=25.0)
            assert data["data"] == f"hello {py.key.hex()}"
            await until(lambda: len(py.heard.get(key, [])) > hellos, timeout=25.0)
            assert key in py.open
        finally:
            second.kill()
