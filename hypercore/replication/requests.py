"""The requests we send: their records, their ids, and which answer fits which request.

Sans-IO: plain records, filled in by :class:`~hypercore.replication.peer.Peer` (which makes
them) and :class:`~hypercore.replication.replicator.Replicator` (which tracks what all peers
have in flight). As JS hypercore ``lib/replicator.js`` (its request objects and
``InflightTracker``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..wire import Data

__all__ = ["OutRequest", "RequestIds", "Requester", "Seek", "matches"]


class Requester(Protocol):
    """The peer a request went to, as far as its record needs it."""

    @property
    def inflight(self) -> dict[int, OutRequest]: ...
    @property
    def remote_seeks(self) -> bool: ...


@dataclass(slots=True, eq=False)
class OutRequest:
    """One request we sent to a peer and that is not answered yet."""

    id: int
    peer: Requester
    block: int | None
    upgrade: bool
    fork: int
    sent_at: float
    upgrade_to: int = 0  # an upgrade request: the remote length it asks for
    reorg: bool = False
    #: A block request may ask for fewer proof nodes than we lack, because an earlier
    #: request to the same peer (``depends``) brings the node it stops at. Its answer waits
    #: in ``depends.waiting`` until that one is verified; if that one fails, it is asked again.
    depends: OutRequest | None = None
    dependents: int = 0
    waiting: list[tuple[OutRequest, Data]] | None = None
    resolved: bool = False  # answered, failed, timed out or its peer left
    verified: bool = False
    hash: int | None = None  # the tree node of a hash request
    seek_of: Seek | None = None


@dataclass(eq=False)
class Seek:
    """A byte offset a session is seeking to while the tree nodes that answer it are
    missing: asked of one peer at a time (a hash request with a seek proof, as JS)."""

    offset: int
    padding: int
    inflight: OutRequest | None = None
    #: Peers that could not answer (asked again once they announce new blocks).
    tried: set[Requester] = field(default_factory=set)


class RequestIds:
    """Request ids of a replicator: from 1 up, freed ids reused (as JS InflightTracker)."""

    __slots__ = ("_free", "_next", "active")

    def __init__(self) -> None:
        self._free: list[int] = []
        self._next = 1
        self.active: dict[int, OutRequest] = {}

    def allocate(self) -> int:
        if self._free:
            return self._free.pop()
        n = self._next
        self._next += 1
        return n

    def release(self, id: int) -> None:
        if self.active.pop(id, None) is not None:
            self._free.append(id)


def matches(req: OutRequest, data: Data) -> bool:
    """Is ``data`` an answer to ``req`` (the block, node, seek and fork it asked for)?"""
    if data.block is not None and data.block.index != req.block:
        return False
    if data.hash is not None and data.hash.index != req.hash:
        return False
    if data.seek is not None:
        sk = req.seek_of
        if sk is None or not req.peer.remote_seeks or data.seek.bytes != sk.offset:
            return False
    if data.block is None and req.block is not None:
        return False
    if data.upgrade is not None and not req.upgrade:
        return False
    return data.fork == req.fork
