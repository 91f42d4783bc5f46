"""UDXSocket and UDXStream on 127.0.0.1: transfers both ways with half-close, stream
messages, plain datagrams beside the streams, and a peer that vanishes."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from hyperswarm.udx import UDXError, UDXSocket, UDXStream
from hyperswarm.udx.connection import RWND_MAX, RWND_SLACK
from hyperswarm.udx.packet import DATA, DESTROY, END, HEARTBEAT, MESSAGE, SACK, Packet, encode
from hyperswarm.udx.socket import HIGH_WATER


@asynccontextmanager
async def pair(
    host: str = "127.0.0.1", b_as: str | None = None
) -> AsyncIterator[tuple[UDXSocket, UDXSocket, UDXStream, UDXStream]]:
    """Two sockets on ``host``, stream 1 on the first connected to stream 2 on the second
    (which ``a`` addresses as ``b_as``, if given) and back."""
    async with UDXSocket() as sa, UDXSocket() as sb:
        await sa.bind(0, host)
        await sb.bind(0, host)
        a, b = sa.create_stream(1), sb.create_stream(2)
        a.connect(2, sb.address()[1], b_as or host)
        b.connect(1, sa.address()[1], host)
        yield sa, sb, a, b


async def read_all(s: UDXStream) -> bytes:
    out = bytearray()
    while chunk := await s.receive_some():
        out += chunk
    return bytes(out)


async def test_transfer_both_ways_with_half_close() -> None:
    x = hashlib.sha256(b"x").digest() * 40_000  # 1.28 MB
    y = b"reply" * 1000
    with trio.fail_after(30):
        async with pair() as (_, _, a, b), trio.open_nursery() as n:
            got: dict[str, bytes] = {}

            async def side_b() -> None:
                got["b"] = await read_all(b)  # a's half-close ends this
                await b.send_all(y)
                await b.send_eof()

            n.start_soon(side_b)
            await a.send_all(x)
            await a.send_eof()
            got["a"] = await read_all(a)
    assert got["b"] == x and got["a"] == y


async def test_messages_and_datagrams_share_the_socket() -> None:
    with trio.fail_after(10):
        async with pair() as (sa, sb, a, b):
            await a.send(b"hello stream")
            assert await b.receive_message() == b"hello stream"
            await sa.send(b"\x03not udx", sb.address()[1], "127.0.0.1")
            data, addr = await sb.receive()
            assert data == b"\x03not udx" and addr[1] == sa.address()[1]
            await a.send_all(b"after")
            assert await b.receive_some() == b"after"


async def test_a_datagram_handler_and_sends_with_a_ttl() -> None:
    """With ``on_datagram`` every datagram for no stream goes to it as it arrives (dht-rpc
    and hole-punch bytes); ``ttl`` sets the IP time to live of one datagram only."""
    got: list[tuple[bytes, tuple[str, int]]] = []
    arrived = trio.Event()

    def handler(data: bytes, addr: tuple[str, int]) -> None:
        got.append((data, addr))
        if len(got) == 3:
            arrived.set()

    with trio.fail_after(10):
        async with UDXSocket(on_datagram=handler) as sa, UDXSocket() as sb:
            await sa.bind(0, "127.0.0.1")
            await sb.bind(0, "127.0.0.1")
            a = sa.create_stream(1)
            b = sb.create_stream(2)
            a.connect(2, sb.address()[1], "127.0.0.1")
            b.connect(1, sa.address()[1], "127.0.0.1")
            port = sb.address()[1]
            await sb.send(b"\x13dht", sa.address()[1], "127.0.0.1")
            await sb.send(b"\x00", sa.address()[1], "127.0.0.1", ttl=5)  # a hole punch
            await b.send_all(b"stream data")  # streams still get theirs
            assert await a.receive_some() == b"stream data"
            await sb.send(b"\xff\x01 udx for nobody".ljust(24), sa.address()[1], "127.0.0.1")
            await arrived.wait()
            assert [d for d, _ in got] == [
                b"\x13dht",
                b"\x00",
                b"\xff\x01 udx for nobody".ljust(24),
            ]
            assert all(addr == ("127.0.0.1", port) for _, addr in got)

    # The TTL as the receiver sees it (IP_RECVTTL, Linux).
    ip_recvttl, ip_ttl = 12, 2
    with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as rx:
        await rx.bind(("127.0.0.1", 0))
        rx.setsockopt(trio.socket.IPPROTO_IP, ip_recvttl, 1)
        with trio.fail_after(10):
            async with UDXSocket() as s:
                await s.bind(0, "127.0.0.1")
                ttls = []
                for ttl in (5, None, 200):
                    await s.send(b"x", rx.getsockname()[1], "127.0.0.1", ttl=ttl)
                    _, ancillary, _, _ = await rx.recvmsg(16, 64)
                    ttls += [
                        int.from_bytes(d, "little")
                        for level, kind, d in ancillary
                        if (level, kind) == (trio.socket.IPPROTO_IP, ip_ttl)
                    ]
    assert ttls == [5, 64, 200]


async def test_keepalive_heartbeats_keep_coming_while_idle() -> None:
    """An idle stream with a keepalive sends heartbeats (the peer acks them) and no data."""
    seen: list[bytes] = []
    with trio.fail_after(10):
        async with pair() as (sa, _, a, b):
            a.set_keepalive(0.05)
            original = sa._sendto

            def spy(datagrams: list[bytes], addr: tuple[str, int]) -> None:
                seen.extend(datagrams)
                original(datagrams, addr)

            sa._sendto = spy  # type: ignore[method-assign]
            await trio.sleep(0.5)
            a.set_keepalive(None)
            count = len(seen)
            await trio.sleep(0.2)
            assert len(seen) == count  # off again
            await a.send_all(b"still fine")
            assert await b.receive_some() == b"still fine"
    heartbeats = [d for d in seen if d[2] == HEARTBEAT]
    assert 4 <= len(heartbeats) <= count


async def test_a_closed_peer_ends_then_resets_the_stream() -> None:
    with trio.fail_after(10):
        async with pair() as (_, _, a, b):
            await a.send_all(b"x")
            await a.aclose()  # what was written still arrives, then EOF
            assert await b.receive_some() == b"x"
            assert await b.receive_some() == b""
            with pytest.raises(trio.BrokenResourceError):  # then the reset
                for _ in range(1000):
                    await b.send_all(b"z")
                    await trio.sleep(0.01)


async def test_trio_half_closeable_stream_conformance() -> None:
    from trio.testing import check_half_closeable_stream

    async with UDXSocket() as sa, UDXSocket() as sb:
        await sa.bind(0, "127.0.0.1")
        await sb.bind(0, "127.0.0.1")
        ids = iter(range(10, 10_000, 2))

        async def maker() -> tuple[UDXStream, UDXStream]:
            i = next(ids)
            a, b = sa.create_stream(i), sb.create_stream(i + 1)
            a.connect(i + 1, sb.address()[1], "127.0.0.1")
            b.connect(i, sa.address()[1], "127.0.0.1")
            return a, b

        with trio.fail_after(60):
            await check_half_closeable_stream(maker, None)


async def test_a_firewall_stream_adopts_the_address_of_its_first_packet() -> None:
    seen: list[tuple[str, int]] = []
    async with UDXSocket() as sa, UDXSocket() as sb:
        await sa.bind(0, "127.0.0.1")
        await sb.bind(0, "127.0.0.1")

        def firewall(sock: UDXSocket, host: str, port: int) -> bool:
            seen.append((host, port))
            if port != sa.address()[1]:
                return True  # only the expected peer gets in
            b.connect(1, port, host)
            return False

        b = sb.create_stream(2, firewall=firewall)
        a = sa.create_stream(1)
        a.connect(2, sb.address()[1], "127.0.0.1")  # b knows nothing of a yet
        with trio.fail_after(10):
            await a.send_all(b"knock")
            assert await b.receive_some() == b"knock"
            await b.send_all(b"welcome")
            assert await a.receive_some() == b"welcome"
        assert seen == [("127.0.0.1", sa.address()[1])]
        assert b.remote_address == ("127.0.0.1", sa.address()[1])


async def test_a_firewall_can_refuse() -> None:
    async with UDXSocket() as sa, UDXSocket() as sb:
        await sa.bind(0, "127.0.0.1")
        await sb.bind(0, "127.0.0.1")
        asked = 0

        def refuse(sock: UDXSocket, host: str, port: int) -> bool:
            nonlocal asked
            asked += 1
            return True

        b = sb.create_stream(2, firewall=refuse)
        a = sa.create_stream(1)
        a.connect(2, sb.address()[1], "127.0.0.1")
        await a.send_all(b"knock")
        with trio.move_on_after(0.3):
            await b.receive_some()
            raise AssertionError("a refused packet was delivered")
        assert asked >= 1 and b.remote_address is None


async def test_hostile_datagrams_do_no_harm() -> None:
    """Bad headers, unknown stream ids, absurd windows, acks of packets never sent and data
    far ahead: the streams keep working and the transfer is intact."""
    import random

    from hyperswarm.udx.packet import DATA, SACK, Packet, encode

    rng = random.Random(7)
    x = hashlib.sha256(b"y").digest() * 20_000  # 640 kB
    with trio.fail_after(30):
        async with pair() as (_, sb, a, b), trio.open_nursery() as n:
            evil = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
            await evil.bind(("127.0.0.1", 0))

            async def attack() -> None:
                for i in range(400):
                    kind = i % 5
                    if kind == 0:
                        d = rng.randbytes(rng.randrange(0, 40))
                    elif kind == 1:
                        d = b"\xff\x01" + rng.randbytes(rng.randrange(0, 60))
                    elif kind == 2:  # a window of 0 and an ack far in the future
                        d = encode(Packet(0, 2, 0, 0, 2**31 + rng.randrange(1000)))
                    elif kind == 3:  # selective acks of nothing, data far ahead
                        d = encode(Packet(SACK, 2, 2**32 - 1, 0, 0, sacks=[(5, 2**32 - 1)]))
                    else:
                        d = encode(Packet(DATA, 2, 1, 2**30 + i, 0, payload=b"junk"))
                    await evil.sendto(d, ("127.0.0.1", sb.address()[1]))
                    await trio.sleep(0.001)

            n.start_soon(attack)
            got: list[bytes] = []

            async def reader() -> None:
                got.append(await read_all(b))

            n.start_soon(reader)
            await a.send_all(x)
            await a.send_eof()
        evil.close()
    assert got == [x]


async def test_a_transfer_over_ipv6_loopback() -> None:
    x = hashlib.sha256(b"v6").digest() * 20_000  # 640 kB
    with trio.fail_after(30):
        async with pair("::1") as (sa, sb, a, b):
            assert sa.address()[0] == "::1"
            async with trio.open_nursery() as n:
                n.start_soon(a.send_all, x)
                got = bytearray()
                while len(got) < len(x):
                    got += await b.receive_some()
            await sa.send(b"dgram", sb.address()[1], "::1", ttl=3)
            data, addr = await sb.receive()
            assert addr == ("::1", sa.address()[1])
    assert bytes(got) == x and data == b"dgram"


async def test_a_reader_that_stops_reading_stops_the_writer() -> None:
    """Nothing grows without bound when the application stops reading: the reader holds at
    most its receive window, and the writer's send_all waits once its own buffer is full."""
    chunk = bytes(range(256)) * 256  # 64 KiB
    total = 300 * len(chunk)  # 19.7 MB, far more than both buffers
    accepted = 0
    with trio.fail_after(60):
        async with pair() as (_, _, a, b), trio.open_nursery() as n:

            async def write() -> None:
                nonlocal accepted
                for _ in range(300):
                    await a.send_all(chunk)
                    accepted += len(chunk)
                await a.send_eof()

            n.start_soon(write)
            await trio.sleep(1.0)  # nobody reads
            held = len(b._buffer)
            stalled_at = accepted
            assert held <= RWND_MAX + RWND_SLACK
            assert stalled_at <= RWND_MAX + RWND_SLACK + HIGH_WATER + len(chunk)
            await trio.sleep(0.3)
            assert accepted == stalled_at  # still waiting
            got = await read_all(b)  # reading resumes it to the end
    assert len(got) == total and got == chunk * 300


async def test_datagram_sends_answer_as_js() -> None:
    """True once the kernel took it, False on a closed socket; a host that is not an IP
    address, or a TTL out of range, is the caller's mistake and raises."""
    async with UDXSocket() as sa, UDXSocket() as sb:
        await sa.bind(0, "127.0.0.1")
        await sb.bind(0, "127.0.0.1")
        port = sb.address()[1]
        assert await sa.send(b"x", port, "127.0.0.1") is True
        assert sa.try_send(b"y", port, "127.0.0.1", ttl=1) is True
        with pytest.raises(ValueError):
            await sa.send(b"x", port, "localhost")
        with pytest.raises(ValueError):
            sa.try_send(b"x", 0, "127.0.0.1")
        with pytest.raises(ValueError):
            sa.create_stream(9).connect(1, port, "example.org")
        for ttl in (0, 256):
            with pytest.raises(ValueError):
                sa.try_send(b"x", port, "127.0.0.1", ttl=ttl)
        with trio.fail_after(5):
            assert [(await sb.receive())[0] for _ in range(2)] == [b"x", b"y"]
        stream = sa.create_stream(5)
        stream.connect(6, port, "127.0.0.1")
        await sa.aclose()  # from inside sb's block too: its tasks stop, the body goes on
        assert await sa.send(b"z", port, "127.0.0.1") is False
        with pytest.raises(trio.BrokenResourceError):
            await stream.send_all(b"z")
        with pytest.raises(UDXError):
            sa.create_stream(7).connect(8, port, "127.0.0.1")
        assert await sb.send(b"still", port, "127.0.0.1")  # the other socket is unharmed


async def test_packets_from_another_address_do_not_touch_a_connected_stream() -> None:
    """Mid-transfer, a third socket on 127.0.0.1 that knows both stream ids sends each side,
    from its own port, what its peer could: data at the next seq expected, an END, a
    message, an ack of everything in flight with a zero window, selective acks, a heartbeat
    and a DESTROY (udx-native acts on each). They are dropped: the transfer ends intact and
    cleanly, with no message in either stream, and none is handed out as a datagram."""
    first = hashlib.sha256(b"first").digest() * 2_000  # 64 kB
    rest = hashlib.sha256(b"rest").digest() * 20_000  # 640 kB
    with trio.fail_after(30):
        async with pair() as (sa, sb, a, b):
            evil = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
            await evil.bind(("127.0.0.1", 0))
            await a.send_all(first)
            got = bytearray()
            while len(got) < len(first):
                got += await b.receive_some()
            for sock, stream in ((sb, b), (sa, a)):
                conn = stream._conn
                assert conn is not None
                sid, ack, seq = stream.local_id, conn.ack, conn.seq
                forged = [
                    Packet(DATA, sid, RWND_MAX, ack, seq, payload=b"forged data"),
                    Packet(DATA | END, sid, RWND_MAX, ack + 1, seq, payload=b"forged end"),
                    Packet(MESSAGE, sid, RWND_MAX, ack, seq, payload=b"forged message"),
                    Packet(0, sid, 0, ack, seq),
                    Packet(SACK, sid, RWND_MAX, ack, conn.remote_acked, [(0, seq)]),
                    Packet(HEARTBEAT, sid, RWND_MAX, ack, seq),
                    Packet(DESTROY, sid, RWND_MAX, ack + 2, seq),  # (the seq after those)
                ]
                to = ("127.0.0.1", sock.address()[1])
                for packet in forged:
                    await evil.sendto(encode(packet), to)
                # The socket hands this one out after it has dealt with all the above.
                await evil.sendto(b"\x03after", to)
                assert await sock.receive() == (b"\x03after", evil.getsockname())
            async with trio.open_nursery() as n:

                async def write() -> None:
                    await a.send_all(rest)
                    await a.send_eof()

                n.start_soon(write)
                got += await read_all(b)
            await b.send_eof()
            assert await read_all(a) == b""
            for s in (a, b):
                with pytest.raises(trio.EndOfChannel):
                    await s.receive_message()  # the stream closed, and no message came
        evil.close()
    assert bytes(got) == first + rest


async def test_the_remote_address_is_compared_as_an_address() -> None:
    """Connected to ``::1`` written out in full, a stream takes the packets the kernel says
    come from ``::1``. An IPv4-mapped IPv6 address counts as its IPv4 address, a zone id
    not at all, the port always."""
    x = b"spelled differently" * 1000
    with trio.fail_after(10):
        async with pair("::1", b_as="0:0:0:0:0:0:0:1") as (_, _, a, b):
            await a.send_all(x)
            await a.send_eof()
            assert await read_all(b) == x
            await b.send_all(b"back")
            await b.send_eof()
            assert await read_all(a) == b"back"
    from hyperswarm.udx.socket import _address_key

    v4 = _address_key("127.0.0.1", 4000)
    assert _address_key("::ffff:127.0.0.1", 4000) == v4 != _address_key("127.0.0.1", 4001)
    assert _address_key("fe80::1%lo", 4000) == _address_key("fe80::1", 4000)
    assert _address_key("::1", 4000) != _address_key("::", 4000)
