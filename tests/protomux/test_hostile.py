"""Hostile batches: a batch is read lazily (it costs its bytes, not an object per entry) and
dispatched BATCH_STEP entries at a time with the event loop running in between, keeping the
semantics of JS batches (replies corked until the batch is handled, nesting, order, channel
switches) whatever the steps; bad bytes in a batch drop the peer with a MuxProtocolError."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from protomux import Channel, MuxProtocolError, Protomux
from protomux import encoding as c
from protomux._frames import BatchBuilder, encode_open
from protomux._session import BATCH_STEP, MAX_BUFFERED, Session
from protomux.testing import MemoryMessageStream, memory_message_stream_pair
from tests.bounds import loop_watch, peak_memory

from .test_session import Gate, SyncHost, channel, pair, pump

TIMEOUT = 60  # the big batch runs under tracemalloc, which is slow


def batch(*entries: tuple[int, bytes]) -> bytes:
    """A batch frame of ``(channel, type + payload)`` entries (channel 0: control entries)."""
    b = BatchBuilder()
    for ch, body in entries:
        assert b.push(ch, body) is None
    frame = b.build()
    assert frame is not None
    return frame


def nested(frame: bytes) -> tuple[int, bytes]:
    """The batch ``frame`` as an entry of another batch."""
    return 0, frame[1:]


def uint_msg(typ: int, value: int) -> bytes:
    return bytes([typ]) + c.encode(c.uint, value)


def entries_of(head: bytes, values: bytes) -> bytes:
    """Batch entries ``head + value`` (3 bytes each) for each byte of ``values``."""
    n = len(values)
    out = bytearray(3 * n)
    out[0::3] = head[:1] * n
    out[1::3] = head[1:2] * n
    out[2::3] = values
    return bytes(out)


@asynccontextmanager
async def mux_and_raw_peer() -> AsyncIterator[tuple[Protomux, MemoryMessageStream]]:
    a, raw = memory_message_stream_pair()
    with trio.fail_after(TIMEOUT):
        async with Protomux(a) as mux:
            yield mux, raw


async def open_with_raw_peer(
    mux: Protomux, raw: MemoryMessageStream, protocol: str = "p", remote_id: int = 1, **kw: Any
) -> Channel:
    """A channel of ``mux`` opened with the raw peer, who uses ``remote_id`` for it."""
    ch = mux.create_channel(protocol, **kw)
    assert ch is not None
    ch.open()
    await raw.receive()  # our open
    await raw.send(encode_open(remote_id, protocol, None))
    await ch.wait_opened()
    return ch


# --- through the mux --------------------------------------------------------------------------


async def test_a_huge_batch_of_tiny_messages_costs_its_bytes_and_never_freezes_the_loop() -> None:
    n = 150_000  # 450 KB of 3-byte entries (JS sends batches of up to 8 MiB)
    async with mux_and_raw_peer() as (mux, raw):
        got = [0]
        done = trio.Event()

        def on_ping(value: int, ch: Channel) -> None:
            assert value == got[0] % 200
            got[0] += 1
            pong.send(value)
            if got[0] == n:
                done.set()

        ch = await open_with_raw_peer(mux, raw, messages=[{"encoding": c.uint}])
        ch.add_message(c.uint, on_ping)  # type 1
        pong = ch.messages[0]
        values = bytes(range(200)) * (n // 200)
        frame = b"\x00\x00\x01" + entries_of(b"\x02\x01", values)
        async with loop_watch() as watch:
            with peak_memory() as mem:
                await raw.send(frame)
                await done.wait()
                reply = await raw.receive()
        assert got[0] == n
        # Every reply went out as one batch, once the whole batch was handled.
        lid = bytes([ch.local_id])
        assert reply == b"\x00\x00" + lid + entries_of(b"\x02\x00", values)
        # Before: 115 times the batch (objects for every entry, all decoded before the first
        # one ran, and for every reply) and the loop frozen for the whole batch (5 s); now
        # about 2 times (the replies, in a bytearray and then as a frame) and 20 ms.
        assert mem.peak < 4 * len(frame)
        assert watch.longest_stall < 0.5


async def test_a_frame_after_a_long_batch_is_handled_after_all_of_it() -> None:
    async with mux_and_raw_peer() as (mux, raw):
        log: list[Any] = []
        ch = await open_with_raw_peer(mux, raw)
        ch.add_message(c.uint, lambda v, ch: log.append(v))
        n = 3 * BATCH_STEP + 5
        frames = [batch(*[(1, uint_msg(0, i)) for i in range(n)]), b"\x01\x00\xfd\x00\x10"]
        for f in frames:  # both wait in the stream: the reader takes the second without waiting
            raw.send_nowait(f)
        while len(log) < n + 1:
            await trio.sleep(0)
        assert log == [*range(n), 4096]


async def test_a_long_batch_waits_while_reading_is_paused() -> None:
    async with mux_and_raw_peer() as (mux, raw):
        log: list[Any] = []
        q = await open_with_raw_peer(mux, raw, "q", remote_id=1)
        q.add_message(c.string, lambda v, ch: log.append(v))
        gate = trio.Event()

        async def take(id: bytes | None) -> None:  # the app looks the channel up, slowly
            await gate.wait()
            p = mux.create_channel("p", id)
            assert p is not None
            p.add_message(c.raw, lambda v, ch: log.append(len(v)))
            p.open()

        mux.pair("p", None, take)
        early = [(2, b"\x00" + bytes(100)) for _ in range(1000)]  # 600 KiB as counted
        raw.send_nowait(batch(nested(batch((0, encode_open(2, "p", None)[1:]))), *early))
        raw.send_nowait(batch((1, b"\x00\x04done")))
        await trio.testing.wait_all_tasks_blocked()
        # Early messages are buffered up to MAX_BUFFERED, then the batch waits (it held 1000).
        assert mux._session.busy and mux._session.paused
        assert MAX_BUFFERED < mux._session._buffered <= MAX_BUFFERED + 612
        assert log == []
        gate.set()
        while len(log) < 1001:
            await trio.sleep(0)
        assert log == [100] * 1000 + ["done"]


async def test_closing_the_mux_in_the_middle_of_a_long_batch_stops_it() -> None:
    async with mux_and_raw_peer() as (mux, raw):
        got = [0]
        half = trio.Event()

        def on_message(v: int, ch: Channel) -> None:
            got[0] += 1
            if got[0] == BATCH_STEP:
                half.set()

        ch = await open_with_raw_peer(mux, raw)
        ch.add_message(c.uint, on_message)
        await raw.send(batch(*[(1, uint_msg(0, 1)) for _ in range(10 * BATCH_STEP)]))
        await half.wait()
        await mux.aclose()
        assert ch.closed and mux.error is None
        assert BATCH_STEP <= got[0] < 10 * BATCH_STEP


async def test_destroying_the_mux_from_a_batch_entry_stops_the_batch_there() -> None:
    async with mux_and_raw_peer() as (mux, raw):
        got = [0]

        def on_message(v: int, ch: Channel) -> None:
            got[0] += 1
            if got[0] == BATCH_STEP + 3:
                mux.destroy(MuxProtocolError("enough"))

        ch = await open_with_raw_peer(mux, raw)
        ch.add_message(c.uint, on_message)
        await raw.send(batch(*[(1, uint_msg(0, 1)) for _ in range(3 * BATCH_STEP)]))
        await mux.wait_closed()
        assert got[0] == BATCH_STEP + 3 and ch.closed
        assert str(mux.error) == "enough"


@pytest.mark.parametrize(
    "tail",
    [
        b"\x00",  # a channel switch without the channel
        b"\x02\xfd\x01",  # a type cut short
        b"\xfe\x01",  # an entry length cut short
    ],
)
async def test_bad_bytes_deep_in_a_batch_drop_the_peer(tail: bytes) -> None:
    async with mux_and_raw_peer() as (mux, raw):
        log: list[int] = []
        ch = await open_with_raw_peer(mux, raw)
        ch.add_message(c.uint, lambda v, ch: log.append(v))
        n = 2 * BATCH_STEP + 1
        await raw.send(batch(*[(1, uint_msg(0, 7)) for _ in range(n)]) + tail)
        await mux.wait_closed()
        assert isinstance(mux.error, MuxProtocolError) and "malformed" in str(mux.error)
        assert log == [7] * n and ch.closed  # what came before the bad bytes ran, as in JS


# --- the session, step by step ----------------------------------------------------------------


def stepped(s: Session, frame: bytes, budget: int) -> None:
    """``s.receive(frame)``, ``budget`` entries at a time."""
    s.budget = budget
    done = s.receive_part(frame)
    while not done:
        assert s.busy
        s.budget = budget
        done = s.continue_batch()
    assert not s.busy


def test_a_batch_goes_in_steps_and_its_replies_wait_for_the_last() -> None:
    a, ha, b, hb = pair()
    pongs: list[int] = []
    ca = channel(a)
    ping = ca.add_message(c.uint)
    ca.add_message(c.uint, lambda v, ch: pongs.append(v))
    ca.open()
    got: list[int] = []
    cb = channel(b)
    cb.add_message(c.uint, lambda v, ch: (got.append(v), pong.send(v)))
    pong = cb.add_message(c.uint)
    cb.open()
    pump(a, ha, b, hb)
    n = 2 * BATCH_STEP + 3
    a.cork()
    for i in range(n):
        ping.send(i)
    a.uncork()
    [frame] = ha.take()
    b.budget = BATCH_STEP
    assert b.receive_part(frame) is False and b.busy
    assert got == list(range(BATCH_STEP)) and hb.out == []
    with pytest.raises(RuntimeError):
        b.receive_part(frame)  # no other frame before the batch is done
    b.budget = BATCH_STEP
    assert b.continue_batch() is False and len(got) == 2 * BATCH_STEP and hb.out == []
    b.budget = BATCH_STEP
    assert b.continue_batch() is True and not b.busy and got == list(range(n))
    [reply] = hb.take()
    assert reply.startswith(b"\x00\x00")
    a.receive(reply)
    assert pongs == list(range(n))
    assert b.continue_batch() is True  # nothing to go on with


def test_reading_paused_by_early_messages_ends_the_step() -> None:
    _, _, b, hb = pair()
    gate = Gate()
    got: list[int] = []

    async def take(id: bytes | None) -> None:
        await gate
        ch = channel(b, "p", id)
        ch.add_message(c.raw, lambda v, ch: got.append(len(v)))
        ch.open()

    b.pair("p", None, take)
    frame = batch((0, encode_open(1, "p", None)[1:]), *[(1, b"\x00" + bytes(300))] * 100)
    b.budget = 10**9
    assert b.receive_part(frame) is False and b.paused
    # it stopped at the message that went over
    assert MAX_BUFFERED < b._buffered <= MAX_BUFFERED + 812
    gate.opened = True
    hb.run_blocked()  # the channel is taken: the early messages are delivered
    assert not b.paused and hb.resumed == 1 and b._buffered == 0 and 0 < len(got) < 100
    b.budget = 10**9
    assert b.continue_batch() is True and got == [300] * 100


def test_an_early_message_in_a_batch_does_not_keep_the_batch_alive() -> None:
    _, _, b, _ = pair()
    b.pair("p", None, lambda id: Gate())  # decides later: the messages wait
    frame = batch((0, encode_open(1, "p", None)[1:]), (1, b"\x00x"), (9, b"\x00" + bytes(10**5)))
    b.receive(frame)
    assert b._buffered > 0
    assert sys.getrefcount(frame) == 2  # this variable and the argument of getrefcount


def stepping_target() -> tuple[Session, SyncHost, list[Any]]:
    """A session with channels "x" and "y" open from a peer (remote ids 1 and 2) that log
    what they get and answer every message of type 0 (so corking shows in the output)."""
    a, ha, b, hb = pair()
    log: list[Any] = []
    for name in ("x", "y"):
        channel(a, name).open()
        cb = channel(b, name, on_close=lambda r, ch: log.append(("closed", ch.protocol)))
        cb.add_message(c.uint, lambda v, ch: (log.append((ch.protocol, v)), ch.messages[1].send(v)))
        cb.add_message(c.uint)
        cb.open()
    pump(a, ha, b, hb)
    return b, hb, log


leaf = st.one_of(
    st.tuples(st.sampled_from([1, 2, 9]), st.integers(0, 300), st.integers(0, 1)).map(
        lambda t: (t[0], uint_msg(t[2], t[1]))
    ),
    st.sampled_from([(0, b"\x03\x02"), (0, b"\x07zz"), (0, b"\x02\x05")]),  # close, unknown, bad
)
entries = st.recursive(
    leaf, lambda inner: st.lists(inner, min_size=1, max_size=6).map(lambda es: nested(batch(*es)))
)


@settings(max_examples=150, deadline=None)
@given(st.lists(entries, min_size=1, max_size=12), st.integers(1, 4), st.binary(max_size=4))
def test_any_steps_handle_a_batch_as_one_go_does(
    es: list[tuple[int, bytes]], budget: int, tail: bytes
) -> None:
    frame = batch(*es) + tail
    results = []
    for step in (None, budget):
        s, host, log = stepping_target()
        try:
            if step is None:
                s.receive(frame)
            else:
                stepped(s, frame, step)
            error = None
        except MuxProtocolError as e:
            error = str(e)
        assert not s.busy
        results.append((log, host.take(), error))
    assert results[0] == results[1]


# ---- work a peer starts: async callbacks and responders ----------------------------------------


async def test_async_responders_a_peer_starts_are_bounded() -> None:
    """A peer that sends many requests to an async responder that does not finish: at most
    MAX_RESPONDING run (a task each); the others are answered with an error at once, and
    the ones running answer when they finish."""
    from protomux.rpc import MAX_RESPONDING, RPC, RPCError

    n = 3 * MAX_RESPONDING
    a, b = memory_message_stream_pair()
    release = trio.Event()
    started = 0

    async def slow(value: bytes) -> bytes:
        nonlocal started
        started += 1
        await release.wait()
        return value

    with trio.fail_after(TIMEOUT):
        async with RPC(a) as client, RPC(b) as server:
            server.respond("slow", slow)
            await client.wait_opened()
            answers: list[bytes] = []
            refused: list[RPCError] = []

            async def ask(i: int) -> None:
                try:
                    answers.append(await client.request("slow", i.to_bytes(4, "big")))
                except RPCError as e:
                    refused.append(e)

            async with trio.open_nursery() as nursery:
                for i in range(n):
                    nursery.start_soon(ask, i)
                with peak_memory() as mem:
                    await trio.testing.wait_all_tasks_blocked()
                    assert started == MAX_RESPONDING
                    assert len(refused) == n - MAX_RESPONDING
                    release.set()
            assert len(answers) == MAX_RESPONDING == started
            assert all("Too many requests" in str(e) for e in refused)
            assert mem.peak < 64 * (1 << 20)


async def test_messages_behind_an_async_callback_pause_reading() -> None:
    """Messages of a channel wait while its async callback runs (to keep their order): a
    peer that sends many makes the mux stop reading once MAX_PENDING_WORK wait, and read
    on once they are handled; none is lost or reordered."""
    from protomux import _session

    n = 3 * _session.MAX_PENDING_WORK
    a, b = memory_message_stream_pair()
    release = trio.Event()
    got: list[int] = []

    async def on_message(value: int, channel: Channel) -> None:
        got.append(value)
        if len(got) == 1:
            await release.wait()

    with trio.fail_after(TIMEOUT):
        async with Protomux(a) as ma, Protomux(b) as mb:
            server = mb.create_channel("slow")
            assert server is not None
            server.add_message(c.uint, on_message)
            server.open()
            client = ma.create_channel("slow")
            assert client is not None
            send = client.add_message(c.uint)
            client.open()
            await client.wait_opened()
            for i in range(n):
                send.send(i)
            await trio.testing.wait_all_tasks_blocked()
            assert got == [0]
            assert mb._session._pending_work <= _session.MAX_PENDING_WORK + 1
            assert mb._session.paused
            release.set()
            await wait_until_true(lambda: len(got) == n)
            assert got == list(range(n))
            assert not mb._session.paused


async def wait_until_true(predicate: Any) -> None:
    while not predicate():
        await trio.sleep(0.005)


class _NeverReads(trio.abc.Channel[bytes]):
    """A message stream whose owner sends but never reads what comes back."""

    def __init__(self, inner: MemoryMessageStream) -> None:
        self.inner = inner

    async def send(self, value: bytes) -> None:
        await self.inner.send(value)

    async def receive(self) -> bytes:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_peer_that_sends_requests_and_never_reads_the_answers_is_dropped() -> None:
    """Answers to RPC requests have no back-pressure (as in JS): a peer that asks and never
    reads makes us queue them, up to four times ``max_queued`` (or ``max_queued`` for
    NO_PROGRESS_TIMEOUT); then the connection drops."""
    from protomux.rpc import RPC, RPCError

    cap = 1 << 20
    a, b = memory_message_stream_pair(max_buffer_size=8)
    with trio.fail_after(TIMEOUT):
        async with Protomux(b, max_queued=cap) as mux, RPC(_NeverReads(a)) as client:
            server = RPC(mux)
            server.respond("big", lambda _: bytes(65536))

            async def ask() -> None:
                try:
                    await client.request("big")
                except RPCError:  # failed when the connection dropped: expected
                    pass

            async with trio.open_nursery() as nursery:
                with peak_memory() as mem:
                    for _ in range(200):  # 12.5 MiB of answers
                        nursery.start_soon(ask)
                    await mux.wait_closed()
                nursery.cancel_scope.cancel()
            assert isinstance(mux.error, MuxProtocolError)
            assert "does not read" in str(mux.error)
            assert mem.peak < 6 * cap


async def test_a_burst_to_a_peer_that_reads_is_not_dropped() -> None:
    """An application may send more than ``max_queued`` at once (RPC events ignore
    back-pressure): a peer that takes it, however slowly, stays connected."""
    from protomux.rpc import RPC

    cap = 1 << 20
    got: list[int] = []
    a, b = memory_message_stream_pair(max_buffer_size=4)
    with trio.fail_after(TIMEOUT):
        async with Protomux(a, max_queued=cap) as mux, RPC(b) as server:
            server.respond("blob", lambda v: got.append(len(v)))
            client = RPC(mux)
            await client.wait_opened()
            for _ in range(3):  # 3 MiB at once: above the cap, under four times it
                client.event("blob", bytes(cap))
            await wait_until_true(lambda: len(got) == 3)
            assert mux.error is None and not mux.closed
