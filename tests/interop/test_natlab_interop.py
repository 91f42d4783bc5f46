"""Hole punching across real Linux NATs (hyperswarm.natlab), Python and JS (hyperdht 6.34.0)
peers both ways.

One lab per module: a Python testnet of 5 nodes on the public segment (23.0.0.1), and for
each test fresh routers and hosts. Servers run with a 10 ms random-punch interval (both
implementations take the option) so that random NATs can be punched back to back; clients
are new processes each run. Every pair of implementations runs at the same time, each on
its own pair of NATs, and each makes its runs one after the other.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from hyperswarm.hyperdht.constants import FIREWALL
from hyperswarm.natlab import Host, Lab, available

from .jsenv import INTEROP_JS, ensure_installed

ROOT = Path(__file__).resolve().parents[2]
PEERS = {
    "python": [sys.executable, str(ROOT / "tests" / "interop" / "natpeer.py")],
    "js": ["node", str(INTEROP_JS / "natpeer.js")],
}
PAIRS = [("python", "python"), ("python", "js"), ("js", "python"), ("js", "js")]
RUNS = 5
_seeds = iter(range(1, 256))


class World:
    def __init__(self, lab: Lab, bootstrap: str) -> None:
        self.lab = lab
        self.bootstrap = bootstrap
        self._n = 0

    def place(self, kind: str) -> Host:
        """A new host: on the public segment ("open") or behind a new router of that kind."""
        self._n += 1
        name = f"h{self._n}"
        if kind == "open":
            return self.lab.public_host(name)
        return self.lab.host(name, behind=self.lab.router(f"r{self._n}", kind))


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    reason = available()
    if reason is not None:
        pytest.skip(f"the NAT lab cannot be built here: {reason}")
    ensure_installed(INTEROP_JS)
    with Lab() as lab:
        testnet = lab.public.spawn(
            [sys.executable, "-m", "hyperswarm.testnet", "--size", "5", "--host", "23.0.0.1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert testnet.stdout is not None
        bootstrap = ",".join(json.loads(testnet.stdout.readline()))
        yield World(lab, bootstrap)


class _Process:
    """A natpeer process that prints JSON lines and ends when its stdin closes. A thread
    reads its lines as they come (a select on the pipe would miss lines already buffered)."""

    def __init__(self, host: Host, argv: list[str]) -> None:
        self.proc = host.spawn(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=str(INTEROP_JS),
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def next(self, timeout: float = 30) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("the peer said nothing in time") from None
        assert line is not None, "the peer ended"
        out: dict[str, Any] = json.loads(line)
        return out

    def rest(self) -> list[dict[str, Any]]:
        """Every line still to come, once the process ended."""
        out = []
        while (line := self.lines.get(timeout=30)) is not None:
            out.append(json.loads(line))
        return out

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Server(_Process):
    def __init__(self, host: Host, impl: str, bootstrap: str, *extra: str) -> None:
        seed = bytes([next(_seeds)]).hex() * 32
        super().__init__(host, [*PEERS[impl], "server", bootstrap, seed, "--fast", *extra])
        self.public_key = self.next()["listening"]


class Relay(_Process):
    """A blind relay (natpeer ``relay``); :meth:`stop` returns its stats."""

    def __init__(self, host: Host, impl: str, bootstrap: str) -> None:
        seed = bytes([next(_seeds)]).hex() * 32
        super().__init__(host, [*PEERS[impl], "relay", bootstrap, seed])
        self.public_key = self.next()["relay"]

    def stop_with_stats(self) -> dict[str, Any]:
        self.stop()
        out: dict[str, Any] = self.rest()[-1]["stats"]
        return out


def run_client(host: Host, impl: str, bootstrap: str, key: str, *extra: str) -> dict[str, Any]:
    out = host.run(
        [*PEERS[impl], "client", bootstrap, key, *extra],
        timeout=90,
        check=False,
        cwd=str(INTEROP_JS),
    )
    assert out.stdout.strip(), out.stderr[-2000:]
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def punch_runs(
    world: World, server_host: Host, client_host: Host, impls: tuple[str, str]
) -> list[Any]:
    """RUNS connections from a client on ``client_host`` to a server on ``server_host``;
    each checked by data echoed and by both ends' handshake hash."""
    server_impl, client_impl = impls
    server = Server(server_host, server_impl, world.bootstrap)
    results = []
    try:
        for _ in range(RUNS):
            got = run_client(client_host, client_impl, world.bootstrap, server.public_key)
            if got.get("connected"):
                seen = server.next()
                assert seen["hash"] == got["hash"], (impls, got, seen)
            results.append(got)
    finally:
        server.stop()
    return results


def all_pairs(world: World, server_nat: str, client_nat: str) -> dict[tuple[str, str], Any]:
    # the lab is built from this thread; the runs go on in parallel
    hosts = {impls: (world.place(server_nat), world.place(client_nat)) for impls in PAIRS}
    with ThreadPoolExecutor(len(PAIRS)) as pool:
        futures = {impls: pool.submit(punch_runs, world, *hosts[impls], impls) for impls in PAIRS}
        return {impls: f.result() for impls, f in futures.items()}


@pytest.mark.parametrize(
    ("server_nat", "client_nat", "limit_ms"),
    [
        ("consistent", "consistent", 15_000),
        ("consistent", "random", 40_000),  # the birthday case: the client opens 256 sockets
        ("random", "consistent", 40_000),  # the server opens them
        ("open", "consistent", 15_000),
        ("open", "random", 15_000),
        ("consistent", "open", 15_000),
        ("random", "open", 15_000),
    ],
)
def test_peers_punch_through_nats(
    world: World, server_nat: str, client_nat: str, limit_ms: int
) -> None:
    for impls, results in all_pairs(world, server_nat, client_nat).items():
        for got in results:
            assert got.get("connected") is True, (impls, got)
            assert got["ms"] < limit_ms, (impls, got)
        if impls[1] == "python" and "open" not in (server_nat, client_nat):
            assert all(r["paths"].get("client:punched") == 1 for r in results), results


def test_double_random_nats_are_refused(world: World) -> None:
    for impls, results in all_pairs(world, "random", "random").items():
        for got in results[:1]:
            # JS's client reports the puncher's abort, which fires before its own
            # HOLEPUNCH_DOUBLE_RANDOMIZED_NATS; the Python client reports the cause
            want = (
                "HOLEPUNCH_DOUBLE_RANDOMIZED_NATS" if impls[1] == "python" else "HOLEPUNCH_ABORTED"
            )
            assert got.get("error") == want, (impls, got)


def test_the_nat_samplers_agree(world: World) -> None:
    for kind, want in (("consistent", FIREWALL.CONSISTENT), ("random", FIREWALL.RANDOM)):
        host = world.place(kind)
        verdicts = {}
        for impl in ("python", "js"):
            out = host.run([*PEERS[impl], "nat", world.bootstrap], timeout=90, cwd=str(INTEROP_JS))
            verdicts[impl] = json.loads(out.stdout.strip().splitlines()[-1])
        assert verdicts["python"]["firewall"] == verdicts["js"]["firewall"] == want, verdicts
        router = host.router
        assert router is not None
        for v in verdicts.values():
            if want == FIREWALL.RANDOM:
                assert v["addresses"] == [f"{router.wan}:0"], verdicts
            else:
                assert [a.split(":")[0] for a in v["addresses"]] == [router.wan], verdicts


@pytest.mark.parametrize(
    ("lan_blocked", "path"),
    [(False, "client:lan"), (True, "client:punched")],
    ids=["lan", "blocked"],
)
def test_peers_behind_one_nat(world: World, lan_blocked: bool, path: str) -> None:
    """Behind one router, peers connect over the LAN; behind one that isolates its LAN hosts
    but hairpins, the LAN try fails and they punch to each other's public address."""
    name = "blocked" if lan_blocked else "same"
    router = world.lab.router(name, "consistent", hairpin=lan_blocked)
    if lan_blocked:
        world.lab.block_lan(router)
    for impls in PAIRS:
        a = world.lab.host(f"{name}-s-{impls[0]}-{impls[1]}", behind=router)
        b = world.lab.host(f"{name}-c-{impls[0]}-{impls[1]}", behind=router)
        server = Server(a, impls[0], world.bootstrap)
        try:
            got = run_client(b, impls[1], world.bootstrap, server.public_key)
            assert got.get("connected") is True, (impls, got)
            assert server.next()["hash"] == got["hash"]
            if impls[1] == "python":
                assert got["paths"] == {path: 1}, got
        finally:
            server.stop()


def test_a_hundred_connections_leak_nothing(world: World) -> None:
    server_host, client_host = world.place("consistent"), world.place("consistent")
    server = Server(server_host, "python", world.bootstrap)
    try:
        out = client_host.run(
            [*PEERS["python"], "clients", world.bootstrap, server.public_key, "100"],
            timeout=300,
            cwd=str(INTEROP_JS),
        )
        got = json.loads(out.stdout.strip().splitlines()[-1])
        assert got["done"] == 100, got
        assert got["sockets"] == 0, got
        assert got["fds_after"] <= got["fds_before"] + 2, got
    finally:
        server.stop()


def relayed_runs(
    world: World,
    relays: dict[str, str],
    server_host: Host,
    client_host: Host,
    impls: tuple[str, str],
) -> list[Any]:
    """One connection per relay and per side offering it, from a client on ``client_host``
    to a server on ``server_host``."""
    server_impl, client_impl = impls
    results = []
    for relay_impl, key in relays.items():
        for offered_by in ("server", "client"):
            extra = ("--relay", key)
            server = Server(
                server_host,
                server_impl,
                world.bootstrap,
                *(extra if offered_by == "server" else ()),
            )
            try:
                got = run_client(
                    client_host,
                    client_impl,
                    world.bootstrap,
                    server.public_key,
                    *(extra if offered_by == "client" else ()),
                )
                if got.get("connected"):
                    assert server.next()["hash"] == got["hash"], (impls, got)
                results.append((relay_impl, offered_by, got))
            finally:
                server.stop()
    return results


def test_double_random_nats_connect_through_a_blind_relay(world: World) -> None:
    """Peers that cannot punch (both behind random NATs) connect through a blind relay on the
    public segment, a Python one and a JS one, offered by the server or by the client, for
    every pair of implementations."""
    relay_hosts = {impl: world.lab.public_host(f"relay-{impl}") for impl in ("python", "js")}
    relays = {impl: Relay(host, impl, world.bootstrap) for impl, host in relay_hosts.items()}
    try:
        keys = {impl: r.public_key for impl, r in relays.items()}
        hosts = {impls: (world.place("random"), world.place("random")) for impls in PAIRS}
        with ThreadPoolExecutor(len(PAIRS)) as pool:
            futures = {
                impls: pool.submit(relayed_runs, world, keys, *hosts[impls], impls)
                for impls in PAIRS
            }
            results = {impls: f.result() for impls, f in futures.items()}
    finally:
        stats = {impl: r.stop_with_stats() for impl, r in relays.items()}
    for impls, runs in results.items():
        for relay_impl, offered_by, got in runs:
            assert got.get("connected") is True, (impls, relay_impl, offered_by, got)
            assert got["ms"] < 20_000, (impls, relay_impl, offered_by, got)
            if impls[1] == "python":
                assert got["paths"].get("client:relayed") == 1, got
    for impl, s in stats.items():
        assert s["matched"] == 2 * len(PAIRS), (impl, stats)


def swarm_argv(impl: str, bootstrap: str, seed: bytes, topic: bytes, relay: str) -> list[str]:
    if impl == "python":
        return [*PEERS["python"], "swarm", bootstrap, seed.hex(), topic.hex(), "--relay", relay]
    opts = {
        "bootstrap": bootstrap.split(","),
        "seed": seed.hex(),
        "topic": topic.hex(),
        "host": "0.0.0.0",
        "relayThrough": relay,
    }
    return ["node", str(INTEROP_JS / "swarm_peer.js"), json.dumps(opts)]


def test_swarms_behind_random_nats_meet_through_their_relay(world: World) -> None:
    """Two swarms behind random NATs with a relay configured (``relay_through=``, used while
    the node is behind a random NAT, as JS) find each other on a topic and talk through it:
    Python with Python, and Python with JS."""
    relay = Relay(world.lab.public_host("swarm-relay"), "python", world.bootstrap)
    try:
        for other in ("python", "js"):
            topic = bytes([next(_seeds)]) * 32
            peers = []
            for impl in ("python", other):
                host = world.place("random")
                seed = bytes([next(_seeds)]) * 32
                peers.append(
                    (
                        impl,
                        _Process(
                            host, swarm_argv(impl, world.bootstrap, seed, topic, relay.public_key)
                        ),
                    )
                )
            try:
                keys = []
                for _, p in peers:
                    ready = p.next(60)
                    assert ready["event"] == "ready", ready
                    keys.append(ready["publicKey"])
                for i, (impl, p) in enumerate(peers):
                    heard = None
                    for _ in range(20):
                        event = p.next(60)
                        if event["event"] == "data":
                            heard = event
                            break
                    assert heard is not None, (impl, other)
                    assert heard["data"] == "hello " + keys[1 - i], (impl, other, heard)
            finally:
                for _, p in peers:
                    p.stop()
            paths = peers[0][1].rest()[-1]["paths"]
            assert paths.get("client:relayed", 0) + paths.get("server:relayed", 0) >= 1, paths
    finally:
        stats = relay.stop_with_stats()
    assert stats["matched"] >= 2, stats
