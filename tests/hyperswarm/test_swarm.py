"""Hyperswarm between Python peers on a local testnet (127.0.0.1): joining a topic, one
connection per pair when both dial at once, leave/unannounce, join_peer, flush, the firewall
and bans, max_peers, a peer that comes back, suspend/resume; and the JS rules the swarm runs
by (priorities, backoff buckets, the duplicate-connection tie-break)."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator

import pytest
import trio

from hyperswarm import testnet
from hyperswarm.hyperdht import HyperDHT
from hyperswarm.swarm import Hyperswarm, PeerInfo
from hyperswarm.swarm.peer_info import (
    HIGH_PRIORITY,
    LOW_PRIORITY,
    NORMAL_PRIORITY,
    VERY_HIGH_PRIORITY,
    VERY_LOW_PRIORITY,
    PeerQueue,
)
from hyperswarm.swarm.retry import RetryTimer

from .swarmpeer import LOCAL, Peer, linked, until, wait_linked


@pytest.fixture
async def net() -> AsyncIterator[testnet.Testnet]:
    async with testnet.Testnet(5) as n:
        yield n


async def test_two_peers_on_a_topic_get_one_connection(net: testnet.Testnet) -> None:
    topic = os.urandom(32)
    a, b = Peer(net.bootstrap_strings()), Peer(net.bootstrap_strings())
    async with a.swarm, b.swarm:
        a.swarm.join(topic)
        b.swarm.join(topic)
        await wait_linked(a, b)
        await trio.sleep(1.0)  # nothing more comes
        assert len(a.swarm.connections) == len(b.swarm.connections) == 1
        assert linked(a, b)
        assert a.swarm.peers[b.key].topics == [topic] or b.swarm.peers[a.key].topics == [topic]
    assert not a.swarm.connections and not b.swarm.connections


async def test_simultaneous_dials_keep_one_connection(net: testnet.Testnet) -> None:
    """Both peers dial each other (join_peer on both sides at once), 10 times: each ends with
    exactly one connection, the same on both sides."""
    for _ in range(10):
        a, b = Peer(net.bootstrap_strings()), Peer(net.bootstrap_strings())
        async with a.swarm, b.swarm:
            await a.swarm.listen()
            await b.swarm.listen()
            a.swarm.join_peer(b.key)
            b.swarm.join_peer(a.key)
            await wait_linked(a, b)
            await trio.sleep(0.5)
            assert len(a.swarm.connections) == len(b.swarm.connections) == 1
            assert linked(a, b)


def test_the_duplicate_rule_picks_the_same_connection_on_both_sides() -> None:
    """The accepting side keeps the new connection exactly when its own key is the smaller
    (the larger key is the expected dialler): both sides then keep the larger key's dial."""
    for _ in range(50):
        ka, kb = os.urandom(32), os.urandom(32)
        # on a: the new (server) connection was dialled by b; on b: by a
        keep_on_a = (ka > kb) is False
        keep_on_b = (kb > ka) is False
        assert keep_on_a != keep_on_b
        dialler_kept = kb if keep_on_a else ka
        assert dialler_kept == max(ka, kb)


async def test_leave_unannounces(net: testnet.Testnet) -> None:
    topic = os.urandom(32)
    a = Peer(net.bootstrap_strings())
    async with a.swarm, HyperDHT(bootstrap=net.bootstrap_strings(), host=LOCAL, port=0) as dht:
        await a.swarm.join(topic, client=False).flushed()
        found = {p.public_key async for r in dht.lookup(topic) for p in r.peers}
        assert a.key in found
        await a.swarm.leave(topic)
        assert a.swarm.status(topic) is None
        found = {p.public_key async for r in dht.lookup(topic) for p in r.peers}
        assert a.key not in found


async def test_join_peer_connects_by_key_and_flush_waits_for_the_dials(
    net: testnet.Testnet,
) -> None:
    topic = os.urandom(32)
    servers = [Peer(net.bootstrap_strings()) for _ in range(3)]
    client = Peer(net.bootstrap_strings())
    async with servers[0].swarm, servers[1].swarm, servers[2].swarm, client.swarm:
        for s in servers:
            await s.swarm.join(topic, client=False).flushed()
        client.swarm.join(topic, server=False)
        assert await client.swarm.flush()
        assert {k for k in client.swarm.peers} >= {s.key for s in servers}
        assert len(client.swarm.connections) == 3
        # by key alone, no topic
        other = Peer(net.bootstrap_strings())
        async with other.swarm:
            await other.swarm.listen()
            client.swarm.join_peer(other.key)
            await wait_linked(client, other)
            assert client.swarm.peers[other.key].explicit
            client.swarm.leave_peer(other.key)
            assert not client.swarm.peers[other.key].explicit


async def test_a_refused_peer_is_banned_and_never_connects(net: testnet.Testnet) -> None:
    topic = os.urandom(32)
    refused: list[bytes] = []
    b = Peer(net.bootstrap_strings())

    def firewall(key: bytes, _payload: object) -> bool:
        refused.append(key)
        return key == b.key

    a = Peer(net.bootstrap_strings(), firewall=firewall)
    async with a.swarm, b.swarm:
        a.swarm.join(topic)
        b.swarm.join(topic)
        await until(lambda: b.key in refused)
        await trio.sleep(2.0)  # retries come and go (backoffs are short here)
        assert not a.open and not b.open
        assert a.swarm.peers[b.key].banned
        assert a.swarm.stats.banned_peers >= 1


async def test_max_peers_caps_the_dials(net: testnet.Testnet) -> None:
    topic = os.urandom(32)
    servers = [Peer(net.bootstrap_strings()) for _ in range(4)]
    client = Peer(net.bootstrap_strings(), max_peers=2)
    async with servers[0].swarm, servers[1].swarm, servers[2].swarm, servers[3].swarm:
        for s in servers:
            await s.swarm.join(topic, client=False).flushed()
        async with client.swarm:
            client.swarm.join(topic, server=False)
            assert await client.swarm.flush()
            await until(lambda: len(client.open) == 2)
            await trio.sleep(1.0)
            assert len(client.swarm.connections) == 2


async def test_a_peer_that_goes_away_and_comes_back_is_reconnected(net: testnet.Testnet) -> None:
    topic = os.urandom(32)
    a = Peer(net.bootstrap_strings())
    async with a.swarm:
        a.swarm.join(topic)
        b = Peer(net.bootstrap_strings(), seed=9)
        async with b.swarm:
            b.swarm.join(topic)
            await wait_linked(a, b)
        await until(lambda: b.key not in a.open)
        # the same peer (same key) again
        b2 = Peer(net.bootstrap_strings(), seed=9)
        async with b2.swarm:
            b2.swarm.join(topic)
            await wait_linked(a, b2)


async def test_suspend_and_resume(net: testnet.Testnet) -> None:
    topic = os.urandom(32)
    a, b = Peer(net.bootstrap_strings()), Peer(net.bootstrap_strings())
    async with a.swarm, b.swarm:
        a.swarm.join(topic)
        b.swarm.join(topic)
        await wait_linked(a, b)
        await a.swarm.suspend()
        assert not a.swarm.connections
        await until(lambda: not b.open)
        await a.swarm.resume()
        await wait_linked(a, b)


async def test_max_parallel_bounds_the_dials_in_flight(net: testnet.Testnet) -> None:
    topic = os.urandom(32)
    servers = [Peer(net.bootstrap_strings()) for _ in range(4)]
    client = Peer(net.bootstrap_strings(), max_parallel=1)
    seen: list[int] = []
    async with servers[0].swarm, servers[1].swarm, servers[2].swarm, servers[3].swarm:
        for s in servers:
            await s.swarm.join(topic, client=False).flushed()
        async with client.swarm:
            discovery = client.swarm.join(topic, server=False)
            assert client.swarm.status(topic) is discovery.discovery
            with trio.fail_after(20):
                while len(client.open) < 4:
                    seen.append(client.swarm.connecting)
                    await trio.sleep(0.001)
            assert max(seen) == 1
            assert client.swarm.stats.client.attempted == 4


async def test_a_swarm_never_dials_itself(net: testnet.Testnet) -> None:
    topic = os.urandom(32)
    a = Peer(net.bootstrap_strings())
    async with a.swarm:
        await a.swarm.join(topic).flushed()
        await a.swarm.join(topic).refresh()
        assert await a.swarm.flush()
        assert not a.swarm.connections and a.key not in a.swarm.peers
        assert a.swarm.stats.client.attempted == 0


async def test_bad_arguments() -> None:
    swarm = Hyperswarm(bootstrap=[], host=LOCAL)
    with pytest.raises(ValueError):
        swarm.join(b"short")
    async with swarm:
        with pytest.raises(ValueError):
            swarm.join(os.urandom(32), server=False, client=False)


# --- the rules, as JS -----------------------------------------------------------------------


def test_priorities_follow_the_attempts() -> None:
    info = PeerInfo(os.urandom(32))
    expected = [NORMAL_PRIORITY, VERY_HIGH_PRIORITY, HIGH_PRIORITY, LOW_PRIORITY]
    for attempts, prio in enumerate(expected):
        info.attempts = attempts
        assert info.update_priority() and info.priority == prio
    info.attempts = 4
    assert not info.update_priority()
    info.explicit = True  # explicit peers come back at low priority
    assert info.update_priority() and info.priority == LOW_PRIORITY
    info.attempts = 0
    info.tried = True
    assert info.update_priority() and info.priority == VERY_LOW_PRIORITY
    info.banned = True
    assert not info.update_priority()


def test_a_connection_that_held_resets_the_attempts() -> None:
    info = PeerInfo(os.urandom(32))
    info.attempts = 2
    info.connected(100.0)
    info.disconnected(120.0)
    assert info.attempts == 1  # reset, then this disconnection counts
    info.connected(200.0)
    info.disconnected(201.0)
    assert info.attempts == 2


def test_backoff_buckets() -> None:
    timer = RetryTimer(lambda batch: None, backoffs=(1, 5, 15, 600), jitter=0)
    s, m, l_, x = timer._s, timer._m, timer._l, timer._x
    info = PeerInfo(os.urandom(32))
    proven = [s, s, m, l_, None]
    unproven = [s, m, l_, l_, None]
    for attempts in range(5):
        info.attempts = attempts
        info.proven = True
        assert timer.select(info) is proven[attempts]
        info.proven = False
        assert timer.select(info) is unproven[attempts]
    info.explicit = True
    assert timer.select(info) is x
    info.banned = True
    assert timer.select(info) is None
    assert [t.interval for t in (s, m, l_, x)] == pytest.approx([0.66, 3.3, 9.9, 396.0])


def test_the_queue_takes_the_highest_priority_first() -> None:
    q = PeerQueue(random.Random(1))
    infos = [PeerInfo(bytes([i]) * 32) for i in range(10)]
    for i, info in enumerate(infos):
        info.priority = i % 5
        q.add(info)
    out = [q.shift() for _ in range(10)]
    assert q.shift() is None and len(q) == 0
    assert [o.priority for o in out if o is not None] == sorted(
        (i % 5 for i in range(10)), reverse=True
    )
