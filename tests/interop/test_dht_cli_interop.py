"""The two commands: ``python -m hyperswarm.testnet`` prints a bootstrap list a JS node joins,
and ``python -m hyperswarm.hyperdht`` runs a node that joins such a network (and, with an empty
``--bootstrap``, starts one). Everything on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import trio

from hyperswarm.hyperdht import HyperDHT

from .jsenv import JSHelper


@contextmanager
def _command(*args: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _line(proc: subprocess.Popen[str], contains: str) -> str:
    assert proc.stdout is not None
    for _ in range(20):
        line = proc.stdout.readline()
        if not line:
            break
        if contains in line:
            return line
    raise AssertionError(f"no line with {contains!r}")


async def test_the_testnet_command_and_a_node_command_joining_it(js: JSHelper) -> None:
    with _command("hyperswarm.testnet", "--size", "4") as testnet:
        bootstrap = json.loads(await trio.to_thread.run_sync(_line, testnet, "127.0.0.1"))
        assert len(bootstrap) == 1 and bootstrap[0].startswith("127.0.0.1:")
        with _command(
            "hyperswarm.hyperdht", "--host", "127.0.0.1", "--bootstrap", ",".join(bootstrap)
        ) as node:
            bound = await trio.to_thread.run_sync(_line, node, "bound to")
            assert int(bound.rsplit(",", 1)[1].strip(" )\n")) > 0
            started = await trio.to_thread.run_sync(_line, node, "fully started")
            # it knows the testnet (it stays ephemeral, as JS nodes do until ~20 min of uptime)
            assert int(started.split("(")[1].split()[0]) >= 4
            # a JS node joins through the printed list and sees the command's node
            h = await trio.to_thread.run_sync(js, "dhtnet.node", bootstrap, {})
            try:
                await trio.to_thread.run_sync(js, "dhtnet.refresh", h, 200)
                info = await trio.to_thread.run_sync(js, "dhtnet.info", h)
                known = {(n["host"], n["port"]) for n in info["nodes"]}
                assert len(known) >= 4
                # and records announced through the command's network are found
                topic = HyperDHT.hash(b"cli topic")
                key = await trio.to_thread.run_sync(js, "dhtnet.announce", h, topic, bytes(32), [])
                async with HyperDHT(bootstrap=bootstrap, host="127.0.0.1", port=0) as mine:
                    await mine.fully_bootstrapped()
                    found = {p.public_key async for r in mine.lookup(topic) for p in r.peers}
                    assert key in found
            finally:
                await trio.to_thread.run_sync(js, "dhtnet.destroy", h)


async def test_a_bootstrap_node_from_the_command() -> None:
    with _command(
        "hyperswarm.hyperdht", "--bootstrap", "", "--host", "127.0.0.1", "--port", "0"
    ) as boot:
        bound = await trio.to_thread.run_sync(_line, boot, "bound to")
        port = int(bound.rsplit(",", 1)[1].strip(" )\n"))
        entry = f"127.0.0.1:{port}"
        async with HyperDHT(bootstrap=[entry], host="127.0.0.1", port=0) as a:
            with trio.fail_after(20):
                await a.fully_bootstrapped()
            assert ("127.0.0.1", port) in {(x.host, x.port) for x in a.to_array()}
            put = await a.immutable_put(b"kept by the command's node")
            async with HyperDHT(bootstrap=[entry], host="127.0.0.1", port=0) as b:
                await b.fully_bootstrapped()
                got = await b.immutable_get(put.hash)
                assert got is not None and got.value == b"kept by the command's node"
