"""One UDX stream as a sans-IO state machine (libudx ``udx.c``: ``process_packet``,
``send_ack``, ``ack_packet``, the send path and its timers).

The caller moves datagrams and time: :meth:`Connection.receive` takes a datagram addressed
to this stream, :meth:`Connection.datagrams` gives what to send now, :meth:`Connection.timer`
says when :meth:`Connection.on_timer` must run next, and :meth:`Connection.events` hands out
what happened (data in order, the remote's end, stream messages, the close). Nothing here
reads a clock or a socket: the tests drive both.

Reliability as libudx: packets numbered per packet (32-bit, wrapping), a cumulative ack and
selective-ack blocks, every DATA/END answered with an ack, retransmission of packets seen
lost (a packet three seqs later acknowledged, or sent before the newest acknowledged one by
more than a quarter of the smoothed RTT, as RACK does), a tail loss probe after two RTTs
without acks, and the retransmission timeout
(``max(srtt + 4 * rttvar, 1 s)``, doubled on each timeout; six timeouts in a row end the
stream with :class:`UDXTimeoutError`). Congestion control is a window of packets that grows
as in NewReno (slow start from 10, then one packet per round) but, like BBRv2, treats loss
as congestion only when a round loses more than 2% of its packets, and at least 8 (then it
shrinks by 0.7, as CUBIC does), so random loss does not collapse it; a timeout restarts
from 10. It is bounded by the receive window the peer advertises.

Path MTU probing as libudx: packets start at 1200 bytes (IP and UDP headers included); after
the first ack a new data packet is padded with zeros (the data offset byte) up to 32 bytes
more, and each acknowledged probe raises the size packets are cut to, in 32-byte steps up to
``mtu_max`` (1500, or less on a smaller link); three probes lost in a row end the search. A
lost probe is not taken for congestion. Not yet: pacing.

:meth:`Connection.change_remote` points the stream at another peer stream id (libudx
``udx_stream_change_remote``): sequence numbers and the congestion state go on, every packet
sent from then on (retransmissions too) carries the new id, the MTU search starts again from
the base, and :class:`RemoteChanged` follows once everything sent before the change is
acknowledged.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .errors import UDXDecodeError, UDXError, UDXResetError, UDXTimeoutError
from .packet import (
    DATA,
    DESTROY,
    END,
    HEADER_SIZE,
    HEARTBEAT,
    MAX_SACKS,
    MESSAGE,
    SACK,
    Packet,
    decode,
    encode,
    encode_plain,
)

__all__ = [
    "Closed",
    "Connection",
    "Data",
    "End",
    "Message",
    "RemoteChanged",
]

#: Packet sizes (IP and UDP headers included) as libudx: every path carries MTU_BASE; probes
#: look for more in MTU_STEP steps up to MTU_MAX, and MTU_MAX_PROBES lost ones end the search.
MTU_BASE = 1200
MTU_MAX = 1500
MTU_STEP = 32
MTU_MAX_PROBES = 3
#: IP and UDP headers.
IPV4_OVERHEAD = 20 + 8
IPV6_OVERHEAD = 40 + 8
#: Payload of a packet at the base MTU over IPv4.
MAX_PAYLOAD = MTU_BASE - IPV4_OVERHEAD - HEADER_SIZE
#: The receive window advertised when nothing is buffered (libudx: 4 MiB).
RWND_MAX = 4 * 1024 * 1024
INITIAL_CWND = 10
MIN_RTO = 1.0
#: The shortest tail loss probe timeout.
MIN_PROBE = 0.01
MAX_RTO = 30.0
MAX_TIMEOUTS = 6
DUPTHRESH = 3
#: A round losing more than this share of its packets shrinks the window by BETA.
LOSS_THRESHOLD = 0.02
#: A round spans at least this many packets, so that one loss in a small window is not 2%.
ROUND_MIN_PACKETS = 200
#: ... and at least this many of them (BBRv2's full_loss_cnt): at 1% random loss a round of
#: 200 packets loses more than 2% one time in 20, 8 or more one time in 1,000.
ROUND_MIN_LOSSES = 8
BETA = 0.7
#: Bytes beyond the advertised window still buffered from a peer (the window it saw is older).
RWND_SLACK = 128 * 1024
_MTU_BASE, _MTU_SEARCH, _MTU_DONE = 0, 1, 2

_HALF = 1 << 31
_MASK = (1 << 32) - 1


def seq_diff(a: int, b: int) -> int:
    """``a - b`` in 32-bit sequence space (negative when ``a`` is older)."""
    return ((a - b + _HALF) & _MASK) - _HALF


@dataclass(slots=True)
class Data:
    data: bytes


@dataclass(slots=True)
class End:
    """The peer ended its side: no more data will come."""


@dataclass(slots=True)
class Message:
    data: bytes


@dataclass(slots=True)
class Closed:
    """The stream is over (``error`` None: both sides ended cleanly)."""

    error: UDXError | None


@dataclass(slots=True)
class RemoteChanged:
    """Everything sent before :meth:`Connection.change_remote` is acknowledged (libudx's
    ``on_remote_changed``)."""


Event = Data | End | Message | Closed | RemoteChanged


class _Sent:
    __slots__ = ("lost", "padding", "payload", "retransmits", "sacked", "sent_at", "type")

    def __init__(self, type_: int, payload: bytes) -> None:
        self.type = type_
        self.payload = payload
        self.padding = 0  # > 0: an MTU probe
        self.sent_at = 0.0
        self.retransmits = 0
        self.sacked = False
        self.lost = False


class Connection:
    """The state of one stream between ``local_id`` (ours: the id the peer addresses) and
    ``remote_id`` (the peer's)."""

    def __init__(
        self,
        local_id: int,
        remote_id: int,
        *,
        rwnd_max: int = RWND_MAX,
        ipv6: bool = False,
        mtu_max: int = MTU_MAX,
    ) -> None:
        """``ipv6`` sizes packets for IPv6 headers; ``mtu_max`` caps the MTU search (the
        link's MTU: at most :data:`MTU_BASE` turns probing off)."""
        self.local_id = local_id
        self.remote_id = remote_id
        self.rwnd_max = rwnd_max
        # path MTU
        self._path_reset(ipv6, mtu_max)
        # a change of remote waits for the acks of what was sent before it (seq below this)
        self.remote_changing = False
        self._change_seq = 0
        # receiving
        self.ack = 0  # next seq expected
        self._incoming: dict[int, tuple[int, bytes]] = {}
        self._incoming_bytes = 0
        self.unread = 0  # delivered to the application, not yet consumed
        self.remote_ended = False
        # sending
        self.seq = 0  # next seq to send
        self.remote_acked = 0  # oldest seq not yet acknowledged
        self.send_rwnd = rwnd_max
        self._queue: deque[bytes] = deque()  # written, not yet sent, in order
        self._queue_offset = 0  # bytes of the first one already sent
        self._queued_bytes = 0
        self._end_queued = False
        self.ended = False  # our END is sent
        self._inflight: dict[int, _Sent] = {}
        self._inflight_bytes = 0
        self._outstanding = 0  # in flight, neither selectively acked nor seen lost
        self._retransmit: list[int] = []
        self._order: deque[tuple[int, float]] = deque()  # (seq, sent at), as they went out
        self._known_sacks: list[tuple[int, int]] = []  # the blocks of the latest ack
        self._high_sacked = _MASK  # the highest seq acknowledged (seq - 1 to begin with)
        self._out: list[bytes] = []
        self._ack_needed = False
        self.cwnd = float(INITIAL_CWND)
        self.ssthresh = float(1 << 16)
        self._round_end = 0  # the window in flight when the current round began ends here
        self._round_delivered = 0
        self._round_lost = 0
        self._reo_steps = 1
        # timing
        self.srtt: float | None = None
        self.min_rtt: float | None = None
        self.rttvar = 0.0
        self.rto = MIN_RTO
        self._timeouts = 0
        self._rto_at: float | None = None
        self._probe_at: float | None = None
        self._tlp_at: float | None = None
        self.keepalive: float | None = None
        self._keepalive_at: float | None = None
        self._events: list[Event] = []
        self.closed = False
        self._clean = False
        self.retransmits = 0

    # --- the application side -----------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue ``data`` to be delivered reliably and in order."""
        if self._end_queued or self.closed:
            raise UDXError("the stream's write side is ended")
        if data:
            self._queue.append(bytes(data))
            self._queued_bytes += len(data)

    @property
    def max_payload(self) -> int:
        """Data bytes a packet carries at the current MTU."""
        return self.mtu - self._overhead

    def _take(self, n: int) -> bytes:
        """The next ``n`` queued bytes (whole writes are not copied; small ones coalesce)."""
        parts: list[bytes] = []
        queue = self._queue
        while n and queue:
            head, offset = queue[0], self._queue_offset
            available = len(head) - offset
            if available <= n:
                parts.append(head[offset:] if offset else head)
                queue.popleft()
                self._queue_offset = 0
                n -= available
            else:
                parts.append(head[offset : offset + n])
                self._queue_offset += n
                n = 0
        payload = parts[0] if len(parts) == 1 else b"".join(parts)
        self._queued_bytes -= len(payload)
        return payload

    def end(self) -> None:
        """End the write side after what is queued (an END packet)."""
        if not self.closed:
            self._end_queued = True

    def send_message(self, data: bytes) -> None:
        """An unreliable datagram on the stream (a MESSAGE packet, never retransmitted)."""
        if self.closed:
            raise UDXError("the stream is closed")
        self._out.append(self._packet(MESSAGE, self.seq, bytes(data)))

    def destroy(self) -> None:
        """Tell the peer the stream is gone (a DESTROY packet) and close."""
        if self.closed:
            return
        self._out.append(self._packet(DESTROY, self.seq, b""))
        self.seq = (self.seq + 1) & _MASK
        self._close(None)
        self._clean = False  # nothing more is answered

    def consumed(self, n: int) -> None:
        """The application took ``n`` bytes of delivered data: the window reopens."""
        self.unread = max(0, self.unread - n)

    def _path_reset(self, ipv6: bool, mtu_max: int) -> None:
        """A new path: its header overhead, and the MTU search from the base."""
        self._overhead = (IPV6_OVERHEAD if ipv6 else IPV4_OVERHEAD) + HEADER_SIZE
        self.mtu = MTU_BASE
        self.mtu_max = max(MTU_BASE, min(mtu_max, MTU_MAX))
        self._mtu_state = _MTU_BASE if self.mtu_max > MTU_BASE else _MTU_DONE
        self._probe_size = min(MTU_BASE + MTU_STEP, self.mtu_max)
        self._probe_count = 0
        self._probe_wanted = False

    def set_keepalive(self, interval: float | None, now: float) -> None:
        """While everything sent is acknowledged, send a HEARTBEAT every ``interval``
        seconds (the peer acks it), so that NAT mappings on the path stay open (libudx's
        ``udx_stream_set_keepalive``). None or 0 turns it off."""
        self.keepalive = interval or None
        self._keepalive_at = None if self.keepalive is None else now + self.keepalive

    def change_remote(self, remote_id: int, *, ipv6: bool = False, mtu_max: int = MTU_MAX) -> bool:
        """From now on talk to peer stream ``remote_id`` over another path (``ipv6`` and
        ``mtu_max`` as in the constructor; the caller moves the address). Sequence numbers,
        acks and the congestion state go on; packets in flight are not sent again at once,
        but what is retransmitted goes with the new id. The MTU search starts again from
        the base, once the change is over (and in-flight probes no longer count).

        True if nothing sent is unacknowledged (the change is over at once); otherwise a
        :class:`RemoteChanged` event follows once everything sent before it is acked."""
        if self.closed:
            raise UDXError("the stream is closed")
        self.remote_id = remote_id
        self._path_reset(ipv6, mtu_max)
        for sent in self._inflight.values():
            sent.padding = 0  # an ack of a probe of the old path says nothing of the new
        if self.seq == self.remote_acked:
            self.remote_changing = False
            return True
        self.remote_changing = True
        self._change_seq = self.seq
        return False

    def events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    @property
    def flushed(self) -> bool:
        """Our END is sent and everything we sent is acknowledged."""
        return self.ended and not self._inflight and not self._queue

    @property
    def buffered(self) -> int:
        """Bytes written and not yet acknowledged."""
        return self._queued_bytes + self._inflight_bytes

    # --- the network side ---------------------------------------------------------------

    def rwnd(self) -> int:
        return max(0, self.rwnd_max - self.unread - self._incoming_bytes)

    def _packet(
        self,
        type_: int,
        seq: int,
        payload: bytes,
        sacks: list[tuple[int, int]] | None = None,
        padding: int = 0,
    ) -> bytes:
        if not sacks and not padding:
            return encode_plain(type_, self.remote_id, self.rwnd(), seq, self.ack, payload)
        return encode(
            Packet(type_, self.remote_id, self.rwnd(), seq, self.ack, sacks or [], payload, padding)
        )

    def receive(self, datagram: bytes, now: float) -> None:
        """A datagram for this stream. Malformed ones are dropped."""
        try:
            p = decode(datagram)
        except UDXDecodeError:
            return
        if p.stream_id != self.local_id:
            return
        if self.closed:
            # After a clean close, keep acknowledging what the peer repeats (its END, when
            # our last ack was lost) so that it can close too.
            if self._clean and p.type & (DATA | END):
                self._out.append(self._packet(0, self.seq, b""))
            return
        if p.type & HEARTBEAT:
            self._ack_needed = True
            return
        if seq_diff(p.seq, self.ack) >= 0:
            if p.type & (DATA | END) and p.seq not in self._incoming:
                # Within the window we advertise (a peer ignoring it is not buffered for).
                if (
                    seq_diff(p.seq, self.ack) < self.rwnd_max // MAX_PAYLOAD + 64
                    and self.unread + self._incoming_bytes + len(p.payload)
                    <= self.rwnd_max + RWND_SLACK
                ):
                    self._incoming[p.seq] = (p.type, p.payload)
                    self._incoming_bytes += len(p.payload)
            if p.type & DESTROY:
                self._close(UDXResetError("the peer destroyed the stream"))
                return
        if p.type & MESSAGE:
            self._events.append(Message(p.payload))
        self._deliver()
        self._on_ack(p, now)
        if p.type & (DATA | END):
            self._ack_needed = True
        self._maybe_close()

    def _deliver(self) -> None:
        while True:
            item = self._incoming.pop(self.ack, None)
            if item is None:
                return
            type_, payload = item
            self._incoming_bytes -= len(payload)
            self.ack = (self.ack + 1) & _MASK
            if type_ & DATA and payload:
                self.unread += len(payload)
                self._events.append(Data(payload))
            if type_ & END and not self.remote_ended:
                self.remote_ended = True
                self._events.append(End())

    def _on_ack(self, p: Packet, now: float) -> None:
        ack = p.ack
        if seq_diff(ack, self.seq) > 0:
            return  # acknowledges what we never sent
        if seq_diff(ack, self.remote_acked) >= 0:
            self.send_rwnd = p.rwnd
        newly = 0
        newest_sent: float | None = None
        while seq_diff(ack, self.remote_acked) > 0:
            sent = self._inflight.pop(self.remote_acked, None)
            if sent is not None:
                self._inflight_bytes -= len(sent.payload)
                if not sent.sacked and not sent.lost:
                    self._outstanding -= 1
                elif not sent.sacked and (
                    sent.retransmits == 0 or now - sent.sent_at < (self.srtt or 0) / 2
                ):
                    self._spurious()  # lost, yet acked before a retransmission could be
                if not sent.sacked:
                    newly += 1
                    if sent.padding:
                        self._probe_acked()
                    if sent.retransmits == 0:
                        self._rtt_sample(now - sent.sent_at)
                    if self._unambiguous(sent, now):
                        newest_sent = max(newest_sent or 0.0, sent.sent_at)
            self.remote_acked = (self.remote_acked + 1) & _MASK
        if self.remote_changing and seq_diff(self.remote_acked, self._change_seq) >= 0:
            self.remote_changing = False
            self._events.append(RemoteChanged())
        if newly and seq_diff(self.remote_acked, self._high_sacked) > 1:
            self._high_sacked = (self.remote_acked - 1) & _MASK
        if p.sacks:
            sacked, newest = self._on_sacks(p.sacks, now)
            newly += sacked
            if newest is not None:
                newest_sent = max(newest_sent or 0.0, newest)
        if newly:
            self._timeouts = 0
            self._oldest_outstanding()  # (keeps the send order short without losses)
            if self._mtu_state == _MTU_BASE and not self.remote_changing:
                # the path carries the base MTU: look for more
                self._mtu_state = _MTU_SEARCH
                self._probe_wanted = True
            self._grow(newly)
            if self._inflight:
                self._rto_at = now + self.rto
                self._arm_probe(now)
            else:
                self._rto_at = self._tlp_at = None
                if self.keepalive is not None:
                    self._keepalive_at = now + self.keepalive
        if newly and (p.sacks or self._retransmit or self._round_lost):
            # (An ack only of retransmissions, too quick to be for them, tells RACK nothing,
            # but what it acknowledges still counts for the forward acknowledgement: the
            # tail loss probe's ack finds a lost tail at once, not a packet per probe.)
            self._detect_losses(newest_sent)

    def _on_sacks(self, sacks: list[tuple[int, int]], now: float) -> tuple[int, float | None]:
        """Marks what the selective-ack blocks newly cover; answers how many and the newest
        send time among them. A peer repeats its blocks in every ack (libudx acks every
        packet): only what the previous ack's blocks did not cover is walked."""
        base, span = self.remote_acked, seq_diff(self.seq, self.remote_acked)
        blocks = sorted(
            (a, b)
            for a, b in ((seq_diff(s, base), seq_diff(e, base)) for s, e in sacks[:MAX_SACKS])
            if 0 <= a < b <= span
        )
        known = self._known_sacks
        known_rel = [(seq_diff(s, base), seq_diff(e, base)) for s, e in known]
        self._known_sacks = [((base + a) & _MASK, (base + b) & _MASK) for a, b in blocks]
        inflight = self._inflight
        newly, newest_sent, j = 0, None, 0
        for a, b in blocks:
            while j < len(known_rel) and known_rel[j][1] <= a:
                j += 1
            cur, k = a, j
            while cur < b:
                if k < len(known_rel) and known_rel[k][0] <= cur:
                    cur = max(cur, known_rel[k][1])
                    k += 1
                    continue
                stop = min(b, known_rel[k][0]) if k < len(known_rel) else b
                for rel in range(cur, stop):
                    sent = inflight.get((base + rel) & _MASK)
                    if sent is None or sent.sacked:
                        continue
                    if not sent.lost:
                        self._outstanding -= 1
                    elif sent.retransmits == 0 or now - sent.sent_at < (self.srtt or 0) / 2:
                        self._spurious()
                    sent.sacked = True
                    newly += 1
                    if sent.padding:
                        self._probe_acked()
                    if self._unambiguous(sent, now):
                        newest_sent = max(newest_sent or 0.0, sent.sent_at)
                cur = stop
            if seq_diff((base + b - 1) & _MASK, self._high_sacked) > 0:
                self._high_sacked = (base + b - 1) & _MASK
        return newly, newest_sent

    def _unambiguous(self, sent: _Sent, now: float) -> bool:
        """Whether an ack of ``sent`` is for its latest transmission: it was sent once, or
        the ack came at least the smallest RTT seen after the retransmission (RACK, RFC
        8985 6.2). Only then does its send time tell RACK what was sent before it."""
        return sent.retransmits == 0 or (
            self.min_rtt is not None and now - sent.sent_at >= self.min_rtt - 1e-6
        )

    def _rtt_sample(self, rtt: float) -> None:
        rtt = max(rtt, 0.0)
        if self.min_rtt is None or rtt < self.min_rtt:
            self.min_rtt = rtt
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt
        self.rto = min(MAX_RTO, max(MIN_RTO, self.srtt + 4 * self.rttvar))

    def _grow(self, acked: int) -> None:
        self._round_delivered += acked
        total = self._round_delivered + self._round_lost
        if seq_diff(self.remote_acked, self._round_end) >= 0 and total >= ROUND_MIN_PACKETS:
            # A round (a window, and enough packets to measure) is over: back off only if
            # it lost more than LOSS_THRESHOLD of them (BBRv2's loss bound, CUBIC's 0.7).
            if self._round_lost >= ROUND_MIN_LOSSES and self._round_lost / total > LOSS_THRESHOLD:
                self.ssthresh = max(self.cwnd * BETA, float(INITIAL_CWND))
                self.cwnd = self.ssthresh
            self._round_delivered = self._round_lost = 0
            self._round_end = self.seq
        if self.cwnd < self.ssthresh:
            self.cwnd += acked
        else:
            self.cwnd += acked / self.cwnd

    def _spurious(self) -> None:
        """A packet taken for lost arrived after all: reordering, not loss. Widen the
        reordering window (RACK, RFC 8985 6.2) and take it off the round's losses."""
        self._reo_steps = min(self._reo_steps + 1, 4)
        self._round_lost = max(0, self._round_lost - 1)

    def _detect_losses(self, newest_sent: float | None) -> None:
        """A packet is lost when one at least three seqs further on was acknowledged
        (forward acknowledgement), or when one sent more than the reordering window after it
        was (RACK: a quarter of the smoothed RTT; ``newest_sent`` None: no ack unambiguous
        enough to tell); both widen each time reordering fooled them.
        Transmissions are kept in the order they went out, so only the oldest ones
        outstanding are looked at: the first that is not lost ends the walk."""
        window = (self.srtt or 0.0) / 4 * self._reo_steps
        fack = DUPTHRESH * self._reo_steps
        while (oldest := self._oldest_outstanding()) is not None:
            seq, sent = oldest
            if not (
                (newest_sent is not None and sent.sent_at + window < newest_sent)
                or (sent.retransmits == 0 and seq_diff(self._high_sacked, seq) >= fack)
            ):
                break
            if not sent.padding:  # a lost MTU probe says nothing of congestion
                self._round_lost += 1
            self._mark_lost(seq, sent)

    def _oldest_outstanding(self) -> tuple[int, _Sent] | None:
        """The transmission sent first of those neither acknowledged nor seen lost, after
        dropping the ones before it from the send order."""
        order, inflight = self._order, self._inflight
        while order:
            seq, at = order[0]
            sent = inflight.get(seq)
            if sent is not None and not sent.sacked and not sent.lost and sent.sent_at == at:
                return seq, sent
            order.popleft()  # acknowledged, seen lost, or sent again since
        return None

    # --- sending --------------------------------------------------------------------------

    def _can_send(self) -> bool:
        return self._outstanding < int(self.cwnd)

    def _mark_lost(self, seq: int, sent: _Sent) -> None:
        if not sent.lost and not sent.sacked:
            sent.lost = True
            self._outstanding -= 1
            self._retransmit.append(seq)
            if sent.padding:  # it goes again without the padding
                sent.padding = 0
                self._probe_lost()

    # --- path MTU -------------------------------------------------------------------------

    def _probe_acked(self) -> None:
        if self._mtu_state != _MTU_SEARCH:
            return
        self.mtu = self._probe_size
        self._probe_count = 0
        if self._probe_size >= self.mtu_max:
            self._mtu_state = _MTU_DONE
            self._probe_wanted = False
        else:
            self._probe_size = min(self._probe_size + MTU_STEP, self.mtu_max)
            self._probe_wanted = True

    def _probe_lost(self) -> None:
        if self._mtu_state != _MTU_SEARCH:
            return
        if self._probe_count >= MTU_MAX_PROBES:
            self._mtu_state = _MTU_DONE
            self._probe_wanted = False
        else:
            self._probe_wanted = True

    def _padding_for(self, payload: bytes) -> int:
        """Zero bytes that make a packet of ``payload`` an MTU probe (0: it cannot be one)."""
        if not (self._probe_wanted and payload):
            return 0
        padding = self._probe_size - (len(payload) + self._overhead)
        return padding if 0 < padding <= 0xFF else 0

    def datagrams(self, now: float) -> list[bytes]:
        """What to send now (retransmissions first, then new data within the windows, then
        an ack if one is owed)."""
        if self.closed:
            out, self._out = self._out, []
            return out
        out = self._out
        self._out = []
        self._retransmit.sort(key=lambda s: seq_diff(s, self.remote_acked))
        while self._retransmit and self._can_send():
            seq = self._retransmit.pop(0)
            sent = self._inflight.get(seq)
            if sent is None or sent.sacked:
                continue
            if not sent.lost:
                continue
            sent.lost = False
            self._outstanding += 1
            sent.retransmits += 1
            sent.sent_at = now
            self._order.append((seq, now))
            self.retransmits += 1
            out.append(self._packet(sent.type, seq, sent.payload))
            self._ack_needed = False
        while self._can_send():
            if self._queue:
                size = min(self.max_payload, self._queued_bytes)
                if self._inflight_bytes + size > self.send_rwnd and self._inflight:
                    break
                if self.send_rwnd == 0:
                    break
                payload = self._take(size)
                type_ = DATA | (END if self._end_queued and not self._queue else 0)
            elif self._end_queued and not self.ended:
                payload, type_ = b"", END
            else:
                break
            if type_ & END:
                self.ended = True
            sent = _Sent(type_, payload)
            sent.sent_at = now
            padding = self._padding_for(payload)
            if padding:
                sent.padding = padding
                self._probe_count += 1
                self._probe_wanted = False
            seq = self.seq
            self._order.append((seq, now))
            self._inflight[seq] = sent
            self._inflight_bytes += len(payload)
            self._outstanding += 1
            self.seq = (seq + 1) & _MASK
            out.append(self._packet(type_, seq, payload, padding=padding))
            self._ack_needed = False
            if self._rto_at is None:
                self._rto_at = now + self.rto
            if self._tlp_at is None:
                self._arm_probe(now)
        if self._queue and self.send_rwnd == 0 and not self._inflight and self._probe_at is None:
            self._probe_at = now + self.rto
        if self._ack_needed:
            self._ack_needed = False
            sacks = self._sacks()
            out.append(self._packet(SACK if sacks else 0, self.seq, b"", sacks))
        return out

    def _sacks(self) -> list[tuple[int, int]]:
        if not self._incoming:
            return []
        seqs = sorted(seq_diff(s, self.ack) for s in self._incoming)
        blocks: list[tuple[int, int]] = []
        start = prev = seqs[0]
        for d in seqs[1:]:
            if d != prev + 1:
                blocks.append((start, prev + 1))
                start = d
            prev = d
        blocks.append((start, prev + 1))
        return [((self.ack + s) & _MASK, (self.ack + e) & _MASK) for s, e in blocks[:MAX_SACKS]]

    # --- timers ---------------------------------------------------------------------------

    def _arm_probe(self, now: float) -> None:
        """The tail loss probe (RACK-TLP, RFC 8985 7): if nothing is acknowledged for two
        RTTs, resend the newest packet so that a lost tail is found by acks, not by the
        one-second retransmission timeout."""
        if self.srtt is not None:
            self._tlp_at = now + max(2 * self.srtt, MIN_PROBE)

    def timer(self) -> float | None:
        """When :meth:`on_timer` must run next (None: nothing pending)."""
        if self.closed:
            return None
        times = [t for t in (self._rto_at, self._probe_at, self._tlp_at) if t is not None]
        if self._keepalive_at is not None and not self._inflight:
            times.append(self._keepalive_at)
        return min(times) if times else None

    def on_timer(self, now: float) -> None:
        if self.closed:
            return
        if self._tlp_at is not None and now >= self._tlp_at:
            self._tlp_at = None  # one probe until acks move again
            candidates = [q for q, x in self._inflight.items() if not x.sacked and not x.lost]
            if candidates:
                seq = max(candidates, key=lambda q: seq_diff(q, self.remote_acked))
                self._mark_lost(seq, self._inflight[seq])
        if self._probe_at is not None and now >= self._probe_at:
            self._probe_at = None
            if self.send_rwnd == 0:
                self._out.append(self._packet(HEARTBEAT, self.seq, b""))
                self._probe_at = now + self.rto
        if self._keepalive_at is not None and now >= self._keepalive_at and not self._inflight:
            assert self.keepalive is not None
            self._out.append(self._packet(HEARTBEAT, self.seq, b""))
            self._keepalive_at = now + self.keepalive
        if self._rto_at is not None and now >= self._rto_at:
            if not self._inflight:
                self._rto_at = None
                return
            self._timeouts += 1
            if self._timeouts >= MAX_TIMEOUTS:
                self._close(UDXTimeoutError("the peer stopped answering"))
                return
            if self.srtt is not None:
                # (Before any ack, a timeout says the peer was not there yet, e.g. still
                # connecting its stream, not that the path is congested: a ssthresh of 10
                # would leave the window growing one packet per round trip from then on.)
                self.ssthresh = max(self.cwnd * BETA, float(INITIAL_CWND))
            self.cwnd = float(INITIAL_CWND)
            for seq, sent in self._inflight.items():
                self._mark_lost(seq, sent)
            self.rto = min(MAX_RTO, self.rto * 2)
            self._rto_at = now + self.rto

    # --- closing --------------------------------------------------------------------------

    def _maybe_close(self) -> None:
        if self.ended and self.remote_ended and not self._inflight and not self._queue:
            self._out.append(self._packet(0, self.seq, b""))  # the final ack of its END
            self._close(None)

    def _close(self, error: UDXError | None) -> None:
        if self.closed:
            return
        self.closed = True
        self._clean = error is None
        self._events.append(Closed(error))
        self._rto_at = self._probe_at = self._tlp_at = self._keepalive_at = None
