"""The NAT model of the DHT simulator (mapping, filtering, timeouts, short-lived datagrams),
DHT nodes behind simulated NATs, and hole punching through them with loss (virtual time:
nothing here waits on a clock or opens a socket)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest

from hyperswarm.dht_rpc.simulation import CLIENT_PORT, LOW_TTL, Network, SimNat, SimSocket
from hyperswarm.hyperdht.punch_simulation import punch, success_rates

Heard = list[tuple[bytes, str, int]]


@dataclass
class Setup:
    """A socket behind a NAT and two public ones, and what each side heard."""

    nat: SimNat
    inside: SimSocket
    outside: list[SimSocket]
    heard: Heard  # by the inside socket
    outside_heard: Heard


def setup(net: Network, kind: str, **nat: Any) -> Setup:
    heard: Heard = []
    outside_heard: Heard = []
    n = net.nat(kind, **nat)
    inside = net.open_socket(net.private_host(n), lambda d, h, p: heard.append((d, h, p)))
    outside = [
        net.open_socket(f"30.0.0.{i}", lambda d, h, p: outside_heard.append((d, h, p)))
        for i in (1, 2)
    ]
    return Setup(n, inside, outside, heard, outside_heard)


def test_a_consistent_nat_keeps_one_port_a_random_one_does_not() -> None:
    for kind, same in (("consistent", True), ("random", False)):
        net = Network(seed=1)
        x = setup(net, kind)
        for o in x.outside:
            x.inside.send(b"x", o.host, o.port)
        net.run(100)
        assert [h for _, h, _ in x.outside_heard] == [x.nat.public_host] * 2
        ports = {p for _, _, p in x.outside_heard}
        assert (len(ports) == 1) is same
        if same:
            assert ports == {x.inside.port}  # (the socket's own port, when free)


def test_only_the_endpoints_a_socket_sent_to_get_in_until_the_flow_times_out() -> None:
    net = Network(seed=2)
    x = setup(net, "consistent", timeout=1000.0)
    heard, inside, nat, (a, b) = x.heard, x.inside, x.nat, x.outside
    inside.send(b"out", a.host, a.port)
    net.run(100)
    port = nat.mapped_port(inside.host, inside.port, net.now)
    assert port is not None
    a.send(b"reply", nat.public_host, port)
    b.send(b"stranger", nat.public_host, port)
    net.run(100)
    assert [d for d, _, _ in heard] == [b"reply"]
    net.run(1500)  # the flow is idle past the timeout: the mapping is gone
    a.send(b"late", nat.public_host, port)
    net.run(100)
    assert [d for d, _, _ in heard] == [b"reply"]
    assert nat.mapped_port(inside.host, inside.port, net.now) is None
    # endpoint-independent filtering lets anyone in while the mapping lives
    net = Network(seed=2)
    x = setup(net, "consistent", filtering="endpoint")
    heard, inside, nat, (a, b) = x.heard, x.inside, x.nat, x.outside
    inside.send(b"out", a.host, a.port)
    net.run(100)
    b.send(b"stranger", nat.public_host, inside.port)
    net.run(100)
    assert [d for d, _, _ in heard] == [b"stranger"]


def test_a_short_lived_datagram_opens_its_nat_and_dies_on_the_way() -> None:
    net = Network(seed=3)
    x = setup(net, "consistent")
    heard, outside_heard, inside, nat, a = x.heard, x.outside_heard, x.inside, x.nat, x.outside[0]
    inside.send(b"punch", a.host, a.port, ttl=LOW_TTL)
    net.run(100)
    assert outside_heard == [] and net.stats.expired == 1
    a.send(b"in", nat.public_host, inside.port)
    net.run(100)
    assert [d for d, _, _ in heard] == [b"in"]


def test_dht_nodes_behind_nats_know_they_are_firewalled_and_how() -> None:
    net = Network(seed=4)
    net.bootstrap_node()
    for _ in range(30):
        net.add_node()
        net.run(50)
    consistent_nat, random_nat = net.nat("consistent"), net.nat("random")
    c = net.add_node(nat=consistent_nat, ephemeral=None)
    r = net.add_node(nat=random_nat, ephemeral=None)
    net.run(120_000)
    assert c.core.firewalled and c.core.ephemeral
    assert c.core.host == consistent_nat.public_host and not c.core.randomized
    assert c.core.port == consistent_nat.mapped_port(c.host, CLIENT_PORT, net.now)
    assert r.core.firewalled and r.core.ephemeral
    assert r.core.host == random_nat.public_host and r.core.randomized
    assert consistent_nat.filtered + random_nat.filtered > 0  # the firewall checks bounced
    for node in (c, r):  # they still find their way around the network
        assert net.lookup(node, os.urandom(32)).success


@pytest.mark.parametrize(
    ("client", "server"),
    [("consistent", "consistent"), ("consistent", "random"), ("random", "consistent")],
)
def test_punchable_pairs_connect_even_with_loss(client: str, server: str) -> None:
    clean = success_rates(client, server, trials=20)
    assert clean.connected == 20, clean
    lossy = success_rates(client, server, trials=20, seed=100, loss=0.2)
    assert lossy.connected >= 18, lossy


def test_double_random_nats_are_refused_and_short_nat_timeouts_hurt_the_birthday_punch() -> None:
    assert punch("random", "random").error == "HOLEPUNCH_DOUBLE_RANDOMIZED_NATS"
    # a NAT that forgets a flow after 0.5 s drops most of the 256 sockets' mappings before
    # the consistent side's probes find one (they are refreshed only every 5 s)
    short = success_rates("consistent", "random", trials=30, timeout=500.0)
    assert short.connected < 30, short
    assert set(short.errors) == {"HOLEPUNCH_ABORTED"}, short
