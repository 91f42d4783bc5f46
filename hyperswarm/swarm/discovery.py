"""One topic of a swarm: announcing on it, looking it up, and doing both again from time to
time (JS ``hyperswarm/lib/peer-discovery.js``).

Every :meth:`Hyperswarm.join` of a topic makes a :class:`PeerDiscoverySession`; the sessions
of a topic share one :class:`PeerDiscovery`, which announces while any session is a server
and reports the peers it finds while any session is a client. A round (announce or lookup)
runs again every 10 minutes plus up to 2 minutes of jitter. Unlike JS, a client round that
found nobody is repeated early (after 1 s, doubling up to the normal interval): two peers
that join at the same moment often miss each other in their first round, and JS would then
wait for its 10-minute refresh (the packets are the same lookups, only sooner)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any, Protocol

import trio

from ..hyperdht.dht import LookupReply
from ..hyperdht.messages import Peer
from .errors import SwarmError

__all__ = [
    "EMPTY_REFRESH_FIRST",
    "RANDOM_JITTER",
    "REFRESH_INTERVAL",
    "DiscoveryHost",
    "PeerDiscovery",
    "PeerDiscoverySession",
]

#: Seconds between announce/lookup rounds, plus up to RANDOM_JITTER more (JS).
REFRESH_INTERVAL = 600.0
RANDOM_JITTER = 120.0
#: After a client round that found no peer, the next comes this soon (then twice as late).
EMPTY_REFRESH_FIRST = 1.0
#: At most this many discovered keys are remembered for ``limit``.
MAX_DISCOVERY_CACHE = 64


class DiscoveryHost(Protocol):
    """What a discovery needs of its swarm."""

    rng: random.Random

    @property
    def dht(self) -> Any: ...  # a HyperDHT: announce, lookup, lookup_and_unannounce, unannounce

    @property
    def key_pair(self) -> Any: ...

    @property
    def nursery(self) -> trio.Nursery: ...

    @property
    def relay_addresses(self) -> list[Any]: ...

    async def listen(self) -> None: ...

    def is_connected(self, public_key: bytes) -> bool: ...

    async def leave(self, topic: bytes) -> None: ...


class _Round:
    """One refresh in progress: its end and whether it went through."""

    def __init__(self) -> None:
        self.done = trio.Event()
        self.ok = True


class PeerDiscovery:
    """Announces and/or looks up one topic for a swarm (see the module docs)."""

    def __init__(
        self,
        swarm: DiscoveryHost,
        topic: bytes,
        *,
        on_peer: Callable[[Peer], None],
        limit: float = math.inf,
        wait: trio.Event | None = None,
        suspended: bool = False,
    ) -> None:
        self.swarm = swarm
        self.topic = topic
        self.limit = limit
        self.is_client = False
        self.is_server = False
        self.destroyed = False
        self.suspended = suspended
        self.sessions: list[PeerDiscoverySession] = []
        self.client_sessions = 0
        self.server_sessions = 0
        self.refreshes = 0  # rounds started
        self._on_peer = on_peer
        self._wait = wait
        self._discovered: set[bytes] = set()
        self._active: Any = None  # the QueryIterator of the round in progress
        self._current: _Round | None = None
        self._timer: trio.CancelScope | None = None
        self._first_announce = True
        self._needs_unannounce = False
        self._empty_delay = EMPTY_REFRESH_FIRST
        self._destroying: trio.Event | None = None

    def session(
        self, *, server: bool = True, client: bool = True, limit: float = math.inf
    ) -> PeerDiscoverySession:
        if self.destroyed:
            raise SwarmError("the discovery is destroyed")
        session = PeerDiscoverySession(self)
        self.sessions.append(session)
        session._set(server=server, client=client, limit=limit)
        self._start_refresh()
        return session

    def _active_now(self) -> bool:
        return not self.destroyed and not self.suspended

    # --- rounds -----------------------------------------------------------------------------

    def _start_refresh(self) -> _Round | None:
        """Start a round unless one in the same mode runs; the round (None: none runs)."""
        if self.destroyed or self.suspended:
            return None
        server = self.server_sessions > 0
        client = self.client_sessions > 0
        if server == self.is_server and client == self.is_client:
            if self._current is not None:
                return self._current
        else:
            if self._active is not None:
                self._active.destroy()
            self.is_server = server
            self.is_client = client
        current = self._current = _Round()
        self.swarm.nursery.start_soon(self._run_round, current)
        return current

    async def refresh(self) -> bool:
        """Run a round now (or wait for the one running); False if it failed."""
        if self.destroyed:
            raise SwarmError("the discovery is destroyed")
        current = self._start_refresh()
        if current is None:
            await trio.lowlevel.checkpoint()
            return True
        await current.done.wait()
        return current.ok

    async def _run_round(self, current: _Round) -> None:
        try:
            await self._refresh()
        except Exception:  # a failed round (no nodes, a destroyed query): the next may work
            current.ok = False
        finally:
            if self._current is current:
                self._current = None
            current.done.set()

    async def _refresh(self) -> None:
        if self.suspended:
            return
        self.refreshes += 1
        clock = self.refreshes
        if self._wait is not None:
            await self._wait.wait()
            self._wait = None
            if clock != self.refreshes or not self._active_now():
                return
        clear = self.is_server and self._first_announce
        if clear:
            self._first_announce = False
        if self.is_server:
            await self.swarm.listen()
            if clock != self.refreshes or not self._active_now():
                return
            self._needs_unannounce = True

        limit = self.limit
        if limit < math.inf and limit > 0:
            for key in self._discovered:
                if self.swarm.is_connected(key):
                    limit -= 1
                    if limit == 0:
                        break
        self._discovered.clear()

        dht = self.swarm.dht
        announcing = self.is_server
        if announcing:
            query = dht.announce(
                self.topic, self.swarm.key_pair, self.swarm.relay_addresses, clear=clear
            )
        elif self._needs_unannounce:
            query = dht.lookup_and_unannounce(self.topic, self.swarm.key_pair)
        else:
            query = dht.lookup(self.topic)
        self._active = query
        found = 0
        own = self.swarm.key_pair.public_key
        try:
            reply: LookupReply
            async for reply in query:
                if not self.is_client or not self._active_now():
                    continue
                for peer in reply.peers:
                    if peer.public_key != own:
                        found += 1
                    if limit < math.inf:
                        if len(self._discovered) < MAX_DISCOVERY_CACHE:
                            self._discovered.add(peer.public_key)
                        if limit == 0:
                            continue
                        if not self.swarm.is_connected(peer.public_key):
                            limit -= 1
                    self._on_peer(peer)
        except Exception:
            if self._active_now():
                raise
        finally:
            if self._active is query:
                self._active = None
                if self._active_now():
                    self._refresh_later(self.is_client and found == 0)
        if clock != self.refreshes:
            return
        if not announcing:
            self._needs_unannounce = False

    def _refresh_later(self, empty: bool) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if empty:
            delay = self._empty_delay
            self._empty_delay = min(self._empty_delay * 2, REFRESH_INTERVAL)
        else:
            self._empty_delay = EMPTY_REFRESH_FIRST
            delay = REFRESH_INTERVAL + RANDOM_JITTER * self.swarm.rng.random()
        scope = self._timer = trio.CancelScope()
        self.swarm.nursery.start_soon(self._later, scope, delay)

    async def _later(self, scope: trio.CancelScope, delay: float) -> None:
        with scope:
            await trio.sleep(delay)
            if self._timer is scope:
                self._timer = None
            if self._active_now():
                self._start_refresh()

    async def flushed(self) -> bool:
        """Wait for the round in progress; False if it failed."""
        if self.is_server:
            await self.swarm.listen()
        else:
            await trio.lowlevel.checkpoint()
        current = self._current
        if current is None:
            return True
        await current.done.wait()
        return current.ok

    # --- ending -----------------------------------------------------------------------------

    async def _destroy_maybe(self) -> None:
        if self.destroyed:
            return
        try:
            if not self.sessions:
                await self.swarm.leave(self.topic)
            elif self.server_sessions == 0 and self._needs_unannounce:
                await self.refresh()
        except Exception:  # tearing down: the network may be gone
            pass

    async def destroy(self) -> None:
        """Stop the rounds and unannounce (once; later calls wait for the first)."""
        if self._destroying is not None:
            await self._destroying.wait()
            return
        self._destroying = trio.Event()
        self.destroyed = True
        try:
            await self._abort()
        finally:
            self._destroying.set()

    async def _abort(self) -> None:
        if self._wait is not None:
            await self._wait.wait()
        if self._active is not None:
            self._active.destroy()
            self._active = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        current = self._current
        if current is not None:
            await current.done.wait()
        if self._active_now():
            return
        if self._needs_unannounce:
            try:
                with trio.move_on_after(10):
                    await self.swarm.dht.unannounce(self.topic, self.swarm.key_pair)
            except Exception:  # best effort, as JS: the records expire anyway
                pass
            self._needs_unannounce = False

    async def suspend(self) -> None:
        if self.suspended:
            await trio.lowlevel.checkpoint()
            return
        self.suspended = True
        await self._abort()

    def resume(self) -> None:
        if not self.suspended:
            return
        self.suspended = False
        self._start_refresh()


class PeerDiscoverySession:
    """What :meth:`Hyperswarm.join` returns: one joiner's interest in a topic."""

    def __init__(self, discovery: PeerDiscovery) -> None:
        self.discovery = discovery
        self.is_client = False
        self.is_server = False
        self.destroyed = False

    @property
    def topic(self) -> bytes:
        return self.discovery.topic

    def _set(self, *, server: bool, client: bool, limit: float) -> None:
        if not client and not server:
            raise ValueError("a join needs client=True or server=True")
        d = self.discovery
        if client != self.is_client:
            self.is_client = client
            d.client_sessions += 1 if client else -1
        if server != self.is_server:
            self.is_server = server
            d.server_sessions += 1 if server else -1
        d.limit = limit

    async def refresh(
        self,
        *,
        client: bool | None = None,
        server: bool | None = None,
        limit: float = math.inf,
    ) -> bool:
        """Announce/look up again now, switching roles if asked; False if the round
        failed."""
        if self.destroyed:
            raise SwarmError("the discovery is destroyed")
        self._set(
            server=self.is_server if server is None else server,
            client=self.is_client if client is None else client,
            limit=limit,
        )
        return await self.discovery.refresh()

    async def flushed(self) -> bool:
        """Wait until the topic's current announce/lookup round is done."""
        return await self.discovery.flushed()

    async def destroy(self) -> None:
        """Leave the topic for this session (the topic is left once no session is on it)."""
        if self.destroyed:
            await trio.lowlevel.checkpoint()
            return
        self.destroyed = True
        d = self.discovery
        if self.is_client:
            d.client_sessions -= 1
        if self.is_server:
            d.server_sessions -= 1
        if self in d.sessions:
            d.sessions.remove(self)
        await d._destroy_maybe()
