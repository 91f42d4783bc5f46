"""Address classes and this host's addresses, as HyperDHT's connection code uses them (JS
``bogon`` 1.3 and the local-address helpers of hyperdht ``lib/holepuncher.js``).

A *private* IPv4 address is one of the private-use, carrier-grade NAT, loopback or link-local
ranges; a *reserved* one is in the "this network", documentation, benchmark, multicast or
future-use ranges; a *bogon* is either. Peers share their LAN addresses in handshakes, and a
client on the same LAN as a server connects to the one that best matches its own.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
import sys
from collections.abc import Sequence

from protomux.encoding import Address

__all__ = ["is_bogon", "is_private", "is_reserved", "local_addresses", "match_address"]

_SIOCGIFADDR = 0x8915  # <linux/sockios.h>


def _octets(host: str) -> bytes | None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return ip.packed


def is_private(host: str) -> bool:
    """Whether ``host`` is a private IPv4 address (IPv6 has none, as JS counts them)."""
    b = _octets(host)
    if b is None or len(b) != 4:
        return False
    return (
        b[0] == 10
        or (b[0] == 100 and 64 <= b[1] <= 127)
        or b[0] == 127
        or (b[0] == 169 and b[1] == 254)
        or (b[0] == 172 and 16 <= b[1] <= 31)
        or (b[0] == 192 and b[1] == 168)
    )


def is_reserved(host: str) -> bool:
    """Whether ``host`` is in a reserved range (IPv6: the unspecified and loopback address,
    and the ranges JS lists)."""
    b = _octets(host)
    if b is None:
        return False
    if len(b) == 4:
        return (
            b[0] == 0
            or (b[0] == 192 and b[1] == 0 and b[2] in (0, 2))
            or (b[0] == 198 and 18 <= b[1] <= 19)
            or (b[0] == 198 and b[1] == 51 and b[2] == 100)
            or (b[0] == 203 and b[1] == 0 and b[2] == 113)
            or b[0] >= 224
        )
    zero8 = b[:8] == bytes(8)
    return (
        (zero8 and b[8:15] == bytes(7) and b[15] <= 1)  # :: and ::1
        or (zero8 and b[8:10] == bytes(2) and b[10] in (0, 0xFF) and b[11] in (0, 0xFF))
        or (b[0] == 1 and b[1:8] == bytes(7))  # 100::/64
        or (b[0] == 0x20 and b[1] == 0x01 and b[2] == 0 and 0x10 <= b[3] <= 0x2F)  # ORCHID
        or (b[0] == 0x20 and b[1] == 0x01 and b[2] == 0x0D and b[3] == 0xB8)  # documentation
        or 0xFC <= b[0] <= 0xFD  # unique local
        or (b[0] == 0xFE and 0x80 <= b[1] <= 0xBF)  # link local
        or b[0] == 0xFF  # multicast
    )


def is_bogon(host: str) -> bool:
    return is_private(host) or is_reserved(host)


def _interface_addresses() -> list[str]:
    """The IPv4 address of each network interface that is not a loopback one (Linux)."""
    if not sys.platform.startswith("linux"):
        return []
    out: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                raw = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue  # no IPv4 address on it
            host = socket.inet_ntoa(raw[20:24])
            if not host.startswith("127."):
                out.append(host)
    return out


def local_addresses(bound: tuple[str, int]) -> list[Address]:
    """The addresses a socket bound to ``bound`` is reachable on from this host's networks:
    itself when bound to 127.0.0.1, else each interface's IPv4 address with its port (or
    127.0.0.1 when there is none)."""
    host, port = bound
    if host == "127.0.0.1":
        return [Address(host, port)]
    addrs = [Address(h, port) for h in _interface_addresses()]
    return addrs or [Address("127.0.0.1", port)]


def match_address(mine: Sequence[Address], theirs: Sequence[Address]) -> Address | None:
    """Of ``theirs``, the address sharing the longest prefix of dotted parts (up to three)
    with one of ``mine``; None when none shares even the first part."""
    if not theirs:
        return None
    best: Address | None = None
    best_parts = 1
    for local in mine:
        a = local.host.split(".")
        for remote in theirs:
            b = remote.host.split(".")
            if a[0] != b[0]:
                continue
            if best_parts == 1:
                best, best_parts = remote, 2
            if len(a) > 1 and len(b) > 1 and a[1] == b[1]:
                if best_parts == 2:
                    best, best_parts = remote, 3
                if len(a) > 2 and len(b) > 2 and a[2] == b[2]:
                    return remote
    return best
