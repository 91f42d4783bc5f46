"""examples/chat.py and the headless JS tutorial app (tests/interop/js/chat.js: same data
model and RPC as the tutorial's app.js) in one room on a JS testnet: messages and /nick
changes both ways, restarts that keep core keys and known peers (one peer quits, the other is
killed with SIGKILL; each kind of peer is killed in one of the two runs), and the tutorial's
verifiable relay: C met B once; later B changes its nickname while connected only to A and
goes offline; C, connected only to A, shows B's new nickname, fetched from A and verified
against B's key. The relay runs with C in Python (A, B in JS) and with A in Python relaying
between JS peers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.chatproc import ChatProcess

from .jsenv import JSHelper, require_node


async def call(js: JSHelper, name: str, *args: Any) -> Any:
    with trio.fail_after(60):
        return await trio.to_thread.run_sync(js, name, *args)


@pytest.fixture
async def bootstrap(js: JSHelper) -> AsyncIterator[list[str]]:
    info = await call(js, "dhtnet.testnet", 5)
    try:
        yield [f"{b['host']}:{b['port']}" for b in info["bootstrap"]]
    finally:
        await call(js, "dhtnet.testnetDestroy", info["handle"])


def chat(kind: str, storage: Path, boot: list[str], **opts: Any) -> ChatProcess:
    node, _ = require_node()
    return ChatProcess(kind, storage, boot, node=node, **opts)


async def restart(
    nursery: trio.Nursery,
    peer: ChatProcess,
    other: ChatProcess,
    nick: str,
    other_nick: str,
    storage: Path,
    boot: list[str],
    topic: str,
    *,
    kill: bool = False,
) -> ChatProcess:
    """Quit (or kill) ``peer`` and start it again on its storage: it keeps its core key, its
    nickname and the peers it knew (listed from storage before any getKey), and the other
    side connects to it again (a killed peer's old connection is replaced as JS does)."""
    key = peer.value("core key: ")
    mark = len(other.lines)
    if kill:
        peer.kill()
    else:
        await peer.quit()
        await other.expect(rf"\* {nick} left")
        mark = len(other.lines)
    again = chat(peer.kind, storage, boot, topic=topic)
    await again.start(nursery)
    await again.expect(rf"you are {nick}")
    assert again.value("core key: ") == key
    await again.say("/known")
    await again.expect(rf"\* known: {other.value('core key: ')[:8]} .*")
    await again.expect(rf"\* ([0-9a-f]{{8}} is|known peer:) {other_nick}")
    await other.expect(rf"\* [0-9a-f]{{8}} is {nick}", since=mark)
    await again.say("back again")
    await other.expect(rf"<{nick}> back again", since=mark)
    return again


@pytest.mark.parametrize("first", ["python", "js"])
async def test_python_and_js_chat_in_one_room(
    bootstrap: list[str], tmp_path: Path, first: str
) -> None:
    second = "js" if first == "python" else "python"
    async with trio.open_nursery() as nursery:
        a = chat(first, tmp_path / "a", bootstrap, nick="ann")
        await a.start(nursery)
        await a.expect(r"topic: [0-9a-f]{64}")
        topic = a.value("topic: ")
        b = chat(second, tmp_path / "b", bootstrap, topic=topic, nick="ben")
        await b.start(nursery)
        await a.expect(r"\* [0-9a-f]{8} is ben")
        await b.expect(r"\* [0-9a-f]{8} is ann")

        await a.say("hello ben")
        await b.expect(r"<ann> hello ben")
        await b.say("hello ann")
        await a.expect(r"<ben> hello ann")
        await a.say("/nick annie")
        await b.expect(r"\* ann is now annie")
        await b.say("/nick benjamin")
        await a.expect(r"\* ben is now benjamin")
        await a.say("x" * 100_000)
        await b.expect(lambda line: line == "<annie> " + "x" * 100_000)

        # each side restarts with its storage: same core key, nickname and known peer
        b = await restart(nursery, b, a, "benjamin", "annie", tmp_path / "b", bootstrap, topic)
        a = await restart(
            nursery, a, b, "annie", "benjamin", tmp_path / "a", bootstrap, topic, kill=True
        )
        await a.quit()
        await b.quit()


@pytest.mark.parametrize(
    "kinds",
    [
        pytest.param({"a": "js", "b": "js", "c": "python"}, id="C-python"),
        pytest.param({"a": "python", "b": "js", "c": "js"}, id="A-python-relays"),
    ],
)
async def test_a_nickname_reaches_c_through_a_verified(
    bootstrap: list[str], tmp_path: Path, kinds: dict[str, str]
) -> None:
    async with trio.open_nursery() as nursery:
        a = chat(kinds["a"], tmp_path / "a", bootstrap, nick="amy")
        await a.start(nursery)
        await a.expect(r"topic: [0-9a-f]{64}")
        topic = a.value("topic: ")
        b = chat(kinds["b"], tmp_path / "b", bootstrap, topic=topic, nick="bea")
        c = chat(kinds["c"], tmp_path / "c", bootstrap, topic=topic, nick="cal")
        await b.start(nursery)
        await c.start(nursery)
        # everyone meets everyone once
        for peer, others in ((a, ("bea", "cal")), (b, ("amy", "cal")), (c, ("amy", "bea"))):
            for name in others:
                await peer.expect(rf"\* [0-9a-f]{{8}} is {name}", timeout=45)
        await c.quit()
        await a.expect(r"\* cal left")
        await b.expect(r"\* cal left")

        # B changes its nickname while only A is there, then goes offline
        await b.say("/nick beatrix")
        await a.expect(r"\* bea is now beatrix")
        await b.quit()
        await a.expect(r"\* beatrix left")

        # C comes back: only A is online; B's new nickname comes from A's copy of B's core
        c2 = chat(kinds["c"], tmp_path / "c", bootstrap, topic=topic)
        await c2.start(nursery)
        await c2.expect(r"\* known peer: bea")
        await c2.expect(r"\* [0-9a-f]{8} is amy")
        await c2.expect(r"\* bea is now beatrix", timeout=45)
        await c2.say("/peers")
        await c2.expect(r"\* peers: 1 \(amy\)")
        await c2.quit()
        await a.quit()
