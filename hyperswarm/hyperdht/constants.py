"""Constants of hyperdht (JS hyperdht ``lib/constants.js``, 6.34.0).

:data:`COMMANDS`, :data:`FIREWALL` and :data:`ERROR` are read-only namespaces of ``int``
attributes (``COMMANDS.LOOKUP == 3``). The ``NS_*`` values are the 32-byte hypercore-crypto
namespaces ``namespace("hyperswarm/dht", [command ids])`` that prefix signed messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from hypercore import crypto

__all__ = [
    "BOOTSTRAP_NODES",
    "COMMANDS",
    "DEFAULT_PORT",
    "ERROR",
    "ERROR_SEQ_REUSED",
    "ERROR_SEQ_TOO_LOW",
    "FIREWALL",
    "NS_ANNOUNCE",
    "NS_MUTABLE_PUT",
    "NS_PEER_HANDSHAKE",
    "NS_PEER_HOLEPUNCH",
    "NS_PLUGIN",
    "NS_UNANNOUNCE",
]

DEFAULT_PORT: Final = 49737

#: The public bootstrap nodes, as JS writes them: ``"ip@hostname:port"`` (the address is
#: tried first, the hostname is the fallback).
BOOTSTRAP_NODES: Final[tuple[str, ...]] = (
    "88.99.3.86@node1.hyperdht.org:49737",
    "142.93.90.113@node2.hyperdht.org:49737",
    "138.68.147.8@node3.hyperdht.org:49737",
)


class _Namespace:
    """A read-only set of named ints; iterating gives ``(name, value)`` pairs."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __iter__(self) -> Iterator[tuple[str, int]]:
        for name in dir(type(self)):
            value = getattr(self, name)
            if name.isupper() and type(value) is int:
                yield name, value

    def name_of(self, value: int) -> str | None:
        """The name of ``value``, or None when there is none."""
        for name, v in self:
            if v == value:
                return name
        return None

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v}" for k, v in sorted(self, key=lambda kv: kv[1]))
        return f"{type(self).__name__}({body})"


class Commands(_Namespace):
    """The hyperdht commands on top of dht-rpc (the ``command`` of a request)."""

    __slots__ = ()

    PEER_HANDSHAKE: Final = 0
    PEER_HOLEPUNCH: Final = 1
    FIND_PEER: Final = 2
    LOOKUP: Final = 3
    ANNOUNCE: Final = 4
    UNANNOUNCE: Final = 5
    MUTABLE_PUT: Final = 6
    MUTABLE_GET: Final = 7
    IMMUTABLE_PUT: Final = 8
    IMMUTABLE_GET: Final = 9
    PLUGIN: Final = 10


class Firewall(_Namespace):
    """NAT types, as carried in the ``firewall`` field of noise and holepunch payloads."""

    __slots__ = ()

    UNKNOWN: Final = 0
    OPEN: Final = 1
    CONSISTENT: Final = 2
    RANDOM: Final = 3


class Error(_Namespace):
    """Error codes: of a noise payload's ``error`` (0-3) and of dht-rpc replies (16, 17)."""

    __slots__ = ()

    NONE: Final = 0
    ABORTED: Final = 1
    VERSION_MISMATCH: Final = 2
    TRY_LATER: Final = 3
    SEQ_REUSED: Final = 16
    SEQ_TOO_LOW: Final = 17


COMMANDS: Final = Commands()
FIREWALL: Final = Firewall()
ERROR: Final = Error()

#: Reply error code of a mutable put that reuses the stored seq with another value.
ERROR_SEQ_REUSED: Final = 16
#: Reply error code of a mutable put whose seq is below the stored one.
ERROR_SEQ_TOO_LOW: Final = 17

(
    NS_ANNOUNCE,
    NS_UNANNOUNCE,
    NS_MUTABLE_PUT,
    NS_PEER_HANDSHAKE,
    NS_PEER_HOLEPUNCH,
    NS_PLUGIN,
) = crypto.namespace(
    "hyperswarm/dht",
    [
        Commands.ANNOUNCE,
        Commands.UNANNOUNCE,
        Commands.MUTABLE_PUT,
        Commands.PEER_HANDSHAKE,
        Commands.PEER_HOLEPUNCH,
        Commands.PLUGIN,
    ],
)
