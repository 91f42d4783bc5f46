"""One UDX stream table shared by several sockets (udx-native's ``UDX`` instance), streams
bound late by their firewall hook through whichever socket their first packet came in on,
and ``change_remote`` moving a live stream to another socket and address, on 127.0.0.1."""

from __future__ import annotations

import hashlib
import random

import pytest
import trio

from hyperswarm.udx import UDX, UDXError, UDXSocket, UDXStream
from hyperswarm.udx.connection import Connection, RemoteChanged
from hyperswarm.udx.packet import DESTROY, Packet, decode, encode

HOST = "127.0.0.1"


def blob(tag: bytes, size: int) -> bytes:
    """``size`` bytes that differ all along (a reordering or a loss shows in a compare)."""
    out = bytearray()
    i = 0
    while len(out) < size:
        out += hashlib.sha256(tag + i.to_bytes(4, "little")).digest()
        i += 1
    return bytes(out[:size])


async def read_all(s: UDXStream) -> bytes:
    out = bytearray()
    while chunk := await s.receive_some():
        out += chunk
    return bytes(out)


async def exchange(a: UDXStream, b: UDXStream, x: bytes, y: bytes) -> tuple[bytes, bytes]:
    """``a`` sends ``x`` and ``b`` sends ``y`` at once, each then ends; what each read."""
    got: dict[str, bytes] = {}
    async with trio.open_nursery() as n:

        async def side(s: UDXStream, data: bytes, name: str) -> None:
            async def write() -> None:
                await s.send_all(data)
                await s.send_eof()

            n.start_soon(write)
            got[name] = await read_all(s)

        n.start_soon(side, a, x, "a")
        n.start_soon(side, b, y, "b")
    return got["a"], got["b"]


@pytest.mark.parametrize("via", [0, 1])
async def test_a_stream_is_bound_through_the_socket_its_first_packet_arrives_on(via: int) -> None:
    """A stream made on a shared UDX belongs to no socket; the peer sends to one of the two
    sockets of that UDX, and the stream's firewall hook gets that socket and connects the
    stream through it. Data then goes both ways, and the stream's packets leave from that
    socket (the peer takes packets only from the address it connected to)."""
    udx = UDX(rng=random.Random(5))
    x, y = blob(b"x", 300_000), blob(b"y", 200_000)
    calls: list[tuple[UDXSocket, str, int]] = []
    with trio.fail_after(30):
        async with (
            UDXSocket(udx=udx) as s0,
            UDXSocket(udx=udx) as s1,
            UDXSocket() as other,
        ):
            for s in (s0, s1, other):
                await s.bind(0, HOST)
            sockets = (s0, s1)
            other_port = other.address()[1]

            def firewall(sock: UDXSocket, host: str, port: int) -> bool:
                calls.append((sock, host, port))
                ours.connect(9, port, host, socket=sock)
                return False

            ours = udx.create_stream(firewall=firewall)
            assert ours.socket is None and not ours.connected
            assert udx.streams == [ours]
            theirs = other.create_stream(9)
            theirs.connect(ours.local_id, sockets[via].address()[1], HOST)
            got: dict[str, bytes] = {}
            async with trio.open_nursery() as n:

                async def send(s: UDXStream, data: bytes) -> None:
                    await s.send_all(data)
                    await s.send_eof()

                async def read_ours() -> None:
                    first = await ours.receive_some()  # connected by now: answer
                    n.start_soon(send, ours, y)
                    got["ours"] = first + await read_all(ours)

                async def read_theirs() -> None:
                    got["theirs"] = await read_all(theirs)

                n.start_soon(send, theirs, x)
                n.start_soon(read_ours)
                n.start_soon(read_theirs)
            got_theirs, got_ours = got["theirs"], got["ours"]
    assert calls == [(sockets[via], HOST, other_port)]
    assert ours.socket is sockets[via]
    assert got_ours == x and got_theirs == y


async def test_change_remote_moves_a_live_stream_to_another_socket() -> None:
    """Streams ``a`` (on socket A of a shared UDX) and ``b`` (socket C) exchange 4 MB each
    way. When ``b`` has a third of ``a``'s data, ``a`` moves to socket B and ``b`` to B's
    address (as both ends of a HyperDHT connection do after a hole punch). Every byte
    arrives, in order, both ways. Right after the move, a DESTROY from the old address (A)
    is dropped by ``b``, and one from ``b``'s own address that arrives on the old socket A
    is dropped by ``a`` (it has no firewall)."""
    udx = UDX()
    size = 4_000_000
    x, y = blob(b"x", size), blob(b"y", size)
    moved: dict[str, int] = {}
    with trio.fail_after(60):
        async with (
            UDXSocket(udx=udx) as sa,
            UDXSocket(udx=udx) as sb,
            UDXSocket() as sc,
        ):
            for s in (sa, sb, sc):
                await s.bind(0, HOST)
            a = udx.create_stream(1)
            b = sc.create_stream(2)
            a.connect(2, sc.address()[1], HOST, socket=sa)
            b.connect(1, sa.address()[1], HOST)
            got: dict[str, bytearray] = {"a": bytearray(), "b": bytearray()}

            def move() -> None:
                conn_b = b._conn
                assert conn_b is not None
                moved["a"], moved["b"] = len(got["a"]), len(got["b"])
                a.change_remote(2, sc.address()[1], HOST, socket=sb)
                b.change_remote(1, sb.address()[1], HOST)
                assert a.socket is sb and b.socket is sc
                assert a.remote_address == (HOST, sc.address()[1])
                assert b.remote_address == (HOST, sb.address()[1])
                # A DESTROY (any seq ahead resets a stream) from the old address: dropped.
                # (DATA from there is still taken for a while: libudx retransmits what it
                # sent before its own move over the old path.)
                to_b = sc.address()[1]
                destroy_b = Packet(DESTROY, 2, 1 << 20, conn_b.ack + 1000, 0)
                sa.try_send(encode(destroy_b), to_b, HOST)
                # one from b's own address but to the socket a left: dropped (no firewall)
                conn_a = a._conn
                assert conn_a is not None
                destroy_a = Packet(DESTROY, 1, 1 << 20, conn_a.ack + 1000, 0)
                sc.try_send(encode(destroy_a), sa.address()[1], HOST)

            async def reader(s: UDXStream, name: str) -> None:
                while chunk := await s.receive_some():
                    got[name] += chunk
                    if name == "b" and not moved and len(got["b"]) >= size // 3:
                        move()

            async def writer(s: UDXStream, data: bytes) -> None:
                await s.send_all(data)
                await s.send_eof()

            async with trio.open_nursery() as n:
                n.start_soon(reader, a, "a")
                n.start_soon(reader, b, "b")
                n.start_soon(writer, a, x)
                n.start_soon(writer, b, y)
            await a.wait_remote_changed()
            await b.wait_remote_changed()
            assert not a.remote_changing and not b.remote_changing
    assert moved and moved["b"] < size and moved["a"] < size  # the move was mid-transfer
    assert bytes(got["b"]) == x
    assert bytes(got["a"]) == y


async def test_closing_a_socket_ends_only_the_streams_on_it() -> None:
    """Two streams of one UDX, on sockets A and B: closing A breaks the stream on A (with an
    error, as before) and takes it out of the table; the one on B goes on, and so does a
    stream that has moved from A to B before A closed."""
    udx = UDX()
    with trio.fail_after(30):
        async with (
            UDXSocket(udx=udx) as sa,
            UDXSocket(udx=udx) as sb,
            UDXSocket() as peer,
        ):
            for sock in (sa, sb, peer):
                await sock.bind(0, HOST)
            on_a = udx.create_stream(1)
            on_b = udx.create_stream(2)
            mover = udx.create_stream(3)
            p1, p2, p3 = peer.create_stream(11), peer.create_stream(12), peer.create_stream(13)
            on_a.connect(11, peer.address()[1], HOST, socket=sa)
            on_b.connect(12, peer.address()[1], HOST, socket=sb)
            mover.connect(13, peer.address()[1], HOST, socket=sa)
            p1.connect(1, sa.address()[1], HOST)
            p2.connect(2, sb.address()[1], HOST)
            p3.connect(3, sa.address()[1], HOST)
            for s, p in ((on_a, p1), (on_b, p2), (mover, p3)):
                await s.send_all(b"hello")
                assert await p.receive_some() == b"hello"
            mover.change_remote(13, peer.address()[1], HOST, socket=sb)
            p3.change_remote(3, sb.address()[1], HOST)
            await mover.wait_remote_changed()
            await sa.aclose()
            with pytest.raises(trio.BrokenResourceError):
                await on_a.receive_some()
            assert sorted(s.local_id for s in udx.streams) == [2, 3]
            for s, p in ((on_b, p2), (mover, p3)):
                got_p, got_s = await exchange(p, s, b"after" * 1000, b"back" * 1000)
                assert got_s == b"after" * 1000 and got_p == b"back" * 1000
            with pytest.raises(UDXError):
                udx.create_stream(5).connect(1, peer.address()[1], HOST, socket=sa)


async def test_what_is_refused() -> None:
    udx, other_udx = UDX(rng=random.Random(1)), UDX()
    with trio.fail_after(10):
        async with UDXSocket(udx=udx) as sa, UDXSocket(udx=other_udx) as so:
            await sa.bind(0, HOST)
            await so.bind(0, HOST)
            s = udx.create_stream(7)
            with pytest.raises(UDXError):
                udx.create_stream(7)  # in use
            with pytest.raises(UDXError):
                sa.create_stream(7)  # the same table
            with pytest.raises(ValueError):
                udx.create_stream(1 << 32)
            with pytest.raises(UDXError):
                s.connect(1, 1000, HOST)  # no socket yet
            with pytest.raises(UDXError):
                s.connect(1, 1000, HOST, socket=so)  # another UDX's
            with pytest.raises(UDXError):
                s.change_remote(1, 1000, HOST, socket=sa)  # not connected
            s.connect(1, so.address()[1], HOST, socket=sa)
            with pytest.raises(UDXError):
                s.change_remote(1, 1000, HOST, socket=so)
            with pytest.raises(ValueError):
                s.change_remote(1, 0, HOST)
            await s.send_all(b"unacked")  # nobody answers: the change waits
            await trio.sleep(0.05)  # (sent by now)
            s.change_remote(2, 1000, HOST)
            assert s.remote_changing and s.remote_id == 2
            with pytest.raises(UDXError):
                s.change_remote(3, 1001, HOST)  # "Remote already changing"
            # free ids: random, never one in use
            ids = {udx.free_stream_id() for _ in range(50)}
            assert 7 not in ids and len(ids) == 50
            rigged = UDX(rng=random.Random())
            rigged.create_stream(0)
            rigged._rng.getrandbits = lambda k: 0  # type: ignore[method-assign]
            with pytest.raises(UDXError):
                rigged.free_stream_id()
            await sa.aclose()
            with pytest.raises(trio.BrokenResourceError):
                await s.wait_remote_changed()


def test_connection_change_remote() -> None:
    """Sans-IO: after the change, every packet (a retransmission too) carries the new id;
    RemoteChanged comes once what was sent before is acked; the MTU search restarts."""
    a, b = Connection(1, 2), Connection(2, 1)
    now = 0.0
    a.write(b"x" * 5000)
    first = a.datagrams(now)
    assert {decode(d).stream_id for d in first} == {2}
    assert a.change_remote(3) is False and a.remote_changing
    a.on_timer(now + 5)  # the retransmission timeout: all of it goes again
    again = a.datagrams(now + 5)
    assert again and {decode(d).stream_id for d in again} == {3}
    for d in first:
        b.receive(d, now + 5.01)
    for d in b.datagrams(now + 5.01):
        a.receive(d, now + 5.02)
    assert [e for e in a.events() if isinstance(e, RemoteChanged)] == [RemoteChanged()]
    assert not a.remote_changing
    assert a.mtu == 1200
    assert a.change_remote(4) is True  # nothing outstanding: over at once
    assert not a.remote_changing
