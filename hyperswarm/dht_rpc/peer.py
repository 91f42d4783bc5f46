"""Node ids (JS dht-rpc ``lib/peer.js``): the BLAKE2b-256 of a node's 6-byte IPv4 address."""

from __future__ import annotations

import functools
import hashlib
import ipaddress

__all__ = ["encode_address", "node_id"]


def encode_address(host: str, port: int) -> bytes:
    """The 6-byte compact-encoding ``ipv4Address``: 4 address bytes, then the port as u16le."""
    return ipaddress.IPv4Address(host).packed + (port & 0xFFFF).to_bytes(2, "little")


@functools.lru_cache(maxsize=8192)
def node_id(host: str, port: int) -> bytes:
    """The id a node at ``host:port`` must use: ``BLAKE2b-256(ipv4Address(host, port))``.

    Raises ``ValueError`` when ``host`` is not an IPv4 address. Recent answers are cached
    (every reply names up to 20 nodes whose ids are checked).
    """
    return hashlib.blake2b(encode_address(host, port), digest_size=32).digest()
