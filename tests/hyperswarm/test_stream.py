"""The Trio adapter (stream.py): generic stream checks, messages, errors, timers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from hypercore import crypto
from hyperswarm.secret_stream import SecretStream, SecretStreamError
from hyperswarm.secret_stream.box import frame

A = crypto.key_pair(bytes([1]) * 32)
B = crypto.key_pair(bytes([2]) * 32)

PairMaker = Callable[[], tuple[trio.abc.HalfCloseableStream, trio.abc.HalfCloseableStream]]


def wrap(
    pair: tuple[trio.abc.Stream, trio.abc.Stream], **opts: object
) -> tuple[SecretStream, SecretStream]:
    a, b = pair
    return (
        SecretStream(a, is_initiator=True, key_pair=A, **opts),  # type: ignore[arg-type]
        SecretStream(b, is_initiator=False, key_pair=B, **opts),  # type: ignore[arg-type]
    )


@asynccontextmanager
async def connected(
    pair: tuple[trio.abc.Stream, trio.abc.Stream] | None = None, **opts: object
) -> AsyncIterator[tuple[SecretStream, SecretStream]]:
    """Both ends entered (handshake done, timers running)."""
    x, y = wrap(pair or trio.testing.memory_stream_pair(), **opts)
    await handshake_both(x, y)
    async with x, y:
        yield x, y


async def handshake_both(x: SecretStream, y: SecretStream) -> None:
    """Entering runs the handshake, which needs both ends: run it concurrently first (a
    stream must be entered and left by the same task, so not in a nursery)."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(x.do_handshake)
        nursery.start_soon(y.do_handshake)


# ---- trio's generic stream checks ------------------------------------------------------------


@pytest.mark.parametrize(
    "make_pair", [trio.testing.memory_stream_pair, trio.testing.lockstep_stream_pair]
)
async def test_trio_half_closeable_stream_checks(make_pair: PairMaker) -> None:
    async def stream_maker() -> tuple[SecretStream, SecretStream]:
        return wrap(make_pair())

    async def clogged_stream_maker() -> tuple[SecretStream, SecretStream]:
        x, y = wrap(trio.testing.lockstep_stream_pair())
        async with trio.open_nursery() as nursery:
            nursery.start_soon(x.do_handshake)
            nursery.start_soon(y.do_handshake)
        return x, y

    with trio.fail_after(60):
        await trio.testing.check_half_closeable_stream(stream_maker, clogged_stream_maker)


# ---- messages ----------------------------------------------------------------------------------


async def test_context_manager_handshake_and_properties() -> None:
    x, _ = wrap(trio.testing.memory_stream_pair())
    with pytest.raises(RuntimeError):
        _ = x.remote_public_key
    with pytest.raises(RuntimeError):
        _ = x.handshake_hash
    assert x.public_key == A.public_key and x.key_pair == A and x.is_initiator
    async with connected() as (x, y):
        assert x.remote_public_key == B.public_key and y.remote_public_key == A.public_key
        assert x.handshake_hash == y.handshake_hash and len(x.handshake_hash) == 64
        assert x.stream_id != y.stream_id and len(x.stream_id) == 32
        assert not y.is_initiator
        assert x.handshake_complete and y.handshake_complete


async def test_random_key_pair_by_default() -> None:
    a, b = trio.testing.memory_stream_pair()
    x, y = SecretStream(a, is_initiator=True), SecretStream(b, is_initiator=False)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(x.do_handshake)
        nursery.start_soon(y.do_handshake)
    assert x.remote_public_key == y.public_key != x.public_key
    await x.aclose()
    await y.aclose()


async def test_messages_keep_their_boundaries() -> None:
    messages = [b"", b"a", bytes(65536), b"", b"tail"] + [bytes([i]) * i for i in range(200)]
    async with connected() as (x, y):

        async def sender() -> None:
            for m in messages:
                await x.send(m)
            await x.send_eof()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            got = [m async for m in y]
    assert got == messages


async def test_receive_some_buffers_the_rest_of_a_message() -> None:
    async with connected() as (x, y):
        await x.send(b"hello world")
        await x.send(b"")
        await x.send(b"!")
        assert await y.receive_some(5) == b"hello"
        assert await y.receive_some(3) == b" wo"
        assert await y.receive() == b"rld"  # the rest of a split message comes first
        assert await y.receive_some() == b"!"  # empty message skipped
        await x.aclose()
        assert await y.receive_some() == b""
        with pytest.raises(trio.EndOfChannel):
            await y.receive()
        with pytest.raises(trio.EndOfChannel):
            await y.receive()


async def test_send_and_receive_at_once_and_many_concurrent_senders() -> None:
    async with connected() as (x, y):
        per_task, tasks = 100, 10
        got: list[bytes] = []

        async def sender(i: int) -> None:
            for j in range(per_task):
                await x.send(f"{i}:{j}".encode() * 50)

        async def echo() -> None:
            for _ in range(per_task * tasks):
                await y.send(await y.receive())

        async def collect() -> None:
            for _ in range(per_task * tasks):
                got.append(await x.receive())

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(echo)
                nursery.start_soon(collect)
                for i in range(tasks):
                    nursery.start_soon(sender, i)
        assert sorted(got) == sorted(
            f"{i}:{j}".encode() * 50 for i in range(tasks) for j in range(per_task)
        )
        # each sender's messages stay in order
        for i in range(tasks):
            mine = [m for m in got if m.startswith(f"{i}:".encode())]
            assert mine == [f"{i}:{j}".encode() * 50 for j in range(per_task)]


async def test_lazy_handshake_over_lockstep_streams() -> None:
    """No buffering at all: the held-back responder header avoids a write/write deadlock."""
    x, y = wrap(trio.testing.lockstep_stream_pair())
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(x.send, b"from initiator")
            assert await y.receive() == b"from initiator"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(y.send, b"from responder")
            assert await x.receive() == b"from responder"
    await x.aclose()
    await y.aclose()


async def test_message_too_large_is_a_usage_error() -> None:
    async with connected() as (x, _y):
        with pytest.raises(ValueError):
            await x.send(bytes(2**24))
        await x.send(b"still fine")


async def test_aclose_is_idempotent_and_closes_the_transport() -> None:
    a, b = trio.testing.memory_stream_pair()
    async with connected((a, b)) as (x, y):
        await x.aclose()
        await x.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await x.send(b"x")
        with pytest.raises(trio.ClosedResourceError):
            await x.receive()
        with pytest.raises(trio.ClosedResourceError):
            await a.send_all(b"x")
        with pytest.raises(trio.EndOfChannel):
            await y.receive()


async def test_context_manager_propagates_body_errors_unwrapped() -> None:
    with pytest.raises(KeyError):
        async with connected(keep_alive=1.0) as (x, _y):
            raise KeyError("body")
    with pytest.raises(trio.ClosedResourceError):
        await x.send(b"")


async def test_tcp_round_trip() -> None:
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener.socket.getsockname()[1]
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def server() -> None:
                tcp = await listener.accept()
                await listener.aclose()
                async with SecretStream(tcp, is_initiator=False, key_pair=B) as s:
                    async for m in s:
                        await s.send(m[::-1])

            nursery.start_soon(server)
            tcp = await trio.open_tcp_stream("127.0.0.1", port)
            async with SecretStream(tcp, is_initiator=True, key_pair=A) as c:
                for m in [b"abc", bytes(range(256)) * 1000, b""]:
                    await c.send(m)
                    assert await c.receive() == m[::-1]
                await c.send_eof()
                with pytest.raises(trio.EndOfChannel):
                    await c.receive()


async def test_send_eof_needs_a_half_closeable_transport() -> None:
    class Plain(trio.abc.Stream):
        async def send_all(self, data: bytes | bytearray | memoryview) -> None: ...
        async def wait_send_all_might_not_block(self) -> None: ...
        async def receive_some(self, max_bytes: int | None = None) -> bytes:
            return b""

        async def aclose(self) -> None: ...

    s = SecretStream(Plain(), is_initiator=True)
    with pytest.raises(NotImplementedError):
        await s.send_eof()


# ---- peers that misbehave ----------------------------------------------------------------------


@asynccontextmanager
async def tapped(
    edit: Callable[[int, bytes], bytes], **opts: object
) -> AsyncIterator[tuple[SecretStream, SecretStream]]:
    """x -> y goes through ``edit(index, chunk)`` (chunks are whole writes of x)."""
    x_end, mid_x = trio.testing.memory_stream_pair()
    mid_y, y_end = trio.testing.memory_stream_pair()
    x, y = wrap((x_end, y_end), **opts)

    async def forward(src: trio.abc.Stream, dst: trio.abc.Stream, rewrite: bool) -> None:
        i = 0
        try:
            while data := await src.receive_some():
                await dst.send_all(edit(i, bytes(data)) if rewrite else data)
                i += 1
            await dst.aclose()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await dst.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(forward, mid_x, mid_y, True)
        nursery.start_soon(forward, mid_y, mid_x, False)
        try:
            yield x, y
        finally:
            nursery.cancel_scope.cancel()
            await x.aclose()
            await y.aclose()


async def test_tampered_data_frame_breaks_the_stream() -> None:
    def flip_fourth(i: int, data: bytes) -> bytes:
        # writes of x: msg1, msg3+header, then data frames
        if i == 3:
            return data[:-1] + bytes([data[-1] ^ 1])
        return data

    async with tapped(flip_fourth) as (x, y):
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(x.do_handshake)
                nursery.start_soon(y.do_handshake)
            await x.send(b"good")
            assert await y.receive() == b"good"
            await x.send(b"bad")
            with pytest.raises(SecretStreamError) as info:
                await y.receive()
            assert info.value.code == "DECRYPTION_FAILED"
            assert isinstance(info.value, trio.BrokenResourceError)
            # cut off for good, both ways
            with pytest.raises(SecretStreamError):
                await y.receive()
            with pytest.raises(SecretStreamError):
                await y.send(b"x")
            # and the transport is closed, so the peer sees the end
            with pytest.raises((trio.EndOfChannel, trio.BrokenResourceError)):
                await x.receive()


@pytest.mark.parametrize(
    ("name", "edit_at", "code"),
    [
        ("garbage handshake", 0, "HANDSHAKE_FAILED"),
        ("bad msg3", 1, "HANDSHAKE_FAILED"),
        ("wrong header id", 1, "INVALID_HEADER"),
    ],
)
async def test_bad_handshake_or_header_breaks_the_stream(
    name: str, edit_at: int, code: str
) -> None:
    def edit(i: int, data: bytes) -> bytes:
        if i != edit_at:
            return data
        if name == "garbage handshake":
            return frame(b"\xff" * 31)  # too short for an ephemeral key
        if name == "bad msg3":
            return data[:10] + bytes([data[10] ^ 1]) + data[11:]
        return data[:70] + bytes([data[70] ^ 1]) + data[71:]  # inside the header's id

    async with tapped(edit) as (x, y):
        with trio.fail_after(10):
            with pytest.raises(SecretStreamError) as info:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(x.send, b"hello")
                    await y.receive()
                    nursery.cancel_scope.cancel()
            assert info.value.code == code
            assert "Invalid header" in str(info.value) or "handshake" in str(info.value)


async def test_oversize_and_truncated_frames() -> None:
    a, b = trio.testing.memory_stream_pair()
    y = SecretStream(b, is_initiator=False)
    await a.send_all(b"\xff\xff\xff")  # 16 MiB handshake frame
    with trio.fail_after(5), pytest.raises(SecretStreamError) as info:
        await y.receive()
    assert info.value.code == "FRAME_TOO_LARGE"

    a, b = trio.testing.memory_stream_pair()
    async with connected((a, b)) as (x, y):
        # a partial frame, then the end of the transport
        a_raw = x.transport_stream
        await a_raw.send_all(b"\x20\x00\x00partial")
        await a_raw.aclose()
        with trio.fail_after(5), pytest.raises(SecretStreamError) as info:
            await y.receive()
        assert info.value.code == "TRUNCATED"


async def test_peer_closing_during_the_handshake() -> None:
    a, b = trio.testing.memory_stream_pair()
    x = SecretStream(a, is_initiator=True)
    await b.aclose()
    with trio.fail_after(5), pytest.raises(trio.BrokenResourceError):
        await x.do_handshake()


# ---- timers --------------------------------------------------------------------------------


async def test_handshake_timeout(autojump_clock: trio.testing.MockClock) -> None:
    a, _b = trio.testing.memory_stream_pair()  # the peer never answers
    start = trio.current_time()
    with pytest.raises(SecretStreamError) as info:
        async with SecretStream(a, is_initiator=True, handshake_timeout=3.0):
            pass
    assert info.value.code == "HANDSHAKE_TIMEOUT"
    assert trio.current_time() - start == pytest.approx(3.0)
    # the transport was closed
    with pytest.raises(trio.ClosedResourceError):
        await a.send_all(b"x")


async def test_handshake_timeout_default_is_ten_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    _a, b = trio.testing.memory_stream_pair()
    y = SecretStream(b, is_initiator=False)
    start = trio.current_time()
    with pytest.raises(SecretStreamError):
        await y.receive()
    assert trio.current_time() - start == pytest.approx(10.0)


async def test_idle_timeout_closes_the_stream(autojump_clock: trio.testing.MockClock) -> None:
    a, b = trio.testing.memory_stream_pair()
    async with connected((a, b)) as (x, y):
        x.set_timeout(5.0)
        start = trio.current_time()
        with pytest.raises(SecretStreamError) as info:
            await x.receive()
        assert info.value.code == "TIMED_OUT" and str(info.value) == "Stream timed out"
        assert trio.current_time() - start == pytest.approx(5.0)
        with pytest.raises((trio.EndOfChannel, trio.BrokenResourceError)):
            await y.receive()


async def test_idle_timeout_fires_without_a_reader(autojump_clock: trio.testing.MockClock) -> None:
    """The timer task of ``async with`` closes an idle stream nobody reads from."""
    a, b = trio.testing.memory_stream_pair()
    x, y = wrap((a, b))
    x = SecretStream(a, is_initiator=True, timeout=4.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(y.do_handshake)
        async with x:
            await trio.sleep(10)
            with pytest.raises(SecretStreamError) as info:
                await x.send(b"too late")
            assert info.value.code == "TIMED_OUT"
    with pytest.raises(trio.EndOfChannel):
        await y.receive()


async def test_timeout_without_context_manager(autojump_clock: trio.testing.MockClock) -> None:
    a, b = trio.testing.memory_stream_pair()
    x, y = wrap((a, b), timeout=2.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(y.do_handshake)
        await x.do_handshake()
    await y.send(b"one")
    assert await x.receive() == b"one"
    await trio.sleep(1.5)
    await y.send(b"two")
    await trio.sleep(1.5)  # bytes arrived in time, even though nobody was reading
    assert await x.receive() == b"two"
    with pytest.raises(SecretStreamError):
        await x.receive()


async def test_keep_alive_frames_are_sent_and_ignored(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # x sends keep-alives every second; y has no keep-alive, so it sees them as empty messages
    a, b = trio.testing.memory_stream_pair()
    x = SecretStream(a, is_initiator=True, key_pair=A, keep_alive=1.0)
    y = SecretStream(b, is_initiator=False, key_pair=B)
    await handshake_both(x, y)
    async with x, y:
        await trio.sleep(3.5)
        for _ in range(3):
            assert await y.receive() == b""
        # y's receive_some skips them
        await x.send(b"data")
        assert await y.receive_some() == b"data"
        # y -> x: x filters empty messages because its keep-alive is on
        await y.send(b"")
        await y.send(b"")
        await y.send(b"after empties")
        assert await x.receive() == b"after empties"


async def test_keep_alive_prevents_the_peer_timeout(autojump_clock: trio.testing.MockClock) -> None:
    async with connected(keep_alive=1.0, timeout=3.0) as (x, y):
        await trio.sleep(30)
        await x.send(b"alive")
        assert await y.receive() == b"alive"
        await y.send(b"both")
        assert await x.receive() == b"both"


async def test_writes_postpone_keep_alives(autojump_clock: trio.testing.MockClock) -> None:
    async with connected() as (x, y):
        x.set_keep_alive(1.0)
        for _ in range(10):
            await trio.sleep(0.5)
            await x.send(b"busy")
        for _ in range(10):
            assert await y.receive() == b"busy"
        x.set_keep_alive(None)
        await trio.sleep(10)
        await x.send(b"last")
        assert await y.receive() == b"last"


# ---- cancellation --------------------------------------------------------------------------


async def test_a_cancelled_wait_during_the_handshake_can_be_resumed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    x, y = wrap(trio.testing.memory_stream_pair())
    with trio.move_on_after(1.0):
        await x.receive()  # sends msg1, then waits for msg2 that does not come yet
    async with trio.open_nursery() as nursery:
        nursery.start_soon(y.send, b"late")
        assert await x.receive() == b"late"
    await x.aclose()
    await y.aclose()


async def test_a_cancelled_write_disables_sending_only() -> None:
    x, y = wrap(trio.testing.lockstep_stream_pair())
    await handshake_both(x, y)
    with trio.move_on_after(0.05):
        await x.send(b"nobody reads this")  # lockstep: blocks until the peer reads
    with pytest.raises(SecretStreamError) as info:
        await x.send(b"again")
    assert info.value.code == "SEND_CANCELLED"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(y.send, b"still receiving")
        assert await x.receive() == b"still receiving"
    await x.aclose()
    await y.aclose()
