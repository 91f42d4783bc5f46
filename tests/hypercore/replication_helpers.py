"""Helpers for the replication tests: connected secret-stream pairs, block sets, waiting."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import trio
import trio.testing

from hypercore import Hypercore, crypto, wire
from hypercore.replication import PROTOCOL, Peer
from hypercore.storage import MemoryStorage
from hyperswarm import SecretStream
from protomux import Protomux
from protomux.encoding import Codec

TRANSPORTS = ("memory", "tcp")


def make_blocks(n: int, seed: int = 0, start: int = 0) -> list[bytes]:
    """``n`` deterministic blocks of varying size (1 .. ~1.5 KB)."""
    out = []
    for i in range(start, start + n):
        digest = hashlib.blake2b(f"{seed}:{i}".encode()).digest()
        size = (i * 7919 + seed) % 1500 + 1
        out.append((digest * (size // len(digest) + 1))[:size])
    return out


async def _raw_pair(transport: str) -> tuple[trio.abc.Stream, trio.abc.Stream]:
    if transport == "memory":
        return trio.testing.memory_stream_pair()
    if transport == "lockstep":
        return trio.testing.lockstep_stream_pair()
    if transport == "tcp":
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        listener = listeners[0]
        try:
            port = listener.socket.getsockname()[1]
            accepted: list[trio.SocketStream] = []

            async def accept() -> None:
                accepted.append(await listener.accept())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(accept)
                client = await trio.open_tcp_stream("127.0.0.1", port)
            return client, accepted[0]
        finally:
            await listener.aclose()
    raise ValueError(f"unknown transport {transport!r}")


@asynccontextmanager
async def secret_pair(
    transport: str = "memory",
) -> AsyncIterator[tuple[SecretStream, SecretStream]]:
    """Two entered SecretStreams connected over ``transport`` (initiator first)."""
    a, b = await _raw_pair(transport)
    sa = SecretStream(a, is_initiator=True)
    sb = SecretStream(b, is_initiator=False)
    # Both ends need the handshake at once; the streams themselves must be entered and left
    # by this task, so the handshake runs concurrently first.
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sa.do_handshake)
        nursery.start_soon(sb.do_handshake)
    async with sa, sb:
        yield sa, sb


async def open_core(stack: AsyncExitStack, key: bytes | None = None, **kw: Any) -> Hypercore:
    """A core on a fresh MemoryStorage, entered on ``stack``."""
    return await stack.enter_async_context(Hypercore(MemoryStorage(), key, **kw))


async def connect(
    stack: AsyncExitStack, x: Hypercore, y: Hypercore, transport: str = "memory"
) -> tuple[SecretStream, SecretStream]:
    """Replicate ``x`` (initiator) and ``y`` over a new stream pair; returns the streams."""
    sa, sb = await stack.enter_async_context(secret_pair(transport))
    x.replicate(sa)
    y.replicate(sb)
    return sa, sb


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]], interval: float = 0.002
) -> None:
    """Poll ``predicate`` (sync or async) until it is true; bound it with fail_after."""
    while True:
        r = predicate()
        if inspect.isawaitable(r):
            r = await r
        if r:
            return
        await trio.sleep(interval)


def peer_on(core: Hypercore, stream: SecretStream) -> Peer | None:
    """The peer of ``core`` replicating over ``stream`` (this core's end of it)."""
    for p in core.peers:
        if p.stream is stream:
            return p
    return None


async def wait_peer(core: Hypercore, stream: SecretStream) -> Peer:
    await wait_until(lambda: peer_on(core, stream) is not None)
    p = peer_on(core, stream)
    assert p is not None
    return p


class Recorder:
    """Records the calls of one event of a core."""

    def __init__(self, core: Hypercore, event: str) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.changed = trio.Event()
        core.on(event, self._cb)

    def _cb(self, *args: Any) -> None:
        self.calls.append(args)
        self.changed.set()
        self.changed = trio.Event()

    def __len__(self) -> int:
        return len(self.calls)

    async def wait_count(self, n: int) -> None:
        while len(self.calls) < n:
            await self.changed.wait()


async def mirror(stack: AsyncExitStack, source: Hypercore, transport: str = "memory") -> Hypercore:
    """A new core that has downloaded every block of ``source`` (still connected to it)."""
    m = await open_core(stack, source.key)
    _, sm = await connect(stack, source, m, transport)
    await wait_peer(m, sm)
    await m.update()
    assert m.length == source.length
    await m.download(0, source.length).done()
    return m


class PausableStream:
    """A SecretStream whose reading can be stopped (a peer that does not read) and resumed."""

    def __init__(self, inner: SecretStream) -> None:
        self.inner = inner
        self.reading = True

    @property
    def is_initiator(self) -> bool:
        return self.inner.is_initiator

    @property
    def handshake_hash(self) -> bytes:
        return self.inner.handshake_hash

    @property
    def remote_public_key(self) -> bytes:
        return self.inner.remote_public_key

    async def send(self, value: bytes, /) -> None:
        await self.inner.send(value)

    async def receive(self) -> bytes:
        while not self.reading:
            await trio.sleep(0.01)
        data = await self.inner.receive()
        while not self.reading:  # what arrives once it stopped waits too
            await trio.sleep(0.01)
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()


class RawPeer:
    """A hand-made ``hypercore/alpha`` channel (no Replicator behind it): sends what the
    test tells it to, records what it gets."""

    def __init__(self, mux: Protomux, stream: PausableStream | SecretStream) -> None:
        self.mux = mux
        self.stream = stream
        self.received: list[tuple[str, Any]] = []
        self.closed = trio.Event()

    def open(self, key: bytes | None, capability_key: bytes | None = None) -> None:
        assert key is not None
        ch = self.mux.create_channel(
            PROTOCOL,
            crypto.discovery_key(key),
            handshake=wire.HANDSHAKE,
            on_close=lambda is_remote, channel: self.closed.set(),
        )
        assert ch is not None
        self.channel = ch
        names = ["sync", "request", "cancel", "data", "no_data", "want", "unwant"]
        names += ["bitfield", "range", "extension"]
        codecs: list[Codec[Any]] = [wire.SYNC, wire.REQUEST, wire.CANCEL, wire.DATA]
        codecs += [wire.NO_DATA, wire.WANT]
        codecs += [wire.UNWANT, wire.BITFIELD, wire.RANGE, wire.EXTENSION]
        self.messages: dict[str, Any] = {}
        for name, codec in zip(names, codecs, strict=True):
            self.messages[name] = ch.add_message(codec, self._recorder(name))
        cap = crypto.replicate_capability(
            self.stream.is_initiator,
            key if capability_key is None else capability_key,
            self.stream.handshake_hash,
        )
        ch.open(wire.Handshake(seeks=True, capability=cap))

    def _recorder(self, name: str) -> Callable[[Any, Any], None]:
        def record(value: Any, channel: Any) -> None:
            self.received.append((name, value))

        return record

    def send(self, name: str, value: Any) -> bool:
        return bool(self.messages[name].send(value))


async def raw_peer_of(
    stack: AsyncExitStack, core: Hypercore, transport: str = "lockstep"
) -> tuple[RawPeer, PausableStream]:
    """``core`` replicating with a RawPeer over a new stream pair (not opened yet)."""
    s_core, s_raw = await stack.enter_async_context(secret_pair(transport))
    core.replicate(s_core)
    raw = PausableStream(s_raw)
    mux = await stack.enter_async_context(Protomux(raw))
    return RawPeer(mux, raw), raw
