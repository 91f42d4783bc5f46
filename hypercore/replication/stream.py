"""Replication over a stream, the Trio side: the stream it takes, the Protomux on it, the
channel of a core on a mux, and the one task per peer (its watchdog).

Everything else of replication is sans-IO (:mod:`.peer`, :mod:`.replicator`); this module
gives it Trio's clock and runs :meth:`Peer.tick` once a second.
"""

from __future__ import annotations

from typing import Protocol

import trio

from protomux import Protomux

from ..core import Core
from . import limits
from .peer import Peer
from .replicator import Replicator

__all__ = ["ReplicationStream", "attach", "mux_for_stream", "replicator_of"]


class ReplicationStream(Protocol):
    """What replication needs of a stream: an authenticated message stream (a SecretStream)."""

    @property
    def is_initiator(self) -> bool: ...
    @property
    def handshake_hash(self) -> bytes: ...
    @property
    def remote_public_key(self) -> bytes: ...

    async def send(self, value: bytes, /) -> None: ...
    async def receive(self) -> bytes: ...
    async def aclose(self) -> None: ...


def replicator_of(core: Core) -> Replicator:
    """The replicator of ``core``: made on first use, with Trio's clock, and made the core's
    listener (:attr:`Core.replicator`)."""
    rep = core.replicator
    if rep is None:
        rep = core.replicator = Replicator(core, clock=trio.current_time)
    if not isinstance(rep, Replicator):
        raise TypeError(f"core {core.discovery_key.hex()} is replicated by {rep!r}")
    return rep


def attach(core: Core, mux: Protomux, stream: ReplicationStream | None = None) -> Peer | None:
    """Open a ``hypercore/alpha`` channel for ``core`` on ``mux`` (once per mux); its
    watchdog runs in the mux's nursery from when the remote opens it."""
    rep = replicator_of(core)
    if mux in rep.muxes or mux.closed:
        return None
    stream = stream if stream is not None else mux.stream  # type: ignore[assignment]
    assert stream is not None
    peer = Peer(rep, mux, stream, on_first_open=lambda: mux.spawn(_watchdog, peer))
    if peer.channel is None:
        return None
    rep.muxes.add(mux)
    peer.open()
    return peer


async def _watchdog(peer: Peer) -> None:
    """Cancel requests this peer leaves unanswered, so they go to others; end the
    back-offs that are over (see :meth:`Peer.tick`)."""
    while not peer.removed:
        await trio.sleep(limits.WATCHDOG_TICK)
        peer.tick(peer.replicator.now())


def mux_for_stream(stream: ReplicationStream | Protomux, nursery: trio.Nursery | None) -> Protomux:
    """The Protomux that replication uses on ``stream``: the one given, the one already made
    for this stream, or a new one started in ``nursery``."""
    if isinstance(stream, Protomux):
        return stream
    if nursery is None:
        try:
            return Protomux.of(stream, None)
        except RuntimeError:
            raise RuntimeError(
                "replicate() needs a nursery to run the stream's Protomux: use `async with` "
                "on the core (or store), or pass nursery="
            ) from None
    set_keep_alive = getattr(stream, "set_keep_alive", None)
    if set_keep_alive is not None and not getattr(stream, "keep_alive", None):
        set_keep_alive(5.0)  # as JS does for a replication stream without keep-alive
    return Protomux.of(stream, nursery)
