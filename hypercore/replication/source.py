"""A peer as a source of data for us: what it has, what we ask of it, and its answers
(the downloading half of JS hypercore ``lib/replicator.js`` ``Peer``).

Sans-IO: :class:`Source` is the base of :class:`~hypercore.replication.peer.Peer`, which adds
the channel, what we tell it and what it asks of us. :class:`Requests` is what this half uses
of the replicator: the requests in flight, which all peers of a core share.
"""

from __future__ import annotations

import random
from contextlib import AbstractContextManager
from typing import Any, Protocol

from protomux import Message, Protomux

from .. import flat_tree, merkle, wire
from ..core import Core
from ..errors import HypercoreError
from ..merkle import SeekPending
from ..remote_bitfield import RemoteBitfield
from ..wire import Data, RequestIndex, RequestSeek, RequestUpgrade
from . import limits
from .requests import OutRequest, Seek, matches

__all__ = ["Requests", "Source"]


class Requests(Protocol):
    """What a :class:`Source` uses of its replicator: the requests all peers share."""

    core: Core
    rng: random.Random

    def now(self) -> float:
        """The injected clock (seconds)."""

    def request_id(self) -> int:
        """A free request id (ids are shared by the peers of a core, as JS)."""

    def track(self, req: OutRequest) -> None:
        """``req`` was sent: it owns its id, its block, or the upgrade or fork-proof slot."""

    def active_request(self, id: int) -> OutRequest | None:
        """The request in flight with this id."""

    def in_flight(self, index: int) -> bool:
        """Is block ``index`` being fetched (from any peer)?"""

    @property
    def upgrading(self) -> bool:
        """Is an upgrade request in flight (one at a time)?"""

    @property
    def reorging(self) -> bool:
        """Is a fork proof request in flight?"""

    def clear_request(self, req: OutRequest, *, roundtrip: bool, answered: bool = False) -> None:
        """Forget a request (``roundtrip``: it was answered, its id is free again)."""

    def fail_waiting(self, req: OutRequest) -> None:
        """``req`` brought no verified proof: ask again for what waited on it."""

    def requeue(self, index: int) -> None:
        """Block ``index`` did not arrive: the ranges look at it again."""

    def burst(self, mux: Protomux) -> AbstractContextManager[None]:
        """While verifying a message of ``mux``: what follows waits for the end of its burst."""

    def update_all(self) -> None:
        """Ask every peer for what we want (in random order)."""

    def emit(self, name: str, *args: Any) -> None:
        """Run the core's callbacks for event ``name``."""

    def report_invalid(self, peer: object, error: BaseException) -> None:
        """``peer`` misbehaved: log it and emit ``invalid-data``."""


class Source:
    """What we know a remote has and what we asked of it. The subclass (:class:`Peer`)
    provides the channel: ``mux``, the ``w_request``/``w_want`` senders, ``active`` and
    ``close``."""

    mux: Protomux
    w_request: Message[wire.Request]
    w_want: Message[wire.Want]

    def __init__(self, replicator: Requests) -> None:
        self.replicator: Requests = replicator
        self.remote_fork = 0
        self.remote_length = 0
        self.remote_can_upgrade = False
        self.remote_has_manifest = False
        self.remote_seeks = False
        self.length_acked = 0
        self.remote_contiguous = 0
        self.remote_bits = RemoteBitfield()  # what it told us it has, past remote_contiguous
        self.inflight: dict[int, OutRequest] = {}
        self.wants_sent: set[int] = set()
        self.invalid_answers = 0
        #: The remote length it failed to prove to us (an upgrade request timed out or was
        #: refused): asked again only after REQUEST_TIMEOUT (``upgrade_retry_at``), and
        #: updates do not wait for it, until it syncs another length.
        self.failed_upgrade = -1
        self.upgrade_retry_at = 0.0
        #: Blocks not to ask this peer for until the time given (it timed out on them or
        #: said it lacks them): a back-off, never a verdict.
        self.avoid: dict[int, float] = {}
        self.paused_until = 0.0  # no block requests before this (see back_off)

    @property
    def active(self) -> bool:
        raise NotImplementedError

    def close(self, error: BaseException | None = None) -> None:
        raise NotImplementedError

    @property
    def full(self) -> bool:
        """It has as many of our requests as it may (MAX_INFLIGHT)."""
        return len(self.inflight) >= limits.MAX_INFLIGHT

    def has_block(self, index: int) -> bool:
        if index in self.avoid:
            return False
        return index < self.remote_contiguous or self.remote_bits.get(index)

    def back_off(self, index: int, seconds: float) -> None:
        """Do not ask this peer for block ``index`` for ``seconds`` (for any block, when it
        already has MAX_AVOIDED back-offs: JS pauses such a peer too)."""
        until = self.replicator.now() + seconds
        if index in self.avoid or len(self.avoid) < limits.MAX_AVOIDED:
            self.avoid[index] = until
        else:
            self.paused_until = max(self.paused_until, until)

    def _request(self, *, block: int | None, upgrade: bool) -> OutRequest:
        rep = self.replicator
        req = OutRequest(rep.request_id(), self, block, upgrade, self.remote_fork, rep.now())
        if upgrade:
            req.upgrade_to = self.remote_length
        return req

    def _send(self, req: OutRequest, m: wire.Request) -> None:
        self.inflight[req.id] = req
        self.replicator.track(req)
        self.w_request.send(m)

    def offers_upgrade(self) -> bool:
        """It has a longer tree on our fork and told us it can prove it to us."""
        head = self.replicator.core.head
        return (
            self.remote_can_upgrade
            and self.remote_fork == head.fork
            and self.remote_length > head.length
            and self.length_acked == head.length
        )

    def _should_upgrade(self) -> bool:
        """Ask it for its longer tree now? (Not while backing off from a failure.)"""
        return self.offers_upgrade() and (
            self.failed_upgrade != self.remote_length
            or self.replicator.now() >= self.upgrade_retry_at
        )

    def maybe_upgrade(self) -> None:
        if self.replicator.upgrading or not self._should_upgrade():
            return
        core = self.replicator.core
        head = core.head
        req = self._request(block=None, upgrade=True)
        self._send(
            req,
            wire.Request(
                id=req.id,
                fork=self.remote_fork,
                upgrade=RequestUpgrade(head.length, self.remote_length - head.length),
                manifest=core.manifest is None,
            ),
        )

    def maybe_follow_fork(self) -> None:
        """It is on a newer fork: ask it for the new tree (JS ``_requestForkProof``)."""
        core = self.replicator.core
        if (
            core.writable
            or self.replicator.reorging
            or self.remote_length == 0
            or self.remote_fork <= core.head.fork
        ):
            return
        req = self._request(block=None, upgrade=True)
        req.reorg = True
        self._send(
            req,
            wire.Request(
                id=req.id,
                fork=self.remote_fork,
                upgrade=RequestUpgrade(0, self.remote_length),
                manifest=core.manifest is None,
            ),
        )

    def request_seek(self, sk: Seek) -> None:
        """Ask it for what a pending seek lacks (as JS ``_requestSeek``): past our length,
        an upgrade with the seek; inside our tree, a hash request for a block of the range
        the answer lies in, reaching up to that range's subtree, with the seek."""
        rep = self.replicator
        core = rep.core
        if self in sk.tried or self.remote_fork != core.head.fork:
            return
        found = merkle.seek(core, core.head, sk.offset, sk.padding)
        if not isinstance(found, SeekPending):
            return  # answered locally: the session sees it
        seek = RequestSeek(sk.offset, sk.padding) if self.remote_seeks else None
        length = core.head.length
        start, end = found.start, found.end
        if start >= length:
            if rep.upgrading or not self._should_upgrade():
                return  # the upgrade under way (or none) comes first
            req = self._request(block=None, upgrade=True)
            upgrade = RequestUpgrade(length, self.remote_length - length)
            self._send_seek(sk, req, seek, upgrade=upgrade, manifest=core.manifest is None)
            return
        if start >= end or end > self.remote_length:
            return  # its tree cannot prove that subtree to us
        span = end - start
        first = rep.rng.randrange(span)
        for k in range(min(span, limits.SCAN_LIMIT)):
            index = start + (first + k) % span
            if not self.has_block(index):
                continue
            if core.bitfield.get(index) or rep.in_flight(index):
                continue
            req = self._request(block=None, upgrade=False)
            req.hash = 2 * index
            self._send_seek(
                sk,
                req,
                seek,
                hash=RequestIndex(2 * index, flat_tree.depth(start + end - 1)),
                manifest=core.manifest is None and self.remote_has_manifest,
            )
            return
        self.maybe_want(start)

    def _send_seek(
        self,
        sk: Seek,
        req: OutRequest,
        seek: RequestSeek | None,
        *,
        manifest: bool,
        hash: RequestIndex | None = None,
        upgrade: RequestUpgrade | None = None,
    ) -> None:
        req.seek_of = sk
        sk.inflight = req
        self._send(
            req,
            wire.Request(
                id=req.id,
                fork=self.remote_fork,
                hash=hash,
                seek=seek,
                upgrade=upgrade,
                manifest=manifest,
            ),
        )

    def maybe_want(self, index: int) -> None:
        """Ask it (once per 2^21-block batch) which blocks of ``index``'s batch it has."""
        if index < self.remote_contiguous:
            return
        batch = index // limits.WANT_BATCH
        if batch in self.wants_sent or len(self.wants_sent) >= 64:
            return
        self.wants_sent.add(batch)
        size = limits.WANT_BATCH
        self.w_want.send(wire.Want(start=batch * size, length=size, any=False))

    def request_block(
        self, index: int, priority: int, promised: dict[int, OutRequest] | None = None
    ) -> bool:
        """Ask it for a block; False if its tree or fork cannot prove it to us. ``promised``:
        the tree nodes that the proofs already asked of it (in this scheduling pass) will
        store, and by which request; the proof asked for stops at the first of them, and
        depends on that request."""
        core = self.replicator.core
        length = core.head.length
        if self.remote_fork != core.head.fork or index >= self.remote_length:
            return False
        nodes, dep = merkle.missing_nodes_until(core, 2 * index, length, promised)
        if self.remote_length < length and not _within(2 * index, nodes, self.remote_length):
            return False  # its tree is too short to prove this block to us
        req = self._request(block=index, upgrade=False)
        if dep is not None:
            req.depends = dep
            dep.dependents += 1
        if promised is not None:
            # Verified all the way up, its proof stores the path and the sibling hashes up
            # to ``nodes`` levels above the block.
            ite = flat_tree.Iterator(2 * index)
            promised[ite.index] = req
            for _ in range(nodes):
                promised[ite.sibling()] = req
                promised[ite.parent()] = req
        self._send(
            req,
            wire.Request(
                id=req.id,
                fork=core.head.fork,
                block=RequestIndex(index, nodes),
                manifest=core.manifest is None and self.remote_has_manifest,
                priority=priority,
            ),
        )
        return True

    # --- incoming: its answers ----------------------------------------------------------------

    def _on_data(self, data: Data, channel: object) -> None:
        if not self.active:
            return
        rep = self.replicator
        req = rep.active_request(data.request) if data.request else None
        if req is None or req.peer is not self:
            return  # unsolicited (push) or late: we do not take pushes
        if not matches(req, data):
            # Not what we asked for: treat it as "not available" (as JS does), and drop a
            # peer that keeps doing it.
            rep.clear_request(req, roundtrip=True)
            self._not_available(req)
            self.invalid_answers += 1
            if self.invalid_answers >= limits.MAX_INVALID_REQUESTS:
                err = HypercoreError("peer keeps answering with data we did not ask for")
                rep.report_invalid(self, err)
                self.close(err)
            rep.update_all()
            return
        dep = req.depends
        if dep is not None and not dep.verified:
            if not dep.resolved:  # the proof it relies on has not come yet: wait for it
                if dep.waiting is None:
                    dep.waiting = []
                dep.waiting.append((req, data))
                return
            # That proof failed, so this one cannot be checked: not the peer's fault.
            rep.clear_request(req, roundtrip=True)
            rep.update_all()
            return
        rep.clear_request(req, roundtrip=True, answered=True)
        try:
            with rep.burst(self.mux):
                if req.reorg:
                    ok = rep.core.reorg(data)
                else:
                    # A proof others rely on is checked all the way up, so that it stores
                    # every node they expect.
                    ok = rep.core.verify(data, defer=True, stop_at_stored=not req.dependents)
        except HypercoreError as e:
            if req.block is not None:
                rep.requeue(req.block)
            rep.fail_waiting(req)
            rep.report_invalid(self, e)
            self.close(e)
            rep.update_all()
            return
        if not ok:  # another fork: nothing was stored
            if req.block is not None:
                rep.requeue(req.block)
            rep.fail_waiting(req)
            self._not_available(req)
            rep.update_all()
            return
        req.verified = True
        if data.block is not None:  # stored; the core's hook already moved things on
            size = len(data.block.value) - rep.core.padding
            rep.emit("download", data.block.index, size, self)
        waiting = req.waiting
        if waiting:
            req.waiting = None
            for r, d in waiting:
                if rep.active_request(r.id) is r and self.active:
                    self._on_data(d, channel)

    def _on_no_data(self, m: wire.NoData, channel: object) -> None:
        rep = self.replicator
        req = rep.active_request(m.request) if m.request else None
        if req is None or req.peer is not self:
            return
        rep.clear_request(req, roundtrip=True)
        self._not_available(req)
        rep.update_all()

    def _not_available(self, req: OutRequest) -> None:
        """It does not have the block now (truncated, cleared, on another fork, a stale
        answer, or it misbehaves): back off from asking it for that block, as JS does. What
        it announced stays known: a ``range`` with ``drop`` is how a peer says it lost blocks."""
        if req.seek_of is not None:
            req.seek_of.tried.add(self)
        if req.block is not None:
            self.back_off(req.block, limits.NOT_AVAILABLE_BACKOFF)
        if req.upgrade and not req.reorg:
            self.upgrade_failed(req)

    def upgrade_failed(self, req: OutRequest) -> None:
        self.failed_upgrade = req.upgrade_to
        self.upgrade_retry_at = self.replicator.now() + limits.REQUEST_TIMEOUT


def _within(index: int, nodes: int, remote_length: int) -> bool:
    """Does the node ``nodes`` levels above ``index`` (the first one we store) lie inside a
    tree of ``remote_length`` blocks?"""
    top = index
    for _ in range(nodes):
        top = flat_tree.parent(top)
    _, right = flat_tree.spans(top)
    return right < 2 * remote_length
