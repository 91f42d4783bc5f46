"""The Python side of each benchmark workload; ``js/bench.js`` holds the JS twins.

A workload is a factory that does its setup and returns the operation to time; the
runner calls that operation ``ops`` times per timed run.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import trio

from hypercore import Hypercore, crypto
from hypercore.crypto import TreeNode
from hypercore.wire import DATA, Data, DataBlock
from hyperswarm import SecretStream
from protomux import encoding as c
from protomux.rpc import RPC

__all__ = ["WORKLOADS", "AsyncFactory", "AsyncOp", "BatchOp", "Op", "Workload"]

Op = Callable[[], object]
"""One operation of a workload."""

# The same inputs as js/bench.js.
BLOCK = bytes(i & 255 for i in range(1024))
SEED = bytes(range(32))
MESSAGE = bytes((i * 7) & 255 for i in range(112))


AsyncOp = Callable[[], Awaitable[object]]
"""One operation of an async workload."""


@runtime_checkable
class BatchOp(Protocol):
    """A workload timed as a whole: ``batch(ops)`` does all ``ops`` operations."""

    async def batch(self, ops: int) -> None: ...


AsyncFactory = Callable[[], AbstractAsyncContextManager["AsyncOp | BatchOp"]]
"""Sets up an async workload (inside ``trio.run``) and tears it down afterwards."""


@dataclass(frozen=True, slots=True)
class Workload:
    """A factory returning the operation to time, and how many operations one run does.

    Async workloads give ``async_factory`` instead of ``factory``: the runner enters it in
    ``trio.run`` and awaits each operation.
    """

    factory: Callable[[], Op] | None
    ops: int
    async_factory: AsyncFactory | None = None


def _proof_nodes() -> tuple[TreeNode, ...]:
    """The sibling path of leaf 2000 (flat-tree index 4000): one node per depth 0..9."""
    nodes = []
    for depth in range(10):
        offset = (2000 >> depth) ^ 1
        index = (2 * offset + 1) * 2**depth - 1
        nodes.append(TreeNode(index, 1024 * 2**depth, bytes([depth + 1]) * 32))
    return tuple(nodes)


def data_message() -> Op:
    msg = Data(request=7, fork=0, block=DataBlock(index=1000, value=BLOCK, nodes=_proof_nodes()))
    return lambda: c.decode(DATA, c.encode(DATA, msg))


def leaf_hash() -> Op:
    return lambda: crypto.data(BLOCK)


def ed25519_sign() -> Op:
    secret_key = crypto.key_pair(SEED).secret_key
    return lambda: crypto.sign(MESSAGE, secret_key)


def ed25519_verify() -> Op:
    public_key, secret_key = crypto.key_pair(SEED)
    signature = crypto.sign(MESSAGE, secret_key)
    if not crypto.verify(MESSAGE, signature, public_key):
        raise AssertionError("bad signature")
    return lambda: crypto.verify(MESSAGE, signature, public_key)


GET_BLOCKS = 100_000


def random_indices(n: int, length: int) -> list[int]:
    """Deterministic pseudo-random block indices (the same sequence as js/bench.js)."""
    out = []
    x = 1
    for _ in range(n):
        x = (x * 1103515245 + 12345) % 2147483648
        out.append(x % length)
    return out


@asynccontextmanager
async def _tmp_core() -> AsyncIterator[Hypercore]:
    with tempfile.TemporaryDirectory(prefix="hypertrio-bench-") as tmp:
        async with Hypercore(Path(tmp), key_pair=crypto.key_pair(SEED)) as core:
            yield core


@asynccontextmanager
async def append_one() -> AsyncIterator[AsyncOp]:
    async with _tmp_core() as core:
        yield lambda: core.append(BLOCK)


@asynccontextmanager
async def append_batch() -> AsyncIterator[AsyncOp]:
    """One op is one block; blocks are appended 1,000 at a time."""
    async with _tmp_core() as core:
        batch = [BLOCK] * 1000
        counter = iter(range(1 << 62))

        async def op() -> object:
            if next(counter) % 1000 == 0:
                return await core.append(batch)
            return None

        yield op


@asynccontextmanager
async def _reopened_core() -> AsyncIterator[Hypercore]:
    with tempfile.TemporaryDirectory(prefix="hypertrio-bench-") as tmp:
        async with Hypercore(Path(tmp), key_pair=crypto.key_pair(SEED)) as writer:
            for i in range(0, GET_BLOCKS, 1000):
                await writer.append([BLOCK] * min(1000, GET_BLOCKS - i))
        async with Hypercore(Path(tmp)) as core:
            yield core


@asynccontextmanager
async def get_sequential() -> AsyncIterator[AsyncOp]:
    async with _reopened_core() as core:
        counter = iter(range(1 << 62))
        yield lambda: core.get(next(counter) % GET_BLOCKS)


@asynccontextmanager
async def get_random() -> AsyncIterator[AsyncOp]:
    async with _reopened_core() as core:
        indices = random_indices(1 << 16, GET_BLOCKS)
        counter = iter(range(1 << 62))
        yield lambda: core.get(indices[next(counter) & 0xFFFF])


@asynccontextmanager
async def _secret_stream_pair() -> AsyncIterator[tuple[SecretStream, SecretStream]]:
    """Two secret-streams joined by a TCP connection on 127.0.0.1, handshake done."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        accepted: list[trio.SocketStream] = []

        async def accept() -> None:
            accepted.append(await listeners[0].accept())

        nursery.start_soon(accept)
        client_tcp = await trio.open_tcp_stream("127.0.0.1", port)
    await listeners[0].aclose()
    a = SecretStream(client_tcp, is_initiator=True, key_pair=crypto.key_pair(SEED))
    b = SecretStream(accepted[0], is_initiator=False)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(a.do_handshake)
        nursery.start_soon(b.do_handshake)
    async with a, b:
        yield a, b


class _SecretStreamThroughput:
    def __init__(self, a: SecretStream, b: SecretStream) -> None:
        self.a, self.b = a, b
        self.message = bytes([7]) * 65536

    async def batch(self, ops: int) -> None:
        async def write() -> None:
            for _ in range(ops):
                await self.a.send(self.message)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(write)
            left = ops * len(self.message)
            while left > 0:
                left -= len(await self.b.receive())


@asynccontextmanager
async def secret_stream_64k() -> AsyncIterator[BatchOp]:
    async with _secret_stream_pair() as (a, b):
        yield _SecretStreamThroughput(a, b)


@asynccontextmanager
async def _rpc_client() -> AsyncIterator[RPC]:
    """An RPC client and an ``echo`` server over :func:`_secret_stream_pair`."""
    async with _secret_stream_pair() as (a, b), RPC(a) as client, RPC(b) as server:
        server.respond("echo", lambda value: value)
        await client.wait_opened()
        yield client


@asynccontextmanager
async def rpc_sequential() -> AsyncIterator[AsyncOp]:
    async with _rpc_client() as client:
        yield lambda: client.request("echo", b"hello")


class _RPCInFlight:
    def __init__(self, client: RPC) -> None:
        self.client = client

    async def batch(self, ops: int) -> None:
        left = [ops]

        async def worker() -> None:
            while left[0] > 0:
                left[0] -= 1
                await self.client.request("echo", b"hello")

        async with trio.open_nursery() as nursery:
            for _ in range(100):
                nursery.start_soon(worker)


@asynccontextmanager
async def rpc_in_flight() -> AsyncIterator[BatchOp]:
    async with _rpc_client() as client:
        yield _RPCInFlight(client)


WORKLOADS: dict[str, Workload] = {
    "data-message-1k": Workload(data_message, 10_000),
    "leaf-hash-1k": Workload(leaf_hash, 200_000),
    "ed25519-sign": Workload(ed25519_sign, 20_000),
    "ed25519-verify": Workload(ed25519_verify, 10_000),
    "hypercore-append-1k": Workload(None, 20_000, append_one),
    "hypercore-append-batch-1k": Workload(None, 200_000, append_batch),
    "hypercore-get-sequential": Workload(None, 50_000, get_sequential),
    "hypercore-get-random": Workload(None, 50_000, get_random),
    "secret-stream-64k": Workload(None, 5_000, secret_stream_64k),
    "rpc-sequential": Workload(None, 5_000, rpc_sequential),
    "rpc-100-in-flight": Workload(None, 10_000, rpc_in_flight),
}
"""Workload name (as ``js/bench.js`` knows it) -> Python workload."""
