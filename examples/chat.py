"""The nickname chat of the tutorial "Making your first Pear app" (part 2), in a terminal.

    python examples/chat.py [TOPIC] [-s DIR] [--nick NAME] [--bootstrap HOST:PORT,...]

Without TOPIC it creates a room and prints its topic; with one it joins that room. Every
line typed is sent to the peers in the room; ``/nick NAME`` changes your nickname,
``/peers`` lists the peers connected, ``/known`` the peers known (by core key, with their
latest nickname), ``/quit`` (or end of input) leaves.

The data model is the tutorial's, so this program chats with the JS app: each peer keeps its
nickname in its own core (``local``, JSON blocks ``{"nickname": ...}``; a new nickname is a
new block), replicates its Corestore over every connection, asks each new peer for its core
key with the RPC method ``getKey`` and remembers it in a Hyperbee (core ``peerCoreKeys``:
the peer's swarm key -> its core key, both binary), and sends chat lines with the RPC method
``message`` (``{"message": ...}`` as JSON bytes). A peer's nickname is read from its core,
so it reaches you through any peer that has it, verified against the owner's key, and a peer
that is offline is still known by its stored core.

``-s DIR`` keeps the store there (as ``pear run -s``): a restart keeps your core key, your
nickname and the peers you knew. Without it the store is a temporary directory.
``--bootstrap`` joins a local testnet (``python -m hyperswarm.testnet``) instead of the
public DHT; with only loopback bootstrap nodes the peer binds to 127.0.0.1 as well.

Output lines (one event per line): ``topic: HEX``, ``core key: HEX``, ``you are NICK``,
``<NICK> message``, ``* KEY joined`` / ``* NICK left``, ``* KEY is NICK``, ``* OLD is now NEW``,
``* known peer: NICK``, ``* peers: N``, and ``! ...`` for problems (bad input, a peer that sent
something wrong), which never stop the chat.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from corestore import Corestore
from hyperbee import Hyperbee
from hypercore import Hypercore
from hyperswarm import Hyperswarm, PeerInfo, SecretStream
from protomux.errors import ProtomuxError
from protomux.rpc import RPC

#: How long a request to a peer may take before it is given up (seconds).
REQUEST_TIMEOUT = 30.0
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def short(key: bytes) -> str:
    return key.hex()[:8]


@dataclass
class PeerCore:
    """A peer's core (its nicknames) and the latest nickname read from it."""

    core: Hypercore
    nickname: str | None = None


@dataclass
class Connected:
    """A peer we are connected to now."""

    rpc: RPC
    core_key: bytes | None = None
    names: list[str] = field(default_factory=list)


class Chat:
    """One chat peer: its store, its nickname core, the cores of the peers it knows."""

    def __init__(self, store: Corestore, out: Callable[[str], None]) -> None:
        self.store = store
        self.out = out
        self.local = store.get("local", value_encoding="json")
        self.peer_core_keys = Hyperbee(
            store.get("peerCoreKeys"), key_encoding="binary", value_encoding="binary"
        )
        self.nickname = ""
        self.known: dict[bytes, PeerCore] = {}  # core key -> its core
        self.connected: dict[bytes, Connected] = {}  # swarm key -> connection
        self.swarm: Hyperswarm | None = None
        self._nursery: trio.Nursery | None = None

    # --- start ------------------------------------------------------------------------------

    async def start(self, nursery: trio.Nursery, nick: str | None) -> None:
        self._nursery = nursery
        await self.local.ready()
        await self.peer_core_keys.ready()
        latest = await self._latest_nickname(self.local)
        if latest is None or (nick is not None and nick != latest):
            latest = nick if nick is not None else f"User {random.randrange(1000)}"
            await self.local.append({"nickname": latest})
        self.nickname = latest
        async for entry in self.peer_core_keys.read():
            self._track_peer_core(bytes(entry.value))
        nursery.start_soon(self._follow_own_core)

    async def _latest_nickname(self, core: Hypercore) -> str | None:
        if core.length == 0:
            return None
        block = await core.get(core.length - 1)
        if not isinstance(block, dict) or not isinstance(block.get("nickname"), str):
            raise ValueError("the latest block holds no nickname")
        nickname: str = block["nickname"]
        return nickname

    async def _follow_own_core(self) -> None:
        seen = self.local.length
        while True:
            if self.local.length == seen:
                await self.local.wait_for_append()
                continue
            seen = self.local.length
            try:
                name = await self._latest_nickname(self.local)
            except ValueError:
                continue
            if name is not None and name != self.nickname:
                self.nickname = name
                self.out(f"you are {name}")

    def _track_peer_core(self, core_key: bytes) -> None:
        if core_key in self.known or core_key == self.local.key:
            return
        peer = self.known[core_key] = PeerCore(self.store.get(key=core_key, value_encoding="json"))
        assert self._nursery is not None
        self._nursery.start_soon(self._follow_peer_core, peer)

    async def _follow_peer_core(self, peer: PeerCore) -> None:
        """Read the peer's latest nickname now and after every append, wherever the blocks
        come from (the peer, or any peer that has them)."""
        core = peer.core
        await core.ready()
        seen = 0
        while True:
            if core.length == seen:
                await core.wait_for_append()
                continue
            seen = core.length
            try:
                name = await self._latest_nickname(core)
            except Exception as exc:  # a block that is not a nickname: say so, go on
                self.out(f"! {short(core.key or b'')}: unreadable nickname block ({exc})")
                continue
            if name is not None and name != peer.nickname:
                old, peer.nickname = peer.nickname, name
                if old is not None:
                    self.out(f"* {old} is now {name}")
                    continue
                remotes = [r for r, c in self.connected.items() if c.core_key == core.key]
                for remote in remotes:
                    self.out(f"* {short(remote)} is {name}")
                if not remotes:
                    self.out(f"* known peer: {name}")

    def name_of(self, remote: bytes) -> str:
        conn = self.connected.get(remote)
        if conn is not None and conn.core_key is not None:
            peer = self.known.get(conn.core_key)
            if peer is not None and peer.nickname is not None:
                return peer.nickname
        return short(remote)

    # --- connections ------------------------------------------------------------------------

    async def on_connection(self, conn: SecretStream, info: PeerInfo) -> None:
        remote = conn.remote_public_key
        mux = self.store.replicate(conn)
        rpc = RPC(mux)
        rpc.respond("getKey", lambda _value: self.local.key)
        rpc.respond("message", lambda value: self._on_message(remote, value))
        entry = self.connected[remote] = Connected(rpc)
        self.out(f"* {short(remote)} joined")
        self._count()
        try:
            stored = await self.peer_core_keys.get(remote)
            if stored is not None:
                entry.core_key = bytes(stored.value)
            else:
                with trio.fail_after(REQUEST_TIMEOUT):
                    answer = await rpc.request("getKey")
                if not isinstance(answer, bytes) or len(answer) != 32:
                    size = len(answer) if isinstance(answer, bytes) else 0
                    self.out(f"! {short(remote)} sent a bad core key ({size} bytes)")
                else:
                    entry.core_key = answer
                    self._track_peer_core(answer)
                    await self.peer_core_keys.put(remote, answer)
            if entry.core_key is not None:
                self._track_peer_core(entry.core_key)
                peer = self.known.get(entry.core_key)
                if peer is not None and peer.nickname is not None:
                    self.out(f"* {short(remote)} is {peer.nickname}")
            await mux.wait_closed()
        except (ProtomuxError, trio.TooSlowError):
            pass  # the connection closed mid-request (a duplicate dropped): normal
        finally:
            name = self.name_of(remote)
            if self.connected.get(remote) is entry:
                del self.connected[remote]
            rpc.destroy()
            self.out(f"* {name} left")
            self._count()

    def _count(self) -> None:
        self.out(f"* peers: {len(self.connected)}")

    def _on_message(self, remote: bytes, value: Any) -> None:
        try:
            message = json.loads(bytes(value or b"").decode("utf-8"))["message"]
            if not isinstance(message, str):
                raise TypeError("not a string")
        except Exception:
            self.out(f"! {self.name_of(remote)} sent a message that is not chat JSON")
            return
        self.out(f"<{self.name_of(remote)}> {message}")

    # --- input ------------------------------------------------------------------------------

    async def handle_line(self, line: str) -> bool:
        """One line of input; False to quit."""
        line = line.rstrip("\r\n")
        if not line.strip():
            return True
        if line.startswith("/"):
            command, _, arg = line[1:].partition(" ")
            if command == "quit":
                return False
            if command == "nick":
                arg = arg.strip()
                if not arg:
                    self.out("! usage: /nick NAME")
                else:
                    await self.local.append({"nickname": arg})
                return True
            if command == "peers":
                names = sorted(self.name_of(k) for k in self.connected)
                self.out(f"* peers: {len(names)}" + (f" ({', '.join(names)})" if names else ""))
                return True
            if command == "known":
                known = sorted(
                    f"{short(key)} ({peer.nickname or '?'})" for key, peer in self.known.items()
                )
                self.out("* known: " + (", ".join(known) if known else "nobody"))
                return True
            self.out(f"! unknown command /{command} (try /nick NAME, /peers, /known, /quit)")
            return True
        self.out(f"<{self.nickname}> {line}")
        await self.send(line)
        return True

    async def send(self, message: str) -> None:
        data = json.dumps({"message": message}).encode()

        async def one(rpc: RPC) -> None:
            with trio.move_on_after(REQUEST_TIMEOUT):
                try:
                    await rpc.request("message", data)
                except ProtomuxError:
                    pass  # that peer is going away

        async with trio.open_nursery() as nursery:
            for conn in list(self.connected.values()):
                nursery.start_soon(one, conn.rpc)


def _bootstrap(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [b.strip() for b in value.split(",") if b.strip()]


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="chat.py", description="The tutorial's nickname chat over Hyperswarm."
    )
    parser.add_argument("topic", nargs="?", help="a room's topic (64 hex); none: a new room")
    parser.add_argument("-s", "--storage", help="the store's directory (default: temporary)")
    parser.add_argument("--nick", help="your nickname (kept in your core)")
    parser.add_argument("--bootstrap", help="DHT bootstrap nodes HOST:PORT,... (a testnet)")
    parser.add_argument("--host", help="the address the DHT node binds to")
    args = parser.parse_args(argv)
    if args.topic is not None:
        try:
            topic = bytes.fromhex(args.topic)
        except ValueError:
            topic = b""
        if len(topic) != 32:
            parser.error("a topic is 64 hex characters")
    return args


async def run(argv: Sequence[str] | None = None) -> None:
    args = _parse(argv)
    bootstrap = _bootstrap(args.bootstrap)
    host = args.host
    if host is None:
        local_only = bootstrap and all(b.rsplit(":", 1)[0] in LOOPBACK for b in bootstrap)
        host = "127.0.0.1" if local_only else "0.0.0.0"

    def out(line: str) -> None:
        print(line, flush=True)

    with tempfile.TemporaryDirectory(prefix="chat-") as tmp:
        storage = args.storage or os.path.join(tmp, "store")
        async with Corestore(storage) as store, trio.open_nursery() as nursery:
            chat = Chat(store, out)
            await chat.start(nursery, args.nick)
            async with Hyperswarm(
                bootstrap=bootstrap, host=host, on_connection=chat.on_connection
            ) as swarm:
                chat.swarm = swarm
                topic = bytes.fromhex(args.topic) if args.topic else os.urandom(32)
                out(f"topic: {topic.hex()}")
                out(f"core key: {(chat.local.key or b'').hex()}")
                out(f"you are {chat.nickname}")
                swarm.join(topic)
                await _read_input(chat)
            nursery.cancel_scope.cancel()


async def _read_input(chat: Chat) -> None:
    stdin = trio.wrap_file(sys.stdin)
    while True:
        line = await stdin.readline()
        if not line:
            return
        if not await chat.handle_line(line):
            return


def main(argv: Sequence[str] | None = None) -> None:
    try:
        trio.run(run, argv)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
