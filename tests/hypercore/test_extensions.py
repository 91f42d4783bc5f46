"""Replication extensions (Hypercore.register_extension), Python to Python."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from typing import Any

import pytest
import trio

from hypercore import Hypercore, wire
from hypercore.replication import Peer
from protomux import encoding as c

from .replication_helpers import (
    RawPeer,
    connect,
    make_blocks,
    open_core,
    raw_peer_of,
    wait_peer,
    wait_until,
)
from .test_replication import assert_same_core


class Inbox:
    def __init__(self) -> None:
        self.got: list[tuple[Any, Peer]] = []

    def __call__(self, message: Any, peer: Peer) -> None:
        self.got.append((message, peer))

    @property
    def messages(self) -> list[Any]:
        return [m for m, _ in self.got]


async def pair(stack: AsyncExitStack) -> tuple[Hypercore, Hypercore, Peer, Peer]:
    writer = await open_core(stack)
    await writer.append([b"a", b"b"])
    reader = await open_core(stack, writer.key)
    sa, sb = await connect(stack, writer, reader)
    return writer, reader, await wait_peer(writer, sa), await wait_peer(reader, sb)


async def test_send_and_broadcast_both_ways_with_encodings() -> None:
    with trio.fail_after(5):
        async with AsyncExitStack() as stack:
            writer, reader, w_peer, r_peer = await pair(stack)
            w_in, r_in = Inbox(), Inbox()
            # Default encoding: compact-encoding buffer (length-prefixed), as in JS.
            w_ext = writer.register_extension("bin", on_message=w_in)
            r_ext = reader.register_extension("bin", on_message=r_in)
            w_ext.send(b"hello", w_peer)
            r_ext.broadcast(b"hi back")
            await wait_until(lambda: r_in.got and w_in.got)
            assert r_in.messages == [b"hello"] and r_in.got[0][1] is r_peer
            assert w_in.messages == [b"hi back"] and w_in.got[0][1] is w_peer

            w_json, r_json = Inbox(), Inbox()
            writer.register_extension("j", encoding="json", on_message=w_json)
            rj = reader.register_extension("j", encoding="json", on_message=r_json)
            rj.send({"a": [1, 2]}, r_peer)
            writer.register_extension("u", encoding=c.uint)
            ru = reader.register_extension("u", encoding=c.uint, on_message=r_in)
            await wait_until(lambda: w_json.got)
            assert w_json.messages == [{"a": [1, 2]}]
            wu = writer.register_extension("u", encoding=c.uint)
            wu.send(300, w_peer)
            await wait_until(lambda: 300 in r_in.messages)
            assert ru is reader.register_extension("u", encoding=c.uint, on_message=r_in)


async def test_reregister_updates_and_destroy_stops_delivery() -> None:
    with trio.fail_after(5):
        async with AsyncExitStack() as stack:
            writer, reader, w_peer, _ = await pair(stack)
            first, second = Inbox(), Inbox()
            ext = reader.register_extension("x", on_message=first)
            again = reader.register_extension("x", encoding="utf-8", on_message=second)
            assert again is ext
            sender = writer.register_extension("x", encoding="utf-8")
            sender.send("one", w_peer)
            await wait_until(lambda: second.got)
            assert first.got == [] and second.messages == ["one"]
            ext.destroy()
            sender.send("two", w_peer)
            ping = writer.register_extension("ping", encoding="utf-8")
            pong = Inbox()
            reader.register_extension("ping", encoding="utf-8", on_message=pong)
            ping.send("after", w_peer)  # delivered in order after "two"
            await wait_until(lambda: pong.got)
            assert second.messages == ["one"]


async def test_extension_closes_with_its_session_and_reaches_later_peers() -> None:
    with trio.fail_after(5):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append([b"x"])
            session = writer.session()
            got = Inbox()
            ext = session.register_extension("early", encoding="utf-8", on_message=got)
            reader = await open_core(stack, writer.key)
            sa, sb = await connect(stack, writer, reader)
            r_peer = await wait_peer(reader, sb)
            await wait_peer(writer, sa)
            sender = reader.register_extension("early", encoding="utf-8")
            sender.send("to an extension registered before the peer came", r_peer)
            await wait_until(lambda: got.got)
            await session.aclose()
            assert ext.destroyed
            sender.send("nobody listens", r_peer)
            still = Inbox()
            writer.register_extension("other", encoding="utf-8", on_message=still)
            reader.register_extension("other", encoding="utf-8").broadcast("later")
            await wait_until(lambda: still.got)
            assert len(got.got) == 1


async def test_names_are_compressed_on_the_wire() -> None:
    """A name equal to the last one sent on that channel travels as ''; the receiver reads
    '' as the last name it got."""
    with trio.fail_after(5):
        async with AsyncExitStack() as stack:
            core = await open_core(stack)
            raw, _ = await raw_peer_of(stack, core, "memory")
            raw.open(core.key)
            await raw.channel.wait_opened()
            await wait_until(lambda: len(core.peers) == 1)
            peer = core.peers[0]
            a, b = Inbox(), Inbox()
            ext_a = core.register_extension("a", on_message=a)
            ext_b = core.register_extension("b", on_message=b)
            for ext, msg in [(ext_a, b"1"), (ext_a, b"2"), (ext_b, b"3"), (ext_a, b"4")]:
                ext.send(msg, peer)
            await wait_until(lambda: len(_sent(raw)) == 4)
            assert [(m.name, c.decode(c.buffer, m.message)) for m in _sent(raw)] == [
                ("a", b"1"),
                ("", b"2"),
                ("b", b"3"),
                ("a", b"4"),
            ]
            for name, msg in [("b", b"5"), ("", b"6"), ("a", b"7"), ("", b"8"), ("zz", b"9")]:
                raw.send("extension", wire.Extension(name=name, message=c.encode(c.buffer, msg)))
            await wait_until(lambda: len(a.got) == 2)
            assert b.messages == [b"5", b"6"] and a.messages == [b"7", b"8"]


def _sent(raw: RawPeer) -> list[wire.Extension]:
    return [v for name, v in raw.received if name == "extension"]


@pytest.mark.parametrize("fault", ["undecodable", "raising"])
async def test_bad_messages_and_failing_callbacks_do_not_stop_replication(
    fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    blocks = make_blocks(50, seed=31)
    with trio.fail_after(5):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(blocks)
            reader = await open_core(stack, writer.key)
            sa, sb = await connect(stack, writer, reader)
            w_peer = await wait_peer(writer, sa)
            await wait_peer(reader, sb)
            calls: list[Any] = []

            def callback(message: Any, peer: Peer) -> None:
                calls.append(message)
                raise RuntimeError("the application failed")

            reader.register_extension("e", encoding="json", on_message=callback)
            sender = writer.register_extension("e", encoding="utf-8")
            with caplog.at_level(logging.WARNING, logger="hypercore.replicator"):
                sender.send("{not json" if fault == "undecodable" else '{"ok": 1}', w_peer)
                await reader.update()
                await reader.download(0, 50).done()
                await wait_until(lambda: "extension 'e'" in caplog.text)
            assert calls == ([] if fault == "undecodable" else [{"ok": 1}])
            await assert_same_core(reader, writer)
            assert len(reader.peers) == 1
