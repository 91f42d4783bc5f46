"""examples/chat.py as a user runs it: two chat processes on a local testnet, driven through
their stdin and stdout (messages both ways, /nick, /peers, bad input, a 100 KB message, a
restart that keeps the core key, the nickname and the peers known), and a bad peer that
answers getKey with 5 bytes and sends messages that are not chat JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import trio

from hyperswarm import Hyperswarm, PeerInfo, SecretStream, testnet
from protomux.rpc import RPC

from .chatproc import ChatProcess, LocalTestnet

LOCAL = "127.0.0.1"


async def test_two_chats_talk(tmp_path: Path) -> None:
    """The README's recipe: a testnet from the command line and two chats joined to it."""
    net = LocalTestnet(5)
    boot = await net.start()
    try:
        await _two_chats(tmp_path, boot)
    finally:
        await net.stop()


async def _two_chats(tmp_path: Path, boot: list[str]) -> None:
    async with trio.open_nursery() as nursery:
        alice = ChatProcess("python", tmp_path / "alice", boot, nick="alice")
        await alice.start(nursery)
        await alice.expect(r"topic: [0-9a-f]{64}")
        topic = alice.value("topic: ")
        bob = ChatProcess("python", tmp_path / "bob", boot, topic=topic, nick="bob")
        await bob.start(nursery)
        await alice.expect(r"\* [0-9a-f]{8} is bob")
        await bob.expect(r"\* [0-9a-f]{8} is alice")
        await alice.expect(r"\* peers: 1")

        await alice.say("hello bob")
        await bob.expect(r"<alice> hello bob")
        await bob.say("hi alice")
        await alice.expect(r"<bob> hi alice")

        await bob.say("/nick robert")
        await bob.expect(r"you are robert")
        await alice.expect(r"\* bob is now robert")

        mark = len(alice.lines)
        await alice.say("/frobnicate")
        await alice.say("")
        await alice.say("   ")
        await alice.say("/nick")
        await alice.expect(r"! unknown command /frobnicate .*", since=mark)
        await alice.expect(r"! usage: /nick NAME", since=mark)
        await alice.say("/peers")
        await alice.expect(r"\* peers: 1 \(robert\)", since=mark)

        big = "x" * 100_000
        await alice.say(big)
        await bob.expect(lambda line: line == f"<alice> {big}")
        await bob.say("still here")
        await alice.expect(r"<robert> still here")
        # nothing but the lines above came from the bad input
        assert not [line for line in alice.lines[mark:] if "Traceback" in line]

        # a restart keeps the core key, the nickname and the peers known
        key = bob.value("core key: ")
        await bob.quit()
        await alice.expect(r"\* robert left")
        mark = len(alice.lines)
        bob2 = ChatProcess("python", tmp_path / "bob", boot, topic=topic)
        await bob2.start(nursery)
        await alice.expect(r"\* [0-9a-f]{8} is robert", since=mark)
        await bob2.expect(r"you are robert")
        assert bob2.value("core key: ") == key
        await bob2.say("/known")  # from storage, before any getKey
        await bob2.expect(rf"\* known: {alice.value('core key: ')[:8]} .*")
        await bob2.expect(r"\* ([0-9a-f]{8} is|known peer:) alice")
        await bob2.say("back")
        await alice.expect(r"<robert> back")
        await bob2.quit()
        await alice.quit()


async def test_a_bad_peer_gets_a_clear_line_and_the_chat_goes_on(tmp_path: Path) -> None:
    topic = os.urandom(32)
    said: list[str] = []

    async def bad(conn: SecretStream, _info: PeerInfo) -> None:
        async with RPC(conn) as rpc:
            rpc.respond("getKey", lambda _v: b"short")
            rpc.respond("message", lambda v: said.append(bytes(v or b"").decode()))
            await rpc.request("message", b"this is { not json")
            await rpc.request("message", json.dumps({"message": 42}).encode())
            await rpc.request("message", json.dumps({"message": "fine"}).encode())
            await rpc.wait_closed()

    async with testnet.Testnet(5) as net, trio.open_nursery() as nursery:
        boot = net.bootstrap_strings()
        alice = ChatProcess("python", tmp_path / "alice", boot, topic=topic.hex(), nick="alice")
        await alice.start(nursery)
        bob = ChatProcess("python", tmp_path / "bob", boot, topic=topic.hex(), nick="bob")
        await bob.start(nursery)
        await alice.expect(r"\* [0-9a-f]{8} is bob")
        async with Hyperswarm(bootstrap=boot, host=LOCAL, on_connection=bad) as swarm:
            swarm.join(topic)
            await alice.expect(r"! [0-9a-f]{8} sent a bad core key \(5 bytes\)")
            await alice.expect(r"! [0-9a-f]{8} sent a message that is not chat JSON")
            await alice.expect(r"<[0-9a-f]{8}> fine")
            await bob.expect(r"! [0-9a-f]{8} sent a bad core key \(5 bytes\)")
            await alice.say("after the bad peer")
            await bob.expect(r"<alice> after the bad peer")
            with trio.fail_after(10):
                while not any("after the bad peer" in s for s in said):
                    await trio.sleep(0.05)
        await alice.expect(r"\* peers: 1", since=len(alice.lines) - 3)
        await bob.say("bob too")
        await alice.expect(r"<bob> bob too")
        await alice.quit()
        await bob.quit()
