"""UDX streams between Python and udx-native 1.21.3 on 127.0.0.1: both directions at once
with half-closes, stream messages and plain socket datagrams beside the stream."""

from __future__ import annotations

import hashlib
import os
import random
from functools import partial
from typing import Any

import trio

from hyperswarm.udx import UDX, UDXSocket, UDXStream

from .jsenv import JSHelper


async def read_all(s: UDXStream) -> bytes:
    out = bytearray()
    while chunk := await s.receive_some():
        out += chunk
    return bytes(out)


async def test_python_and_udx_native_stream_both_ways(js: JSHelper) -> None:
    await _both_ways(js, 20_000_000, "127.0.0.1")


async def test_python_and_udx_native_over_ipv6_loopback(js: JSHelper) -> None:
    await _both_ways(js, 3_000_000, "::1")


async def _both_ways(js: JSHelper, size: int, host: str) -> None:
    size_js, size_py = size, size
    peer = js("udx.open", host)
    ours = os.urandom(size_py)
    with trio.fail_after(120):
        async with UDXSocket() as sock:
            await sock.bind(0, host)
            stream = sock.create_stream(7)
            stream.connect(9, peer["port"], host)
            result: dict[str, Any] = {}

            async def run_js() -> None:
                result["js"] = await trio.to_thread.run_sync(
                    js, "udx.talk", peer["id"], 9, 7, sock.address()[1], size_js, 100_000, host
                )

            async with trio.open_nursery() as n:
                n.start_soon(run_js)
                got_message: list[bytes] = []

                async def write() -> None:
                    # JS sends its message once its stream is connected: ours goes after it.
                    got_message.append(await stream.receive_message())
                    await stream.send(b"message from python")
                    await stream.send_all(ours)
                    await stream.send_eof()

                n.start_soon(write)
                theirs = await read_all(stream)  # ends with the JS side's end
                datagram, _ = await sock.receive()
            message = got_message[0]
    got = result["js"]
    assert hashlib.sha256(theirs).digest() == got["sent"]
    assert len(theirs) == size_js
    assert got["received"] == hashlib.sha256(ours).digest()
    assert message == b"message from js" and datagram == b"datagram from js"
    assert got["messages"] == [b"message from python"]


async def _lossy_relay(
    sock: trio.socket.SocketType,
    ports: tuple[int, int],
    loss: float,
    seed: int,
    *,
    path_mtu: int | None = None,
    largest: dict[int, int] | None = None,
) -> None:
    """Forwards between the two ports, dropping ``loss`` of the datagrams (seeded) and those
    an IPv4 path of ``path_mtu`` would not carry; ``largest`` gets the largest datagram
    forwarded from each port."""
    rng = random.Random(seed)
    a, b = ports
    while True:
        data, (_, port) = await sock.recvfrom(65536)
        if rng.random() < loss or (path_mtu is not None and len(data) + 28 > path_mtu):
            continue
        if largest is not None:
            largest[port] = max(largest.get(port, 0), len(data))
        await sock.sendto(data, ("127.0.0.1", b if port == a else a))


async def test_through_a_lossy_relay(js: JSHelper) -> None:
    await _through_a_relay(js, 3_000_000, loss=0.03)


async def test_both_find_the_mtu_of_a_smaller_path(js: JSHelper) -> None:
    """A relay that drops datagrams over 1300 bytes (with IP headers): from the 1200-byte
    base, each side's probes go up 32 bytes at a time, 1328 fails, and both settle at 1296
    (1268 bytes of UDP payload)."""
    largest = await _through_a_relay(js, 3_000_000, path_mtu=1300)
    assert sorted(largest.values()) == [1296 - 28, 1296 - 28], largest


async def _through_a_relay(
    js: JSHelper, size: int, *, loss: float = 0.0, path_mtu: int | None = None
) -> dict[int, int]:
    peer = js("udx.open")
    ours = os.urandom(size)
    relay = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    for option in (trio.socket.SO_RCVBUF, trio.socket.SO_SNDBUF):
        # (the relay is slower than the ends: bursts must queue, not overflow, or they drop
        # more than ``loss`` says; three lost probes in one burst would end an MTU search)
        relay.setsockopt(trio.socket.SOL_SOCKET, option, 4 * 1024 * 1024)
    await relay.bind(("127.0.0.1", 0))
    with trio.fail_after(120):
        async with UDXSocket() as sock, trio.open_nursery() as outer:
            await sock.bind(0, "127.0.0.1")
            ports = (peer["port"], sock.address()[1])
            largest: dict[int, int] = {}
            outer.start_soon(
                partial(_lossy_relay, relay, ports, loss, 1, path_mtu=path_mtu, largest=largest)
            )
            stream = sock.create_stream(7)
            stream.connect(9, relay.getsockname()[1], "127.0.0.1")
            result: dict[str, Any] = {}

            async def run_js() -> None:
                result["js"] = await trio.to_thread.run_sync(
                    js, "udx.talk", peer["id"], 9, 7, relay.getsockname()[1], size, 100_000
                )

            async with trio.open_nursery() as n:
                n.start_soon(run_js)

                async def write() -> None:
                    with trio.move_on_after(2):  # JS is connected (unless the relay lost it)
                        await stream.receive_message()
                    await stream.send_all(ours)
                    await stream.send_eof()

                n.start_soon(write)
                theirs = await read_all(stream)
            outer.cancel_scope.cancel()
    relay.close()
    got = result["js"]
    assert hashlib.sha256(theirs).digest() == got["sent"] and len(theirs) == size
    assert got["received"] == hashlib.sha256(ours).digest()
    return largest
    return largest


async def test_half_close_from_js_to_a_python_stream_that_its_firewall_connects(
    js: JSHelper,
) -> None:
    """JS connects to a Python stream that is not connected yet: its firewall sees the first
    packet and connects the stream to where it came from. JS writes and ends its side first;
    Python reads to the end and only then writes its own data and ends."""
    size = 2_000_000
    peer = js("udx.open")
    ours = os.urandom(size)
    with trio.fail_after(60):
        async with UDXSocket() as sock:
            await sock.bind(0, "127.0.0.1")
            seen: list[tuple[str, int]] = []

            def firewall(s: UDXSocket, host: str, port: int) -> bool:
                seen.append((host, port))
                stream.connect(9, port, host)
                return False

            stream = sock.create_stream(7, firewall=firewall)
            result: dict[str, Any] = {}

            async def run_js() -> None:
                result["js"] = await trio.to_thread.run_sync(
                    js,
                    "udx.exchange",
                    peer["id"],
                    9,
                    7,
                    sock.address()[1],
                    size,
                    "js-first",
                    50_000,
                )

            async with trio.open_nursery() as n:
                n.start_soon(run_js)
                theirs = await read_all(stream)  # JS's side is over
                await stream.send_all(ours)  # ours still goes
                await stream.send_eof()
    got = result["js"]
    assert seen == [("127.0.0.1", peer["port"])]
    assert hashlib.sha256(theirs).digest() == got["sent"] and len(theirs) == size
    assert got["received"] == hashlib.sha256(ours).digest()


async def test_half_close_from_python_to_a_js_stream_that_its_firewall_connects(
    js: JSHelper,
) -> None:
    """The other way round: Python connects to a udx-native stream whose firewall connects it
    back (as hyperdht does), writes and ends first, and reads JS's data after its end."""
    size = 2_000_000
    peer = js("udx.open")
    ours = os.urandom(size)
    with trio.fail_after(60):
        async with UDXSocket() as sock:
            await sock.bind(0, "127.0.0.1")
            port = sock.address()[1]
            stream = sock.create_stream(7)
            stream.connect(9, peer["port"], "127.0.0.1")
            result: dict[str, Any] = {}

            async def run_js() -> None:
                result["js"] = await trio.to_thread.run_sync(
                    js, "udx.exchange", peer["id"], 9, 7, None, size, "python-first", 50_000
                )

            async with trio.open_nursery() as n:
                n.start_soon(run_js)
                await stream.send_all(ours)
                await stream.send_eof()
                theirs = await read_all(stream)
    got = result["js"]
    assert got["seen"] == {"port": port, "host": "127.0.0.1"}
    assert got["bytesBeforeWriting"] == size  # JS had all of ours, and the end, first
    assert got["received"] == hashlib.sha256(ours).digest()
    assert hashlib.sha256(theirs).digest() == got["sent"] and len(theirs) == size


async def test_a_js_stream_moves_with_change_remote_mid_transfer(js: JSHelper) -> None:
    """udx-native's stream, connected from its socket A to Python socket P, calls
    ``changeRemote`` to its socket B and Python socket Q once it has a third of Python's
    data. Python's stream (P and Q share one UDX) sees the first packet on Q go to its
    firewall hook, which moves it with ``change_remote`` to Q and JS's B. 3 MB each way
    arrive intact."""
    await _migrate(js, "js-moves")


async def test_a_python_stream_moves_with_change_remote_mid_transfer(js: JSHelper) -> None:
    """The other way round: Python moves its stream to socket Q and JS's socket B with
    ``change_remote`` once it has a third of JS's data; udx-native's firewall hook sees the
    first packet on B and calls ``changeRemote`` there (as hyperdht does)."""
    await _migrate(js, "py-moves")


async def _migrate(js: JSHelper, mode: str) -> None:
    size = 3_000_000
    peer = js("udx.open2")
    ours = os.urandom(size)
    udx = UDX()
    calls: list[tuple[UDXSocket, str, int]] = []
    with trio.fail_after(90):
        async with UDXSocket(udx=udx) as p, UDXSocket(udx=udx) as q:
            await p.bind(0, "127.0.0.1")
            await q.bind(0, "127.0.0.1")
            p_port, q_port = p.address()[1], q.address()[1]

            def firewall(sock: UDXSocket, host: str, port: int) -> bool:
                calls.append((sock, host, port))
                if mode == "js-moves" and sock is q and stream.socket is p:
                    stream.change_remote(9, port, host, socket=q)
                    return False
                return True  # a late packet on the socket the stream left

            stream = udx.create_stream(7, firewall=firewall)
            stream.connect(9, peer["portA"], "127.0.0.1", socket=p)
            result: dict[str, Any] = {}
            moved_at: list[int] = []

            async def run_js() -> None:
                result["js"] = await trio.to_thread.run_sync(
                    js, "udx.move", peer["id"], 9, 7, p_port, q_port, size, mode, size // 3, 60_000
                )

            # py-moves: the rest of our data only after the move, so that JS's stream is
            # mid-transfer when it follows (otherwise, when JS's stream is up before our
            # first packets, all 3 MB may be sent before we have a third of JS's data).
            python_moved = trio.Event()

            async def write() -> None:
                if mode == "py-moves":
                    await stream.send_all(ours[: size // 3])
                    await python_moved.wait()
                    await stream.send_all(ours[size // 3 :])
                else:
                    await stream.send_all(ours)
                await stream.send_eof()

            theirs = bytearray()

            async with trio.open_nursery() as n:
                n.start_soon(run_js)
                n.start_soon(write)
                while chunk := await stream.receive_some():
                    theirs += chunk
                    if mode == "py-moves" and not moved_at and len(theirs) >= size // 3:
                        moved_at.append(len(theirs))
                        stream.change_remote(9, peer["portB"], "127.0.0.1", socket=q)
                        python_moved.set()
            await stream.wait_remote_changed()
    got = result["js"]
    assert stream.socket is q and stream.remote_address == ("127.0.0.1", peer["portB"])
    assert hashlib.sha256(theirs).digest() == got["sent"] and len(theirs) == size
    assert got["received"] == hashlib.sha256(ours).digest() and got["receivedBytes"] == size
    assert got["moved"] is not None and got["moved"]["received"] < size  # mid-transfer
    assert got["changed"]  # JS's changeRemote promise resolved
    if mode == "js-moves":
        assert calls[0] == (q, "127.0.0.1", peer["portB"])
    else:
        assert moved_at and moved_at[0] < size
        assert got["moved"]["port"] == q_port
