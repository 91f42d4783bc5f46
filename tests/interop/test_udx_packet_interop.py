"""hyperswarm.udx.packet against udx-native 1.21.3: two udx-native streams talk through a UDP
relay of ours on 127.0.0.1 that records every datagram. Each one decodes, re-encodes to the
same bytes, and the recorded exchange has the shapes libudx is known to send (REFERENCE.md
section 12): a stream message, DATA packets numbered from 0 without gaps, END, acks."""

from __future__ import annotations

from typing import Any

import trio

from hyperswarm.udx import UDXSocket
from hyperswarm.udx.packet import DATA, END, HEADER_SIZE, HEARTBEAT, MESSAGE, SACK, decode, encode

from .jsenv import JSHelper

A, B = 0x11111111, 0x22222222


async def _relay(
    sock: trio.socket.SocketType, ports: dict[str, int], log: list[tuple[str, bytes]]
) -> None:
    while True:
        data, (_, port) = await sock.recvfrom(65536)
        direction = "a->b" if port == ports["a"] else "b->a"
        log.append((direction, data))
        target = ports["b"] if direction == "a->b" else ports["a"]
        await sock.sendto(data, ("127.0.0.1", target))


async def test_udx_native_packets_decode_and_reencode(js: JSHelper) -> None:
    pair = js("udx.bind")
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await sock.bind(("127.0.0.1", 0))
    log: list[tuple[str, bytes]] = []
    size = 200_000
    async with trio.open_nursery() as n:
        n.start_soon(_relay, sock, {"a": pair["portA"], "b": pair["portB"]}, log)
        with trio.fail_after(30):
            got: Any = await trio.to_thread.run_sync(
                js, "udx.transfer", pair["id"], sock.getsockname()[1], size, 20000
            )
        n.cancel_scope.cancel()
    sock.close()
    assert got["sent"] == got["received"] and got["messages"] == [b"dgram"]

    packets = [(d, raw, decode(raw)) for d, raw in log]
    assert len(packets) > size // 1200
    data_seqs = []
    for direction, raw, p in packets:
        assert p.stream_id == (B if direction == "a->b" else A)
        if p.type & SACK:
            assert p.payload == b"" and raw[3] == 0  # libudx: blocks fill the rest, no data
            assert all(s < e for s, e in p.sacks)
        else:
            assert encode(p) == raw
        if direction == "a->b" and p.type & (DATA | END):
            data_seqs.append(p.seq)
    assert any(p.type == MESSAGE and p.payload == b"dgram" for _, _, p in packets)
    # Every packet of A's data has its own seq, from 0 on (retransmits repeat one).
    assert sorted(set(data_seqs)) == list(range(len(set(data_seqs))))
    ends = [p for d, _, p in packets if d == "a->b" and p.type & END]
    assert ends and ends[-1].seq == max(data_seqs)
    delivered = sum(
        len(p.payload)
        for d, _, p in {
            (d, p.seq): (d, r, p) for d, r, p in packets if d == "a->b" and p.type & DATA
        }.values()
    )
    assert delivered == size
    assert all(len(raw) - HEADER_SIZE <= 1500 for _, raw, _ in packets)


async def test_keepalive_heartbeats_are_answered_both_ways(js: JSHelper) -> None:
    """Idle streams with keepalives on both ends (every 50 ms) through the recording relay:
    each side sends heartbeats and the other answers each with an ack."""
    peer = js("udx.open")
    relay = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await relay.bind(("127.0.0.1", 0))
    log: list[tuple[str, bytes]] = []
    with trio.fail_after(30):
        async with UDXSocket() as sock, trio.open_nursery() as n:
            await sock.bind(0, "127.0.0.1")
            # "a" is udx-native, "b" is us
            n.start_soon(_relay, relay, {"a": peer["port"], "b": sock.address()[1]}, log)
            stream = sock.create_stream(B)
            stream.connect(A, relay.getsockname()[1], "127.0.0.1")
            stream.set_keepalive(0.05)
            done = trio.Event()

            async def run_js() -> None:
                await trio.to_thread.run_sync(
                    js, "udx.idle", peer["id"], A, B, relay.getsockname()[1], 50, 800
                )
                done.set()

            n.start_soon(run_js)
            assert await stream.receive_some() == b""  # JS ends after its idle time
            await stream.send_eof()
            await done.wait()
            n.cancel_scope.cancel()
    relay.close()
    packets = [(d, decode(raw)) for d, raw in log]
    for sender, answerer in (("a->b", "b->a"), ("b->a", "a->b")):
        beats = [i for i, (d, p) in enumerate(packets) if d == sender and p.type == HEARTBEAT]
        assert len(beats) >= 8, sender
        # The other side's next packet after each heartbeat (its own heartbeats aside) is an
        # ack.
        for i in beats:
            answer = next(
                (p for d, p in packets[i + 1 :] if d == answerer and p.type != HEARTBEAT), None
            )
            assert answer is not None and answer.type & (DATA | END) == 0 and not answer.payload
