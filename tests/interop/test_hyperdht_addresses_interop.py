"""hyperswarm.hyperdht.addresses against bogon 1.3.0 and hyperdht 6.34.0's matchAddress: the
same private/reserved/bogon answers for addresses at the edges of every range (IPv4 and IPv6),
and the same pick of a peer's LAN address."""

from __future__ import annotations

import ipaddress
import random

from hyperswarm.hyperdht.addresses import is_bogon, is_private, is_reserved, match_address
from protomux.encoding import Address

from .jsenv import JSHelper

EDGES_V4 = [
    "0.0.0.0", "0.255.255.255", "1.0.0.0", "9.255.255.255", "10.0.0.0", "10.255.255.255",
    "11.0.0.0", "100.63.255.255", "100.64.0.0", "100.127.255.255", "100.128.0.0",
    "126.255.255.255", "127.0.0.1", "128.0.0.0", "169.253.255.255", "169.254.0.1",
    "169.255.0.0", "172.15.255.255", "172.16.0.0", "172.31.255.255", "172.32.0.0",
    "192.0.0.1", "192.0.1.1", "192.0.2.1", "192.0.3.1", "192.167.1.1", "192.168.1.1",
    "192.169.0.0", "198.17.255.255", "198.18.0.0", "198.19.255.255", "198.20.0.0",
    "198.51.99.1", "198.51.100.1", "198.51.101.1", "203.0.112.1", "203.0.113.1",
    "203.0.114.1", "223.255.255.255", "224.0.0.0", "239.255.255.255", "240.0.0.0",
    "255.255.255.254", "255.255.255.255", "8.8.8.8", "1.2.3.4",
]  # fmt: skip
EDGES_V6 = [
    "::", "::1", "::2", "::ffff:1.2.3.4", "::1.2.3.4", "::ff00:0:1", "100::", "100::1:0:0:0",
    "100:0:0:1::", "2001:10::", "2001:1f::1", "2001:20::", "2001:2f::1", "2001:30::",
    "2001:db8::1", "2001:db9::1", "fbff::1", "fc00::1", "fdff::1", "fe00::1", "fe80::1",
    "febf::1", "fec0::1", "ff00::1", "2a00:1450::1",
]  # fmt: skip


def test_address_classes_match_bogon(js: JSHelper) -> None:
    rng = random.Random(5)
    hosts = EDGES_V4 + EDGES_V6
    hosts += [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(300)]
    hosts += [str(ipaddress.IPv6Address(rng.getrandbits(128))) for _ in range(100)]
    got = js("hyperdhtAddresses.classify", hosts)
    for host, (private, reserved, bogon) in zip(hosts, got, strict=True):
        assert (is_private(host), is_reserved(host), is_bogon(host)) == (
            private,
            reserved,
            bogon,
        ), host


def test_match_address_picks_what_js_picks(js: JSHelper) -> None:
    rng = random.Random(6)
    pool = ["192.168.1.5", "192.168.2.7", "192.10.0.1", "10.0.0.2", "10.1.0.3", "127.0.0.1"]
    cases: list[tuple[list[Address], list[Address]]] = [([], []), ([Address("1.2.3.4", 1)], [])]
    for _ in range(200):
        mine = [Address(rng.choice(pool), 1) for _ in range(rng.randint(1, 3))]
        theirs = [Address(rng.choice(pool), 2 + i) for i in range(rng.randint(0, 4))]
        cases.append((mine, theirs))
    for mine, theirs in cases:
        want = js(
            "hyperdhtAddresses.match",
            [a._asdict() for a in mine],
            [a._asdict() for a in theirs],
        )
        got = match_address(mine, theirs)
        assert (got._asdict() if got is not None else None) == want, (mine, theirs)
