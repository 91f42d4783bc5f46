"""The hypercore replication protocol (``hypercore/alpha`` channels over Protomux).

One :class:`Replicator` per open core (shared by its sessions) and one :class:`Peer` per
channel, wire-compatible with JS hypercore 11.37.1 (``lib/replicator.js``). What it does:

* on channel open: check the remote's capability (it proves the remote knows the core key,
  bound to this secret-stream), send ``sync`` and a ``range`` for our contiguous prefix;
* serve ``request``s with proofs (:meth:`Core.proof`), ``noData`` when we cannot, and
  answer ``want`` with ``range``/``bitfield``; requests wait while the mux is not drained,
  and a peer may only queue :data:`MAX_QUEUED_REQUESTS` of them;
* download: upgrades eagerly (any peer with a longer tree that can prove it to us), blocks
  that :meth:`Hypercore.get` waits for, and the ranges of :meth:`Hypercore.download`, spread
  over the peers that have them (learned from ``range``/``bitfield``; asked with ``want``),
  at most :data:`MAX_INFLIGHT` requests per peer;
* every ``data`` message is verified (:meth:`Core.verify`: Merkle proof and signature)
  before anything is stored; a peer whose data does not verify, or who floods us with
  requests, is dropped (its channel closes) and reported (``invalid-data`` event);
* requests unanswered for :data:`REQUEST_TIMEOUT` seconds are cancelled and sent elsewhere.

The decisions are plain synchronous code run from the Protomux callbacks; the only task is a
per-peer watchdog for request timeouts.
"""

from __future__ import annotations

import bisect
import logging
import random
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import trio

from protomux import Channel, Protomux

from . import crypto, flat_tree, merkle, wire
from .errors import (
    BlockNotAvailableError,
    HypercoreError,
    InvalidCapabilityError,
    RequestCancelledError,
)
from .merkle import SeekPending
from .remote_bitfield import MAX_INDEX, RemoteBitfield
from .storage import StorageError
from .wire import Data, RequestIndex, RequestSeek, RequestUpgrade

if TYPE_CHECKING:
    from .core import Core
    from .extensions import Extension

__all__ = [
    "MAX_INFLIGHT",
    "MAX_QUEUED_REQUESTS",
    "PROTOCOL",
    "REQUEST_TIMEOUT",
    "Download",
    "Peer",
    "ReplicationStream",
    "Replicator",
    "mux_for_stream",
]

log = logging.getLogger("hypercore.replicator")

PROTOCOL = "hypercore/alpha"
ALIASES = ("hypercore",)
MAX_INFLIGHT = 48  # JS: min(512, 16 * 3) on a non-UDX stream
MAX_QUEUED_REQUESTS = 4096  # requests a peer may have waiting for the mux to drain
MAX_INVALID_REQUESTS = 64
REQUEST_TIMEOUT = 20.0
LAST_BLOCKS = 256  # single new blocks are announced to peers that did not ask, near the head
WANT_BATCH = 1 << 21  # JS wants.js batch (compat mode)
BITFIELD_CHUNK = 32768  # bits per bitfield message (one storage page)
SCAN_LIMIT = 8192  # bitfield positions looked at per scheduling step of one range
MAX_AVOIDED = 4096  # blocks a peer is not asked for again for a while (see Peer.avoid)
#: A block a peer said it lacks (``no_data``) is asked of it again after this many seconds
#: (JS backs off too; forgetting what the peer announced would stall a download for good).
NOT_AVAILABLE_BACKOFF = 2.0
#: How often a peer's watchdog looks for late requests and expired back-offs.
WATCHDOG_TICK = 1.0
#: Wants of a peer waiting to be answered while the stream is not drained (then it is dropped).
MAX_QUEUED_WANTS = 1024


class ReplicationStream(Protocol):
    """What replication needs of a stream: an authenticated message stream (a SecretStream)."""

    @property
    def is_initiator(self) -> bool: ...
    @property
    def handshake_hash(self) -> bytes: ...
    @property
    def remote_public_key(self) -> bytes: ...

    async def send(self, value: bytes, /) -> None: ...
    async def receive(self) -> bytes: ...
    async def aclose(self) -> None: ...


@dataclass(slots=True, eq=False)
class _OutRequest:
    id: int
    peer: Peer
    block: int | None
    upgrade: bool
    fork: int
    sent_at: float
    upgrade_to: int = 0  # an upgrade request: the remote length it asks for
    reorg: bool = False
    #: A block request may ask for fewer proof nodes than we lack, because an earlier
    #: request to the same peer (``depends``) brings the node it stops at. Its answer waits
    #: in ``depends.waiting`` until that one is verified; if that one fails, it is asked again.
    depends: _OutRequest | None = None
    dependents: int = 0
    waiting: list[tuple[_OutRequest, Data]] | None = None
    resolved: bool = False  # answered, failed, timed out or its peer left
    verified: bool = False
    hash: int | None = None  # the tree node of a hash request
    seek_of: _Seek | None = None


@dataclass(eq=False)
class _Seek:
    """A byte offset a session is seeking to while the tree nodes that answer it are
    missing: asked of one peer at a time (a hash request with a seek proof, as JS)."""

    offset: int
    padding: int
    inflight: _OutRequest | None = None
    #: Peers that could not answer (asked again once they announce new blocks).
    tried: set[Peer] = field(default_factory=set)


class _Ids:
    """Request ids of a replicator: from 1 up, freed ids reused (as JS InflightTracker)."""

    __slots__ = ("_free", "_next", "active")

    def __init__(self) -> None:
        self._free: list[int] = []
        self._next = 1
        self.active: dict[int, _OutRequest] = {}

    def allocate(self) -> int:
        if self._free:
            return self._free.pop()
        n = self._next
        self._next += 1
        return n

    def release(self, id: int) -> None:
        if self.active.pop(id, None) is not None:
            self._free.append(id)


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
        self._done = trio.Event()

    @property
    def completed(self) -> bool:
        return self._done.is_set()

    def _check(self) -> None:
        if self._done.is_set():
            return
        bitfield = self._replicator.state.bitfield
        if self.blocks is not None:
            blocks = self.blocks
            while self.cursor < len(blocks) and bitfield.get(blocks[self.cursor]):
                self.cursor += 1
            if self.cursor == len(blocks):
                self._done.set()
                self._replicator._remove_download(self)
            return
        if self.end is None:
            return
        # The cursor is the first block not stored (at or after start): it only moves back
        # when the core is truncated (see Replicator.on_truncate).
        self.cursor = bitfield.first_unset(self.cursor)
        if self.cursor >= self.end:
            self._done.set()
            self._replicator._remove_download(self)

    def rewind(self, index: int) -> None:
        """Blocks from ``index`` on may no longer be stored: look at them again."""
        if self.blocks is not None:
            self.cursor = min(self.cursor, bisect.bisect_left(self.blocks, index))
        else:
            self.cursor = self.requested = min(self.cursor, index)

    async def done(self) -> None:
        """Wait until every block of the range is stored; raises ``REQUEST_CANCELLED`` if the
        range was cancelled first."""
        await self._done.wait()
        if self.cancelled:
            raise RequestCancelledError(discovery_key=self._replicator.state.discovery_key)

    def cancel(self) -> None:
        if self._done.is_set():
            return
        self.cancelled = True
        self._replicator._remove_download(self)
        self._done.set()


class Peer:
    """One remote on one ``hypercore/alpha`` channel."""

    def __init__(self, replicator: Replicator, mux: Protomux, stream: ReplicationStream) -> None:
        self.replicator = replicator
        self.mux = mux
        self.stream = stream
        self.remote_public_key: bytes | None = getattr(stream, "remote_public_key", None)
        self.remote_opened = False
        self.removed = False
        self.remote_synced = False
        #: When the channel opened, and whether the remote has stayed silent (no ``sync``)
        #: for REQUEST_TIMEOUT since: then updates stop waiting for it.
        self.opened_at = 0.0
        self.sync_overdue = False
        #: The remote length it failed to prove to us (an upgrade request timed out or was
        #: refused): asked again only after REQUEST_TIMEOUT (``upgrade_retry_at``), and
        #: updates do not wait for it, until it syncs another length.
        self.failed_upgrade = -1
        self.upgrade_retry_at = 0.0
        self.remote_fork = 0
        self.remote_length = 0
        self.remote_can_upgrade = False
        self.remote_uploading = True
        self.remote_downloading = True
        self.remote_has_manifest = False
        self.remote_allow_push = False
        self.remote_seeks = False
        self.length_acked = 0
        self.can_upgrade = True  # what we last told the remote: "I can prove your length"
        self.remote_contiguous = 0
        self.remote_bits = RemoteBitfield()  # what it told us it has, past remote_contiguous
        self.inflight: dict[int, _OutRequest] = {}
        self.wants_sent: set[int] = set()
        #: The ranges it wants (start, length, any), answered once each until it unwants
        #: them, as JS peers send them (at most 512 + 16 at a time); and how many of them
        #: touch each 2^21-block batch (new blocks there are announced to it).
        self.wanted: set[tuple[int, int, bool]] = set()
        self.remote_wants: dict[int, int] = {}
        self.remote_requests: dict[int, wire.Request] = {}
        self.queue: deque[wire.Request] = deque()
        #: Wants to answer once the stream drains (an answer can be 64 bitfield pages).
        self.want_queue: deque[wire.Want] = deque()
        self.invalid_requests = 0
        self.invalid_answers = 0
        #: Blocks not to ask this peer for until the time given (it timed out on them or
        #: said it lacks them): a back-off, never a verdict.
        self.avoid: dict[int, float] = {}
        self.paused_until = 0.0  # no block requests before this (see back_off)
        self.error: BaseException | None = None
        self._watchdog_started = False
        # Extension names, each repeated one sent/received as '' (JS does the same).
        self.last_extension_sent = ""
        self.last_extension_received = ""
        state = replicator.state
        self.channel: Channel | None = mux.create_channel(
            PROTOCOL,
            state.discovery_key,
            handshake=wire.HANDSHAKE,
            aliases=ALIASES,
            user_data=self,
            on_open=self._guarded(self._on_open),
            on_close=self._guarded(self._on_close),
            on_drain=self._guarded(self._on_drain),
        )
        ch = self.channel
        if ch is None:
            return
        guard = self._guarded
        self.w_sync = ch.add_message(wire.SYNC, guard(self._on_sync))
        self.w_request = ch.add_message(wire.REQUEST, guard(self._on_request))
        self.w_cancel = ch.add_message(wire.CANCEL, guard(self._on_cancel))
        self.w_data = ch.add_message(wire.DATA, guard(self._on_data))
        self.w_no_data = ch.add_message(wire.NO_DATA, guard(self._on_no_data))
        self.w_want = ch.add_message(wire.WANT, guard(self._on_want))
        self.w_unwant = ch.add_message(wire.UNWANT, guard(self._on_unwant))
        self.w_bitfield = ch.add_message(wire.BITFIELD, guard(self._on_bitfield))
        self.w_range = ch.add_message(wire.RANGE, guard(self._on_range))
        self.w_extension = ch.add_message(wire.EXTENSION, guard(self._on_extension))

    def _guarded(self, handler: Callable[..., None]) -> Callable[..., None]:
        """``handler`` with its failures kept on this channel: the Protomux runs it in a
        nursery every channel of the stream (and the core) shares. An error the message
        caused drops this peer and is reported (``invalid-data``); our own storage failing
        closes the channel (logged); anything else is a bug and propagates."""

        def run(*args: Any) -> None:
            try:
                handler(*args)
            except StorageError as e:
                log.error("closing %r: storage of core %s failed: %s", self, self._dkey(), e)
                self.close(e)
            except HypercoreError as e:
                self.drop(e)

        return run

    def _dkey(self) -> str:
        return self.replicator.state.discovery_key.hex()

    def __repr__(self) -> str:
        key = self.remote_public_key.hex()[:16] if self.remote_public_key else "?"
        return f"<Peer {key} length={self.remote_length} fork={self.remote_fork}>"

    @property
    def active(self) -> bool:
        return self.remote_opened and not self.removed

    def open(self) -> None:
        ch = self.channel
        assert ch is not None
        state = self.replicator.state
        cap = crypto.replicate_capability(
            self.stream.is_initiator, state.key, self.stream.handshake_hash
        )
        ch.open(wire.Handshake(seeks=True, capability=cap))

    def has_block(self, index: int) -> bool:
        if index in self.avoid:
            return False
        return index < self.remote_contiguous or self.remote_bits.get(index)

    def back_off(self, index: int, seconds: float) -> None:
        """Do not ask this peer for block ``index`` for ``seconds`` (for any block, when it
        already has MAX_AVOIDED back-offs: JS pauses such a peer too)."""
        until = trio.current_time() + seconds
        if index in self.avoid or len(self.avoid) < MAX_AVOIDED:
            self.avoid[index] = until
        else:
            self.paused_until = max(self.paused_until, until)

    def _lower_contiguous(self, start: int, end: int) -> bool:
        """The peer may lack blocks of ``[start, end)``: its contiguous prefix ends at
        ``start``, and what it has past ``end`` stays known (as a run)."""
        ok = self.remote_bits.set_range(end, self.remote_contiguous, True)
        self.remote_contiguous = start
        return ok

    def drop(self, error: HypercoreError) -> None:
        """The peer misbehaved: report it and close its channel."""
        self.replicator._report_invalid(self, error)
        self.close(error)

    # --- sending ----------------------------------------------------------------------------

    def send_sync(self) -> None:
        if not self.active:
            return
        state = self.replicator.state
        fork = state.head.fork
        if fork != self.remote_fork:
            self.can_upgrade = False
        self.w_sync.send(
            wire.Sync(
                fork=fork,
                length=state.head.length,
                remote_length=self.remote_length if fork == self.remote_fork else 0,
                can_upgrade=self.can_upgrade,
                uploading=True,
                downloading=self.replicator.downloading,
                has_manifest=state.manifest is not None and not state.compat,
                allow_push=False,
            )
        )

    def signal_upgrade(self) -> None:
        """Our tree changed: re-check whether we can prove it to the remote, then sync."""
        state = self.replicator.state
        if (
            not self.can_upgrade
            and state.head.fork == self.remote_fork
            and state.head.length > self.remote_length
        ):
            self.can_upgrade = self.replicator._can_upgrade(self.remote_length)
        self.send_sync()

    def send_range(self, start: int, length: int, drop: bool = False) -> None:
        if self.active and length > 0:
            self.w_range.send(wire.Range(drop=drop, start=start, length=length))

    def send_extension(self, name: str, message: bytes) -> None:
        """Send an already encoded extension message."""
        if not self.active:
            return
        self.w_extension.send(
            wire.Extension(name="" if name == self.last_extension_sent else name, message=message)
        )
        self.last_extension_sent = name

    def close(self, error: BaseException | None = None) -> None:
        if error is not None and self.error is None:
            self.error = error
        ch = self.channel
        if ch is not None and not ch.closed:
            ch.close()

    # --- channel events -----------------------------------------------------------------------

    def _on_open(self, handshake: wire.Handshake, channel: Channel) -> None:
        state = self.replicator.state
        expected = crypto.replicate_capability(
            not self.stream.is_initiator, state.key, self.stream.handshake_hash
        )
        if handshake is None or handshake.capability != expected:
            err = InvalidCapabilityError(
                "Remote sent an invalid replication capability", state.discovery_key
            )
            self.replicator._report_invalid(self, err)
            self.close(err)
            return
        if self.remote_opened:
            return
        self.remote_opened = True
        self.opened_at = trio.current_time()
        self.remote_seeks = handshake.seeks
        with self.mux.corked():
            self.send_sync()
            contig = min(state.head.length, state.contiguous_length)
            if contig > 0:
                self.send_range(0, contig)
        self.replicator._add_peer(self)
        if not self._watchdog_started:
            self._watchdog_started = True
            self.mux.spawn(self._watchdog)

    def _on_close(self, is_remote: bool, channel: Channel) -> None:
        was_open = self.remote_opened
        self.remote_opened = False
        self.removed = True
        self.remote_requests.clear()
        self.queue.clear()
        self.want_queue.clear()
        if was_open:
            self.replicator._remove_peer(self)

    def _on_drain(self, channel: Channel) -> None:
        self._serve_queued()

    async def _watchdog(self) -> None:
        """Cancel requests this peer leaves unanswered, so they go to others; end the
        back-offs that are over."""
        while not self.removed:
            await trio.sleep(WATCHDOG_TICK)
            now = trio.current_time()
            late = [r for r in self.inflight.values() if now - r.sent_at > REQUEST_TIMEOUT]
            for r in late:
                log.debug("request %d to %r timed out", r.id, self)
                if self.active:
                    self.w_cancel.send(wire.Cancel(request=r.id))
                self.replicator._clear_request(r, roundtrip=False)
                if r.block is not None:
                    self.back_off(r.block, REQUEST_TIMEOUT)  # ask someone else for it
                if r.upgrade and not r.reorg:
                    self.upgrade_failed(r)
                if r.seek_of is not None:
                    r.seek_of.tried.add(self)
            if not self.remote_synced and not self.sync_overdue:
                if now - self.opened_at >= REQUEST_TIMEOUT:
                    self.sync_overdue = True  # silent: updates stop waiting for it
                    self.replicator._notify()
            retry_upgrade = (
                self.failed_upgrade == self.remote_length and now >= self.upgrade_retry_at
            )
            if self.paused_until and now >= self.paused_until:
                self.paused_until = 0.0
                retry_upgrade = True  # (and blocks) ask it again
            expired = [i for i, until in self.avoid.items() if until <= now]
            for i in expired:
                del self.avoid[i]
            if late:
                self.replicator.update_all()
            elif expired or retry_upgrade:
                self.replicator.update_peer(self)

    # --- incoming: state -----------------------------------------------------------------------

    def _on_sync(self, m: wire.Sync, channel: Channel) -> None:
        if not self.active:
            return
        rep = self.replicator
        state = rep.state
        length_changed = m.length != self.remote_length
        same_fork = m.fork == state.head.fork
        fork_changed = m.fork != self.remote_fork
        self.remote_synced = True
        self.remote_fork = m.fork
        self.remote_length = m.length
        self.remote_can_upgrade = m.can_upgrade
        self.remote_uploading = m.uploading
        self.remote_downloading = m.downloading
        self.remote_has_manifest = m.has_manifest
        self.remote_allow_push = m.allow_push
        self.length_acked = m.remote_length if same_fork else 0
        if length_changed or fork_changed:
            self.failed_upgrade = -1
        if fork_changed:
            self.avoid.clear()  # what it lacked on its old fork says nothing of the new one
        if length_changed or fork_changed or not same_fork:
            self.can_upgrade = same_fork and rep._can_upgrade(m.length)
        if same_fork and state.head.length > self.remote_length:
            self.signal_upgrade()
        if m.fork > state.head.fork:
            rep._maybe_follow_fork(self)
        rep._notify()
        rep.update_peer(self)

    def _on_range(self, m: wire.Range, channel: Channel) -> None:
        if not self.active:
            return
        has = not m.drop
        start = m.start
        end = min(start + m.length, MAX_INDEX)
        if has and end - start == 1:
            self.avoid.pop(start, None)  # announced (again): ask it
        ok = True
        if m.drop and start < self.remote_contiguous:
            ok = self._lower_contiguous(start, end)
        if start == 0 and has:
            if end > self.remote_contiguous:
                self.remote_contiguous = end
        elif ok and end - start == 1 and start // WANT_BATCH in self.wants_sent:
            ok = self.remote_bits.set_bit(start, has)  # a page of a batch we want
        elif ok:
            ok = self.remote_bits.set_range(start, end, has)
        if not ok:
            self.drop(HypercoreError("peer announced more disjoint ranges than we keep"))
            return
        if has:
            for sk in self.replicator._seeks:
                sk.tried.discard(self)
            self.replicator.update_peer(self)

    def _on_bitfield(self, m: wire.Bitfield, channel: Channel) -> None:
        if not self.active:
            return
        if m.start & 31:
            self.drop(HypercoreError(f"bitfield message at {m.start}, not a multiple of 32"))
            return
        bits = wire.bitfield_bytes(m)
        end = m.start + 8 * len(bits)
        batch = m.start // WANT_BATCH
        if batch not in self.wants_sent or end > (batch + 1) * WANT_BATCH:
            return  # bitfields answer our wants (as JS sends them): keep only those
        ok = True
        if m.start < self.remote_contiguous:  # a bitfield is the truth for its span
            ok = self._lower_contiguous(m.start, end)
        if not ok or not self.remote_bits.insert(m.start, bits):
            self.drop(HypercoreError("peer sent more bitfield pages than we keep"))
            return
        self.replicator.update_peer(self)

    def _on_want(self, m: wire.Want, channel: Channel) -> None:
        if not self.active or m.length <= 0:
            return
        if not m.any and m.length > WANT_BATCH:
            return  # larger than any batch JS asks for: JS ignores it too
        key = (m.start, m.length, m.any)
        if key in self.wanted:
            return  # answered already (JS never repeats a want it did not unwant)
        if len(self.wanted) < MAX_QUEUED_WANTS:
            self.wanted.add(key)
            batch = m.start // WANT_BATCH
            self.remote_wants[batch] = self.remote_wants.get(batch, 0) + 1
        if self.want_queue or not self.mux.drained:
            if len(self.want_queue) >= MAX_QUEUED_WANTS:
                self.drop(HypercoreError(f"peer has more than {MAX_QUEUED_WANTS} wants waiting"))
                return
            self.want_queue.append(m)
            return
        self.replicator._answer_want(self, m.start, m.length, m.any)

    def _on_extension(self, m: wire.Extension, channel: Channel) -> None:
        if not self.active:
            return
        name = m.name or self.last_extension_received
        self.last_extension_received = name
        ext = self.replicator.extensions.get(name)
        if ext is not None:  # unknown names are ignored, as JS does
            ext._receive(m.message, self)

    def _on_unwant(self, m: wire.Unwant, channel: Channel) -> None:
        key = (m.start, m.length, m.any)
        if key not in self.wanted:
            return
        self.wanted.discard(key)
        batch = m.start // WANT_BATCH
        n = self.remote_wants.get(batch, 0) - 1
        if n > 0:
            self.remote_wants[batch] = n
        else:
            self.remote_wants.pop(batch, None)
        if self.want_queue:  # not answered yet: no longer asked for
            self.want_queue = deque(w for w in self.want_queue if (w.start, w.length, w.any) != key)

    # --- incoming: serving -----------------------------------------------------------------------

    def _on_request(self, m: wire.Request, channel: Channel) -> None:
        if not self.active:
            return
        if m.id in self.remote_requests:
            self._cancel(m.id)
        if len(self.remote_requests) >= MAX_QUEUED_REQUESTS:
            self.drop(HypercoreError(f"peer has more than {MAX_QUEUED_REQUESTS} requests waiting"))
            return
        self.remote_requests[m.id] = m
        if self.queue or not self.mux.drained:
            self.queue.append(m)
            return
        self._serve(m)

    def _on_cancel(self, m: wire.Cancel, channel: Channel) -> None:
        self._cancel(m.request)

    def _cancel(self, id: int) -> None:
        req = self.remote_requests.pop(id, None)
        if req is not None:
            try:
                self.queue.remove(req)
            except ValueError:
                pass

    def _serve_queued(self) -> None:
        while self.want_queue and self.active and self.mux.drained:
            m = self.want_queue.popleft()
            self.replicator._answer_want(self, m.start, m.length, m.any)
        while self.queue and self.active and self.mux.drained:
            self._serve(self.queue.popleft())

    def _serve(self, m: wire.Request) -> None:
        if self.remote_requests.get(m.id) is not m:
            return  # cancelled
        del self.remote_requests[m.id]
        state = self.replicator.state
        head = state.head
        available = m.fork == head.fork and (
            m.block is None or (m.block.index < head.length and state.bitfield.get(m.block.index))
        )
        data: Data | None = None
        if available:
            try:
                data = state.proof(
                    block=m.block,
                    hash=m.hash,
                    seek=m.seek,
                    upgrade=m.upgrade,
                    manifest=m.manifest and not state.compat,
                    request=m.id,
                    fork=m.fork,
                )
            except BlockNotAvailableError:
                data = None
            except StorageError as e:
                # Our own disk failed us (a damaged row): the peer is not at fault and the
                # rest of the core can still be served.
                log.warning("cannot serve request %d of %r: %s", m.id, self, e)
                data = None
            except HypercoreError as e:
                self.invalid_requests += 1
                log.debug("invalid request from %r: %s", self, e)
                self.w_no_data.send(wire.NoData(request=m.id, reason=wire.INVALID_REQUEST))
                if self.invalid_requests >= MAX_INVALID_REQUESTS:
                    self.replicator._report_invalid(self, e)
                    self.close(e)
                return
        if data is None:
            if m.manifest and state.manifest is not None and not state.compat:
                self.w_data.send(Data(request=m.id, fork=head.fork, manifest=state.manifest))
                return
            self.w_no_data.send(wire.NoData(request=m.id, reason=wire.NOT_AVAILABLE))
            return
        self.w_data.send(data)
        if data.block is not None:
            self.replicator._emit(
                "upload", data.block.index, len(data.block.value) - state.padding, self
            )

    # --- incoming: downloading ---------------------------------------------------------------

    def _on_data(self, data: Data, channel: Channel) -> None:
        if not self.active:
            return
        rep = self.replicator
        req = rep._ids.active.get(data.request) if data.request else None
        if req is None or req.peer is not self:
            return  # unsolicited (push) or late: we do not take pushes
        if not _matches(req, data):
            # Not what we asked for: treat it as "not available" (as JS does), and drop a
            # peer that keeps doing it.
            rep._clear_request(req, roundtrip=True)
            self._not_available(req)
            self.invalid_answers += 1
            if self.invalid_answers >= MAX_INVALID_REQUESTS:
                err = HypercoreError("peer keeps answering with data we did not ask for")
                rep._report_invalid(self, err)
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
            rep._clear_request(req, roundtrip=True)
            rep.update_all()
            return
        rep._clear_request(req, roundtrip=True, answered=True)
        rep._burst_mux = self.mux
        try:
            if req.reorg:
                ok = rep.state.reorg(data)
            else:
                # A proof others rely on is checked all the way up, so that it stores
                # every node they expect.
                ok = rep.state.verify(data, defer=True, stop_at_stored=not req.dependents)
        except HypercoreError as e:
            if req.block is not None:
                rep._requeue(req.block)
            rep._fail_waiting(req)
            rep._report_invalid(self, e)
            self.close(e)
            rep.update_all()
            return
        finally:
            rep._burst_mux = None
        if not ok:  # another fork: nothing was stored
            if req.block is not None:
                rep._requeue(req.block)
            rep._fail_waiting(req)
            self._not_available(req)
            rep.update_all()
            return
        req.verified = True
        if data.block is not None:  # stored; the core's hook already moved things on
            rep._emit("download", data.block.index, len(data.block.value) - rep.state.padding, self)
        waiting = req.waiting
        if waiting:
            req.waiting = None
            for r, d in waiting:
                if rep._ids.active.get(r.id) is r and self.active:
                    self._on_data(d, channel)

    def _on_no_data(self, m: wire.NoData, channel: Channel) -> None:
        rep = self.replicator
        req = rep._ids.active.get(m.request) if m.request else None
        if req is None or req.peer is not self:
            return
        rep._clear_request(req, roundtrip=True)
        self._not_available(req)
        rep.update_all()

    def _not_available(self, req: _OutRequest) -> None:
        """It does not have the block now (truncated, cleared, on another fork, a stale
        answer, or it misbehaves): back off from asking it for that block, as JS does. What
        it announced stays known: a ``range`` with ``drop`` is how a peer says it lost blocks."""
        if req.seek_of is not None:
            req.seek_of.tried.add(self)
        if req.block is not None:
            self.back_off(req.block, NOT_AVAILABLE_BACKOFF)
        if req.upgrade and not req.reorg:
            self.upgrade_failed(req)

    def upgrade_failed(self, req: _OutRequest) -> None:
        self.failed_upgrade = req.upgrade_to
        self.upgrade_retry_at = trio.current_time() + REQUEST_TIMEOUT


def _matches(req: _OutRequest, data: Data) -> bool:
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


class Replicator:
    """Replication state of one core: its peers, what we want and what is in flight."""

    def __init__(self, state: Core) -> None:
        self.state = state
        self.peers: list[Peer] = []
        self.downloading = True
        self._ids = _Ids()
        self._block_wants: dict[int, int] = {}
        self._inflight_blocks: dict[int, _OutRequest] = {}
        self._upgrade_inflight: _OutRequest | None = None
        self._reorg_inflight: _OutRequest | None = None
        self._downloads: list[Download] = []
        self._seeks: list[_Seek] = []
        self._changed = trio.Event()
        self._muxes: weakref.WeakSet[Protomux] = weakref.WeakSet()
        #: Registered extensions by name (see :mod:`hypercore.extensions`).
        self.extensions: dict[str, Extension] = {}
        #: The mux whose message is being verified: the rest waits for the end of its burst.
        self._burst_mux: Protomux | None = None

    # --- attaching ------------------------------------------------------------------------------

    def attach(self, mux: Protomux, stream: ReplicationStream | None = None) -> Peer | None:
        """Open a ``hypercore/alpha`` channel for this core on ``mux`` (once per mux)."""
        if mux in self._muxes or mux.closed:
            return None
        stream = stream if stream is not None else mux.stream  # type: ignore[assignment]
        assert stream is not None
        peer = Peer(self, mux, stream)
        if peer.channel is None:
            return None
        self._muxes.add(mux)
        peer.open()
        return peer

    def _add_peer(self, peer: Peer) -> None:
        self.peers.append(peer)
        self._emit("peer-add", peer)
        self._notify()
        self.update_peer(peer)

    def _remove_peer(self, peer: Peer) -> None:
        if peer in self.peers:
            self.peers.remove(peer)
        self._muxes.discard(peer.mux)
        for r in list(peer.inflight.values()):
            self._clear_request(r, roundtrip=False)
        self._emit("peer-remove", peer)
        self._notify()
        self.update_all()

    def close(self) -> None:
        for peer in list(self.peers):
            peer.close()
        for d in list(self._downloads):
            d.cancel()

    # --- notifications ---------------------------------------------------------------------------

    def _emit(self, name: str, *args: Any) -> None:
        self.state.emit(name, *args)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_changed(self) -> None:
        await self._changed.wait()

    def _report_invalid(self, peer: Peer, error: BaseException) -> None:
        log.warning("dropping peer %r of core %s: %s", peer, self.state.discovery_key.hex(), error)
        self._emit("invalid-data", error, peer)

    # --- hooks from the core ------------------------------------------------------------------

    def on_append(self, start: int, length: int) -> None:
        """Our own appends: tell every peer about the new length and blocks."""
        state = self.state
        full = state.contiguous_length >= state.head.length
        for peer in self.peers:
            with peer.mux.corked():
                peer.signal_upgrade()
                if full:
                    peer.send_range(0, state.head.length)
                else:
                    peer.send_range(start, length)
        self._after_change()

    def on_verified(self, index: int, upgraded: bool) -> None:
        """A proof was verified and stored: sync the peers if the tree grew, announce the
        block (``index``, or -1) where it helps, then go on downloading."""
        if upgraded:
            for peer in self.peers:
                peer.signal_upgrade()
        if index >= 0:
            self._announce(index)
        mux = self._burst_mux
        if mux is not None:
            mux.defer(self._end_of_burst)
        else:
            self._after_change()

    def _end_of_burst(self) -> None:
        """After a burst of ``data`` messages: write them, then ask for more (the requests
        to each peer go out as one batch)."""
        try:
            self.state.flush()
        except StorageError as e:
            # Our disk refused the write (full, or failing): stop taking data, as JS pauses
            # its peers on WRITE_FAILED; the core stays open for what it has.
            log.error(
                "core %s: cannot store what peers sent: %s", self.state.discovery_key.hex(), e
            )
            for peer in list(self.peers):
                peer.close(e)
            return
        for d in list(self._downloads):
            d._check()
        self._notify()
        peers = list(self.peers)
        if len(peers) > 1:
            random.shuffle(peers)
        for peer in peers:
            if peer.active:
                with peer.mux.corked():
                    self.update_peer(peer)

    def _announce(self, index: int) -> None:
        """Tell peers about a new block: all of them once we have everything, otherwise
        those near the head or that asked for its range (as JS ``broadcastRange``)."""
        state = self.state
        length = state.head.length
        full = state.contiguous_length >= length
        for peer in self.peers:
            if peer.has_block(index):
                continue
            if full:
                if peer.remote_contiguous < length:
                    peer.send_range(0, length)
            elif index + LAST_BLOCKS >= length or index // WANT_BATCH in peer.remote_wants:
                peer.send_range(index, 1)

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
            peer.avoid.clear()  # our tree changed: what peers lacked may fit it now
            with peer.mux.corked():
                peer.send_sync()
                peer.send_range(length, old_length - length, drop=True)
        self._after_change()

    def _after_change(self) -> None:
        for d in list(self._downloads):
            d._check()
        self._notify()
        self.update_all()

    # --- what we want ---------------------------------------------------------------------------

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

    def add_seek(self, offset: int, padding: int) -> _Seek:
        """Ask peers for the tree nodes that resolve a seek to byte ``offset``."""
        sk = _Seek(offset, padding)
        self._seeks.append(sk)
        self.update_all()
        return sk

    def remove_seek(self, sk: _Seek) -> None:
        if sk in self._seeks:
            self._seeks.remove(sk)

    def _request_seek(self, peer: Peer, sk: _Seek) -> None:
        """Ask ``peer`` for what a pending seek lacks (as JS ``_requestSeek``): past our
        length, an upgrade with the seek; inside our tree, a hash request for a block of the
        range the answer lies in, reaching up to that range's subtree, with the seek."""
        state = self.state
        if peer in sk.tried or peer.remote_fork != state.head.fork:
            return
        found = merkle.seek(state, state.head, sk.offset, sk.padding)
        if not isinstance(found, SeekPending):
            return  # answered locally: the session sees it
        seek = RequestSeek(sk.offset, sk.padding) if peer.remote_seeks else None
        length = state.head.length
        start, end = found.start, found.end
        if start >= length:
            if self._upgrade_inflight is not None or not self._should_upgrade(peer):
                return  # the upgrade under way (or none) comes first
            req = self._new_request(peer, block=None, upgrade=True)
            self._upgrade_inflight = req
            self._send_seek(
                peer,
                sk,
                req,
                seek,
                upgrade=RequestUpgrade(length, peer.remote_length - length),
                manifest=state.manifest is None,
            )
            return
        if start >= end or end > peer.remote_length:
            return  # its tree cannot prove that subtree to us
        span = end - start
        first = random.randrange(span)
        for k in range(min(span, SCAN_LIMIT)):
            index = start + (first + k) % span
            if not peer.has_block(index):
                continue
            if state.bitfield.get(index) or index in self._inflight_blocks:
                continue
            req = self._new_request(peer, block=None, upgrade=False)
            req.hash = 2 * index
            self._send_seek(
                peer,
                sk,
                req,
                seek,
                hash=RequestIndex(2 * index, flat_tree.depth(start + end - 1)),
                manifest=state.manifest is None and peer.remote_has_manifest,
            )
            return
        self._maybe_want(peer, start)

    def _send_seek(
        self,
        peer: Peer,
        sk: _Seek,
        req: _OutRequest,
        seek: RequestSeek | None,
        *,
        manifest: bool,
        hash: RequestIndex | None = None,
        upgrade: RequestUpgrade | None = None,
    ) -> None:
        req.seek_of = sk
        sk.inflight = req
        peer.w_request.send(
            wire.Request(
                id=req.id,
                fork=peer.remote_fork,
                hash=hash,
                seek=seek,
                upgrade=upgrade,
                manifest=manifest,
            )
        )

    def _remove_download(self, d: Download) -> None:
        if d in self._downloads:
            self._downloads.remove(d)

    def upgrade_pending(self) -> bool:
        """Could a peer still give us a longer tree (an update should wait)?"""
        state = self.state
        if self._upgrade_inflight is not None or self._reorg_inflight is not None:
            return True
        for peer in self.peers:
            if not peer.remote_synced and not peer.sync_overdue:
                return True
            if (
                peer.remote_fork == state.head.fork
                and self._offers_upgrade(peer)
                and peer.failed_upgrade != peer.remote_length
            ):
                return True
            if peer.remote_fork > state.head.fork and not state.writable and peer.remote_length:
                return True
        return False

    # --- scheduling -----------------------------------------------------------------------------

    def update_all(self) -> None:
        peers = list(self.peers)
        if len(peers) > 1:
            random.shuffle(peers)  # spread requests; no peer is always asked first
        for peer in peers:
            self.update_peer(peer)

    def update_peer(self, peer: Peer) -> None:
        """Ask ``peer`` for what we want of it. Reading our tree may fail (a damaged row):
        that closes this peer's channel (logged), never the caller's task."""
        try:
            self._update_peer(peer)
        except StorageError as e:
            log.error("closing %r: storage of core %s failed: %s", peer, peer._dkey(), e)
            peer.close(e)

    def _update_peer(self, peer: Peer) -> None:
        if not peer.active or not peer.remote_uploading:
            return
        if self.state.closed:
            return
        if peer.remote_fork > self.state.head.fork:
            self._maybe_follow_fork(peer)
        # Seeks first (as JS): one past our length goes out as the upgrade request.
        for sk in self._seeks:
            if sk.inflight is None and len(peer.inflight) < MAX_INFLIGHT:
                self._request_seek(peer, sk)
        self._maybe_upgrade(peer)
        if len(peer.inflight) >= MAX_INFLIGHT or peer.paused_until:
            return
        if self._block_wants:
            self._request_listed(peer, list(self._block_wants), priority=1)
        for d in list(self._downloads):
            if len(peer.inflight) >= MAX_INFLIGHT:
                break
            self._request_range(peer, d)

    def _can_upgrade(self, remote_length: int) -> bool:
        """Can we prove our tree to a peer whose length is ``remote_length``?"""
        state = self.state
        if remote_length == 0:
            return True
        if remote_length >= state.head.length:
            return False
        try:
            merkle.roots_at(state, remote_length)
        except HypercoreError:
            return False
        return True

    def _offers_upgrade(self, peer: Peer) -> bool:
        head = self.state.head
        return (
            peer.remote_can_upgrade
            and peer.remote_fork == head.fork
            and peer.remote_length > head.length
            and peer.length_acked == head.length
        )

    def _should_upgrade(self, peer: Peer) -> bool:
        """Ask ``peer`` for its longer tree now? (Not while backing off from a failure.)"""
        return self._offers_upgrade(peer) and (
            peer.failed_upgrade != peer.remote_length
            or trio.current_time() >= peer.upgrade_retry_at
        )

    def _maybe_follow_fork(self, peer: Peer) -> None:
        """A peer is on a newer fork: ask it for the new tree (JS ``_requestForkProof``)."""
        state = self.state
        if (
            state.writable
            or self._reorg_inflight is not None
            or peer.remote_length == 0
            or peer.remote_fork <= state.head.fork
        ):
            return
        req = self._new_request(peer, block=None, upgrade=True)
        req.reorg = True
        self._reorg_inflight = req
        peer.w_request.send(
            wire.Request(
                id=req.id,
                fork=peer.remote_fork,
                upgrade=RequestUpgrade(0, peer.remote_length),
                manifest=state.manifest is None,
            )
        )

    def _maybe_upgrade(self, peer: Peer) -> None:
        if self._upgrade_inflight is not None or not self._should_upgrade(peer):
            return
        head = self.state.head
        req = self._new_request(peer, block=None, upgrade=True)
        self._upgrade_inflight = req
        peer.w_request.send(
            wire.Request(
                id=req.id,
                fork=peer.remote_fork,
                upgrade=RequestUpgrade(head.length, peer.remote_length - head.length),
                manifest=self.state.manifest is None,
            )
        )

    def _request_listed(self, peer: Peer, indices: Iterable[int], priority: int) -> None:
        """Ask ``peer`` for the blocks of ``indices`` (those wanted by get(), or a
        download's list) that are neither stored nor in flight."""
        state = self.state
        promised: dict[int, _OutRequest] = {}
        for index in indices:
            if len(peer.inflight) >= MAX_INFLIGHT:
                return
            if state.bitfield.get(index) or index in self._inflight_blocks:
                continue
            if index >= state.head.length:
                continue  # the upgrade comes first
            if peer.has_block(index):
                self._request_block(peer, index, priority, promised=promised)
            else:
                self._maybe_want(peer, index)

    def _request_range(self, peer: Peer, d: Download) -> None:
        if d.blocks is not None:
            blocks = d.blocks
            self._request_listed(
                peer, (blocks[i] for i in range(d.cursor, len(blocks))), priority=0
            )
            return
        state = self.state
        bitfield = state.bitfield
        length = state.head.length
        end = length if d.end is None else min(d.end, length)
        d.cursor = bitfield.first_unset(d.cursor)
        i = max(d.cursor, d.requested)
        unbroken = True  # every block of [requested, i) is stored or in flight
        if d.resume > i:
            i = d.resume
            unbroken = False
        looked = 0
        asked = False
        promised: dict[int, _OutRequest] = {}
        while i < end and len(peer.inflight) < MAX_INFLIGHT and looked < SCAN_LIMIT:
            looked += 1
            if bitfield.get(i):
                i = bitfield.first_unset(i)
            elif i in self._inflight_blocks:
                i += 1
            elif peer.has_block(i):
                if not self._request_block(peer, i, priority=0, promised=promised):
                    break  # its tree or fork does not allow this block, nor later ones
                i += 1
            else:
                if not asked:
                    asked = True
                    self._maybe_want(peer, i)
                unbroken = False
                i += 1
            if unbroken:
                d.requested = i
        d.resume = i if i < end else 0  # at the end: the next scan starts over

    def _requeue(self, index: int) -> None:
        """A requested block did not arrive: the ranges must look at it again."""
        for d in self._downloads:
            d.requested = min(d.requested, index)

    def _maybe_want(self, peer: Peer, index: int) -> None:
        if index < peer.remote_contiguous:
            return
        batch = index // WANT_BATCH
        if batch in peer.wants_sent or len(peer.wants_sent) >= 64:
            return
        peer.wants_sent.add(batch)
        peer.w_want.send(wire.Want(start=batch * WANT_BATCH, length=WANT_BATCH, any=False))

    def _request_block(
        self,
        peer: Peer,
        index: int,
        priority: int,
        promised: dict[int, _OutRequest] | None = None,
    ) -> bool:
        """Ask ``peer`` for a block. ``promised``: the tree nodes that the proofs already
        asked of this peer (in this scheduling pass) will store, and by which request; the
        proof asked for stops at the first of them, and depends on that request."""
        state = self.state
        length = state.head.length
        if peer.remote_fork != state.head.fork or index >= peer.remote_length:
            return False
        nodes, dep = merkle.missing_nodes_until(state, 2 * index, length, promised)
        if peer.remote_length < length and not _within(2 * index, nodes, peer.remote_length):
            return False  # its tree is too short to prove this block to us
        req = self._new_request(peer, block=index, upgrade=False)
        self._inflight_blocks[index] = req
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
        peer.w_request.send(
            wire.Request(
                id=req.id,
                fork=state.head.fork,
                block=RequestIndex(index, nodes),
                manifest=state.manifest is None and peer.remote_has_manifest,
                priority=priority,
            )
        )
        return True

    def _new_request(self, peer: Peer, *, block: int | None, upgrade: bool) -> _OutRequest:
        id = self._ids.allocate()
        req = _OutRequest(id, peer, block, upgrade, peer.remote_fork, trio.current_time())
        if upgrade:
            req.upgrade_to = peer.remote_length
        self._ids.active[id] = req
        peer.inflight[id] = req
        return req

    def _clear_request(self, req: _OutRequest, *, roundtrip: bool, answered: bool = False) -> None:
        """Forget a request; unless it was ``answered`` with its block, the block goes back
        to the downloads' queue."""
        req.peer.inflight.pop(req.id, None)
        req.resolved = True
        if not answered and req.waiting:
            self._fail_waiting(req)
        if req.block is not None and self._inflight_blocks.get(req.block) is req:
            del self._inflight_blocks[req.block]
            if not answered:
                self._requeue(req.block)
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

    def _fail_waiting(self, req: _OutRequest) -> None:
        """``req`` brought no verified proof: the answers waiting on it cannot be checked,
        so their blocks are asked for again."""
        waiting = req.waiting
        req.waiting = None
        for r, _ in waiting or ():
            if self._ids.active.get(r.id) is r:
                self._clear_request(r, roundtrip=True)

    # --- answering wants --------------------------------------------------------------------------

    def _answer_want(self, peer: Peer, start: int, length: int, any: bool) -> None:
        state = self.state
        head_length = state.head.length
        contig = min(head_length, state.contiguous_length)
        if start + length < contig or head_length == contig or (any and start < contig):
            peer.send_range(0, contig)
            return
        length = min(length, head_length - start)
        if length <= 0:
            return
        if any:
            bit = state.bitfield.first_set(start, start + length)
            if bit != -1:
                peer.send_range(bit, 1)
            return
        for chunk_start, words in _bitfield_chunks(state, start, length):
            peer.w_bitfield.send(wire.make_bitfield(chunk_start, words))


def _within(index: int, nodes: int, remote_length: int) -> bool:
    """Does the node ``nodes`` levels above ``index`` (the first one we store) lie inside a
    tree of ``remote_length`` blocks?"""
    top = index
    for _ in range(nodes):
        top = flat_tree.parent(top)
    _, right = flat_tree.spans(top)
    return right < 2 * remote_length


def _bitfield_chunks(state: Core, start: int, length: int) -> Iterable[tuple[int, bytes]]:
    """Our bitfield over ``[start, start + length)`` as ``(start, little-endian u32 words)``
    pieces of at most one page, start rounded down to 32, pages we lack left out."""
    d = start & 31
    start -= d
    length += d
    end = start + length
    i = start
    while i < end:
        p = i >> 15
        page_end = min(end, (p + 1) << 15)
        if page_end & 31:
            page_end += 32 - (page_end & 31)
        page = state.bitfield.page(p) if state.bitfield.has_page(p) else None
        if page is not None:
            lo = (i - (p << 15)) >> 3
            hi = (page_end - (p << 15)) >> 3
            yield i, page[lo:hi]
        i = (p + 1) << 15


_MUXES: weakref.WeakKeyDictionary[Any, Protomux] = weakref.WeakKeyDictionary()


def mux_for_stream(stream: ReplicationStream | Protomux, nursery: trio.Nursery | None) -> Protomux:
    """The Protomux that replication uses on ``stream``: the one given, the one already made
    for this stream, or a new one started in ``nursery``."""
    if isinstance(stream, Protomux):
        return stream
    mux = _MUXES.get(stream)
    if mux is not None and not mux.closed:
        return mux
    if nursery is None:
        raise RuntimeError(
            "replicate() needs a nursery to run the stream's Protomux: use `async with` on "
            "the core (or store), or pass nursery="
        )
    set_keep_alive = getattr(stream, "set_keep_alive", None)
    if set_keep_alive is not None and not getattr(stream, "keep_alive", None):
        set_keep_alive(5.0)  # as JS does for a replication stream without keep-alive
    mux = Protomux(stream)
    _MUXES[stream] = mux
    nursery.start_soon(mux.run)
    return mux
