"""Hole punching on the simulated network (:mod:`hyperswarm.dht_rpc.simulation`): how often
the punch strategies of :mod:`.holepuncher` get through which pairs of NATs, with loss, NAT
timeouts and filtering, on a virtual clock.

Each trial puts a client and a server behind NATs of the given kinds and plays the punching
part of a connection with the holepuncher's own numbers: each side opens a punch socket and
samples its NAT from four public samplers (the verdict is :mod:`.nat`'s: every sampler saw
one port: CONSISTENT; else RANDOM); the sides then know each other's verdict and sampled
addresses (the probe round through the DHT, not simulated here) and punch:

* consistent with consistent: each side sends a punch to the other's sampled address once a
  second, :data:`~.holepuncher.CONSISTENT_TRIES` times (the server starts a second later);
* consistent with random: the consistent side sends punches to random ports of the random
  side's host every 20 ms (:data:`~.holepuncher.RANDOM_TRIES`); the random side opens
  :data:`~.holepuncher.BIRTHDAY_SOCKETS` sockets, each sending a short-lived punch (opening
  its own NAT only) to the consistent side, then punches from them in turn every 20 ms;
* random with random: refused (``HOLEPUNCH_DOUBLE_RANDOMIZED_NATS``).

The server answers every punch from the socket it arrived on; the client is connected at the
first punch it receives, and the trial counts as a success once a datagram the client then
sends (resent every 250 ms, as a stream would) reaches the server's socket.

    python -m hyperswarm.hyperdht.punch_simulation      # the table of success rates
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..dht_rpc.simulation import LOW_TTL, Network, SimNat, SimSocket
from .holepuncher import BIRTHDAY_SOCKETS, CONSISTENT_TRIES, RANDOM_TRIES, random_port

__all__ = ["PunchResult", "Summary", "punch", "success_rates"]

PUNCH = b"\x00"
HELLO = b"hello"
#: Milliseconds a trial may take (the longest punch, the birthday one, runs 35 s).
LIMIT = 45_000.0


@dataclass(slots=True)
class PunchResult:
    """One trial: connected or not (and why not), and when (ms from the start of punching)."""

    connected: bool
    ms: float | None = None
    error: str | None = None


class _Side:
    def __init__(self, net: Network, nat: SimNat, initiator: bool, rng: random.Random) -> None:
        self.net = net
        self.nat = nat
        self.initiator = initiator
        self.rng = rng
        self.host = net.private_host(nat)
        self.sockets: list[SimSocket] = []
        self.socket = self._open()
        self.samples: list[tuple[str, int]] = []
        self.punching = False
        self.connected_at: float | None = None
        self.connected_to: tuple[SimSocket, str, int] | None = None
        self.hello_at: float | None = None

    def _open(self) -> SimSocket:
        sock = self.net.open_socket(self.host, lambda d, h, p: None)
        sock.on_datagram = lambda data, host, port: self._on_datagram(sock, data, host, port)
        self.sockets.append(sock)
        return sock

    def _on_datagram(self, sock: SimSocket, data: bytes, host: str, port: int) -> None:
        if data == HELLO:
            if self.hello_at is None:
                self.hello_at = self.net.now
            return
        if data != PUNCH:
            return
        if not self.initiator:
            sock.send(PUNCH, host, port)  # answer from the socket it came to
            return
        if self.connected_at is None:
            self.connected_at = self.net.now
            self.connected_to = (sock, host, port)
            self.punching = False

    @property
    def firewall(self) -> str | None:
        """The sampler's verdict (None: too few samples)."""
        if len(self.samples) < 2:
            return None
        return "consistent" if len({p for _, p in self.samples}) == 1 else "random"

    def address(self) -> tuple[str, int]:
        """Our address as the DHT saw it (the port means nothing behind a random NAT)."""
        host, port = self.samples[0]
        return host, port if self.firewall == "consistent" else 0


def _sample(net: Network, sides: Sequence[_Side], samplers: list[SimSocket]) -> None:
    """Each side's punch socket pings the samplers (three times each, a second apart, as
    requests are retried) and records the address each one saw first."""
    seen: dict[tuple[str, str], tuple[str, int]] = {}  # (side host, sampler host) -> seen

    def sampler(sock: SimSocket) -> Callable[[bytes, str, int], None]:
        def on(data: bytes, host: str, port: int) -> None:
            seen.setdefault((data.decode(), sock.host), (host, port))
            sock.send(b"pong", host, port)

        return on

    for s in samplers:
        s.on_datagram = sampler(s)
    for attempt in range(3):
        for side in sides:
            for s in samplers:
                if (side.host, s.host) not in seen:
                    side.socket.send(side.host.encode(), s.host, s.port)
        net.run(1000 if attempt < 2 else 500)
    for side in sides:
        side.samples = [seen[(side.host, s.host)] for s in samplers if (side.host, s.host) in seen]


def _consistent_probe(net: Network, side: _Side, remote: tuple[str, int]) -> None:
    tries = 0

    def round_() -> None:
        nonlocal tries
        if not side.punching or tries >= CONSISTENT_TRIES:
            return
        tries += 1
        side.socket.send(PUNCH, *remote)
        net.timers.call_later(1000.0, round_)

    net.timers.call_later(0.0 if side.initiator else 1000.0, round_)


def _random_probes(net: Network, side: _Side, remote_host: str) -> None:
    tries = RANDOM_TRIES

    def probe() -> None:
        nonlocal tries
        if not side.punching or tries <= 0:
            return
        tries -= 1
        side.socket.send(PUNCH, remote_host, random_port(side.rng))
        net.timers.call_later(20.0, probe)

    probe()


def _birthday(net: Network, side: _Side, remote: tuple[str, int]) -> None:
    while len(side.sockets) < BIRTHDAY_SOCKETS:
        side._open().send(PUNCH, *remote, ttl=LOW_TTL)
    tries = RANDOM_TRIES
    state = {"i": 0, "low": 1}

    def keep_alive() -> None:
        nonlocal tries
        if not side.punching or tries <= 0:
            return
        tries -= 1
        if state["i"] >= len(side.sockets):
            state["i"] = 0
            state["low"] = max(0, state["low"] - 1)
        sock = side.sockets[state["i"]]
        state["i"] += 1
        sock.send(PUNCH, *remote, ttl=LOW_TTL if state["low"] else 0)
        net.timers.call_later(20.0, keep_alive)

    net.timers.call_later(100.0, keep_alive)


def punch(
    client_nat: str,
    server_nat: str,
    *,
    seed: int = 0,
    loss: float = 0.0,
    timeout: float = 30_000.0,
    filtering: str = "address-port",
    latency: tuple[float, float] = (5.0, 40.0),
) -> PunchResult:
    """One trial between a client behind a ``client_nat`` NAT and a server behind a
    ``server_nat`` one (``consistent`` or ``random``)."""
    net = Network(seed=seed, loss=loss, latency=latency)
    rng = random.Random(seed ^ 0x5EED)
    client = _Side(net, net.nat(client_nat, timeout=timeout, filtering=filtering), True, rng)
    server = _Side(net, net.nat(server_nat, timeout=timeout, filtering=filtering), False, rng)
    samplers = [net.open_socket(f"30.0.0.{i + 1}", lambda d, h, p: None) for i in range(4)]
    _sample(net, (client, server), samplers)
    if client.firewall is None or server.firewall is None:
        return PunchResult(False, error="HOLEPUNCH_PROBE_TIMEOUT")
    if client.firewall == "random" and server.firewall == "random":
        return PunchResult(False, error="HOLEPUNCH_DOUBLE_RANDOMIZED_NATS")
    start = net.now
    for side, other in ((client, server), (server, client)):
        side.punching = True
        if side.firewall == "consistent" and other.firewall == "consistent":
            _consistent_probe(net, side, other.address())
        elif side.firewall == "consistent":
            _random_probes(net, side, other.address()[0])
        else:
            _birthday(net, side, other.address())
    if not net.run_until(lambda: client.connected_at is not None, LIMIT, step=20.0):
        return PunchResult(False, error="HOLEPUNCH_ABORTED")
    server.punching = False
    assert client.connected_to is not None
    sock, host, port = client.connected_to
    for _ in range(20):  # the stream's first packets, resent until one is in
        sock.send(HELLO, host, port)
        if net.run_until(lambda: server.hello_at is not None, 250.0, step=10.0):
            break
    if server.hello_at is None:
        return PunchResult(False, error="STREAM_NEVER_ARRIVED")
    assert client.connected_at is not None
    return PunchResult(True, ms=client.connected_at - start)


@dataclass(slots=True)
class Summary:
    """Trials of one setting."""

    trials: int
    connected: int
    mean_ms: float | None
    errors: dict[str, int]

    @property
    def rate(self) -> float:
        return self.connected / max(1, self.trials)


def success_rates(
    client_nat: str, server_nat: str, *, trials: int, seed: int = 0, **options: Any
) -> Summary:
    """:func:`punch` ``trials`` times with seeds from ``seed``."""
    ok, times = 0, []
    errors: dict[str, int] = {}
    for i in range(trials):
        r = punch(client_nat, server_nat, seed=seed + i, **options)
        if r.connected:
            ok += 1
            assert r.ms is not None
            times.append(r.ms)
        else:
            assert r.error is not None
            errors[r.error] = errors.get(r.error, 0) + 1
    return Summary(trials, ok, sum(times) / len(times) if times else None, errors)


PAIRS = [
    ("consistent", "consistent"),
    ("consistent", "random"),
    ("random", "consistent"),
    ("random", "random"),
]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    args = parser.parse_args(argv)
    settings: list[tuple[str, dict[str, Any]]] = [
        ("no loss", {}),
        ("5% loss", {"loss": 0.05}),
        ("20% loss", {"loss": 0.2}),
        ("50% loss", {"loss": 0.5}),
        ("NAT timeout 3 s", {"timeout": 3000.0}),
        ("NAT timeout 0.5 s", {"timeout": 500.0}),
        ("endpoint filtering", {"filtering": "endpoint"}),
    ]
    print(f"{'client NAT':<11} {'server NAT':<11} {'setting':<19} {'success':>8} {'mean ms':>8}")
    for client_nat, server_nat in PAIRS:
        for name, options in settings:
            s = success_rates(client_nat, server_nat, trials=args.trials, **options)
            ms = f"{s.mean_ms:.0f}" if s.mean_ms is not None else "-"
            print(f"{client_nat:<11} {server_nat:<11} {name:<19} {s.rate:>8.0%} {ms:>8}")


if __name__ == "__main__":
    main()
