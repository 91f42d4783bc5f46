"""Write tokens of a node (sans-IO): a token stays valid for one rotation of the secrets and
no longer, whatever the token cache holds, and the cache stays bounded."""

from __future__ import annotations

import hashlib
import random

from hyperswarm.dht_rpc import io as io_module
from hyperswarm.dht_rpc.io import DRAIN_INTERVAL, IO, ROTATE_SECRETS
from hyperswarm.dht_rpc.table import RoutingTable
from hyperswarm.dht_rpc.timers import TimerQueue


class _NoTransport:
    def send(self, socket: int, data: bytes, host: str, port: int, ttl: int) -> None:
        raise AssertionError("nothing is sent here")


def _io(timers: TimerQueue) -> IO:
    io = IO(
        RoutingTable(bytes(32)),
        _NoTransport(),
        timers,
        rng=random.Random(7),
        on_request=lambda req, external: None,
        on_response=lambda reply, external: None,
        on_timeout=lambda req: None,
    )
    io.start()
    return io


def _rotate(timers: TimerQueue) -> None:
    """Run the drain timer until the secrets rotate once."""
    timers.advance(timers.now() + DRAIN_INTERVAL * ROTATE_SECRETS)


def _expected(io: IO, host: str, i: int) -> bytes:
    assert io._secrets is not None
    key = io._secrets[i]
    return hashlib.blake2b(host.encode(), digest_size=32, key=key).digest()


def test_a_token_is_valid_for_one_rotation_and_then_not() -> None:
    timers = TimerQueue()
    io = _io(timers)
    token = io.token("10.1.2.3", 1)
    assert io.valid_token("10.1.2.3", token)
    assert not io.valid_token("10.1.2.4", token)
    _rotate(timers)
    assert io.token("10.1.2.3", 1) != token  # a new current secret ...
    assert io.token("10.1.2.3", 0) == token  # ... and the old one is the previous
    assert io.valid_token("10.1.2.3", token)
    _rotate(timers)
    assert not io.valid_token("10.1.2.3", token)
    for host in ("10.1.2.3", "127.0.0.1"):
        for i in (0, 1):
            assert io.token(host, i) == _expected(io, host, i)


def test_the_token_cache_is_bounded() -> None:
    timers = TimerQueue()
    io = _io(timers)
    limit = io_module.TOKEN_CACHE
    hosts = [f"10.0.{i >> 8}.{i & 255}" for i in range(limit + 50)]
    for host in hosts:
        assert io.token(host, 1) == _expected(io, host, 1)
    assert all(len(cache) <= limit for _, cache in io._tokens)
    for host in hosts[:10] + hosts[-10:]:
        assert io.valid_token(host, _expected(io, host, 1))
