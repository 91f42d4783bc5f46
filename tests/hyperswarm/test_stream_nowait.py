"""The non-blocking side of SecretStream: ``send_nowait`` (with its buffer, flusher task and
``flush``), ``receive_nowait``, and the direct path for TCP transports, over TCP and memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

from hyperswarm.secret_stream import SecretStream, SecretStreamError
from hyperswarm.secret_stream.outbox import MAX_PENDING_OUT
from protomux import Protomux
from protomux import encoding as c

from .test_stream import A, B, connected, handshake_both, tapped, wrap

TIMEOUT = 20


async def tcp_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener.socket.getsockname()[1]
    accepted: list[trio.SocketStream] = []
    async with trio.open_nursery() as nursery:

        async def accept() -> None:
            accepted.append(await listener.accept())

        nursery.start_soon(accept)
        client = await trio.open_tcp_stream("127.0.0.1", port)
    await listener.aclose()
    return client, accepted[0]


def socketpair_streams() -> tuple[trio.SocketStream, trio.SocketStream]:
    a, b = trio.socket.socketpair()
    return trio.SocketStream(a), trio.SocketStream(b)


Transport = Callable[[], Any]


async def memory() -> tuple[trio.abc.Stream, trio.abc.Stream]:
    return trio.testing.memory_stream_pair()


TRANSPORTS = [pytest.param(tcp_pair, id="tcp"), pytest.param(memory, id="memory")]


@asynccontextmanager
async def entered(make: Transport) -> AsyncIterator[tuple[SecretStream, SecretStream]]:
    async with connected(await make()) as (x, y):
        yield x, y


async def receive_nowait_soon(s: SecretStream) -> bytes:
    """receive_nowait, retried while the bytes are still on their way (bounded)."""
    for _ in range(2000):
        try:
            return s.receive_nowait()
        except trio.WouldBlock:
            await trio.sleep(0.001)
    raise AssertionError("no message came")


async def test_trio_stream_checks_over_a_socket_pair() -> None:
    """The direct TCP path passes trio's generic checks too."""

    async def stream_maker() -> tuple[SecretStream, SecretStream]:
        return wrap(socketpair_streams())

    async def clogged_stream_maker() -> tuple[SecretStream, SecretStream]:
        x, y = wrap(trio.testing.lockstep_stream_pair())
        await handshake_both(x, y)
        return x, y

    with trio.fail_after(60):
        await trio.testing.check_half_closeable_stream(stream_maker, clogged_stream_maker)


@pytest.mark.parametrize("make", TRANSPORTS)
async def test_send_nowait_needs_the_handshake_and_the_context_manager(make: Transport) -> None:
    x, y = wrap(await make())
    with pytest.raises(trio.WouldBlock):
        x.send_nowait(b"before the handshake")
    await handshake_both(x, y)
    with pytest.raises(trio.WouldBlock):
        x.send_nowait(b"no flusher task outside async with")
    with pytest.raises(ValueError):
        x.send_nowait(bytes(2**24))
    async with x, y:
        x.send_nowait(b"now")
        with trio.fail_after(TIMEOUT):
            assert await y.receive() == b"now"
    with pytest.raises(trio.ClosedResourceError):
        x.send_nowait(b"closed")


@pytest.mark.parametrize("make", TRANSPORTS)
async def test_send_nowait_and_send_from_many_tasks_keep_each_task_in_order(
    make: Transport,
) -> None:
    tasks, per_task = 8, 150
    got: list[bytes] = []
    async with entered(make) as (x, y):

        async def sender(i: int) -> None:
            for j in range(per_task):
                # some large messages, so that TCP writes are partial and frames wait
                body = f"{i}:{j}:".encode() + bytes(70_000 if j % 25 == 0 else j)
                if (i + j) % 3 == 0:
                    await x.send(body)
                    continue
                try:
                    x.send_nowait(body)
                except trio.WouldBlock:
                    await x.send(body)
                if j % 10 == 0:
                    await trio.sleep(0)

        async def collect() -> None:
            for _ in range(tasks * per_task):
                got.append(await y.receive())

        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(collect)
                for i in range(tasks):
                    nursery.start_soon(sender, i)
    assert len(got) == tasks * per_task
    for i in range(tasks):
        mine = [m.split(b":")[1] for m in got if m.startswith(f"{i}:".encode())]
        assert mine == [str(j).encode() for j in range(per_task)]


async def lockstep() -> tuple[trio.abc.Stream, trio.abc.Stream]:
    return trio.testing.lockstep_stream_pair()


@pytest.mark.parametrize(
    "make", [pytest.param(tcp_pair, id="tcp"), pytest.param(lockstep, id="lockstep")]
)
async def test_send_nowait_is_bounded_while_the_peer_does_not_read(make: Transport) -> None:
    message = bytes(16 * 1024)
    async with entered(make) as (x, y):
        sent = 0
        with trio.fail_after(TIMEOUT):
            while True:
                try:
                    x.send_nowait(message)
                except trio.WouldBlock:
                    break
                sent += 1
                assert sent < 100_000
                await trio.sleep(0)  # let the flusher write what the transport takes
            assert len(x._outbox.buffer) <= MAX_PENDING_OUT + len(message) + 100

            async def drain() -> None:
                for _ in range(sent):
                    assert await y.receive() == message

            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain)
                await x.flush()
            assert not x._outbox.buffer
            x.send_nowait(b"room again")
            assert await y.receive() == b"room again"


async def test_flush_then_close_delivers_everything_over_tcp() -> None:
    x, y = wrap(await tcp_pair())
    await handshake_both(x, y)
    got: list[bytes] = []
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:

            async def reader() -> None:
                async with y:
                    got.extend([m async for m in y])

            nursery.start_soon(reader)
            async with x:
                for i in range(3000):
                    try:
                        x.send_nowait(i.to_bytes(4, "big") * 100)
                    except trio.WouldBlock:
                        await x.send(i.to_bytes(4, "big") * 100)
                await x.flush()
    assert got == [i.to_bytes(4, "big") * 100 for i in range(3000)]


@pytest.mark.parametrize("make", TRANSPORTS)
async def test_receive_nowait_returns_what_has_arrived(make: Transport) -> None:
    async with entered(make) as (x, y):
        with pytest.raises(trio.WouldBlock):
            y.receive_nowait()
        for m in [b"one", b"", b"three"]:
            await x.send(m)
        with trio.fail_after(TIMEOUT):
            assert await y.receive() == b"one"
            assert await receive_nowait_soon(y) == b""
            assert await receive_nowait_soon(y) == b"three"
            with pytest.raises(trio.WouldBlock):
                y.receive_nowait()
            await x.send(b"four")
            assert await y.receive() == b"four"


async def test_receive_nowait_leaves_the_end_of_the_stream_to_receive() -> None:
    async with entered(tcp_pair) as (x, y):
        await x.send(b"last")
        await x.send_eof()
        with trio.fail_after(TIMEOUT):
            assert await receive_nowait_soon(y) == b"last"
            for _ in range(3):
                with pytest.raises(trio.WouldBlock):
                    y.receive_nowait()
            with pytest.raises(trio.EndOfChannel):
                await y.receive()


async def test_receive_nowait_leaves_a_bad_frame_to_receive() -> None:
    def flip_fourth(i: int, data: bytes) -> bytes:
        if i == 3:  # after msg1, msg3 + header and the first data frame
            return data[:-1] + bytes([data[-1] ^ 1])
        return data

    async with tapped(flip_fourth) as (x, y):
        with trio.fail_after(TIMEOUT):
            await handshake_both(x, y)
            await x.send(b"good")
            await x.send(b"bad")
            assert await y.receive() == b"good"
            for _ in range(3):
                with pytest.raises(trio.WouldBlock):
                    y.receive_nowait()
            with pytest.raises(SecretStreamError) as info:
                await y.receive()
            assert info.value.code == "DECRYPTION_FAILED"
        await x.aclose()
        await y.aclose()


async def test_a_broken_connection_reaches_send_nowait_callers() -> None:
    a, b = await tcp_pair()
    async with connected((a, b)) as (x, y):
        await y.aclose()
        with trio.fail_after(TIMEOUT), pytest.raises(trio.BrokenResourceError):
            for _ in range(10_000):
                try:
                    x.send_nowait(bytes(1000))
                except trio.WouldBlock:
                    await x.send(bytes(1000))
                await trio.sleep(0)


async def test_a_graceful_mux_close_flushes_frames_the_stream_buffered() -> None:
    """Protomux hands frames to send_nowait; closing the mux must still deliver them all."""
    count = 5000
    got: list[int] = []
    a, b = await tcp_pair()
    x = SecretStream(a, is_initiator=True, key_pair=A)
    y = SecretStream(b, is_initiator=False, key_pair=B)
    await handshake_both(x, y)
    with trio.fail_after(TIMEOUT):
        async with x, y, Protomux(x) as mx, Protomux(y) as my:
            done = trio.Event()

            def on_number(value: int, _: Any) -> None:
                got.append(value)
                if len(got) == count:
                    done.set()

            cy = my.create_channel("numbers")
            assert cy is not None
            cy.add_message(c.uint, on_number)
            cy.open()
            cx = mx.create_channel("numbers")
            assert cx is not None
            numbers = cx.add_message(c.uint)
            cx.open()
            await cx.wait_opened()
            for i in range(count):
                numbers.send(i)
            await mx.aclose()
            await done.wait()
    assert got == list(range(count))
