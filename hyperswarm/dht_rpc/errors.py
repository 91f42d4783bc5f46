"""Errors of :mod:`hyperswarm.dht_rpc`: one root, one subclass per code.

Which side is at fault:

- the peer: :class:`DHTDecodeError` (also a ``ValueError``), a datagram that is not a dht-rpc
  packet (the node drops it); a peer that answers with an error code does not raise at all:
  the reply carries ``error`` (:data:`UNKNOWN_COMMAND`, :data:`INVALID_TOKEN`, or a code of the
  application, as HyperDHT's 16 and 17);
- the network: :class:`RequestTimeoutError`, a request that got no answer after its retries;
- the caller: :class:`RequestDestroyedError`, :class:`IOSuspendedError`,
  :class:`NodeDestroyedError`, a request cut short by the node's own state, and
  :class:`QueryError`, a query or commit that could not reach enough nodes.

The codes are the JS dht-rpc ``DHTError`` codes where it has one.
"""

from __future__ import annotations

__all__ = [
    "INVALID_TOKEN",
    "UNKNOWN_COMMAND",
    "DHTDecodeError",
    "DHTError",
    "IOSuspendedError",
    "NodeDestroyedError",
    "QueryError",
    "RequestDestroyedError",
    "RequestTimeoutError",
]

#: Error code of a reply to a command the node does not know.
UNKNOWN_COMMAND = 1
#: Error code of a reply to a request whose write token is not valid (a fresh one comes along).
INVALID_TOKEN = 2


class DHTError(Exception):
    """Root of the dht-rpc errors."""

    code = "DHT_ERROR"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message if message is not None else self._default_message())

    @classmethod
    def _default_message(cls) -> str:
        return cls.code


class DHTDecodeError(DHTError, ValueError):
    """A datagram that is not a well-formed dht-rpc packet (a peer's garbage; it is dropped)."""

    code = "DECODE_ERROR"


class RequestTimeoutError(DHTError):
    """A request got no reply after all its retries."""

    code = "REQUEST_TIMEOUT"

    @classmethod
    def _default_message(cls) -> str:
        return "Request timed out"


class RequestDestroyedError(DHTError):
    """A request was cancelled before a reply came (its node or query went away)."""

    code = "REQUEST_DESTROYED"

    @classmethod
    def _default_message(cls) -> str:
        return "Request destroyed"


class IOSuspendedError(DHTError):
    """A request was cancelled because the node was suspended."""

    code = "IO_SUSPENDED"

    @classmethod
    def _default_message(cls) -> str:
        return "I/O suspended"


class NodeDestroyedError(DHTError):
    """The node is closed (or not open yet): it cannot send requests or run queries."""

    code = "NODE_DESTROYED"

    @classmethod
    def _default_message(cls) -> str:
        return "Node destroyed"


class QueryError(DHTError):
    """A query or its commit could not complete (too few nodes answered, no token)."""

    code = "QUERY_FAILED"
