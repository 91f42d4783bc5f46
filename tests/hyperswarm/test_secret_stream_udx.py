"""Secret-stream started from a finished handshake (``handshake=``), the IK pattern, and
unordered messages over real UDX streams on 127.0.0.1 (``send_udp``/``receive_udp``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from hypercore import crypto
from hyperswarm.secret_stream import (
    DecryptionFailedError,
    FinishedHandshake,
    HandshakeError,
    InvalidHeaderError,
    NoiseState,
    SecretStream,
    SecretStreamProtocol,
    State,
    UnorderedBoxes,
    UnorderedUnsupportedError,
    stream_id,
)
from hyperswarm.secret_stream.box import FrameParser
from hyperswarm.udx import UDXSocket, UDXStream

A = crypto.key_pair(bytes([1]) * 32)
B = crypto.key_pair(bytes([2]) * 32)
C = crypto.key_pair(bytes([3]) * 32)


def finished_pair(pattern: str = "IK") -> tuple[FinishedHandshake, FinishedHandshake]:
    """Run a Noise handshake between A (initiator) and B in memory; both sides' results."""
    init = NoiseState(pattern, True, A, remote_static=B.public_key)
    resp = NoiseState(pattern, False, B)
    sender, receiver = init, resp
    while not (init.complete and resp.complete):
        receiver.recv(sender.send())
        sender, receiver = receiver, sender
    out = []
    for s, kp in ((init, A), (resp, B)):
        assert s.tx and s.rx and s.handshake_hash and s.remote_static
        out.append(FinishedHandshake(kp.public_key, s.remote_static, s.handshake_hash, s.tx, s.rx))
    return out[0], out[1]


def pump(dst: SecretStreamProtocol, data: bytes | bytearray) -> list[bytes]:
    dst.receive_data(data)
    got = []
    while (m := dst.next_message()) is not None:
        got.append(m)
    return got


# ---- sans-IO: started from a finished handshake -----------------------------------------------


def test_protocols_started_from_a_finished_handshake_talk() -> None:
    hi, hr = finished_pair()
    a = SecretStreamProtocol(True, handshake=hi)
    b = SecretStreamProtocol(False, handshake=hr)
    for p, h, other in ((a, hi, B), (b, hr, A)):
        assert p.state is State.AWAIT_HEADER and p.handshake_complete
        assert p.data_to_send() == b""  # no Noise message at all
        assert p.header_pending
        assert p.remote_public_key == other.public_key == h.remote_public_key
        assert p.public_key == h.public_key and p.key_pair is None
        assert p.handshake_hash == h.hash
        assert p.unordered is not None
    header_a = a.flush_header()
    assert len(header_a) == 3 + 56 and header_a[3:35] == stream_id(hi.hash, True)
    assert a.flush_header() == b"" and not a.header_pending
    assert pump(b, header_a + a.encrypt(b"hello b")) == [b"hello b"]
    # b's header goes out with its first message
    assert pump(a, b.encrypt(b"hello a") + b.encrypt(b"")) == [b"hello a", b""]
    assert a.state is State.OPEN and b.state is State.OPEN
    # unordered boxes agree too
    assert a.unordered is not None and b.unordered is not None
    assert b.unordered.open(a.unordered.seal(b"u")) == b"u"


def test_keys_of_an_xx_handshake_work_too() -> None:
    hi, hr = finished_pair("XX")
    a = SecretStreamProtocol(True, A, handshake=hi)
    b = SecretStreamProtocol(False, handshake=hr)
    assert a.key_pair == A and b.key_pair is None
    assert pump(b, a.flush_header() + a.encrypt(b"x" * 70000)) == [b"x" * 70000]


def test_a_wrong_key_fails_to_decrypt() -> None:
    hi, hr = finished_pair()
    wrong = FinishedHandshake(hr.public_key, hr.remote_public_key, hr.hash, hr.tx, bytes(32))
    a = SecretStreamProtocol(True, handshake=hi)
    b = SecretStreamProtocol(False, handshake=wrong)
    with pytest.raises(DecryptionFailedError):
        pump(b, a.flush_header() + a.encrypt(b"secret"))


def test_a_wrong_hash_or_role_fails_the_header() -> None:
    hi, hr = finished_pair()
    other = FinishedHandshake(hr.public_key, hr.remote_public_key, bytes(64), hr.tx, hr.rx)
    a = SecretStreamProtocol(True, handshake=hi)
    b = SecretStreamProtocol(False, handshake=other)
    with pytest.raises(InvalidHeaderError):
        pump(b, a.flush_header())
    # both claiming to be the initiator
    a = SecretStreamProtocol(True, handshake=hi)
    b = SecretStreamProtocol(True, handshake=hr)
    with pytest.raises(InvalidHeaderError):
        pump(b, a.flush_header())


def test_unordered_boxes_of_a_wrong_hash_do_not_open() -> None:
    hi, hr = finished_pair()
    other = FinishedHandshake(hr.public_key, hr.remote_public_key, bytes(64), hr.tx, hr.rx)
    a = SecretStreamProtocol(True, handshake=hi)
    b = SecretStreamProtocol(False, handshake=other)
    assert a.unordered is not None and b.unordered is not None
    assert b.unordered.open(a.unordered.seal(b"u")) is None


def test_finished_handshake_checks_its_lengths_and_options() -> None:
    hi, _ = finished_pair()
    with pytest.raises(ValueError, match="hash"):
        FinishedHandshake(hi.public_key, hi.remote_public_key, bytes(32), hi.tx, hi.rx)
    with pytest.raises(ValueError, match="tx"):
        FinishedHandshake(hi.public_key, hi.remote_public_key, hi.hash, bytes(31), hi.rx)
    with pytest.raises(ValueError, match="remote_public_key"):
        FinishedHandshake(hi.public_key, b"", hi.hash, hi.tx, hi.rx)
    with pytest.raises(ValueError):
        SecretStreamProtocol(True, handshake=hi, pattern="IK")
    with pytest.raises(ValueError):
        SecretStreamProtocol(True, handshake=hi, remote_public_key=B.public_key)


def test_ik_protocols_exchange_two_messages() -> None:
    a = SecretStreamProtocol(True, A, pattern="IK", remote_public_key=B.public_key)
    b = SecretStreamProtocol(False, B, pattern="IK")
    msg1 = a.data_to_send()
    assert len(msg1) == 3 + 96
    assert pump(b, msg1) == []
    assert b.handshake_complete and b.remote_public_key == A.public_key
    msg2 = b.data_to_send()
    assert len(msg2) == 3 + 48
    assert pump(a, msg2) == []
    assert a.handshake_complete and a.remote_public_key == B.public_key
    assert a.handshake_hash == b.handshake_hash
    assert pump(b, a.data_to_send() + a.encrypt(b"ik")) == [b"ik"]


def test_ik_with_the_wrong_responder_key_fails() -> None:
    a = SecretStreamProtocol(True, A, pattern="IK", remote_public_key=C.public_key)
    b = SecretStreamProtocol(False, B, pattern="IK")
    with pytest.raises(HandshakeError):
        pump(b, a.data_to_send())


# ---- Trio streams ----------------------------------------------------------------------------


async def test_ik_secret_streams_over_memory() -> None:
    left, right = trio.testing.memory_stream_pair()
    x = SecretStream(
        left, is_initiator=True, key_pair=A, pattern="IK", remote_public_key=B.public_key
    )
    y = SecretStream(right, is_initiator=False, key_pair=B, pattern="IK")
    with trio.fail_after(10):
        async with trio.open_nursery() as n:
            n.start_soon(x.do_handshake)
            n.start_soon(y.do_handshake)
        async with x, y:
            assert x.remote_public_key == B.public_key and y.remote_public_key == A.public_key
            assert x.handshake_hash == y.handshake_hash
            await x.send(b"one")
            assert await y.receive() == b"one"
            await y.send(b"two")
            assert await x.receive() == b"two"


async def test_unordered_needs_a_udx_stream() -> None:
    hi, _ = finished_pair()
    left, _right = trio.testing.memory_stream_pair()
    x = SecretStream(left, is_initiator=True, handshake=hi)
    with pytest.raises(UnorderedUnsupportedError) as info:
        await x.send_udp(b"x")
    assert info.value.code == "UNORDERED_UNSUPPORTED"
    with pytest.raises(UnorderedUnsupportedError):
        x.try_send_udp(b"x")
    with pytest.raises(UnorderedUnsupportedError):
        await x.receive_udp()
    await x.aclose()


@asynccontextmanager
async def udx_pair() -> AsyncIterator[tuple[UDXStream, UDXStream]]:
    async with UDXSocket() as sa, UDXSocket() as sb:
        await sa.bind(0, "127.0.0.1")
        await sb.bind(0, "127.0.0.1")
        a, b = sa.create_stream(1), sb.create_stream(2)
        a.connect(2, sb.address()[1], "127.0.0.1")
        b.connect(1, sa.address()[1], "127.0.0.1")
        yield a, b


async def receive_udp_within(s: SecretStream, seconds: float) -> bytes | None:
    with trio.move_on_after(seconds):
        return await s.receive_udp()
    return None


async def exchange(x: SecretStream, y: SecretStream, message: bytes, *, try_send: bool) -> None:
    """Send ``message`` from x until y has it (datagrams may be lost): at most 20 tries."""
    for _ in range(20):
        sent = x.try_send_udp(message) if try_send else await x.send_udp(message)
        assert sent is True
        got = await receive_udp_within(y, 0.25)
        if got is not None:
            assert got == message
            return
    raise AssertionError(f"{message!r} never arrived")


async def test_handshake_streams_over_udx_send_the_header_at_once() -> None:
    """Entering a stream started from a finished handshake writes its 56-byte header before
    any message: the raw peer reads it."""
    hi, _ = finished_pair()
    with trio.fail_after(10):
        async with udx_pair() as (a, b):
            async with SecretStream(a, is_initiator=True, handshake=hi) as x:
                parser = FrameParser(1 << 16)
                while (body := parser.next_frame()) is None:
                    parser.feed(await b.receive_some())
                assert bytes(body[:32]) == stream_id(hi.hash, True) == x.stream_id
                assert len(body) == 56


async def test_ordered_and_unordered_messages_over_udx() -> None:
    hi, hr = finished_pair()
    with trio.fail_after(20):
        async with udx_pair() as (a, b):
            x = SecretStream(a, is_initiator=True, handshake=hi)
            y = SecretStream(b, is_initiator=False, handshake=hr, key_pair=B)
            async with x, y:
                assert x.is_initiator and not y.is_initiator
                assert x.remote_public_key == B.public_key == y.public_key
                assert y.remote_public_key == A.public_key == x.public_key
                assert x.key_pair is None and y.key_pair == B
                assert x.handshake_hash == y.handshake_hash == hi.hash
                # unordered both ways, with send and try_send
                await exchange(x, y, b"x to y", try_send=False)
                await exchange(y, x, b"y to x", try_send=False)
                await exchange(x, y, b"", try_send=True)
                await exchange(y, x, b"z" * 1000, try_send=True)
                # ordered both ways
                big = bytes(range(256)) * 1000
                await x.send(big)
                await y.send(b"back")
                assert await y.receive() == big
                assert await x.receive() == b"back"
                await x.send_eof()
                with pytest.raises(trio.EndOfChannel):
                    await y.receive()


async def test_garbage_and_foreign_datagrams_are_dropped() -> None:
    hi, hr = finished_pair()
    with trio.fail_after(20):
        async with udx_pair() as (a, b):
            x = SecretStream(a, is_initiator=True, handshake=hi)
            y = SecretStream(b, is_initiator=False, handshake=hr)
            async with x, y:
                mirror = UnorderedBoxes(
                    hi.hash, True
                )  # seals as x does: a reflection x cannot open
                for junk in [b"", b"short", bytes(24), bytes(100), mirror.seal(b"reflected")]:
                    await b.send(junk)
                    # and a valid one after each: only that one comes out
                    await exchange(y, x, b"valid", try_send=False)
                assert await receive_udp_within(x, 0.2) is None


async def test_sends_before_the_handshake_return_false() -> None:
    with trio.fail_after(10):
        async with udx_pair() as (a, _):
            x = SecretStream(a, is_initiator=True, key_pair=A)  # XX, not started
            assert not x.handshake_complete
            assert await x.send_udp(b"early") is False
            assert x.try_send_udp(b"early") is False
            await x.aclose()


async def test_messages_before_the_handshake_are_dropped() -> None:
    """An IK responder is complete as soon as it answers, before the initiator has the
    answer: its sealed datagram sent then reaches an initiator still mid-handshake, which
    drops it, and the one sent after the initiator finished comes through."""
    with trio.fail_after(20):
        async with udx_pair() as (a, b):
            x = SecretStream(
                a, is_initiator=True, key_pair=A, pattern="IK", remote_public_key=B.public_key
            )
            peer = SecretStreamProtocol(False, B, pattern="IK")
            got: list[bytes] = []

            async def responder() -> None:
                while not peer.handshake_complete:
                    peer.receive_data(await b.receive_some())
                    assert peer.next_message() is None
                assert peer.unordered is not None
                for i in range(5):
                    await b.send(peer.unordered.seal(b"too early %d" % i))
                await trio.sleep(0.2)  # x is waiting for our answer all this time
                await b.send_all(peer.data_to_send() + peer.flush_header())
                while peer.state is not State.OPEN:
                    peer.receive_data(await b.receive_some())  # x's header: x is done
                    assert peer.next_message() is None
                for _ in range(20):
                    await b.send(peer.unordered.seal(b"in time"))
                    await trio.sleep(0.05)
                    if got:
                        break

            async with trio.open_nursery() as n:
                n.start_soon(responder)
                async with x:
                    assert x.remote_public_key == B.public_key
                    got.append(await x.receive_udp())
            assert got == [b"in time"]


async def test_receive_udp_without_async_with_and_after_close() -> None:
    hi, hr = finished_pair()
    with trio.fail_after(20):
        async with udx_pair() as (a, b):
            x = SecretStream(a, is_initiator=True, handshake=hi)
            y = SecretStream(b, is_initiator=False, handshake=hr)
            await x.do_handshake()
            await y.do_handshake()
            await b.send(b"junk")
            await exchange(x, y, b"direct", try_send=False)
            await exchange(y, x, b"direct back", try_send=True)

            async def wait_then_check() -> None:
                with pytest.raises(trio.ClosedResourceError):
                    await y.receive_udp()

            async with trio.open_nursery() as n:
                n.start_soon(wait_then_check)
                await trio.sleep(0.05)
                await y.aclose()
            with pytest.raises(trio.ClosedResourceError):
                await y.send_udp(b"closed")
            await x.aclose()


async def test_receive_udp_inside_async_with_wakes_on_close() -> None:
    hi, _ = finished_pair()
    with trio.fail_after(20):
        async with udx_pair() as (a, _b):
            errors: list[BaseException] = []
            async with SecretStream(a, is_initiator=True, handshake=hi) as x:

                async def wait() -> None:
                    try:
                        await x.receive_udp()
                    except trio.ClosedResourceError as exc:
                        errors.append(exc)

                async with trio.open_nursery() as n:
                    n.start_soon(wait)
                    await trio.sleep(0.05)
                    await x.aclose()
            assert len(errors) == 1


async def test_idle_timers_start_with_a_stream_from_a_finished_handshake() -> None:
    """No Noise handshake runs, so the timers start when the stream does: a 1 s timeout
    does not fire at once (the peer is silent at first), and keep-alives hold an idle pair
    together past it."""
    hi, hr = finished_pair()
    with trio.fail_after(20):
        async with udx_pair() as (a, _b):
            async with SecretStream(a, is_initiator=True, handshake=hi, timeout=1.0) as x:
                await trio.sleep(0.3)  # (the peer sends nothing)
                await x.send(b"not timed out")
        async with udx_pair() as (a, b):
            x = SecretStream(a, is_initiator=True, handshake=hi, timeout=1.0, keep_alive=0.2)
            y = SecretStream(b, is_initiator=False, handshake=hr, timeout=1.0, keep_alive=0.2)
            async with x, y:
                await trio.sleep(1.5)
                await x.send(b"still here")
                assert await y.receive() == b"still here"
                await y.send(b"and here")
                assert await x.receive() == b"and here"
