"""The sans-IO session: ids and the free list, pairing, reject, close, early messages, bad
input, and a state machine of two sessions exchanging frames in random interleavings."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from protomux import (
    ChannelDecodeError,
    ChannelRejectedError,
    MuxProtocolError,
)
from protomux import encoding as c
from protomux._channel import Channel
from protomux._frames import encode_close, encode_open, encode_reject
from protomux._session import MAX_BUFFERED, Session


class SyncHost:
    """A host that collects frames and runs spawned coroutines to completion at once."""

    max_message_size = 1 << 20

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.resumed = 0
        self.failed: list[BaseException] = []
        self.blocked: list[Any] = []

    def write(self, frame: bytes) -> bool:
        self.out.append(frame)
        return True

    def spawn(self, fn: Callable[..., Awaitable[object]], *args: Any) -> None:
        coro = fn(*args)
        try:
            coro.send(None)  # type: ignore[attr-defined]
        except StopIteration:
            return
        self.blocked.append(coro)  # waits on a Gate

    def run_blocked(self) -> None:
        blocked, self.blocked = self.blocked, []
        for coro in blocked:
            try:
                coro.send(None)
            except StopIteration:
                continue
            self.blocked.append(coro)

    def new_event(self) -> Any:
        raise AssertionError("no waiting in sync tests")

    def resume(self) -> None:
        self.resumed += 1

    async def drain(self) -> None:
        pass

    def fail(self, error: BaseException) -> None:
        self.failed.append(error)

    def take(self) -> list[bytes]:
        out, self.out = self.out, []
        return out


class Gate:
    """An awaitable that a SyncHost task waits on until ``opened``."""

    def __init__(self) -> None:
        self.opened = False

    def __await__(self) -> Any:
        while not self.opened:
            yield


def pair() -> tuple[Session, SyncHost, Session, SyncHost]:
    ha, hb = SyncHost(), SyncHost()
    return Session(ha), ha, Session(hb), hb


def pump(a: Session, ha: SyncHost, b: Session, hb: SyncHost) -> None:
    while ha.out or hb.out:
        for f in ha.take():
            b.receive(f)
        for f in hb.take():
            a.receive(f)


def channel(s: Session, protocol: str = "p", id: bytes | None = None, **kw: Any) -> Channel:
    ch = s.create_channel(protocol, id, **kw)
    assert ch is not None
    return ch


# --- ids --------------------------------------------------------------------------------------


def test_ids_come_from_a_stack_of_freed_ids() -> None:
    a, ha, b, hb = pair()
    b.pair("p", None, lambda id: channel(b, "p", id, unique=False).open())
    chs = [channel(a, "p", bytes([i])) for i in range(3)]
    for ch in chs:
        ch.open()
    pump(a, ha, b, hb)
    assert [ch.local_id for ch in chs] == [1, 2, 3] and all(ch.opened for ch in chs)
    chs[0].close()
    chs[1].close()
    assert ha.out == [encode_close(1), encode_close(2)]
    pump(a, ha, b, hb)
    nxt = channel(a, "p", b"\x09")
    nxt.open()
    assert nxt.local_id == 2  # the most recently freed id, not the smallest
    assert a.is_idle() is False


def test_an_id_is_reused_only_after_the_remote_answered() -> None:
    a, ha, b, hb = pair()
    ch = channel(a)
    ch.open()
    ch.close()  # before any answer: id 1 stays taken
    again = channel(a)
    again.open()
    assert again.local_id == 2
    # the remote rejects both opens; then both ids are free
    for f in ha.take():
        b.receive(f)
    assert hb.take() == [encode_reject(1), encode_reject(2)]
    a.receive(encode_reject(1))
    a.receive(encode_reject(2))
    assert again.closed and isinstance(again.error, ChannelRejectedError)
    assert a.is_idle()
    assert not a._infos


def test_remote_open_must_use_the_next_or_a_free_id() -> None:
    a, _, _, _ = pair()
    a.pair("x", None, lambda id: channel(a, "x", id, unique=False).open())
    a.receive(encode_open(1, "x", None))
    a.receive(encode_open(2, "x", None))
    with pytest.raises(MuxProtocolError, match="in use"):
        a.receive(encode_open(1, "y", None))
    a2, _, _, _ = pair()
    with pytest.raises(MuxProtocolError, match="beyond"):
        a2.receive(encode_open(2, "x", None))


def test_open_of_the_control_channel_is_rejected() -> None:
    a, ha, _, _ = pair()
    a.receive(encode_open(0, "x", None))
    assert ha.take() == [encode_reject(0)]


def test_reject_of_an_unknown_id_is_a_protocol_error() -> None:
    a, _, _, _ = pair()
    with pytest.raises(MuxProtocolError, match="reject"):
        a.receive(encode_reject(4))


# --- pairing, handshakes, messages -------------------------------------------------------------


def test_open_both_ways_with_handshakes_and_messages() -> None:
    a, ha, b, hb = pair()
    seen: list[Any] = []
    ca = channel(a, "chat", b"\x01", handshake=c.string)
    say = ca.add_message(c.string)
    ca.add_message(c.uint, lambda v, ch: seen.append(("a-uint", v)))
    ca.open("from a")
    say.send("early")  # b has no channel yet: it buffers this until it has one
    made: list[Channel] = []

    def notify(id: bytes | None) -> None:
        cb = channel(
            b,
            "chat",
            id,
            handshake=c.string,
            on_open=lambda hs, ch: seen.append(("b-open", hs)),
            messages=[{"encoding": c.string, "on_message": lambda v, ch: seen.append(("b", v))}],
        )
        cb.add_message(c.uint)
        cb.open("from b")
        made.append(cb)

    b.pair("chat", b"\x01", notify)
    pump(a, ha, b, hb)
    assert seen == [("b-open", "from a"), ("b", "early")]
    cb = made[0]
    assert ca.opened and cb.opened and ca.remote_handshake == "from b"
    cb.messages[1].send(7)
    pump(a, ha, b, hb)
    assert seen[-1] == ("a-uint", 7)
    assert a.opened("chat", b"\x01") and a.get_last_channel("chat", b"\x01") is ca
    assert list(a) == [ca]


def test_a_channel_opened_after_a_refused_remote_open_still_works() -> None:
    a, ha, b, hb = pair()
    cb = channel(b, "chat")  # created, not opened yet
    ca = channel(a, "chat")
    ca.open()
    pump(a, ha, b, hb)  # b refuses: no open, no pair handler
    assert ca.closed and isinstance(ca.error, ChannelRejectedError)
    a.pair("chat", None, lambda id: channel(a, "chat", id).open())
    cb.open()
    pump(a, ha, b, hb)
    assert cb.opened and a.opened("chat")


def test_pair_creates_the_channel_when_the_remote_opens() -> None:
    a, ha, b, hb = pair()
    asked: list[Any] = []
    created: list[Channel] = []

    def notify(id: bytes | None) -> None:
        asked.append(id)
        ch = channel(b, "svc", id, on_open=lambda hs, ch: asked.append("open"))
        created.append(ch)
        ch.open()

    b.pair("svc", None, notify)
    ca = channel(a, "svc", b"\x05")
    ca.open()
    pump(a, ha, b, hb)
    assert asked == [b"\x05", "open"]
    assert ca.opened and created[0].opened
    b.unpair("svc")
    cx = channel(a, "svc", b"\x06")
    cx.open()
    pump(a, ha, b, hb)
    assert cx.closed and isinstance(cx.error, ChannelRejectedError)


def test_async_pair_notify_then_reject_if_not_created() -> None:
    a, ha, b, hb = pair()

    async def notify(id: bytes | None) -> None:
        pass  # does not create it

    b.pair("svc", None, notify)
    closes: list[bool] = []
    ca = channel(a, "svc", on_close=lambda is_remote, ch: closes.append(is_remote))
    ca.open()
    pump(a, ha, b, hb)
    assert ca.closed and closes == [True]
    assert not b._infos and all(r is None for r in b._remote)


def test_unique_channels() -> None:
    a, _, _, _ = pair()
    one = channel(a, "u", b"\x01")
    two = a.create_channel("u", b"\x01")  # not opened yet: allowed
    assert two is not None
    one.open()
    assert a.create_channel("u", b"\x01") is None
    assert a.create_channel("u", b"\x01", unique=False) is not None
    assert a.create_channel("u", b"\x02") is not None


def test_aliases_pair_with_the_main_protocol() -> None:
    a, ha, b, hb = pair()
    ca = channel(a, "hypercore/alpha", b"\x01", aliases=["hypercore"])
    ca.open()
    # The other side names the protocol by the alias (and knows ours as its alias).
    cb = channel(b, "hypercore", b"\x01", aliases=["hypercore/alpha"])
    cb.open()
    pump(a, ha, b, hb)
    assert ca.opened and cb.opened
    assert a.opened("hypercore", b"\x01") and a.get_last_channel("hypercore", b"\x01") is ca
    ca.close()
    pump(a, ha, b, hb)
    assert cb.closed and not a._infos and not b._infos


def test_unknown_types_and_channels_are_ignored() -> None:
    a, ha, b, hb = pair()
    got: list[Any] = []
    ca = channel(a)
    ca.add_message(c.string, lambda v, ch: got.append(v))
    ca.open()
    cb = channel(b)
    cb.open()
    pump(a, ha, b, hb)
    a.receive(bytes([cb.local_id, 9]) + b"whatever")  # unknown type
    a.receive(b"\x05\x00\x01x")  # unknown channel
    a.receive(b"\x00\x07zz")  # unknown control type
    a.receive(b"")  # empty frame
    assert got == []


def test_remote_close_closes_and_late_messages_are_ignored() -> None:
    a, ha, b, hb = pair()
    got: list[Any] = []
    closes: list[bool] = []
    ca = channel(a, on_close=lambda r, ch: closes.append(r))
    ca.add_message(c.string, lambda v, ch: got.append(v))
    ca.open()
    cb = channel(b)
    say = cb.add_message(c.string)
    cb.open()
    pump(a, ha, b, hb)
    rid = cb.local_id
    cb.close()
    assert say.send("late") is False
    pump(a, ha, b, hb)
    assert ca.closed and closes == [True] and ca.destroyed
    a.receive(bytes([rid, 0, 1]) + b"x")  # a late message for the closed channel
    assert got == []
    assert a.is_idle() and b.is_idle()


def test_closing_a_paired_channel_before_opening_it_rejects() -> None:
    a, ha, b, hb = pair()
    made: list[Channel] = []
    b.pair("p", None, lambda id: made.append(channel(b, "p", id)))
    ca = channel(a)
    ca.open()
    for f in ha.take():
        b.receive(f)
    made[0].close()
    assert hb.take() == [encode_reject(1)]


def test_remote_closing_before_we_answer_gets_a_reject() -> None:
    a, ha, b, hb = pair()
    made: list[Channel] = []
    b.pair("p", None, lambda id: made.append(channel(b, "p", id)))  # created, not opened
    ca = channel(a)
    ca.open()
    ca.close()
    pump(a, ha, b, hb)
    assert made[0].closed
    assert a.is_idle() and not a._infos  # the reject freed the id on a's side


def test_handshake_that_does_not_decode_closes_only_that_channel() -> None:
    a, ha, b, hb = pair()
    bad = channel(a, "bad", handshake=c.uint)
    bad.open(5)
    good = channel(a, "good")
    good.open()
    channel(b, "bad", handshake=c.raw).open(b"\xfd")  # a uint cut short
    channel(b, "good").open()
    pump(a, ha, b, hb)
    assert bad.closed and isinstance(bad.error, ChannelDecodeError)
    assert isinstance(bad.error.__cause__, c.DecodeError)
    assert good.opened and not good.closed
    assert not b.opened("bad")  # our close reached b


def test_message_that_does_not_decode_closes_only_that_channel() -> None:
    a, ha, b, hb = pair()
    ca = channel(a, "x")
    ca.add_message(c.uint, lambda v, ch: None)
    ca.open()
    cb = channel(b, "x")
    raw = cb.add_message(c.raw)
    cb.open()
    pump(a, ha, b, hb)
    raw.send(b"\xfd")  # a truncated uint
    pump(a, ha, b, hb)
    assert ca.closed and isinstance(ca.error, ChannelDecodeError) and cb.closed


# --- early messages and pausing ---------------------------------------------------------------


def test_early_messages_pause_reading_and_resume_when_drained() -> None:
    a, ha, b, hb = pair()
    gate = Gate()

    async def notify(id: bytes | None) -> None:
        await gate  # decides later

    b.pair("slow", None, notify)
    ca = channel(a, "slow")
    say = ca.add_message(c.raw)
    ca.open()
    for _ in range(40):
        say.send(bytes(1000))
    for f in ha.take():
        b.receive(f)
    assert b.paused and b._buffered == 40 * (512 + 1000) > MAX_BUFFERED
    got: list[bytes] = []
    cb = b.create_channel("slow")
    assert cb is not None
    cb.add_message(c.raw, lambda v, ch: got.append(v))
    cb.open()  # pairs with the waiting open; the buffered messages are delivered
    assert len(got) == 40 and not b.paused and hb.resumed == 1 and b._buffered == 0
    gate.opened = True
    hb.run_blocked()
    assert not hb.blocked and cb.opened and hb.take() == [encode_open(1, "slow", None)]


def test_rejecting_drops_buffered_messages() -> None:
    a, ha, b, hb = pair()
    ca = channel(a, "nobody")
    say = ca.add_message(c.raw)
    ca.open()
    say.send(b"x")
    for f in ha.take():
        b.receive(f)
    assert b._buffered == 0
    assert hb.take() == [encode_reject(1)]


# --- corking ----------------------------------------------------------------------------------


def test_cork_batches_messages_and_control_frames() -> None:
    a, ha, _, _ = pair()
    chans = [channel(a, "p", bytes([i])) for i in range(3)]
    msgs = [ch.add_message(c.string) for ch in chans]
    for ch in chans:
        ch.open()
    ha.take()
    a.cork()
    a.cork()
    msgs[2].send("x")
    msgs[1].send("y")
    a.uncork()
    assert ha.out == []
    msgs[2].send("z")
    chans[0].close()
    a.uncork()
    assert ha.take() == [bytes.fromhex("000003 03000178 0002 03000179 0003 0300017a 0000 020301")]
    with pytest.raises(RuntimeError):
        a.uncork()


def test_a_received_batch_is_answered_with_a_batch() -> None:
    a, ha, b, hb = pair()
    ca = channel(a)
    ping = ca.add_message(c.string)
    ca.open()
    cb = channel(b)
    pong = cb.add_message(c.string, lambda v, ch: pong.send(v.upper()))
    cb.open()
    pump(a, ha, b, hb)
    a.cork()
    ping.send("a")
    ping.send("b")
    a.uncork()
    for f in ha.take():
        b.receive(f)
    lid = bytes([cb.local_id])
    assert hb.take() == [b"\x00\x00" + lid + b"\x03\x00\x01A\x03\x00\x01B"]
    # a single message is answered with a single frame
    ping.send("c")
    for f in ha.take():
        b.receive(f)
    assert hb.take() == [lid + b"\x00\x01C"]


# --- fuzzing ----------------------------------------------------------------------------------


def fuzz_target() -> Session:
    a, ha, b, _ = pair()
    b.pair("p", None, lambda id: channel(b, "p", id).open())
    for i in range(3):
        ch = channel(a, "p", bytes([i]), handshake=c.uint)
        ch.add_message(c.string, lambda v, ch: None)
        ch.open(i)
    for f in ha.take():
        b.receive(f)
    return b


@settings(max_examples=2000)
@given(st.lists(st.binary(max_size=24), max_size=6))
def test_arbitrary_frames_only_raise_protocol_errors(frames: list[bytes]) -> None:
    s = fuzz_target()
    for f in frames:
        try:
            s.receive(f)
        except MuxProtocolError:
            return


@settings(max_examples=2000)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"\x00\x00", b"\x00\x01", b"\x00\x03", b"\x01\x00", b""]),
            st.binary(max_size=16),
        ),
        max_size=8,
    )
)
def test_frame_like_input_only_raises_protocol_errors(frames: list[tuple[bytes, bytes]]) -> None:
    s = fuzz_target()
    for head, rest in frames:
        try:
            s.receive(head + rest)
        except MuxProtocolError:
            return


# --- two sessions in random interleavings -----------------------------------------------------

PROTOCOLS = [("p", None), ("p", b"\x01"), ("q", None)]


class TwoSessions(RuleBasedStateMachine):
    """Opens, closes, messages and corks on both sides, frames delivered in any interleaving.

    Every channel sends its serial number as its handshake and inside every message, so a
    message reaching the wrong channel, or a channel paired with the wrong one, is caught.
    """

    @initialize()
    def setup(self) -> None:
        self.hosts = [SyncHost(), SyncHost()]
        self.sessions = [Session(h) for h in self.hosts]
        self.channels: list[list[Channel]] = [[], []]
        self.serial = 0
        self.seq: dict[int, int] = {}  # last sequence number received from each sender
        self.accept = {"p": True, "q": False}  # b accepts "p" opens, rejects "q" ones
        for side in (0, 1):
            s = self.sessions[side]
            for proto in ("p", "q"):
                s.pair(proto, None, functools.partial(self._notify, side, proto))

    def _notify(self, side: int, proto: str, id: bytes | None) -> None:
        if self.accept[proto] or side == 0:
            self._open(side, proto, id)

    def _open(self, side: int, proto: str, id: bytes | None) -> None:
        self.serial += 1
        serial = self.serial
        ch = self.sessions[side].create_channel(
            proto, id, handshake=c.uint, unique=False, user_data=serial
        )
        assert ch is not None
        ch.add_message(c.uint, self._on_message)
        self.channels[side].append(ch)
        ch.open(serial)

    def _on_message(self, value: int, ch: Channel) -> None:
        sender, seq = divmod(value, 1 << 20)
        assert ch.opened and ch.remote_handshake == sender, "message reached the wrong channel"
        assert seq > self.seq.get(sender, 0), "messages out of order"
        self.seq[sender] = seq

    @rule(side=st.sampled_from([0, 1]), key=st.sampled_from(PROTOCOLS))
    def open(self, side: int, key: tuple[str, bytes | None]) -> None:
        self._open(side, *key)

    @rule(side=st.sampled_from([0, 1]), i=st.integers(0, 20))
    def close(self, side: int, i: int) -> None:
        live = [ch for ch in self.channels[side] if not ch.closed]
        if live:
            live[i % len(live)].close()

    @rule(side=st.sampled_from([0, 1]), i=st.integers(0, 20))
    def send(self, side: int, i: int) -> None:
        live = [ch for ch in self.channels[side] if ch.local_id]
        if live:
            ch = live[i % len(live)]
            self.seq_out = getattr(self, "seq_out", 0) + 1
            ch.messages[0].send((ch.user_data << 20) | self.seq_out)

    @rule(side=st.sampled_from([0, 1]), n=st.integers(1, 5))
    def deliver(self, side: int, n: int) -> None:
        host = self.hosts[side]
        frames, host.out = host.out[:n], host.out[n:]
        for f in frames:
            self.sessions[1 - side].receive(f)

    @rule(side=st.sampled_from([0, 1]))
    def cork(self, side: int) -> None:
        if self.sessions[side].corked < 2:
            self.sessions[side].cork()

    @rule(side=st.sampled_from([0, 1]))
    def uncork(self, side: int) -> None:
        if self.sessions[side].corked:
            self.sessions[side].uncork()

    def settle(self) -> None:
        for s in self.sessions:
            while s.corked:
                s.uncork()
        a, b = self.sessions
        ha, hb = self.hosts
        pump(a, ha, b, hb)

    @invariant()
    def ids_are_consistent(self) -> None:
        for s in self.sessions:
            held = {ch.local_id for ch in s if ch is not None}
            assert len(held) == len(list(s))
            assert not held & {i + 1 for i in s._free}
            assert len(set(s._free)) == len(s._free)

    def teardown(self) -> None:
        if not hasattr(self, "sessions"):
            return
        self.settle()
        for side in (0, 1):
            for ch in self.channels[side]:
                if ch.closed:
                    continue
                # after everything is delivered, every open() got its answer
                assert ch.opened, ch
                peers = [p for p in self.channels[1 - side] if p.user_data == ch.remote_handshake]
                assert len(peers) == 1
                peer = peers[0]
                assert peer.opened and not peer.closed
                assert peer.remote_handshake == ch.user_data
                assert (peer.local_id, peer.remote_id) == (ch.remote_id, ch.local_id)
        for side in (0, 1):
            for ch in self.channels[side]:
                ch.close()
        self.settle()
        for s in self.sessions:
            assert s.is_idle() and not s._infos
            assert all(r is None for r in s._remote)


TestTwoSessions = TwoSessions.TestCase
TestTwoSessions.settings = settings(max_examples=500, stateful_step_count=50, deadline=None)
