"""Hole punching through NATs (JS hyperdht ``lib/holepuncher.js`` and ``lib/socket-pool.js``).

Each side of a connection attempt that needs a punch opens a *punch socket* of its own (a
new UDP socket of the node, sharing its UDX stream table) and samples its NAT from it
(:mod:`.nat`). The two sides then tell each other their NAT kind and addresses through DHT
relays (PEER_HOLEPUNCH, see :mod:`.connect` and :mod:`.server`) and start sending one-byte
datagrams (``0x00``) at each other:

* both consistent (or open): each side sends to the other's addresses once a second, ten
  times (the server waits a second first); addresses the other side has not proved are only
  tried every fourth round;
* we are consistent, they are random: we send to random ports of their host every 20 ms,
  for about 35 s;
* we are random, they are consistent: we open up to 256 punch sockets and send from each to
  their proved address, first with a short time to live (5 hops: enough to open our NAT,
  too short to reach theirs), then from all of them in turn every 20 ms, for about 35 s.
  One of our mappings meets one of their random probes (the birthday strategy);
* both random: no punch can work (the connect code refuses it earlier).

The first punch datagram the client gets on any of its sockets wins: its stream connects
through that socket to where the datagram came from, and the other sockets close. The
server answers each punch it gets with a punch from the same socket; its stream connects
when the client's first UDX packet arrives. A released socket closes as soon as no stream
runs on it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from protomux.encoding import Address

from ..dht_rpc.errors import DHTError
from .constants import FIREWALL
from .nat import Nat

if TYPE_CHECKING:
    from ..dht_rpc.io import Session
    from ..udx import UDXSocket
    from .host import ConnectionHost

__all__ = [
    "BIRTHDAY_SOCKETS",
    "HOLEPUNCH",
    "HOLEPUNCH_TTL",
    "Holepuncher",
    "PunchSocket",
    "Sleeper",
    "coerce_firewall",
    "random_punch_blocked",
]

BIRTHDAY_SOCKETS = 256
HOLEPUNCH = b"\x00"
#: The time to live of punches meant to open our own NAT only.
HOLEPUNCH_TTL = 5
MAX_REOPENS = 3
#: Rounds of the consistent probe (one a second) and of the random ones (one per 20 ms).
CONSISTENT_TRIES = 10
RANDOM_TRIES = 1750

OnConnect = Callable[["UDXSocket", str, int], None]


def coerce_firewall(fw: int) -> int:
    """OPEN counts as CONSISTENT when choosing how to punch."""
    return FIREWALL.CONSISTENT if fw == FIREWALL.OPEN else fw


def random_punch_blocked(host: ConnectionHost) -> bool:
    """Whether a punch against a random NAT must wait: the node allows one at a time, and
    one per ``random_punch_interval`` ms (JS's limiter, both sides)."""
    return (
        host.random_punches >= host.random_punch_limit
        or trio.current_time() * 1000 - host.last_random_punch < host.random_punch_interval
    )


def random_port(rng: random.Random) -> int:
    return rng.randrange(1000, 65536)


class Sleeper:
    """A pause that :meth:`resume` cuts short (the punch loops stop at once on connect)."""

    def __init__(self) -> None:
        self._wake = trio.Event()

    async def pause(self, ms: float) -> None:
        self._wake = trio.Event()
        with trio.move_on_after(ms / 1000):
            await self._wake.wait()

    def resume(self) -> None:
        self._wake.set()


class PunchSocket:
    """One punch socket of a node (JS ``SocketRef``): ``number`` is how the node's RPC layer
    knows it; one-byte datagrams go to :attr:`on_holepunch`."""

    def __init__(self, host: ConnectionHost) -> None:
        self.host = host
        self.number = -1
        self.socket: UDXSocket | None = None
        self.on_holepunch: Callable[[Address, PunchSocket], None] | None = None
        self.released = False

    async def open(self) -> None:
        def on_small(_data: bytes, addr: Address) -> None:
            if self.on_holepunch is not None:
                self.on_holepunch(addr, self)

        self.number, self.socket = await self.host.open_socket(on_small)
        if self.released:  # released while it opened
            self.released = False
            self.release()

    def release(self) -> None:
        """Done with it: it closes now, or once the stream running on it ends."""
        if self.released:
            return
        self.released = True
        self.on_holepunch = None
        if self.socket is not None:
            self.host.release_socket(self.number)


async def send_punch(socket: UDXSocket | None, addr: Address, ttl: int | None = None) -> None:
    """One punch datagram (never fails: a closed socket or a bad address sends nothing)."""
    if socket is None or socket.closed or not 0 < addr.port < 65536:
        await trio.lowlevel.checkpoint()
        return
    try:
        await socket.send(HOLEPUNCH, addr.port, addr.host, ttl=ttl)
    except (ValueError, OSError):
        await trio.lowlevel.checkpoint()


class _RemoteAddress:
    __slots__ = ("host", "port", "verified")

    def __init__(self, host: str, port: int, verified: bool) -> None:
        self.host = host
        self.port = port
        self.verified = verified

    @property
    def address(self) -> Address:
        return Address(self.host, self.port)


class Holepuncher:
    """One side's hole punching for one connection attempt (see the module docstring).
    Made by :meth:`open`; ``on_connect(socket, host, port)`` fires on the client when a punch
    gets through, ``on_abort()`` when the punching ends without one."""

    def __init__(
        self,
        host: ConnectionHost,
        session: Session,
        is_initiator: bool,
        remote_firewall: int = FIREWALL.UNKNOWN,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.host = host
        self.session = session
        self.is_initiator = is_initiator
        self.on_connect: OnConnect | None = None
        self.on_abort: Callable[[], None] | None = None
        self.punching = False
        self.connected = False
        self.destroyed = False
        #: Set once it connected or gave up.
        self.ended = trio.Event()
        self.randomized = False
        self.remote_firewall = remote_firewall
        self.remote_addresses: list[_RemoteAddress] = []
        self.remote_holepunching = False
        self._rng = rng or random.Random()
        self._sleeper = Sleeper()
        self._reopening: trio.Event | None = None
        self._reopen_result = False
        self._punch_started: trio.Event | None = None
        self._punch_result = False
        self._holders: list[PunchSocket] = []
        self._holder = PunchSocket(host)
        self.nat = Nat(host, session, None)

    @classmethod
    async def open(
        cls,
        host: ConnectionHost,
        session: Session,
        is_initiator: bool,
        remote_firewall: int = FIREWALL.UNKNOWN,
    ) -> Holepuncher:
        """A puncher with its first punch socket open and its NAT sampling under way."""
        p = cls(host, session, is_initiator, remote_firewall)
        await p._holder.open()
        p._add(p._holder)
        p.nat = Nat(host, session, p._holder.socket)
        p.nat.auto_sample()
        return p

    @property
    def socket(self) -> UDXSocket | None:
        return self._holder.socket

    @property
    def socket_number(self) -> int:
        return self._holder.number

    @property
    def sockets(self) -> int:
        """Punch sockets held now."""
        return len(self._holders)

    def _add(self, ref: PunchSocket) -> PunchSocket:
        self._holders.append(ref)
        ref.on_holepunch = self._on_holepunch
        return ref

    # --- what the other side said -----------------------------------------------------------

    def update_remote(
        self,
        *,
        punching: bool,
        firewall: int,
        addresses: tuple[Address, ...] | list[Address] | None,
        verified: str | None,
    ) -> None:
        remote: list[_RemoteAddress] = []
        for addr in addresses or ():
            ok = verified == addr.host or self._is_verified(addr.host)
            remote.append(_RemoteAddress(addr.host, addr.port, ok))
        self.remote_firewall = firewall
        self.remote_addresses = remote
        self.remote_holepunching = punching

    def _is_verified(self, host: str) -> bool:
        return any(a.verified and a.host == host for a in self.remote_addresses)

    # --- punches ----------------------------------------------------------------------------

    async def ping(self, addr: Address, socket: UDXSocket | None = None) -> None:
        await send_punch(socket or self.socket, addr)

    async def open_session(self, addr: Address, socket: UDXSocket | None = None) -> None:
        """A short-lived punch: opens our NAT towards ``addr`` without reaching theirs."""
        await send_punch(socket or self.socket, addr, HOLEPUNCH_TTL)

    def _on_holepunch(self, addr: Address, ref: PunchSocket) -> None:
        if not self.is_initiator:
            # answer from the same socket, so the client's NAT lets our stream in
            if ref.socket is not None and not ref.socket.closed:
                try:
                    ref.socket.try_send(HOLEPUNCH, addr.port, addr.host)
                except (ValueError, OSError):
                    pass
            return
        if self.connected:
            return
        self.connected = True
        self.punching = False
        self.ended.set()
        self._sleeper.resume()
        for r in self._holders:
            if r is not ref:
                r.release()
        self._holders = [ref]
        self._holder = ref
        self._decrement_randomized()
        sock = ref.socket
        if self.on_connect is not None and sock is not None:
            self.on_connect(sock, addr.host, addr.port)

    # --- analysis ---------------------------------------------------------------------------

    async def analyze(self, allow_reopen: bool) -> bool:
        """Wait for the NAT verdict; False when it cannot punch (unknown, or random against
        a random remote), after up to :data:`MAX_REOPENS` fresh sockets if allowed."""
        await self.nat.analyzing.wait()
        if not self._unstable():
            return True
        if not allow_reopen:
            return False
        if self._reopening is None:
            self._reopening = trio.Event()
            try:
                self._reopen_result = await self._reopen()
            finally:
                self._reopening.set()
        else:
            await self._reopening.wait()
        return self._reopen_result

    def _unstable(self) -> bool:
        fw = self.nat.firewall
        return (
            self.remote_firewall >= FIREWALL.RANDOM and fw >= FIREWALL.RANDOM
        ) or fw == FIREWALL.UNKNOWN

    async def _reset(self) -> None:
        prev = self._holder
        fresh = PunchSocket(self.host)
        try:
            await fresh.open()
        except (OSError, DHTError):
            self.destroy()
            return
        if self._done():
            fresh.release()
            return
        self._holders.remove(prev)
        self._holder = self._add(fresh)
        prev.release()
        self.nat.destroy()
        self.nat = Nat(self.host, self.session, fresh.socket)
        self.nat.auto_sample()

    async def _reopen(self) -> bool:
        i = 0
        while self._unstable() and i < MAX_REOPENS and not self._done() and not self.punching:
            i += 1
            await self._reset()
            await self.nat.analyzing.wait()
        return coerce_firewall(self.nat.firewall) == FIREWALL.CONSISTENT

    def _done(self) -> bool:
        return self.destroyed or self.connected

    # --- punching ---------------------------------------------------------------------------

    async def punch(self) -> bool:
        """Start punching (once; later calls get the first answer): False when the pair of
        NATs cannot be punched with what we know."""
        if self._punch_started is not None:
            await self._punch_started.wait()
            return self._punch_result
        self._punch_started = trio.Event()
        try:
            self._punch_result = await self._punch()
        finally:
            self._punch_started.set()
        return self._punch_result

    async def _punch(self) -> bool:
        if self._done() or not self.remote_addresses:
            return False
        self.punching = True
        local = coerce_firewall(self.nat.firewall)
        remote = coerce_firewall(self.remote_firewall)
        verified = next((a for a in self.remote_addresses if a.verified), None)
        nursery = self.host.nursery
        if local == FIREWALL.CONSISTENT and remote == FIREWALL.CONSISTENT:
            self.host.punches["consistent"] += 1
            nursery.start_soon(self._consistent_probe)
            return True
        if verified is None:
            return False
        if local == FIREWALL.CONSISTENT and remote >= FIREWALL.RANDOM:
            self.host.punches["random"] += 1
            self._increment_randomized()
            nursery.start_soon(self._random_probes, verified.address)
            return True
        if local >= FIREWALL.RANDOM and remote == FIREWALL.CONSISTENT:
            self.host.punches["random"] += 1
            self._increment_randomized()
            await self._open_birthday_sockets(verified.address)
            if self.punching:
                nursery.start_soon(self._keep_alive_random_nat, verified.address)
            return True
        return False

    async def _consistent_probe(self) -> None:
        if not self.is_initiator:
            await self._sleeper.pause(1000)  # the server's fast-open ping just went out
        tries = 0
        while self.punching and tries < CONSISTENT_TRIES:
            tries += 1
            for addr in list(self.remote_addresses):
                if not addr.verified and (tries & 3) != 0:
                    continue
                await send_punch(self.socket, addr.address)
            if self.punching:
                await self._sleeper.pause(1000)
        self._auto_destroy()

    async def _random_probes(self, remote: Address) -> None:
        tries = RANDOM_TRIES
        while self.punching and tries > 0:
            tries -= 1
            await send_punch(self.socket, Address(remote.host, random_port(self._rng)))
            if self.punching:
                await self._sleeper.pause(20)
        self._auto_destroy()

    async def _keep_alive_random_nat(self, remote: Address) -> None:
        i = 0
        low_ttl_rounds = 1
        await self._sleeper.pause(100)
        tries = RANDOM_TRIES
        while self.punching and tries > 0:
            tries -= 1
            if i >= len(self._holders):
                i = 0
                if low_ttl_rounds > 0:
                    low_ttl_rounds -= 1
            if not self._holders:
                break
            ref = self._holders[i]
            i += 1
            await send_punch(ref.socket, remote, HOLEPUNCH_TTL if low_ttl_rounds > 0 else None)
            if self.punching:
                await self._sleeper.pause(20)
        self._auto_destroy()

    async def _open_birthday_sockets(self, remote: Address) -> None:
        while self.punching and len(self._holders) < BIRTHDAY_SOCKETS:
            ref = PunchSocket(self.host)
            try:
                await ref.open()
            except (OSError, DHTError):
                break  # out of ports or descriptors, or closing: punch with what we have
            if not self.punching:
                ref.release()
                break
            self._add(ref)
            await send_punch(ref.socket, remote, HOLEPUNCH_TTL)

    def _auto_destroy(self) -> None:
        if not self.connected:
            self.destroy()

    def _increment_randomized(self) -> None:
        if not self.randomized:
            self.randomized = True
            self.host.random_punches += 1

    def _decrement_randomized(self) -> None:
        if self.randomized:
            self.host.last_random_punch = trio.current_time() * 1000
            self.randomized = False
            self.host.random_punches -= 1

    def destroy(self) -> None:
        """Stop punching and release every socket (the one a stream runs on closes with
        the stream); ``on_abort`` fires if no punch got through."""
        if self.destroyed:
            return
        self.destroyed = True
        self.punching = False
        self.ended.set()
        self._sleeper.resume()
        for ref in self._holders:
            ref.release()
        self._holders = []
        if not self._holder.released and self._holder.socket is None:
            self._holder.release()  # (still opening)
        self.nat.destroy()
        if not self.connected:
            self._decrement_randomized()
            if self.on_abort is not None:
                self.on_abort()
