"""UDXSocket and UDXStream on 127.0.0.1: transfers both ways with half-close, stream
messages, plain datagrams beside the streams, and a peer that vanishes."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from hyperswarm.udx import UDXSocket, UDXStream


@asynccontextmanager
async def pair() -> AsyncIterator[tuple[UDXSocket, UDXSocket, UDXStream, UDXStream]]:
    async with UDXSocket() as sa, UDXSocket() as sb:
        await sa.bind(0, "127.0.0.1")
        await sb.bind(0, "127.0.0.1")
        a, b = sa.create_stream(1), sb.create_stream(2)
        a.connect(2, sb.address()[1], "127.0.0.1")
        b.connect(1, sa.address()[1], "127.0.0.1")
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


async def test_a_destroyed_peer_breaks_the_stream() -> None:
    with trio.fail_after(10):
        async with pair() as (_, _, a, b):
            await a.send_all(b"x")
            assert await b.receive_some() == b"x"
            await a.aclose()
            with pytest.raises(trio.BrokenResourceError):
                while await b.receive_some():
                    pass
