"""Routing of PEER_HANDSHAKE and PEER_HOLEPUNCH (JS hyperdht ``lib/router.js``), sans-IO.

A node that holds a server's self-announce (a :class:`RouterEntry`: the address the server
announced from, and its peer record) relays connection attempts for it: a client's
handshake (FROM_CLIENT) goes to the server as FROM_RELAY with the client's address; the
server's answer (FROM_SERVER, a *request* packet with the client's tid) goes back to the
client as the REPLY to its original request. Holepunch messages take the same path.

A node that is itself the server (an entry with ``on_handshake``/``on_holepunch``) answers
instead of relaying. Those hooks belong to the server side of connections; this module only
routes.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from protomux.encoding import Address

from ..dht_rpc.io import IncomingRequest
from . import messages as m
from .cache import Cache
from .errors import HyperDHTDecodeError

__all__ = [
    "FROM_CLIENT",
    "FROM_RELAY",
    "FROM_SECOND_RELAY",
    "FROM_SERVER",
    "REPLY",
    "HandshakeReply",
    "HolepunchReply",
    "Router",
    "RouterEntry",
]

FROM_CLIENT = 0
FROM_SERVER = 1
FROM_RELAY = 2
FROM_SECOND_RELAY = 3
REPLY = 4


@dataclass(frozen=True, slots=True)
class HandshakeReply:
    """A server's answer to a handshake: the noise reply and the socket to send it from."""

    noise: bytes
    socket: int | None = None


@dataclass(frozen=True, slots=True)
class HolepunchReply:
    payload: bytes
    socket: int | None = None


#: ``on_handshake(noise, peer_address, req)``: a server's hook; None means silence. A hook
#: that must wait (for a punch socket, a NAT verdict) returns an awaitable of its answer.
HandshakeHook = Callable[
    [bytes, Address | None, IncomingRequest],
    HandshakeReply | Awaitable[HandshakeReply | None] | None,
]
HolepunchHook = Callable[
    [int, bytes, Address, IncomingRequest],
    HolepunchReply | Awaitable[HolepunchReply | None] | None,
]
T = TypeVar("T")

#: Runs an answer that must wait in a task of the node.
Spawn = Callable[[Callable[[], Awaitable[None]]], None]


@dataclass(slots=True)
class RouterEntry:
    """What a node knows of one announced server: where it announced from, its record."""

    relay: Address | None
    record: bytes
    on_handshake: HandshakeHook | None = None
    on_holepunch: HolepunchHook | None = None


class Router:
    """The relay entries of one node, bounded as JS (``max_size`` entries, ``max_age`` ms);
    a local server's entry is retained while it listens."""

    def __init__(
        self,
        *,
        max_size: int = 65536,
        max_age: float = 20 * 60 * 1000,
        spawn: Spawn | None = None,
    ) -> None:
        self.forwards: Cache[bytes, RouterEntry] = Cache(max_size=max_size, max_age=max_age)
        self.relayed = 0  # PEER_HANDSHAKE/PEER_HOLEPUNCH messages forwarded for others
        self.spawn = spawn

    def set(self, target: bytes, entry: RouterEntry) -> None:
        if entry.on_handshake is not None:
            self.forwards.retain(target, entry)
        else:
            self.forwards.set(target, entry)

    def get(self, target: bytes) -> RouterEntry | None:
        return self.forwards.get(target)

    def delete(self, target: bytes) -> None:
        self.forwards.delete(target)

    def gc(self, now: float) -> None:
        self.forwards.gc(now)

    # --- handshakes -----------------------------------------------------------------------------

    def on_peer_handshake(self, req: IncomingRequest) -> None:
        if not req.value:
            return
        try:
            hs = m.HANDSHAKE.decode(req.value)
        except HyperDHTDecodeError:
            return
        entry = self.get(req.target) if req.target is not None else None
        relay = entry.relay if entry is not None else None
        if entry is not None and entry.on_handshake is not None:
            self._serve_handshake(req, hs, entry.on_handshake)
            return
        frm = req.from_.address
        if hs.mode == FROM_CLIENT:
            if not hs.noise:
                return
            dest = hs.relay_address or relay
            if dest is None:
                # no route known here: the closer nodes help the client on
                req.reply(None, token=False, closer_nodes=True)
                return
            self.relayed += 1
            req.relay(
                m.HANDSHAKE.encode(m.Handshake(FROM_RELAY, hs.noise, frm, None)),
                dest,
            )
        elif hs.mode == FROM_RELAY:
            if relay is None or not hs.noise:
                return
            self.relayed += 1
            req.relay(
                m.HANDSHAKE.encode(m.Handshake(FROM_SECOND_RELAY, hs.noise, hs.peer_address, frm)),
                relay,
            )
        elif hs.mode == FROM_SERVER:
            if hs.peer_address is None or not hs.noise:
                return
            self.relayed += 1
            req.reply(
                m.HANDSHAKE.encode(m.Handshake(REPLY, hs.noise, frm, None)),
                to=hs.peer_address,
                token=False,
                closer_nodes=False,
            )

    def _serve_handshake(self, req: IncomingRequest, hs: m.Handshake, hook: HandshakeHook) -> None:
        if not hs.noise:
            return
        answer = hook(hs.noise, hs.peer_address, req)
        self._when_ready(answer, lambda reply: self._answer_handshake(req, hs, reply))

    def _when_ready(self, answer: T | Awaitable[T], send: Callable[[T], None]) -> None:
        """``send(answer)`` now, or once it is ready if the hook must wait for it."""
        if not inspect.isawaitable(answer):
            send(answer)
            return
        pending = answer

        async def later() -> None:
            send(await pending)

        if self.spawn is not None:
            self.spawn(later)

    def _answer_handshake(
        self, req: IncomingRequest, hs: m.Handshake, reply: HandshakeReply | None
    ) -> None:
        if reply is None or not reply.noise:
            return
        if hs.mode == FROM_CLIENT:
            req.reply(
                m.HANDSHAKE.encode(m.Handshake(REPLY, reply.noise, None, None)),
                socket=reply.socket,
                token=False,
                closer_nodes=False,
            )
        elif hs.mode == FROM_RELAY:
            self.relayed += 1
            req.relay(
                m.HANDSHAKE.encode(m.Handshake(FROM_SERVER, reply.noise, hs.peer_address, None)),
                req.from_.address,
                socket=reply.socket,
            )
        elif hs.mode == FROM_SECOND_RELAY:
            if hs.relay_address is None:
                return
            self.relayed += 1
            req.relay(
                m.HANDSHAKE.encode(m.Handshake(FROM_SERVER, reply.noise, hs.peer_address, None)),
                hs.relay_address,
                socket=reply.socket,
            )

    # --- holepunches ----------------------------------------------------------------------------

    def on_peer_holepunch(self, req: IncomingRequest) -> None:
        if not req.value:
            return
        try:
            hp = m.HOLEPUNCH.decode(req.value)
        except HyperDHTDecodeError:
            return
        entry = self.get(req.target) if req.target is not None else None
        relay = entry.relay if entry is not None else None
        frm = req.from_.address
        if hp.mode == FROM_CLIENT:
            dest = hp.peer_address or relay
            if dest is None:
                return
            self.relayed += 1
            req.relay(
                m.HOLEPUNCH.encode(m.Holepunch(FROM_RELAY, hp.id, hp.payload, frm)),
                dest,
            )
        elif hp.mode == FROM_RELAY:
            if entry is None or entry.on_holepunch is None or hp.peer_address is None:
                return
            answer = entry.on_holepunch(hp.id, hp.payload, hp.peer_address, req)
            self._when_ready(answer, lambda reply: self._answer_holepunch(req, hp, reply))
        elif hp.mode == FROM_SERVER:
            if hp.peer_address is None:
                return
            self.relayed += 1
            req.reply(
                m.HOLEPUNCH.encode(m.Holepunch(REPLY, hp.id, hp.payload, frm)),
                to=hp.peer_address,
                token=False,
                closer_nodes=False,
            )

    def _answer_holepunch(
        self, req: IncomingRequest, hp: m.Holepunch, reply: HolepunchReply | None
    ) -> None:
        if reply is None or hp.peer_address is None:
            return
        self.relayed += 1
        req.relay(
            m.HOLEPUNCH.encode(m.Holepunch(FROM_SERVER, 0, reply.payload, hp.peer_address)),
            req.from_.address,
            socket=reply.socket,
        )
