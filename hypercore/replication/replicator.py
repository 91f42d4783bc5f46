"""What the peers of one core share (JS hypercore ``lib/replicator.js`` ``Replicator``): the
ranges being downloaded, the blocks :meth:`Hypercore.get` waits for, the seeks, the request
ids, which block is being fetched from whom, the one upgrade and fork proof in flight, and
which peer is asked for what.

Sans-IO: it is the core's :class:`~hypercore.core.CoreListener` and runs from the core's
hooks and the peers' message callbacks; time comes from the injected ``clock``, peer order
from the injected ``rng``. Its waiters wait on the core (:meth:`Core.wait_changed`), which it
wakes (:meth:`Replicator.notify`). The Trio side is :mod:`hypercore.replication.stream`.
"""

from __future__ import annotations

import bisect
import logging
import random
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from protomux import Protomux

from ..core import Core
from ..errors import RequestCancelledError
from ..extensions import Extensions
from ..storage import StorageError
from . import limits
from .peer import Peer
from .requests import OutRequest, RequestIds, Seek

__all__ = ["Download", "Replicator"]

log = logging.getLogger("hypercore.replicator")


class Download:
    """A range being downloaded (:meth:`Hypercore.download`); ``end=None`` follows the core
    as it grows; or a list of ``blocks``. ``await done()`` returns once every block is
    stored (never, for a live range, until cancelled); ``cancel()`` stops it."""

    def __init__(
        self,
        replicator: Replicator,
        start: int,
        end: int | None,
        blocks: Iterable[int] | None = None,
    ) -> None:
        self._replicator = replicator
        self.start = start
        self.end = end
        #: For a list download: its blocks in order; those before ``cursor`` are stored.
        self.blocks: list[int] | None = None if blocks is None else sorted(set(blocks))
        self.cursor = start if blocks is None else 0
        # Every block of [cursor, requested) is stored or being requested: scans start here,
        # or at ``resume``, where the last scan stopped (at its SCAN_LIMIT, or a peer's
        # MAX_INFLIGHT): the next goes on from there, so blocks far past a block nobody has
        # are reached too; a scan that reaches the end makes the next start over.
        self.requested = start
        self.resume = 0
        self.cancelled = False
        self._finished = False

    @property
    def completed(self) -> bool:
        """Every block is stored, or the download was cancelled."""
        return self._finished

    def _finish(self) -> None:
        self._finished = True
        self._replicator._remove_download(self)

    def _check(self) -> None:
        if self._finished:
            return
        bitfield = self._replicator.core.bitfield
        if self.blocks is not None:
            blocks = self.blocks
            while self.cursor < len(blocks) and bitfield.get(blocks[self.cursor]):
                self.cursor += 1
            if self.cursor == len(blocks):
                self._finish()
            return
        if self.end is None:
            return
        # The cursor is the first block not stored (at or after start): it only moves back
        # when the core is truncated (see Replicator.on_truncate).
        self.cursor = bitfield.first_unset(self.cursor)
        if self.cursor >= self.end:
            self._finish()

    def rewind(self, index: int) -> None:
        """Blocks from ``index`` on may no longer be stored: look at them again."""
        if self.blocks is not None:
            self.cursor = min(self.cursor, bisect.bisect_left(self.blocks, index))
        else:
            self.cursor = self.requested = min(self.cursor, index)

    async def done(self) -> None:
        """Wait until every block of the range is stored; raises ``REQUEST_CANCELLED`` if the
        range was cancelled first. (The replicator wakes the core's waiters after a range
        completes, and on cancel.)"""
        core = self._replicator.core
        await core.wait_until(lambda: self._finished)
        if self.cancelled:
            raise RequestCancelledError(discovery_key=core.discovery_key)

    def cancel(self) -> None:
        if self._finished:
            return
        self.cancelled = True
        self._finish()
        self._replicator.notify()


class Replicator:
    """Replication state of one core: its peers, what we want and what is in flight.

    The public surface its peers use is :class:`~hypercore.replication.peer.Shared`;
    sessions use ``want_block``/``unwant_block``, ``download``, ``add_seek``/``remove_seek``,
    ``upgrade_pending``, ``peers`` and ``extensions``.
    """

    def __init__(
        self, core: Core, *, clock: Callable[[], float], rng: random.Random | None = None
    ) -> None:
        self.core = core
        self.now = clock
        self.rng = rng if rng is not None else random.Random()
        self.peers: list[Peer] = []
        self.downloading = True
        #: Registered extensions by name (see :mod:`hypercore.extensions`).
        self.extensions = Extensions(self.peers)
        self._ids = RequestIds()
        self._block_wants: dict[int, int] = {}
        self._fetching: dict[int, OutRequest] = {}  # block -> the request fetching it
        self._upgrade_inflight: OutRequest | None = None
        self._reorg_inflight: OutRequest | None = None
        self._downloads: list[Download] = []
        self._seeks: list[Seek] = []
        #: The muxes we have a channel on (one per mux, see ``attach``).
        self.muxes: weakref.WeakSet[Protomux] = weakref.WeakSet()
        #: The mux whose message is being verified: the rest waits for the end of its burst.
        self._burst_mux: Protomux | None = None

    # --- peers -------------------------------------------------------------------------------

    def add_peer(self, peer: Peer) -> None:
        self.peers.append(peer)
        self.emit("peer-add", peer)
        self.notify()
        self.update_peer(peer)

    def remove_peer(self, peer: Peer) -> None:
        if peer in self.peers:
            self.peers.remove(peer)
        self.muxes.discard(peer.mux)
        for r in list(peer.inflight.values()):
            self.clear_request(r, roundtrip=False)
        self.emit("peer-remove", peer)
        self.notify()
        self.update_all()

    def detach(self, peer: Peer) -> None:
        self.muxes.discard(peer.mux)

    def close(self) -> None:
        for peer in list(self.peers):
            peer.close()
        for d in list(self._downloads):
            d.cancel()

    def emit(self, name: str, *args: Any) -> None:
        self.core.emit(name, *args)

    def notify(self) -> None:
        self.core.notify()

    def report_invalid(self, peer: object, error: BaseException) -> None:
        log.warning("dropping peer %r of core %s: %s", peer, self.core.discovery_key.hex(), error)
        self.emit("invalid-data", error, peer)

    # --- hooks from the core (CoreListener) ----------------------------------------------------

    def on_append(self, start: int, length: int) -> None:
        """Our own appends: tell every peer about the new length and blocks."""
        for peer in self.peers:
            peer.appended(start, length)
        self._after_change()

    def on_verified(self, index: int, upgraded: bool) -> None:
        """A proof was verified and stored: sync the peers if the tree grew, announce the
        block (``index``, or -1) where it helps, then go on downloading."""
        if upgraded:
            for peer in self.peers:
                peer.signal_upgrade()
        if index >= 0:
            for peer in self.peers:
                peer.announce(index)
        mux = self._burst_mux
        if mux is not None:
            mux.defer(self._end_of_burst)
        else:
            self._after_change()

    @contextmanager
    def burst(self, mux: Protomux) -> Iterator[None]:
        """While a message of ``mux`` is verified: what it verifies goes on at the end of the
        mux's burst of messages (written together, then the next requests)."""
        self._burst_mux = mux
        try:
            yield
        finally:
            self._burst_mux = None

    def _end_of_burst(self) -> None:
        """After a burst of ``data`` messages: write them, then ask for more (the requests
        to each peer go out as one batch)."""
        try:
            self.core.flush()
        except StorageError as e:
            # Our disk refused the write (full, or failing): stop taking data, as JS pauses
            # its peers on WRITE_FAILED; the core stays open for what it has.
            log.error("core %s: cannot store what peers sent: %s", self.core.discovery_key.hex(), e)
            for peer in list(self.peers):
                peer.close(e)
            return
        for d in list(self._downloads):
            d._check()
        self.notify()
        peers = list(self.peers)
        if len(peers) > 1:
            self.rng.shuffle(peers)
        for peer in peers:
            if peer.active:
                with peer.mux.corked():
                    self.update_peer(peer)

    def on_clear(self, start: int, end: int) -> None:
        """Blocks were dropped locally: tell the peers, and look at them again in ranges."""
        for d in self._downloads:
            d.rewind(start)
        for peer in self.peers:
            peer.send_range(start, end - start, drop=True)

    def on_truncate(self, length: int, old_length: int) -> None:
        for d in self._downloads:
            d.rewind(length)
        for peer in self.peers:
            peer.truncated(length, old_length)
        self._after_change()

    def _after_change(self) -> None:
        for d in list(self._downloads):
            d._check()
        self.notify()
        self.update_all()

    # --- what we want (for sessions) ---------------------------------------------------------

    def want_block(self, index: int) -> None:
        self._block_wants[index] = self._block_wants.get(index, 0) + 1
        self.update_all()

    def unwant_block(self, index: int) -> None:
        n = self._block_wants.get(index, 0) - 1
        if n <= 0:
            self._block_wants.pop(index, None)
        else:
            self._block_wants[index] = n

    def download(
        self, start: int = 0, end: int | None = None, blocks: Iterable[int] | None = None
    ) -> Download:
        d = Download(self, start, end, blocks)
        self._downloads.append(d)
        d._check()
        self.update_all()
        return d

    def _remove_download(self, d: Download) -> None:
        if d in self._downloads:
            self._downloads.remove(d)

    def add_seek(self, offset: int, padding: int) -> Seek:
        """Ask peers for the tree nodes that resolve a seek to byte ``offset``."""
        sk = Seek(offset, padding)
        self._seeks.append(sk)
        self.update_all()
        return sk

    def remove_seek(self, sk: Seek) -> None:
        if sk in self._seeks:
            self._seeks.remove(sk)

    def seeks_to_retry(self, peer: Peer) -> None:
        for sk in self._seeks:
            sk.tried.discard(peer)

    def upgrade_pending(self) -> bool:
        """Could a peer still give us a longer tree (an update should wait)?"""
        head = self.core.head
        if self._upgrade_inflight is not None or self._reorg_inflight is not None:
            return True
        for peer in self.peers:
            if not peer.remote_synced and not peer.sync_overdue:
                return True
            if (
                peer.remote_fork == head.fork
                and peer.offers_upgrade()
                and peer.failed_upgrade != peer.remote_length
            ):
                return True
            if peer.remote_fork > head.fork and not self.core.writable and peer.remote_length:
                return True
        return False

    # --- requests in flight (for peers) ------------------------------------------------------

    def request_id(self) -> int:
        return self._ids.allocate()

    def track(self, req: OutRequest) -> None:
        self._ids.active[req.id] = req
        if req.block is not None:
            self._fetching[req.block] = req
        if req.reorg:
            self._reorg_inflight = req
        elif req.upgrade:
            self._upgrade_inflight = req

    def active_request(self, id: int) -> OutRequest | None:
        return self._ids.active.get(id)

    def in_flight(self, index: int) -> bool:
        return index in self._fetching

    @property
    def upgrading(self) -> bool:
        return self._upgrade_inflight is not None

    @property
    def reorging(self) -> bool:
        return self._reorg_inflight is not None

    def clear_request(self, req: OutRequest, *, roundtrip: bool, answered: bool = False) -> None:
        """Forget a request; unless it was ``answered`` with its block, the block goes back
        to the downloads' queue. ``roundtrip``: the peer answered, so its id is free again."""
        req.peer.inflight.pop(req.id, None)
        req.resolved = True
        if not answered and req.waiting:
            self.fail_waiting(req)
        if req.block is not None and self._fetching.get(req.block) is req:
            del self._fetching[req.block]
            if not answered:
                self.requeue(req.block)
        if req.seek_of is not None and req.seek_of.inflight is req:
            req.seek_of.inflight = None
        if self._upgrade_inflight is req:
            self._upgrade_inflight = None
        if self._reorg_inflight is req:
            self._reorg_inflight = None
        if roundtrip:
            self._ids.release(req.id)
        else:
            # An id the remote may still answer is not reused (a late answer is ignored).
            self._ids.active.pop(req.id, None)

    def fail_waiting(self, req: OutRequest) -> None:
        """``req`` brought no verified proof: the answers waiting on it cannot be checked,
        so their blocks are asked for again."""
        waiting = req.waiting
        req.waiting = None
        for r, _ in waiting or ():
            if self._ids.active.get(r.id) is r:
                self.clear_request(r, roundtrip=True)

    def requeue(self, index: int) -> None:
        """A requested block did not arrive: the ranges must look at it again."""
        for d in self._downloads:
            d.requested = min(d.requested, index)

    # --- scheduling: who is asked for what ---------------------------------------------------

    def update_all(self) -> None:
        peers = list(self.peers)
        if len(peers) > 1:
            self.rng.shuffle(peers)  # spread requests; no peer is always asked first
        for peer in peers:
            self.update_peer(peer)

    def update_peer(self, peer: Peer) -> None:
        """Ask ``peer`` for what we want of it. Reading our tree may fail (a damaged row):
        that closes this peer's channel (logged), never the caller's task."""
        try:
            self._update_peer(peer)
        except StorageError as e:
            log.error("closing %r: storage of core %s failed: %s", peer, peer.dkey(), e)
            peer.close(e)

    def _update_peer(self, peer: Peer) -> None:
        if not peer.active or not peer.remote_uploading:
            return
        if self.core.closed:
            return
        if peer.remote_fork > self.core.head.fork:
            peer.maybe_follow_fork()
        # Seeks first (as JS): one past our length goes out as the upgrade request.
        for sk in self._seeks:
            if sk.inflight is None and not peer.full:
                peer.request_seek(sk)
        peer.maybe_upgrade()
        if peer.full or peer.paused_until:
            return
        if self._block_wants:
            self._request_listed(peer, list(self._block_wants), priority=1)
        for d in list(self._downloads):
            if peer.full:
                break
            self._request_range(peer, d)

    def _request_listed(self, peer: Peer, indices: Iterable[int], priority: int) -> None:
        """Ask ``peer`` for the blocks of ``indices`` (those wanted by get(), or a
        download's list) that are neither stored nor in flight."""
        core = self.core
        promised: dict[int, OutRequest] = {}
        for index in indices:
            if peer.full:
                return
            if core.bitfield.get(index) or index in self._fetching:
                continue
            if index >= core.head.length:
                continue  # the upgrade comes first
            if peer.has_block(index):
                peer.request_block(index, priority, promised=promised)
            else:
                peer.maybe_want(index)

    def _request_range(self, peer: Peer, d: Download) -> None:
        if d.blocks is not None:
            blocks = d.blocks
            self._request_listed(
                peer, (blocks[i] for i in range(d.cursor, len(blocks))), priority=0
            )
            return
        bitfield = self.core.bitfield
        length = self.core.head.length
        end = length if d.end is None else min(d.end, length)
        d.cursor = bitfield.first_unset(d.cursor)
        i = max(d.cursor, d.requested)
        unbroken = True  # every block of [requested, i) is stored or in flight
        if d.resume > i:
            i = d.resume
            unbroken = False
        looked = 0
        asked = False
        promised: dict[int, OutRequest] = {}
        while i < end and not peer.full and looked < limits.SCAN_LIMIT:
            looked += 1
            if bitfield.get(i):
                i = bitfield.first_unset(i)
            elif i in self._fetching:
                i += 1
            elif peer.has_block(i):
                if not peer.request_block(i, priority=0, promised=promised):
                    break  # its tree or fork does not allow this block, nor later ones
                i += 1
            else:
                if not asked:
                    asked = True
                    peer.maybe_want(i)
                unbroken = False
                i += 1
            if unbroken:
                d.requested = i
        d.resume = i if i < end else 0  # at the end: the next scan starts over
