"""The Trio adapter: channels over in-memory message streams, ordering of callbacks, batches,
back-pressure, bad input from a peer, and the lifecycle of the mux."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

from protomux import (
    Channel,
    ChannelClosedError,
    ChannelDecodeError,
    ChannelRejectedError,
    MuxProtocolError,
    Protomux,
)
from protomux import encoding as c
from protomux._frames import encode_open
from protomux.testing import (
    MemoryMessageStream,
    RecordingMessageStream,
    memory_message_stream_pair,
)

TIMEOUT = 10


Recorder = RecordingMessageStream


@asynccontextmanager
async def two_muxes(**kw: Any) -> AsyncIterator[tuple[Protomux, Protomux]]:
    a, b = memory_message_stream_pair()
    with trio.fail_after(TIMEOUT):
        async with Protomux(a, **kw) as ma, Protomux(b, **kw) as mb:
            yield ma, mb


def make(mux: Protomux, protocol: str = "p", id: bytes | None = None, **kw: Any) -> Channel:
    ch = mux.create_channel(protocol, id, **kw)
    assert ch is not None
    return ch


# --- channels ---------------------------------------------------------------------------------


async def test_channels_open_both_ways_and_exchange_messages() -> None:
    async with two_muxes() as (ma, mb):
        got: list[Any] = []
        ca = make(ma, "chat", b"\x01", handshake=c.string)
        text = ca.add_message(c.string)
        ca.add_message(c.json, lambda v, ch: got.append(v))
        ca.open("hi from a")
        cb = make(mb, "chat", b"\x01", handshake=c.string)

        def on_text(v: str, ch: Channel) -> None:
            got.append(v)
            reply.send({"n": len(v)})

        cb.add_message(c.string, on_text)
        reply = cb.add_message(c.json)
        cb.open("hi from b")
        await ca.wait_opened()
        await cb.wait_opened()
        assert (ca.remote_handshake, cb.remote_handshake) == ("hi from b", "hi from a")
        assert text.send("hello") is True
        while len(got) < 2:
            await trio.sleep(0.001)
        assert got == ["hello", {"n": 5}]
        assert ma.opened("chat", b"\x01") and list(ma) == [ca] and not ma.is_idle()
        assert repr(ca).startswith("<Channel 'chat' id=01 opened")


async def test_pair_with_an_async_notify_and_early_messages() -> None:
    async with two_muxes() as (ma, mb):
        got: list[Any] = []
        opened = trio.Event()

        async def notify(id: bytes | None) -> None:
            await trio.sleep(0.02)  # the early messages arrive meanwhile
            ch = make(
                mb,
                "svc",
                id,
                on_open=lambda hs, ch: got.append("open"),
                messages=[{"encoding": c.uint, "on_message": lambda v, ch: got.append(v)}],
            )
            ch.open()
            opened.set()

        mb.pair("svc", None, notify)
        ca = make(ma, "svc", b"\x07")
        m = ca.add_message(c.uint)
        ca.open()
        for i in range(5):
            m.send(i)
        await ca.wait_opened()
        await opened.wait()
        while len(got) < 6:
            await trio.sleep(0.001)
        assert got == ["open", 0, 1, 2, 3, 4]


async def test_reject_and_close() -> None:
    async with two_muxes() as (ma, mb):
        nobody = make(ma, "nobody")
        nobody.open()
        with pytest.raises(ChannelRejectedError):
            await nobody.wait_opened()
        closes: list[tuple[str, bool]] = []
        ca = make(ma, on_close=lambda r, ch: closes.append(("a", r)))
        ca.open()
        cb = make(mb, on_close=lambda r, ch: closes.append(("b", r)))
        cb.open()
        await ca.wait_opened()
        ca.close()
        await cb.wait_closed()
        assert closes == [("a", False), ("b", True)]
        assert ma.is_idle() and mb.is_idle()
        ca.open()  # a closed channel stays closed
        assert ca.closed and ca.messages == []


async def test_wait_opened_raises_when_the_mux_closes() -> None:
    a, b = memory_message_stream_pair()
    async with Protomux(a) as ma:
        ch = make(ma)
        ch.open()
        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:

                async def close_soon() -> None:
                    await trio.sleep(0.01)
                    await b.aclose()  # the remote goes away

                nursery.start_soon(close_soon)
                with pytest.raises(ChannelClosedError):
                    await ch.wait_opened()
        await ma.wait_closed()
        assert ch.closed and ma.closed and ma.error is None


# --- ordering of callbacks --------------------------------------------------------------------


async def test_async_callbacks_of_a_channel_run_in_order() -> None:
    async with two_muxes() as (ma, mb):
        order: list[Any] = []
        other = trio.Event()

        async def on_open(hs: Any, ch: Channel) -> None:
            order.append("open-start")
            await other.wait()  # meanwhile another channel gets its messages
            order.append("open-end")

        async def on_message(v: int, ch: Channel) -> None:
            order.append(("async", v))
            await trio.sleep(0)

        cb = make(mb, "slow", on_open=on_open, on_close=lambda r, ch: order.append("close"))
        cb.add_message(c.uint, on_message)
        cb.add_message(c.uint, lambda v, ch: order.append(("sync", v)))
        cb.open()
        fast = make(mb, "fast")
        fast.add_message(c.uint, lambda v, ch: other.set())
        fast.open()

        ca = make(ma, "slow")
        m0, m1 = ca.add_message(c.uint), ca.add_message(c.uint)
        ca.open()
        fa = make(ma, "fast")
        fm = fa.add_message(c.uint)
        fa.open()
        m0.send(1)
        m1.send(2)
        m0.send(3)
        await fa.wait_opened()
        fm.send(0)
        await ca.wait_opened()
        ca.close()
        await cb.wait_closed()
        assert order == [
            "open-start",
            "open-end",
            ("async", 1),
            ("sync", 2),
            ("async", 3),
            "close",
        ]


# --- batches ----------------------------------------------------------------------------------


async def test_cork_sends_one_batch_byte_for_byte() -> None:
    a, b = memory_message_stream_pair()
    rec = Recorder(a)
    with trio.fail_after(TIMEOUT):
        async with Protomux(rec) as ma, Protomux(b) as mb:
            mb.pair("p", None, lambda id: make(mb, "p", id, unique=False).open())
            chans = [make(ma, "p", bytes([i])) for i in range(3)]
            msgs = [ch.add_message(c.string) for ch in chans]
            for ch in chans:
                ch.open()
            for ch in chans:
                await ch.wait_opened()
            n = len(rec.sent)
            with ma.corked():
                assert ma.is_corked
                msgs[2].send("x")
                msgs[1].send("y")
                msgs[2].send("z")
                chans[0].close()
            await chans[0].wait_closed()
            while len(rec.sent) == n:
                await trio.sleep(0.001)
            # REFERENCE.md section 5 (checked against JS), plus the close inside the batch
            assert rec.sent[n:] == [
                bytes.fromhex("000003 03000178 0002 03000179 0003 0300017a 0000 020301")
            ]


async def test_a_received_batch_is_answered_with_a_batch() -> None:
    a, b = memory_message_stream_pair()
    rec = Recorder(b)
    with trio.fail_after(TIMEOUT):
        async with Protomux(a) as ma, Protomux(rec) as mb:
            got: list[str] = []
            ca = make(ma)
            ping = ca.add_message(c.string)
            ca.add_message(c.string, lambda v, ch: got.append(v))
            ca.open()
            cb = make(mb)
            cb.add_message(c.string, lambda v, ch: pong.send(v.upper()))
            pong = cb.add_message(c.string)
            cb.open()
            await ca.wait_opened()
            n = len(rec.sent)
            with ma.corked():
                ping.send("a")
                ping.send("b")
            while len(got) < 2:
                await trio.sleep(0.001)
            lid = bytes([cb.local_id])
            assert rec.sent[n:] == [b"\x00\x00" + lid + b"\x03\x01\x01A\x03\x01\x01B"]


async def test_async_work_started_by_a_batch_keeps_the_replies_corked() -> None:
    a, b = memory_message_stream_pair()
    rec = Recorder(b)
    with trio.fail_after(TIMEOUT):
        async with Protomux(a) as ma, Protomux(rec) as mb:
            got: list[str] = []
            ca = make(ma)
            ping = ca.add_message(c.string)
            ca.add_message(c.string, lambda v, ch: got.append(v))
            ca.open()

            async def slow_upper(v: str, ch: Channel) -> None:
                await trio.sleep(0.01)
                pong.send(v.upper())

            cb = make(mb)
            cb.add_message(c.string, slow_upper)
            pong = cb.add_message(c.string)
            cb.open()
            await ca.wait_opened()
            n = len(rec.sent)
            with ma.corked():
                for x in "abc":
                    ping.send(x)
            while len(got) < 3:
                await trio.sleep(0.001)
            assert len(rec.sent) == n + 1 and rec.sent[n].startswith(b"\x00\x00")


# --- back-pressure ----------------------------------------------------------------------------


async def test_send_returns_false_above_the_high_water_mark_and_drain_waits() -> None:
    a, b = memory_message_stream_pair(0)  # unbuffered: a send waits for the reader
    with trio.fail_after(TIMEOUT):
        async with Protomux(Recorder(a), high_water_mark=4096) as ma:
            drains: list[bool] = []
            ch = make(ma, on_drain=lambda ch: drains.append(ch.drained))
            big = ch.add_message(c.raw)
            ch.open()
            results = [big.send(bytes(1000)) for _ in range(10)]
            assert results == [True] * 4 + [False] * 6  # the open is 6 bytes, messages 1002
            assert not ma.drained and not ch.drained
            drained = trio.Event()

            async def drain() -> None:
                await ma.drain()
                drained.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain)
                await trio.sleep(0.01)
                assert not drained.is_set()
                # Read until the queue falls below the mark. How many frames that takes
                # depends on whether the writer task already holds the next one.
                received = 0
                while not drained.is_set() and received < 11:  # the open and 10 messages
                    await b.receive()
                    received += 1
                    await trio.testing.wait_all_tasks_blocked()
                await drained.wait()
            assert drains == [True] and ma.drained
            for _ in range(11 - received):
                await b.receive()
            await ma.drain()  # nothing queued: returns at once

            # send_async waits for the drain itself
            async with trio.open_nursery() as nursery:
                sent = trio.Event()

                async def send_many() -> None:
                    for _ in range(10):
                        await big.send_async(bytes(1000))
                    sent.set()

                nursery.start_soon(send_many)
                got = 0
                while got < 10:  # the last frame may be in flight after the queue emptied
                    assert len(await b.receive()) > 1000
                    got += 1
                    assert ma._queued <= 4096 + 1002
            assert sent.is_set() and got == 10
            ch.close()
            with pytest.raises(ChannelClosedError):
                await big.send_async(b"x")
            await b.receive()  # the close


# --- bad input from the peer ------------------------------------------------------------------


@asynccontextmanager
async def mux_and_raw_peer(**kw: Any) -> AsyncIterator[tuple[Protomux, MemoryMessageStream]]:
    a, raw = memory_message_stream_pair()
    with trio.fail_after(TIMEOUT):
        async with Protomux(a, **kw) as mux:
            yield mux, raw


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (b"\x05", "malformed"),
        (b"\x00\x01\x01\x05ab", "malformed"),
        (encode_open(5, "x", None), "invalid open"),
        (b"\x00\x02\x09", "invalid reject"),
        (bytes(300), "over 256"),
    ],
)
async def test_a_peer_breaking_the_protocol_is_dropped(frame: bytes, match: str) -> None:
    async with mux_and_raw_peer(max_message_size=256) as (mux, raw):
        closes: list[bool] = []
        ch = make(mux, on_close=lambda r, ch: closes.append(r))
        ch.open()
        await raw.receive()  # our open
        await raw.send(frame)
        await mux.wait_closed()
        assert isinstance(mux.error, MuxProtocolError) and mux.error.code == "PROTOCOL_ERROR"
        assert match in str(mux.error)
        assert closes == [True] and ch.closed and ch.error is mux.error
        with pytest.raises(trio.EndOfChannel):
            await raw.receive()  # the stream was closed
        assert mux.create_channel("late") is None


async def test_undecodable_handshake_or_message_closes_only_that_channel() -> None:
    async with two_muxes() as (ma, mb):
        bad = make(ma, "bad", handshake=c.uint)
        bad.open(1)
        make(mb, "bad", handshake=c.raw).open(b"\xfe")  # a uint cut short
        with pytest.raises(ChannelClosedError) as info:
            await bad.wait_opened()
        assert isinstance(bad.error, ChannelDecodeError)
        assert isinstance(info.value.__cause__, ChannelDecodeError)

        got: list[int] = []
        good = make(ma, "good")
        good.add_message(c.uint, lambda v, ch: got.append(v))
        good.open()
        good_b = make(mb, "good")
        good_raw = good_b.add_message(c.raw)
        good_b.open()
        bad2 = make(ma, "bad2")
        bad2.add_message(c.uint, lambda v, ch: got.append(v))
        bad2.open()
        bad2_b = make(mb, "bad2")
        bad2_raw = bad2_b.add_message(c.raw)
        bad2_b.open()
        await bad2.wait_opened()
        await good.wait_opened()
        bad2_raw.send(b"\xfd\x01")
        await bad2_b.wait_closed()
        good_raw.send(b"\x07")
        while not got:
            await trio.sleep(0.001)
        assert got == [7] and bad2.closed and isinstance(bad2.error, ChannelDecodeError)
        assert ma.error is None and not good.closed


async def test_protomux_error_raised_by_a_callback_drops_the_peer() -> None:
    async with two_muxes() as (ma, mb):
        ca = make(ma)
        m = ca.add_message(c.uint)
        ca.open()

        def refuse(v: int, ch: Channel) -> None:
            raise MuxProtocolError("no thanks")

        cb = make(mb)
        cb.add_message(c.uint, refuse)
        cb.open()
        await ca.wait_opened()
        m.send(1)
        await mb.wait_closed()
        await ma.wait_closed()
        assert isinstance(mb.error, MuxProtocolError) and str(mb.error) == "no thanks"
        assert ma.error is None and ca.closed


@pytest.mark.parametrize("deferred", [False, True], ids=["callback", "deferred"])
async def test_other_callback_exceptions_propagate(deferred: bool) -> None:
    a, b = memory_message_stream_pair()
    with pytest.raises(ExceptionGroup) as info:
        with trio.fail_after(TIMEOUT):
            async with Protomux(a) as ma, Protomux(b) as mb:
                ca = make(ma)
                m = ca.add_message(c.uint)
                ca.open()
                cb = make(mb)
                if deferred:  # work deferred to the end of the burst fails the same way
                    cb.add_message(c.uint, lambda v, ch: mb.defer(lambda: 1 // v))
                else:
                    cb.add_message(c.uint, lambda v, ch: 1 // v)
                cb.open()
                await ca.wait_opened()
                m.send(0)
                await mb.wait_closed()
                await trio.sleep_forever()
    assert info.group_contains(ZeroDivisionError)
    assert isinstance(mb.error, ZeroDivisionError)


async def test_deferred_work_runs_once_after_the_messages_that_already_arrived() -> None:
    a, b = memory_message_stream_pair()
    with trio.fail_after(TIMEOUT):
        async with Protomux(a) as ma, Protomux(b) as mb:
            log: list[object] = []

            def end_of_burst() -> None:
                log.append("burst")

            def on_message(v: int, ch: Channel) -> None:
                log.append(v)
                mb.defer(end_of_burst)

            ca = make(ma)
            m = ca.add_message(c.uint)
            ca.open()
            cb = make(mb)
            cb.add_message(c.uint, on_message)
            cb.open()
            await ca.wait_opened()
            with ma.corked():  # one frame: the reader sees all three at once
                for i in range(3):
                    m.send(i)
            while "burst" not in log:
                await trio.sleep(0.001)
            m.send(3)
            while log.count("burst") < 2:
                await trio.sleep(0.001)
            assert log == [0, 1, 2, "burst", 3, "burst"]
            # Outside a message callback it runs at once.
            mb.defer(lambda: log.append("now"))
            assert log[-1] == "now"


async def test_async_callback_exceptions_propagate() -> None:
    a, b = memory_message_stream_pair()

    async def boom(v: int, ch: Channel) -> None:
        await trio.sleep(0)
        raise KeyError(v)

    with pytest.raises(ExceptionGroup) as info:
        with trio.fail_after(TIMEOUT):
            async with Protomux(a) as ma, Protomux(b) as mb:
                ca = make(ma)
                m = ca.add_message(c.uint)
                ca.open()
                cb = make(mb)
                cb.add_message(c.uint, boom)
                cb.open()
                await ca.wait_opened()
                m.send(3)
                await trio.sleep_forever()
    assert info.group_contains(KeyError)


async def test_a_failed_rpc_call_in_a_callback_is_not_blamed_on_the_peer() -> None:
    # RPC errors share the protomux root, but only the mux's own errors drop a peer.
    from protomux.errors import TimeoutExceededError

    a, b = memory_message_stream_pair()

    async def calls_out(v: int, ch: Channel) -> None:
        await trio.sleep(0)
        raise TimeoutExceededError("timeout of 1s exceeded")

    with pytest.raises(ExceptionGroup) as info:
        with trio.fail_after(TIMEOUT):
            async with Protomux(a) as ma, Protomux(b) as mb:
                ca = make(ma)
                m = ca.add_message(c.uint)
                ca.open()
                cb = make(mb)
                cb.add_message(c.uint, calls_out)
                cb.open()
                await ca.wait_opened()
                m.send(3)
                await trio.sleep_forever()
    assert info.group_contains(TimeoutExceededError)


# --- early messages pause reading -------------------------------------------------------------


async def test_early_messages_pause_reading() -> None:
    async with two_muxes() as (ma, mb):
        decide = trio.Event()
        got: list[bytes] = []

        async def notify(id: bytes | None) -> None:
            await decide.wait()
            ch = make(mb, "early")
            ch.add_message(c.raw, lambda v, ch: got.append(v))
            ch.open()

        mb.pair("early", None, notify)
        later_b = make(mb, "later")
        later_b.open()
        ca = make(ma, "early")
        m = ca.add_message(c.raw)
        ca.open()
        for _ in range(64):
            m.send(bytes(1024))  # 64 * (512 + 1024) bytes: above the 32 KiB limit
        later = make(ma, "later")
        later.open()
        await trio.sleep(0.05)
        assert not later_b.opened  # b stopped reading before our open of "later"
        assert later.opened  # (b's own open reached us)
        decide.set()
        await later_b.wait_opened()
        assert len(got) == 64


# --- lifecycle --------------------------------------------------------------------------------


async def test_remote_end_closes_every_channel() -> None:
    a, b = memory_message_stream_pair()
    closes: list[bool] = []
    with trio.fail_after(TIMEOUT):
        async with Protomux(a) as ma:
            async with Protomux(b) as mb:
                ca = make(ma, on_close=lambda r, ch: closes.append(r))
                ca.open()
                make(mb).open()
                await ca.wait_opened()
            await ma.wait_closed()
            assert ca.closed and closes == [True] and ma.error is None


async def test_aclose_flushes_and_is_idempotent() -> None:
    a, b = memory_message_stream_pair()
    got: list[int] = []
    with trio.fail_after(TIMEOUT):
        async with Protomux(b) as mb:
            cb = make(mb)
            cb.add_message(c.uint, lambda v, ch: got.append(v))
            cb.open()
            async with Protomux(Recorder(a)) as ma:
                ca = make(ma)
                m = ca.add_message(c.uint)
                ca.open()
                for i in range(100):
                    m.send(i)
                await ma.aclose()
                await ma.aclose()
                assert m.send(1) is False
            await mb.wait_closed()
    assert got == list(range(100))


async def test_run_in_the_callers_nursery() -> None:
    a, b = memory_message_stream_pair()
    ma, mb = Protomux(a), Protomux(b)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(ma.run)
            await nursery.start(mb.run)
            ca, cb = make(ma), make(mb)
            ca.open()
            cb.open()
            await ca.wait_opened()
            await ma.aclose()
    assert ma.closed and mb.closed


async def test_an_exception_in_the_body_propagates_as_is() -> None:
    a, _ = memory_message_stream_pair()
    with pytest.raises(KeyError):
        async with Protomux(a) as mux:
            make(mux).open()
            raise KeyError("mine")
    assert mux.closed
    with pytest.raises(trio.ClosedResourceError):
        await a.send(b"x")


async def test_cancellation_closes_the_mux() -> None:
    a, b = memory_message_stream_pair()
    with trio.move_on_after(0.01):
        async with Protomux(a) as mux:
            await trio.sleep_forever()
    assert mux.closed
    with pytest.raises(trio.EndOfChannel):
        await b.receive()


async def test_a_mux_starts_once_and_closes_without_starting() -> None:
    a, b = memory_message_stream_pair()
    mux = Protomux(a)
    ch = make(mux)
    ch.open()  # queued before the mux runs
    await mux.aclose()
    assert ch.closed
    with pytest.raises(RuntimeError):
        async with mux:
            pass
    with pytest.raises(trio.EndOfChannel):
        await b.receive()


async def test_sending_before_open_is_an_error() -> None:
    async with two_muxes() as (ma, _):
        ch = make(ma)
        m = ch.add_message(c.uint)
        with pytest.raises(RuntimeError):
            m.send(1)
        with pytest.raises(ValueError, match="handshake"):
            ch.open("no codec")
        ch.open()
        with pytest.raises(RuntimeError):
            ch.open()
        with pytest.raises(c.EncodeError):
            m.send(-1)
        assert ch.local_id == 1  # the failed send changed nothing


class Refusing(Recorder):
    """A stream that refuses frames over 100 bytes, as a secret-stream refuses huge ones."""

    async def send(self, value: bytes) -> None:
        if len(value) > 100:
            raise ValueError("too large for this stream")
        await super().send(value)


async def test_oversize_sends() -> None:
    a, b = memory_message_stream_pair()
    with trio.fail_after(TIMEOUT):
        async with Protomux(Refusing(a), max_message_size=1000) as ma, Protomux(b):
            ch = make(ma)
            m = ch.add_message(c.raw)
            ch.open()
            with pytest.raises(ValueError, match="max_message_size"):
                m.send(bytes(1000))
            with pytest.raises(ValueError, match="max_message_size"):
                m.send_encoded(bytes(1000))
            assert m.send(bytes(10)) is True
            # the stream itself refuses this one: the mux closes with the stream's error
            m.send(bytes(500))
            await ma.wait_closed()
            assert isinstance(ma.error, ValueError) and ch.closed
