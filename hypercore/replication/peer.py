"""One remote on one ``hypercore/alpha`` channel (JS hypercore ``lib/replicator.js``
``Peer``): the channel, what we tell it, what it tells us it has, what it asks of us and our
answers. What we ask of it, and its answers, is its base :class:`~.source.Source`.

Sans-IO: run from the Protomux message callbacks, with time from the replicator's injected
clock and, for the watchdog, the ``now`` given to :meth:`Peer.tick`. What all peers of a core
share (the ranges, seeks, request ids, blocks being fetched, peer selection) is the
:class:`~hypercore.replication.replicator.Replicator`'s; :class:`Shared` is the part of it a
peer uses.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from protomux import Channel, Protomux

from .. import crypto, merkle, wire
from ..errors import HypercoreError, InvalidCapabilityError
from ..extensions import Extensions
from ..remote_bitfield import MAX_INDEX
from ..storage import StorageError
from . import limits
from .serving import answer_request, answer_want
from .source import Requests, Source

__all__ = ["ALIASES", "PROTOCOL", "Peer", "Shared"]

log = logging.getLogger("hypercore.replicator")

PROTOCOL = "hypercore/alpha"
ALIASES = ("hypercore",)


class Shared(Requests, Protocol):
    """What a :class:`Peer` uses of its replicator: the state all peers of a core share
    (with :class:`~hypercore.replication.source.Requests`, the requests in flight)."""

    downloading: bool  # what we tell peers in ``sync``
    extensions: Extensions

    def add_peer(self, peer: Peer) -> None:
        """The channel opened both ways: schedule requests to it."""

    def remove_peer(self, peer: Peer) -> None:
        """The channel closed: its requests go back to the others."""

    def detach(self, peer: Peer) -> None:
        """The channel closed before it opened (the remote rejected it): the core may be
        attached to that mux again when the remote opens it later."""

    def update_peer(self, peer: Peer) -> None:
        """Ask ``peer`` for what we want of it."""

    def notify(self) -> None:
        """Wake those waiting on the core (what peers offer changed)."""

    def seeks_to_retry(self, peer: Peer) -> None:
        """``peer`` announced new blocks: the seeks it could not answer may ask it again."""


class Peer(Source):
    """One remote on one ``hypercore/alpha`` channel. ``on_first_open`` runs when the
    remote opens the channel (the Trio adapter starts the watchdog, see :meth:`tick`)."""

    def __init__(
        self,
        replicator: Shared,
        mux: Protomux,
        stream: Any,
        *,
        on_first_open: Callable[[], object] | None = None,
    ) -> None:
        super().__init__(replicator)
        self.replicator: Shared = replicator
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
        self.remote_uploading = True
        self.remote_downloading = True
        self.remote_allow_push = False
        self.can_upgrade = True  # what we last told the remote: "I can prove your length"
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
        self.error: BaseException | None = None
        self._on_first_open = on_first_open
        # Extension names, each repeated one sent/received as '' (JS does the same).
        self.last_extension_sent = ""
        self.last_extension_received = ""
        core = replicator.core
        self.channel: Channel | None = mux.create_channel(
            PROTOCOL,
            core.discovery_key,
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
                log.error("closing %r: storage of core %s failed: %s", self, self.dkey(), e)
                self.close(e)
            except HypercoreError as e:
                self.drop(e)

        return run

    def dkey(self) -> str:
        return self.replicator.core.discovery_key.hex()

    def __repr__(self) -> str:
        key = self.remote_public_key.hex()[:16] if self.remote_public_key else "?"
        return f"<Peer {key} length={self.remote_length} fork={self.remote_fork}>"

    @property
    def active(self) -> bool:
        return self.remote_opened and not self.removed

    def open(self) -> None:
        ch = self.channel
        assert ch is not None
        core = self.replicator.core
        cap = crypto.replicate_capability(
            self.stream.is_initiator, core.key, self.stream.handshake_hash
        )
        ch.open(wire.Handshake(seeks=True, capability=cap))

    def _lower_contiguous(self, start: int, end: int) -> bool:
        """The peer may lack blocks of ``[start, end)``: its contiguous prefix ends at
        ``start``, and what it has past ``end`` stays known (as a run)."""
        ok = self.remote_bits.set_range(end, self.remote_contiguous, True)
        self.remote_contiguous = start
        return ok

    def drop(self, error: HypercoreError) -> None:
        """The peer misbehaved: report it and close its channel."""
        self.replicator.report_invalid(self, error)
        self.close(error)

    def close(self, error: BaseException | None = None) -> None:
        if error is not None and self.error is None:
            self.error = error
        ch = self.channel
        if ch is not None and not ch.closed:
            ch.close()

    # --- telling it about our core ----------------------------------------------------------

    def send_sync(self) -> None:
        if not self.active:
            return
        core = self.replicator.core
        fork = core.head.fork
        if fork != self.remote_fork:
            self.can_upgrade = False
        self.w_sync.send(
            wire.Sync(
                fork=fork,
                length=core.head.length,
                remote_length=self.remote_length if fork == self.remote_fork else 0,
                can_upgrade=self.can_upgrade,
                uploading=True,
                downloading=self.replicator.downloading,
                has_manifest=core.manifest is not None and not core.compat,
                allow_push=False,
            )
        )

    def signal_upgrade(self) -> None:
        """Our tree changed: re-check whether we can prove it to the remote, then sync."""
        head = self.replicator.core.head
        if (
            not self.can_upgrade
            and head.fork == self.remote_fork
            and head.length > self.remote_length
        ):
            self.can_upgrade = self._can_prove(self.remote_length)
        self.send_sync()

    def _can_prove(self, remote_length: int) -> bool:
        """Can we prove our tree to a peer whose length is ``remote_length``?"""
        core = self.replicator.core
        if remote_length == 0:
            return True
        if remote_length >= core.head.length:
            return False
        try:
            merkle.roots_at(core, remote_length)
        except HypercoreError:
            return False
        return True

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

    def appended(self, start: int, length: int) -> None:
        """We appended ``[start, start + length)``: the new length, and the blocks."""
        core = self.replicator.core
        with self.mux.corked():
            self.signal_upgrade()
            if core.contiguous_length >= core.head.length:
                self.send_range(0, core.head.length)
            else:
                self.send_range(start, length)

    def truncated(self, length: int, old_length: int) -> None:
        """Our core was cut back to ``length``."""
        self.avoid.clear()  # our tree changed: what it lacked may fit it now
        with self.mux.corked():
            self.send_sync()
            self.send_range(length, old_length - length, drop=True)

    def announce(self, index: int) -> None:
        """A new block: tell it once we have everything, otherwise if the block is near the
        head or in a range it asked for (as JS ``broadcastRange``)."""
        if self.has_block(index):
            return
        core = self.replicator.core
        length = core.head.length
        if core.contiguous_length >= length:
            if self.remote_contiguous < length:
                self.send_range(0, length)
        elif (
            index + limits.LAST_BLOCKS >= length or index // limits.WANT_BATCH in self.remote_wants
        ):
            self.send_range(index, 1)

    # --- channel events ---------------------------------------------------------------------

    def _on_open(self, handshake: wire.Handshake, channel: Channel) -> None:
        core = self.replicator.core
        expected = crypto.replicate_capability(
            not self.stream.is_initiator, core.key, self.stream.handshake_hash
        )
        if handshake is None or handshake.capability != expected:
            err = InvalidCapabilityError(
                "Remote sent an invalid replication capability", core.discovery_key
            )
            self.replicator.report_invalid(self, err)
            self.close(err)
            return
        if self.remote_opened:
            return
        self.remote_opened = True
        self.opened_at = self.replicator.now()
        self.remote_seeks = handshake.seeks
        with self.mux.corked():
            self.send_sync()
            contig = min(core.head.length, core.contiguous_length)
            if contig > 0:
                self.send_range(0, contig)
        self.replicator.add_peer(self)
        start, self._on_first_open = self._on_first_open, None
        if start is not None:
            start()

    def _on_close(self, is_remote: bool, channel: Channel) -> None:
        was_open = self.remote_opened
        self.remote_opened = False
        self.removed = True
        self.remote_requests.clear()
        self.queue.clear()
        self.want_queue.clear()
        if was_open:
            self.replicator.remove_peer(self)
        else:
            self.replicator.detach(self)

    def _on_drain(self, channel: Channel) -> None:
        self._serve_queued()

    def tick(self, now: float) -> None:
        """The watchdog, once a second: cancel requests this peer left unanswered for
        REQUEST_TIMEOUT, so they go to others; end the back-offs that are over."""
        rep = self.replicator
        late = [r for r in self.inflight.values() if now - r.sent_at > limits.REQUEST_TIMEOUT]
        for r in late:
            log.debug("request %d to %r timed out", r.id, self)
            if self.active:
                self.w_cancel.send(wire.Cancel(request=r.id))
            rep.clear_request(r, roundtrip=False)
            if r.block is not None:
                self.back_off(r.block, limits.REQUEST_TIMEOUT)  # ask someone else for it
            if r.upgrade and not r.reorg:
                self.upgrade_failed(r)
            if r.seek_of is not None:
                r.seek_of.tried.add(self)
        if not self.remote_synced and not self.sync_overdue:
            if now - self.opened_at >= limits.REQUEST_TIMEOUT:
                self.sync_overdue = True  # silent: updates stop waiting for it
                rep.notify()
        retry_upgrade = self.failed_upgrade == self.remote_length and now >= self.upgrade_retry_at
        if self.paused_until and now >= self.paused_until:
            self.paused_until = 0.0
            retry_upgrade = True  # (and blocks) ask it again
        expired = [i for i, until in self.avoid.items() if until <= now]
        for i in expired:
            del self.avoid[i]
        if late:
            rep.update_all()
        elif expired or retry_upgrade:
            rep.update_peer(self)

    # --- incoming: what it has ----------------------------------------------------------------

    def _on_sync(self, m: wire.Sync, channel: Channel) -> None:
        if not self.active:
            return
        rep = self.replicator
        head = rep.core.head
        length_changed = m.length != self.remote_length
        same_fork = m.fork == head.fork
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
            self.can_upgrade = same_fork and self._can_prove(m.length)
        if same_fork and head.length > self.remote_length:
            self.signal_upgrade()
        if m.fork > head.fork:
            self.maybe_follow_fork()
        rep.notify()
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
        elif ok and end - start == 1 and start // limits.WANT_BATCH in self.wants_sent:
            ok = self.remote_bits.set_bit(start, has)  # a page of a batch we want
        elif ok:
            ok = self.remote_bits.set_range(start, end, has)
        if not ok:
            self.drop(HypercoreError("peer announced more disjoint ranges than we keep"))
            return
        if has:
            self.replicator.seeks_to_retry(self)
            self.replicator.update_peer(self)

    def _on_bitfield(self, m: wire.Bitfield, channel: Channel) -> None:
        if not self.active:
            return
        if m.start & 31:
            self.drop(HypercoreError(f"bitfield message at {m.start}, not a multiple of 32"))
            return
        bits = wire.bitfield_bytes(m)
        end = m.start + 8 * len(bits)
        batch = m.start // limits.WANT_BATCH
        if batch not in self.wants_sent or end > (batch + 1) * limits.WANT_BATCH:
            return  # bitfields answer our wants (as JS sends them): keep only those
        ok = True
        if m.start < self.remote_contiguous:  # a bitfield is the truth for its span
            ok = self._lower_contiguous(m.start, end)
        if not ok or not self.remote_bits.insert(m.start, bits):
            self.drop(HypercoreError("peer sent more bitfield pages than we keep"))
            return
        self.replicator.update_peer(self)

    def _on_extension(self, m: wire.Extension, channel: Channel) -> None:
        if not self.active:
            return
        name = m.name or self.last_extension_received
        self.last_extension_received = name
        ext = self.replicator.extensions.get(name)
        if ext is not None:  # unknown names are ignored, as JS does
            ext._receive(m.message, self)

    # --- incoming: what it asks of us -------------------------------------------------------

    def _on_want(self, m: wire.Want, channel: Channel) -> None:
        if not self.active or m.length <= 0:
            return
        if not m.any and m.length > limits.WANT_BATCH:
            return  # larger than any batch JS asks for: JS ignores it too
        key = (m.start, m.length, m.any)
        if key in self.wanted:
            return  # answered already (JS never repeats a want it did not unwant)
        if len(self.wanted) < limits.MAX_QUEUED_WANTS:
            self.wanted.add(key)
            batch = m.start // limits.WANT_BATCH
            self.remote_wants[batch] = self.remote_wants.get(batch, 0) + 1
        if self.want_queue or not self.mux.drained:
            if len(self.want_queue) >= limits.MAX_QUEUED_WANTS:
                n = limits.MAX_QUEUED_WANTS
                self.drop(HypercoreError(f"peer has more than {n} wants waiting"))
                return
            self.want_queue.append(m)
            return
        self._answer_want(m)

    def _on_unwant(self, m: wire.Unwant, channel: Channel) -> None:
        key = (m.start, m.length, m.any)
        if key not in self.wanted:
            return
        self.wanted.discard(key)
        batch = m.start // limits.WANT_BATCH
        n = self.remote_wants.get(batch, 0) - 1
        if n > 0:
            self.remote_wants[batch] = n
        else:
            self.remote_wants.pop(batch, None)
        if self.want_queue:  # not answered yet: no longer asked for
            self.want_queue = deque(w for w in self.want_queue if (w.start, w.length, w.any) != key)

    def _answer_want(self, m: wire.Want) -> None:
        for answer in answer_want(self.replicator.core, m.start, m.length, m.any):
            if isinstance(answer, wire.Range):
                self.send_range(answer.start, answer.length)
            else:
                self.w_bitfield.send(answer)

    def _on_request(self, m: wire.Request, channel: Channel) -> None:
        if not self.active:
            return
        if m.id in self.remote_requests:
            self._cancel(m.id)
        if len(self.remote_requests) >= limits.MAX_QUEUED_REQUESTS:
            n = limits.MAX_QUEUED_REQUESTS
            self.drop(HypercoreError(f"peer has more than {n} requests waiting"))
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
            self._answer_want(self.want_queue.popleft())
        while self.queue and self.active and self.mux.drained:
            self._serve(self.queue.popleft())

    def _serve(self, m: wire.Request) -> None:
        if self.remote_requests.get(m.id) is not m:
            return  # cancelled
        del self.remote_requests[m.id]
        core = self.replicator.core
        try:
            answer = answer_request(core, m, self)
        except HypercoreError as e:
            self.invalid_requests += 1
            log.debug("invalid request from %r: %s", self, e)
            self.w_no_data.send(wire.NoData(request=m.id, reason=wire.INVALID_REQUEST))
            if self.invalid_requests >= limits.MAX_INVALID_REQUESTS:
                self.replicator.report_invalid(self, e)
                self.close(e)
            return
        if isinstance(answer, wire.NoData):
            self.w_no_data.send(answer)
            return
        self.w_data.send(answer)
        if answer.block is not None:
            size = len(answer.block.value) - core.padding
            self.replicator.emit("upload", answer.block.index, size, self)
