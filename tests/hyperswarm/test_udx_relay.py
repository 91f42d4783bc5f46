"""UDX relaying (udx-native's ``relayTo``) on 127.0.0.1: two streams of a relay socket pass
each other's packets on unread, ids rewritten; the ends talk as if directly; a DESTROY ends
both halves; packets from anyone but a half's peer are dropped."""

from __future__ import annotations

import trio

from hyperswarm.udx import UDXError, UDXSocket, UDXStream
from hyperswarm.udx.packet import DATA, Packet, encode

from .test_udx_shared import blob, exchange

HOST = "127.0.0.1"


def relay_pair(relay: UDXSocket, a: UDXStream, b: UDXStream) -> tuple[UDXStream, UDXStream]:
    """Two relaying streams on ``relay``: each connects to whoever sends to it first (its
    firewall hook, as a blind relay does), one towards ``a``'s stream id, one towards ``b``'s."""

    def hook(stream: list[UDXStream], remote_id: int):  # type: ignore[no-untyped-def]
        def firewall(sock: UDXSocket, host: str, port: int) -> bool:
            stream[0].connect(remote_id, port, host, socket=sock)
            return False

        return firewall

    ha: list[UDXStream] = []
    hb: list[UDXStream] = []
    ra = relay.create_stream(firewall=hook(ha, a.local_id))
    rb = relay.create_stream(firewall=hook(hb, b.local_id))
    ha.append(ra)
    hb.append(rb)
    ra.relay_to(rb)
    rb.relay_to(ra)
    return ra, rb


async def test_two_streams_talk_through_a_relay_that_reads_nothing() -> None:
    async with UDXSocket() as sa, UDXSocket() as sb, UDXSocket() as sr:
        for s in (sa, sb, sr):
            await s.bind(0, HOST)
        a, b = sa.create_stream(), sb.create_stream()
        ra, rb = relay_pair(sr, a, b)
        rport = sr.address()[1]
        a.connect(ra.local_id, rport, HOST)
        b.connect(rb.local_id, rport, HOST)
        x, y = blob(b"x", 300_000), blob(b"y", 200_000)
        with trio.fail_after(20):
            got_a, got_b = await exchange(a, b, x, y)
        assert got_b == x and got_a == y
        assert ra.connected and rb.connected
        assert ra.remote_address == sa.address() and rb.remote_address == sb.address()
        assert ra.relayed_packets > 100 and rb.relayed_packets > 50
        assert ra.relayed_bytes > len(x) and rb.relayed_bytes > len(y)
        # the relay never buffered a byte: it kept no connection
        assert sr.udx.streams == [ra, rb]
        with trio.fail_after(5):
            await a.aclose()
            await b.aclose()


async def test_a_destroy_through_the_relay_ends_both_halves() -> None:
    async with UDXSocket() as sa, UDXSocket() as sb, UDXSocket() as sr:
        for s in (sa, sb, sr):
            await s.bind(0, HOST)
        a, b = sa.create_stream(), sb.create_stream()
        ra, rb = relay_pair(sr, a, b)
        closed: list[str] = []
        ra.on_close = lambda: closed.append("a")
        rb.on_close = lambda: closed.append("b")
        rport = sr.address()[1]
        a.connect(ra.local_id, rport, HOST)
        b.connect(rb.local_id, rport, HOST)
        # (a half connects to its peer at the peer's first packet: both ends speak first,
        # as secret-stream headers do)
        await a.send_all(b"hello")
        await b.send_all(b"back")
        with trio.fail_after(5):
            assert await b.receive_some() == b"hello"
            assert await a.receive_some() == b"back"
        a.destroy()
        with trio.fail_after(5):
            while sr.udx.streams:
                await trio.sleep(0.01)
        assert sorted(closed) == ["a", "b"]
        with trio.fail_after(5):
            try:
                while await b.receive_some():
                    pass
            except trio.BrokenResourceError:
                pass  # b heard the DESTROY a sent, through the relay


async def test_only_a_halfs_peer_host_is_relayed_and_destroying_one_half_ends_the_pair() -> None:
    async with UDXSocket() as sa, UDXSocket() as sb, UDXSocket() as sr, UDXSocket() as evil:
        for s in (sa, sb, sr):
            await s.bind(0, HOST)
        await evil.bind(0, "127.0.0.2")  # another host (any port of the peer's host passes)
        a, b = sa.create_stream(), sb.create_stream()
        ra, rb = relay_pair(sr, a, b)
        rport = sr.address()[1]
        a.connect(ra.local_id, rport, HOST)
        b.connect(rb.local_id, rport, HOST)
        await a.send_all(b"1")
        await b.send_all(b"2")
        with trio.fail_after(5):
            assert await b.receive_some() == b"1"
            assert await a.receive_some() == b"2"
        for _ in range(50):  # until the acks of "1" and "2" are through
            before = ra.relayed_packets
            await trio.sleep(0.1)
            if ra.relayed_packets == before:
                break
        forged = encode(Packet(DATA, ra.local_id, 1 << 20, 0, 0, payload=b"forged"))
        for _ in range(20):
            await evil.send(forged, rport, HOST)
        await trio.sleep(0.2)
        assert ra.relayed_packets == before  # another host: dropped
        rb.destroy()
        assert sr.udx.streams == []  # the other half ended with it
        await a.send_all(b"3")
        await trio.sleep(0.2)
        assert ra.relayed_packets == before  # nothing passes any more


async def test_relay_to_is_refused_after_connect_or_twice() -> None:
    async with UDXSocket() as s:
        await s.bind(0, HOST)
        x, y, z = s.create_stream(), s.create_stream(), s.create_stream()
        x.relay_to(y)
        try:
            x.relay_to(z)
        except UDXError:
            pass
        else:
            raise AssertionError("a second relay_to was taken")
        z.connect(1, 9, HOST)
        try:
            z.relay_to(y)
        except UDXError:
            pass
        else:
            raise AssertionError("relay_to after connect was taken")
        z.destroy()


async def test_remote_ids_over_32_bits_are_refused() -> None:
    async with UDXSocket() as s:
        await s.bind(0, HOST)
        x, y = s.create_stream(), s.create_stream()
        y.relay_to(x)
        for stream in (x, y):
            try:
                stream.connect(2**32, 9, HOST)
            except UDXError:
                pass
            else:
                raise AssertionError("a 33-bit remote id was taken")
        x.connect(1, 9, HOST)
        try:
            x.change_remote(2**40, 9, HOST)
        except UDXError:
            pass
        else:
            raise AssertionError("a 41-bit remote id was taken")
        x.destroy()
        y.destroy()
