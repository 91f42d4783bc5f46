"""A Python swarm peer for the swarm tests (here and in the interop tests): it says hello on
each connection and records who it met and what it heard."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import trio

from hyperswarm.secret_stream import SecretStream
from hyperswarm.swarm import Hyperswarm, PeerInfo

LOCAL = "127.0.0.1"
#: Short backoffs (S, M, L, X seconds) so that retries happen within a test.
FAST = (0.2, 0.4, 0.6, 1.0)


class Peer:
    """A swarm whose handler says hello and records each connection and what it hears."""

    def __init__(self, bootstrap: list[str], seed: int | None = None, **opts: Any) -> None:
        self.seed = bytes([seed]) * 32 if seed is not None else os.urandom(32)
        self.seen: list[tuple[bytes, bytes]] = []  # (remote key, handshake hash)
        self.heard: dict[bytes, list[bytes]] = {}
        self.open: dict[bytes, SecretStream] = {}
        opts.setdefault("backoffs", FAST)
        opts.setdefault("jitter", 0.0)
        self.swarm = Hyperswarm(
            bootstrap=bootstrap,
            host=LOCAL,
            seed=self.seed,
            on_connection=self.handle,
            **opts,
        )

    @property
    def key(self) -> bytes:
        return self.swarm.key_pair.public_key

    async def handle(self, conn: SecretStream, info: PeerInfo) -> None:
        remote = conn.remote_public_key
        assert info.public_key == remote
        self.seen.append((remote, conn.handshake_hash))
        self.open[remote] = conn
        try:
            await conn.send(b"hello " + self.key.hex().encode())
            async for message in conn:
                self.heard.setdefault(remote, []).append(message)
        finally:
            if self.open.get(remote) is conn:
                del self.open[remote]

    def greeted_by(self, other: Peer) -> bool:
        return self.greeted_by_key(other.key)

    def greeted_by_key(self, key: bytes) -> bool:
        return b"hello " + key.hex().encode() in self.heard.get(key, [])


async def until(cond: Callable[[], bool], timeout: float = 20.0, step: float = 0.02) -> None:
    with trio.fail_after(timeout):
        while not cond():
            await trio.sleep(step)


def linked(a: Peer, b: Peer) -> bool:
    ca, cb = a.open.get(b.key), b.open.get(a.key)
    return (
        ca is not None
        and cb is not None
        and ca.handshake_hash == cb.handshake_hash
        and a.greeted_by(b)
        and b.greeted_by(a)
    )


async def wait_linked(a: Peer, b: Peer, timeout: float = 20.0) -> None:
    await until(lambda: linked(a, b), timeout)
