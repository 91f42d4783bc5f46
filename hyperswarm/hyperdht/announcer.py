"""Keeping a listening server findable (JS hyperdht ``lib/announcer.js``).

A server announces its peer record (its public key, no relay addresses) to the three nodes
closest to ``H(publicKey)`` that a FIND_PEER query finds; those nodes then relay handshakes to
it. In the background it pings them every 3 s and, after 100 rounds (about five minutes), when
fewer than three of them answer, or on :meth:`Announcer.refresh`, it announces again to
whichever nodes are closest by then and unannounces from the ones it dropped. :meth:`stop`
unannounces from all.

The relays of the last round go into the server's handshake replies (``holepunch.relays``:
each node and the server's address as that node saw it) and, as ``relay_addresses``, into the
handshake payload for clients that reconnect later.
"""

from __future__ import annotations

import trio

from hypercore.crypto import KeyPair
from protomux.encoding import Address

from ..dht_rpc.errors import DHTError
from ..dht_rpc.io import Peer, Reply
from . import messages as m
from .constants import COMMANDS
from .host import ConnectionHost
from .persistent import sign_announce, sign_unannounce

__all__ = ["Announcer"]

#: Relays that must keep answering pings before the announcer looks for new ones.
MIN_ACTIVE = 3
#: Announces go to this many of the closest nodes.
RELAYS = 3
#: Ping rounds between two announce rounds, and the seconds between rounds.
PING_ROUNDS = 100
PING_INTERVAL = 3.0


def _key(addr: Address | Peer) -> str:
    return f"{addr.host}:{addr.port}"


class Announcer:
    """Announces ``key_pair`` under ``target`` (``H(publicKey)``) through ``dht``."""

    def __init__(self, dht: ConnectionHost, key_pair: KeyPair, target: bytes) -> None:
        self.dht = dht
        self.key_pair = key_pair
        self.target = target
        self.record = m.PEER.encode(m.Peer(key_pair.public_key, ()))
        self.relays: list[m.RelayInfo] = []
        self.relay_addresses: list[Address] = []
        self.stopped = False
        self._closest_nodes: list[Peer] | None = None
        # The relays of the last three rounds, newest last (JS keeps the same three maps).
        self._rounds: list[dict[str, Address]] = [{}, {}, {}]
        self._refreshing = False
        self._wake = trio.Event()

    def is_relay(self, addr: Address | Peer) -> bool:
        """Whether ``addr`` held our record in one of the last three rounds."""
        key = _key(addr)
        return any(key in r for r in self._rounds)

    def refresh(self) -> None:
        """Announce again at the end of the current ping round."""
        if not self.stopped:
            self._refreshing = True
            self._wake.set()

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Announce once, report started, then keep the record alive until cancelled."""
        await self.update()
        task_status.started()
        while not self.stopped:
            self._refreshing = False
            for _ in range(PING_ROUNDS):
                if self.stopped or self._refreshing:
                    break
                relays = list(self._rounds[2].values())
                active = await self._ping_all(relays)
                if active < min(len(relays), MIN_ACTIVE):
                    self._refreshing = True  # lost too many: look again now
                    break
                self._wake = trio.Event()
                if self._refreshing or self.stopped:
                    break
                with trio.move_on_after(PING_INTERVAL):
                    await self._wake.wait()
            if not self.stopped:
                await self.update()

    async def _ping_all(self, relays: list[Address]) -> int:
        answered = 0

        async def ping(addr: Address) -> None:
            nonlocal answered
            try:
                await self.dht.ping(addr)
            except DHTError:
                return
            answered += 1

        async with trio.open_nursery() as nursery:
            for addr in relays:
                nursery.start_soon(ping, addr)
        return answered

    async def update(self) -> None:
        """One announce round: find the closest nodes, announce to the best three, drop the
        relays no longer among them."""
        self._cycle()
        try:
            q = self.dht.query(self.target, COMMANDS.FIND_PEER, None, nodes=self._closest_nodes)
        except DHTError:  # the node is closing
            self.stopped = True
            return
        try:
            await q.finished()
        except DHTError:
            pass  # whatever answered is used
        if self.stopped:
            return
        relays: list[m.RelayInfo] = []
        relay_addresses: list[Address] = []
        if not self.dht.firewalled:
            ours = self.dht.remote_address()
            if ours is not None:
                relay_addresses.append(ours)

        async def commit(reply: Reply) -> None:
            if await self._announce(reply):
                if len(relay_addresses) < RELAYS:
                    relay_addresses.append(reply.from_.address)
                relays.append(m.RelayInfo(relay_address=reply.from_.address, peer_address=reply.to))
                self._rounds[2][_key(reply.from_)] = reply.from_.address

        async with trio.open_nursery() as nursery:
            for reply in q.closest_replies[:RELAYS]:
                nursery.start_soon(commit, reply)
        if self.stopped:
            return
        self._closest_nodes = list(q.closest_nodes)
        self.relays = relays
        self.relay_addresses = relay_addresses
        dropped = [a for k, a in self._rounds[1].items() if k not in self._rounds[2]]
        await self._unannounce_all(dropped)

    def _cycle(self) -> None:
        oldest = self._rounds.pop(0)
        oldest.clear()
        self._rounds.append(oldest)

    async def _announce(self, reply: Reply) -> bool:
        if reply.token is None or reply.from_.id is None:
            return False
        ann = m.Announce(m.Peer(self.key_pair.public_key, ()), None, None, 0)
        signature = sign_announce(self.target, reply.token, reply.from_.id, ann, self.key_pair)
        value = m.ANNOUNCE.encode(m.Announce(ann.peer, None, signature, 0))
        try:
            res = await self.dht.request(
                command=COMMANDS.ANNOUNCE,
                to=reply.from_,
                token=reply.token,
                target=self.target,
                value=value,
            )
        except DHTError:
            return False
        return res.error == 0

    async def stop(self) -> None:
        """Stop refreshing and unannounce from every current relay."""
        self.stopped = True
        self._wake.set()
        await self._unannounce_all(list(self._rounds[2].values()))

    async def _unannounce_all(self, relays: list[Address]) -> None:
        async with trio.open_nursery() as nursery:
            for addr in relays:
                nursery.start_soon(self._unannounce, addr)

    async def _unannounce(self, to: Address) -> None:
        try:
            res = await self.dht.request(
                command=COMMANDS.FIND_PEER, to=to, target=self.target, value=None
            )
            if res.token is None or res.from_.id is None or not res.value:
                return
            unann = m.Announce(m.Peer(self.key_pair.public_key, ()), None, None, 0)
            signature = sign_unannounce(self.target, res.token, res.from_.id, unann, self.key_pair)
            await self.dht.request(
                command=COMMANDS.UNANNOUNCE,
                to=to,
                token=res.token,
                target=self.target,
                value=m.ANNOUNCE.encode(m.Announce(unann.peer, None, signature, 0)),
            )
        except DHTError:
            pass
