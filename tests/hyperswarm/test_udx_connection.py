"""hyperswarm.udx.connection between two connections over a simulated link: seeded loss,
duplication, reordering and delay, and a clock the test drives (never slept)."""

from __future__ import annotations

import hashlib
import heapq
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from hyperswarm.udx.connection import (
    Closed,
    Connection,
    Data,
    End,
    Message,
    UDXResetError,
    UDXTimeoutError,
)
from hyperswarm.udx.packet import DATA, decode

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

    def send(self, now: float, to: Connection, datagrams: list[bytes]) -> None:
        for d in datagrams:
            self.sent += 1
            if self.blackhole or self.rng.random() < self.loss:
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
    out = b""
    block = hashlib.sha256(str(seed).encode()).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return out[:size]


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
)
def test_every_byte_arrives_once_in_order_over_a_bad_link(
    seed: int, loss: float, dup: float, jitter: float, size: int
) -> None:
    a, b = Connection(A_ID, B_ID), Connection(B_ID, A_ID)
    x = payload(size, seed)
    a.write(x)
    a.end()
    b.end()
    link = Link(random.Random(seed), loss, dup, jitter)
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
