"""hyperswarm.udx.connection between two connections over a simulated link: seeded loss,
duplication, reordering and delay, and a clock the test drives (never slept)."""

from __future__ import annotations

import hashlib
import heapq
import random
from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperswarm.udx.connection import (
    MAX_PAYLOAD,
    RWND_SLACK,
    Closed,
    Connection,
    Data,
    End,
    Message,
    UDXResetError,
    UDXTimeoutError,
)
from hyperswarm.udx.packet import DATA, HEARTBEAT, Packet, decode, encode

A_ID, B_ID = 1, 2


class Link:
    def __init__(
        self, rng: random.Random, loss: float, dup: float, jitter: float, delay: float = 0.01
    ) -> None:
        self.rng, self.loss, self.dup, self.jitter, self.delay = rng, loss, dup, jitter, delay
        self.queue: list[tuple[float, int, Connection, bytes]] = []
        self.n = 0
        self.sent = 0
        self.blackhole = False
        self.blackhole_until = 0.0  # everything sent before then is lost
        self.path_mtu: int | None = None  # larger IPv4 packets are dropped
        self.log: list[bytes] = []  # every datagram sent
        self.drop: Callable[[bytes], bool] | None = None  # True: this one is lost
        self.ended_at: dict[str, float] = {}  # when each side saw the other's end

    def send(self, now: float, to: Connection, datagrams: list[bytes]) -> None:
        for d in datagrams:
            self.sent += 1
            self.log.append(d)
            if self.path_mtu is not None and len(d) + 28 > self.path_mtu:
                continue
            if self.drop is not None and self.drop(d):
                continue
            if self.blackhole or now < self.blackhole_until or self.rng.random() < self.loss:
                continue
            for _ in range(2 if self.rng.random() < self.dup else 1):
                at = now + self.delay + self.rng.random() * self.jitter
                self.n += 1
                heapq.heappush(self.queue, (at, self.n, to, d))


def run(
    a: Connection,
    b: Connection,
    link: Link,
    *,
    max_time: float = 900.0,
    max_steps: int = 400_000,
    consume: bool = True,
    stop_at: float | None = None,
) -> tuple[dict[str, list[object]], float]:
    """Moves packets and time until both are closed, nothing is pending, or ``stop_at``.
    The receivers take their data at once unless ``consume`` is false."""
    got: dict[str, list[object]] = {"a": [], "b": []}
    now = 0.0
    for _ in range(max_steps):
        link.send(now, b, a.datagrams(now))
        link.send(now, a, b.datagrams(now))
        for name, c in (("a", a), ("b", b)):
            for ev in c.events():
                got[name].append(ev)
                if isinstance(ev, End):
                    link.ended_at[name] = now
                if isinstance(ev, Data) and consume:
                    c.consumed(len(ev.data))
        if a.closed and b.closed and not link.queue:
            break
        times = [t for t in (a.timer(), b.timer()) if t is not None]
        if link.queue:
            times.append(link.queue[0][0])
        if not times:
            break
        now = max(now, min(times))
        if stop_at is not None and now > stop_at:
            break
        assert now <= max_time, "the transfer did not finish in simulated time"
        while link.queue and link.queue[0][0] <= now:
            _, _, to, d = heapq.heappop(link.queue)
            to.receive(d, now)
        for c in (a, b):
            t = c.timer()
            if t is not None and t <= now:
                c.on_timer(now)
    else:
        raise AssertionError("too many steps")
    return got, now


def data_of(events: list[object]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, Data))


def payload(size: int, seed: int) -> bytes:
    blocks = []
    block = hashlib.sha256(str(seed).encode()).digest()
    for _ in range(size // 32 + 1):
        block = hashlib.sha256(block).digest()
        blocks.append(block)
    return b"".join(blocks)[:size]


def test_a_clean_transfer_both_ways_and_close() -> None:
    a, b = Connection(A_ID, B_ID), Connection(B_ID, A_ID)
    x, y = payload(100_000, 1), payload(5_000, 2)
    a.write(x)
    a.end()
    b.write(y)
    b.end()
    got, _ = run(a, b, Link(random.Random(1), 0, 0, 0))
    assert data_of(got["b"]) == x and data_of(got["a"]) == y
    for name in ("a", "b"):
        assert any(isinstance(e, End) for e in got[name])
        assert got[name][-1] == Closed(None)
    assert a.retransmits == 0


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    loss=st.floats(0, 0.10),
    dup=st.floats(0, 0.05),
    jitter=st.floats(0, 0.03),
    size=st.integers(0, 120_000),
    path_mtu=st.none() | st.integers(1200, 1500),
)
def test_every_byte_arrives_once_in_order_over_a_bad_link(
    seed: int, loss: float, dup: float, jitter: float, size: int, path_mtu: int | None
) -> None:
    a, b = Connection(A_ID, B_ID), Connection(B_ID, A_ID)
    x = payload(size, seed)
    a.write(x)
    a.end()
    b.end()
    link = Link(random.Random(seed), loss, dup, jitter)
    link.path_mtu = path_mtu
    got, _ = run(a, b, link)
    assert data_of(got["b"]) == x
    assert sum(isinstance(e, End) for e in got["b"]) == 1
    assert got["b"][-1] == Closed(None)
    # a closes cleanly unless every one of its last acks was lost; it never sees an error
    # other than a timeout in that case.
    assert isinstance(got["a"][-1], Closed)
    err = got["a"][-1].error  # type: ignore[attr-defined]
    assert err is None or isinstance(err, UDXTimeoutError)


def test_messages_are_unreliable_datagrams() -> None:
    a, b = Connection(A_ID, B_ID), Connection(B_ID, A_ID)
    a.send_message(b"hello")
    link = Link(random.Random(2), 0, 0, 0)
    link.send(0.0, b, a.datagrams(0.0))
    _, _, to, d = link.queue[0]
    assert decode(d).type & DATA == 0
    to.receive(d, 0.01)
    assert b.events() == [Message(b"hello")]
    assert a.timer() is None  # never retransmitted


def test_destroy_resets_the_peer() -> None:
    a, b = Connection(A_ID, B_ID), Connection(B_ID, A_ID)
    a.write(b"x")
    link = Link(random.Random(3), 0, 0, 0)
    link.send(0.0, b, a.datagrams(0.0))
    a.destroy()
    link.send(0.0, b, a.datagrams(0.0))
    for _, _, to, d in sorted(link.queue):
        to.receive(d, 0.01)
    events = b.events()
    assert events[0] == Data(b"x")
    assert isinstance(events[-1], Closed) and isinstance(events[-1].error, UDXResetError)


def test_a_vanished_peer_times_out() -> None:
    a, b = Connection(A_ID, B_ID), Connection(B_ID, A_ID)
    a.write(payload(10_000, 4))
    link = Link(random.Random(4), 0, 0, 0)
    link.blackhole = True
    got, now = run(a, b, link)
    assert isinstance(got["a"][-1], Closed)
    assert isinstance(got["a"][-1].error, UDXTimeoutError)  # type: ignore[attr-defined]
    assert 30 < now < 200  # 1 + 2 + 4 + 8 + 16 + 32 s of backed-off timeouts


def test_a_full_receive_window_stops_the_sender() -> None:
    a, b = Connection(A_ID, B_ID), Connection(B_ID, A_ID, rwnd_max=50_000)
    a.write(payload(200_000, 5))
    got, _ = run(a, b, Link(random.Random(5), 0, 0, 0), consume=False, stop_at=20.0)
    received = len(data_of(got["b"]))
    assert received <= 50_000 + 2 * 1152
    assert not a.closed and not b.closed
    assert a.buffered >= 200_000 - received - 2 * 1152
    # The reader takes what it has: zero-window probes learn the reopened window.
    b.consumed(received)
    a.end()
    b.end()
    rest, _ = run(a, b, Link(random.Random(6), 0, 0, 0))
    assert data_of(got["b"]) + data_of(rest["b"]) == payload(200_000, 5)
    assert rest["a"][-1] == Closed(None) and rest["b"][-1] == Closed(None)


def _packet_sizes(a: Connection, size: int, path_mtu: int | None) -> tuple[Link, int]:
    """``a`` sends ``size`` bytes to a reader with a 100 kB window (probes go one per round
    trip, and the window makes the transfer last some 20 of them)."""
    b = Connection(B_ID, A_ID, rwnd_max=100_000)
    x = payload(size, 7)
    a.write(x)
    a.end()
    b.end()
    link = Link(random.Random(7), 0, 0, 0)
    link.path_mtu = path_mtu
    got, _ = run(a, b, link)
    assert data_of(got["b"]) == x and got["b"][-1] == Closed(None)
    return link, a.retransmits


def test_the_mtu_search_climbs_to_1500_bytes() -> None:
    a = Connection(A_ID, B_ID)
    link, retransmits = _packet_sizes(a, 2_000_000, None)
    assert a.mtu == 1500 and a.max_payload == 1500 - 28 - 20
    assert retransmits == 0
    # Data packets start at 1200 bytes with headers and end at 1500 (1472 bytes of UDP).
    assert len(link.log[0]) == 1200 - 28 and max(map(len, link.log)) == 1500 - 28
    # Most of the transfer went in full-size packets.
    assert [len(d) for d in link.log].count(1500 - 28) > 2_000_000 // 1452 * 3 // 4


def test_the_mtu_search_stops_below_a_smaller_path() -> None:
    a = Connection(A_ID, B_ID)
    link, retransmits = _packet_sizes(a, 2_000_000, 1350)
    assert a.mtu == 1200 + 4 * 32  # 1360 is too big
    # Only the three lost probes of 1360 bytes went again; they were not taken for congestion.
    assert retransmits == 3
    assert [len(d) for d in link.log].count(1360 - 28) == 3
    assert a.cwnd > 100


def test_no_mtu_search_on_a_small_link_and_ipv6_headers() -> None:
    a = Connection(A_ID, B_ID, mtu_max=1200)
    link, _ = _packet_sizes(a, 100_000, None)
    assert a.mtu == 1200 and max(map(len, link.log)) == 1200 - 28
    a6 = Connection(A_ID, B_ID, ipv6=True)
    assert a6.max_payload == 1200 - 48 - 20
    link, _ = _packet_sizes(a6, 2_000_000, None)
    assert a6.mtu == 1500 and max(map(len, link.log)) == 1500 - 48


def test_a_peer_ignoring_the_window_is_not_buffered_for() -> None:
    """Data beyond the advertised window (plus some slack for acks in flight) is dropped, so
    a reader that stops reading holds a bounded amount however the peer sends."""
    b = Connection(B_ID, A_ID, rwnd_max=100_000)
    held = 0
    for seq in range(2000):  # 2 MB in order, then out of order, never read
        for s in (seq, 10_000 + seq):
            b.receive(encode(Packet(DATA, B_ID, 0, s, 0, [], bytes(1000))), 0.0)
        held = sum(len(e.data) for e in b.events() if isinstance(e, Data)) + held
        assert held + b._incoming_bytes <= 100_000 + RWND_SLACK
        b.datagrams(0.0)
    assert b.rwnd() == 0


def test_keepalive_heartbeats_only_while_idle() -> None:
    a, b = Connection(A_ID, B_ID), Connection(B_ID, A_ID)
    a.set_keepalive(5.0, 0.0)
    link = Link(random.Random(8), 0, 0, 0)
    run(a, b, link, stop_at=21.0)
    beats = [d for d in link.log if decode(d).type == HEARTBEAT]
    assert len(beats) == 4  # at 5, 10, 15 and 20 s
    assert len(link.log) == 8  # each one answered by an ack
    # Data in flight holds them off: they start 5 s after the last ack, not after the start.
    a, b = Connection(A_ID, B_ID), Connection(B_ID, A_ID)
    a.set_keepalive(5.0, 0.0)
    a.write(payload(50_000, 8))
    link = Link(random.Random(8), 0, 0, 0)
    run(a, b, link, stop_at=5.0)
    assert [decode(d).type for d in link.log].count(HEARTBEAT) == 0
    timer = a.timer()
    assert timer is not None and 5.0 < timer < 5.2  # 5 s after the last ack (a few RTTs in)
    a.set_keepalive(None, 5.0)
    assert a.timer() is None


def test_a_peer_not_there_at_first_does_not_slow_the_rest() -> None:
    """The first window is lost (the peer's stream is not connected yet): after the timeout
    the window starts over in slow start, not one packet per round trip."""
    a, b = Connection(A_ID, B_ID), Connection(B_ID, A_ID)
    x = payload(3_000_000, 9)
    a.write(x)
    a.end()
    b.end()
    link = Link(random.Random(9), 0, 0, 0)
    link.blackhole_until = 0.5
    got, now = run(a, b, link)
    assert data_of(got["b"]) == x
    assert a.retransmits == 10 and a.ssthresh == 1 << 16
    assert now < 1.0 + 0.5  # the timeout, then some 15 round trips of 10 ms


def test_a_lost_retransmission_is_found_by_a_later_one() -> None:
    """Ten packets, all in the first window: seq 3 and its first retransmission are lost, and
    seq 8 once. The tail loss probe resends 8; its ack (for a retransmission, but too late to
    be for the original) shows that 3 went out again long before it: 3 is resent then,
    without waiting for another probe (RACK with unambiguous retransmissions)."""
    a, b = Connection(A_ID, B_ID), Connection(B_ID, A_ID)
    a.write(bytes(10 * MAX_PAYLOAD))
    a.end()
    b.end()
    sent: Counter[int] = Counter()

    def drop(d: bytes) -> bool:
        p = decode(d)
        if not p.type & DATA or p.stream_id != B_ID:
            return False
        sent[p.seq] += 1
        return (p.seq == 3 and sent[3] <= 2) or (p.seq == 8 and sent[8] == 1)

    link = Link(random.Random(10), 0, 0, 0)  # 10 ms each way
    link.drop = drop
    got, _ = run(a, b, link)
    assert data_of(got["b"]) == bytes(10 * MAX_PAYLOAD)
    assert sent[3] == 3 and sent[8] == 2 and a.retransmits == 3
    # 3 is lost at 20 ms and resent (lost), 8 goes again at the probe (60 ms) and is acked at
    # 80 ms, when 3 goes a third time: the stream's data is all in at 90 ms (not at 130 ms,
    # after a second probe).
    assert link.ended_at["b"] == pytest.approx(0.09, abs=0.005)


def test_a_lost_tail_is_found_by_the_probe_even_when_its_ack_is_quick() -> None:
    """Twenty packets; the second window (seq 10 to 19) is lost. The tail loss probe resends
    19, and its ack comes back sooner than any RTT seen (the path got faster: ambiguous for
    RACK), yet it shows 10 to 16 lost (three seqs or more below it, never sent again): they
    go at once, not one per probe (some 40 ms each)."""
    a, b = Connection(A_ID, B_ID), Connection(B_ID, A_ID)
    a.write(bytes(20 * MAX_PAYLOAD))
    a.end()
    b.end()
    sent: Counter[int] = Counter()
    link = Link(random.Random(11), 0, 0, 0)  # 10 ms each way, then 1 ms

    def drop(d: bytes) -> bool:
        p = decode(d)
        if not p.type & DATA or p.stream_id != B_ID:
            return False
        sent[p.seq] += 1
        if p.seq == 19 and sent[19] == 2:
            link.delay = 0.001
        return 10 <= p.seq <= 19 and sent[p.seq] == 1

    link.drop = drop
    got, _ = run(a, b, link)
    assert data_of(got["b"]) == bytes(20 * MAX_PAYLOAD)
    assert all(sent[s] == 2 for s in range(10, 20)) and a.retransmits == 10
    # the probe at 60 ms, 10 to 16 again at 62 ms; 17 and 18 at the next probes
    assert link.ended_at["b"] < 0.2


near = st.integers(-8, 40)


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            # type flags: any of DATA/END/SACK/MESSAGE, now and then DESTROY or HEARTBEAT
            st.integers(0, 63).map(
                lambda n: n & 0x0F if n < 60 else (0x10, 0x20, 0x30, 0x3F)[n - 60]
            ),
            near,  # seq relative to what the receiver expects
            st.integers(-2, 12),  # ack relative to the oldest unacknowledged
            # selective-ack blocks (start, length) around what is in flight, any shape
            st.lists(st.tuples(st.integers(-2, 14), st.integers(-1, 8)), max_size=6),
            st.integers(0, 3000),  # payload size
            st.floats(0, 2),  # time passing before it
        ),
        max_size=40,
    )
)
def test_hostile_packets_keep_the_state_sane(
    steps: list[tuple[int, int, int, list[tuple[int, int]], int, float]],
) -> None:
    """Arbitrary well-formed packets from a peer (any flags, seqs and acks around the
    current ones, selective acks of anything) never raise, never make the accounting of
    what is in flight go wrong, and never buffer more than the window."""
    c = Connection(A_ID, B_ID, rwnd_max=20_000)
    c.write(payload(60_000, 11))
    now = 0.0
    c.datagrams(now)
    for type_, dseq, dack, sacks, size, dt in steps:
        now += dt
        blocks = [
            ((c.remote_acked + s) & 0xFFFFFFFF, (c.remote_acked + s + n) & 0xFFFFFFFF)
            for s, n in sacks
        ]
        p = Packet(
            type_,
            A_ID,
            size * 7,
            (c.ack + dseq) & 0xFFFFFFFF,
            (c.remote_acked + dack) & 0xFFFFFFFF,
            blocks,
            bytes(size),
        )
        c.receive(encode(p), now)
        c.events()
        if c.timer() is not None and c.timer() <= now:  # type: ignore[operator]
            c.on_timer(now)
        c.datagrams(now)
        if c.closed:
            break
        unsettled = [x for x in c._inflight.values() if not x.sacked and not x.lost]
        assert c._outstanding == len(unsettled)
        assert c._inflight_bytes == sum(len(x.payload) for x in c._inflight.values())
        assert c.unread + c._incoming_bytes <= 20_000 + RWND_SLACK + 3000
