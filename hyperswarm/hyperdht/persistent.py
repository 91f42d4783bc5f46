"""The records a persistent HyperDHT node stores for others (JS hyperdht ``lib/persistent.js``).

Sans-IO: each handler takes an incoming dht-rpc request and answers it (or stays silent, as
JS does for anything malformed or unsigned). Announces are kept per topic in a record cache
(at most 20 returned per lookup), self-announces (``H(publicKey) == target``) go to the
:class:`~hyperswarm.hyperdht.router.Router` as relay entries, mutable and immutable values to
their own caches; every cache is bounded in size and age, as JS.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from hypercore import crypto
from hypercore.crypto import KeyPair

from ..dht_rpc.io import IncomingRequest
from . import messages as m
from .cache import Cache, RecordCache
from .constants import (
    ERROR_SEQ_REUSED,
    ERROR_SEQ_TOO_LOW,
    NS_ANNOUNCE,
    NS_MUTABLE_PUT,
    NS_UNANNOUNCE,
)
from .errors import HyperDHTDecodeError
from .router import Router, RouterEntry

__all__ = [
    "Persistent",
    "PersistentLimits",
    "announce_signable",
    "sign_announce",
    "sign_mutable",
    "sign_unannounce",
    "verify_mutable",
]

MAX_BUMP_DRIFT = 60_000
MAX_LOOKUP_RECORDS = 20
MAX_RELAY_ADDRESSES = 3
DEFAULT_MAX_SIZE = 65536
DEFAULT_MAX_AGE = 20 * 60 * 1000.0
DEFAULT_VALUE_MAX_AGE = 48 * 60 * 60 * 1000.0


@dataclass(frozen=True, slots=True)
class PersistentLimits:
    """Cache sizes and ages (ms), JS's defaults: 65,536 records for 20 minutes, half as many
    mutable and immutable values for 48 hours."""

    max_size: int = DEFAULT_MAX_SIZE
    max_age: float = DEFAULT_MAX_AGE
    value_max_age: float = DEFAULT_VALUE_MAX_AGE

    @classmethod
    def from_options(cls, max_size: int | None, max_age: float | None) -> PersistentLimits:
        """As JS: a ``max_age`` given applies to the values too."""
        size = max_size or DEFAULT_MAX_SIZE
        age = max_age or DEFAULT_MAX_AGE
        return cls(size, age, max_age or DEFAULT_VALUE_MAX_AGE)


def _hash(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def announce_signable(
    target: bytes, token: bytes, node_id: bytes, ann: m.Announce, namespace: bytes
) -> bytes:
    """``namespace || H(target || nodeId || token || peer || refresh)``: what an (un)announce
    signs for one storing node."""
    peer = m.PEER.encode(ann.peer) if ann.peer is not None else b""
    h = hashlib.blake2b(digest_size=32)
    for part in (target, node_id, token, peer, ann.refresh or b""):
        h.update(part)
    return namespace + h.digest()


def _sign(signable: bytes, key_pair: KeyPair) -> bytes:
    return crypto.sign(signable, key_pair.secret_key)


def sign_announce(
    target: bytes, token: bytes, node_id: bytes, ann: m.Announce, key_pair: KeyPair
) -> bytes:
    return _sign(announce_signable(target, token, node_id, ann, NS_ANNOUNCE), key_pair)


def sign_unannounce(
    target: bytes, token: bytes, node_id: bytes, ann: m.Announce, key_pair: KeyPair
) -> bytes:
    return _sign(announce_signable(target, token, node_id, ann, NS_UNANNOUNCE), key_pair)


def _mutable_signable(seq: int, value: bytes) -> bytes:
    return NS_MUTABLE_PUT + _hash(m.MUTABLE_SIGNABLE.encode(m.MutableSignable(seq, value)))


def sign_mutable(seq: int, value: bytes, key_pair: KeyPair) -> bytes:
    return _sign(_mutable_signable(seq, value), key_pair)


def _verify(signature: bytes, message: bytes, public_key: bytes) -> bool:
    return crypto.verify(message, signature, public_key)


def verify_mutable(signature: bytes, seq: int, value: bytes, public_key: bytes) -> bool:
    return _verify(signature, _mutable_signable(seq, value), public_key)


class Persistent:
    """The storage handlers of one node. ``node_id()`` is the node's current id (the one
    signatures are made for); ``wall_clock()`` is Unix time in ms (announce bumps are
    timestamps)."""

    def __init__(
        self,
        router: Router,
        node_id: Callable[[], bytes | None],
        wall_clock: Callable[[], float],
        limits: PersistentLimits = PersistentLimits(),
    ) -> None:
        self.router = router
        self._node_id = node_id
        self._wall_clock = wall_clock
        self.limits = limits
        size, age, value_age = limits.max_size, limits.max_age, limits.value_max_age
        self.records = RecordCache(max_size=size, max_age=age)
        self.bumps: Cache[bytes, int] = Cache(max_size=size, max_age=age)
        self.refreshes: Cache[bytes, tuple[bytes, bytes, bool]] = Cache(max_size=size, max_age=age)
        self.mutables: Cache[bytes, bytes] = Cache(max_size=size // 2, max_age=value_age)
        self.immutables: Cache[bytes, bytes] = Cache(max_size=size // 2, max_age=value_age)

    def gc(self, now: float) -> None:
        """Expire what is older than its cache's age (the owner calls this on a timer)."""
        for cache in (self.records, self.bumps, self.refreshes, self.mutables, self.immutables):
            cache.gc(now)

    # --- lookups ------------------------------------------------------------------------------

    def on_lookup(self, req: IncomingRequest) -> None:
        if req.target is None:
            return
        records = self.records.get(req.target, MAX_LOOKUP_RECORDS)
        bump = self.bumps.get(req.target) or 0
        fwd = self.router.get(req.target)
        if fwd is not None and len(records) < MAX_LOOKUP_RECORDS:
            records.append(fwd.record)
        value = m.encode_lookup_raw_reply(records, bump) if records else None
        req.reply(value)

    def on_find_peer(self, req: IncomingRequest) -> None:
        if req.target is None:
            return
        fwd = self.router.get(req.target)
        req.reply(fwd.record if fwd is not None else None)

    # --- announces ----------------------------------------------------------------------------

    def unannounce(self, target: bytes, public_key: bytes) -> None:
        if _hash(public_key) == target:
            self.router.delete(target)
        self.records.remove(target, public_key)

    def on_unannounce(self, req: IncomingRequest) -> None:
        node_id = self._node_id()
        if req.target is None or req.token is None or node_id is None:
            return
        unann = _decode_announce(req.value)
        if unann is None or unann.peer is None or unann.signature is None:
            return
        signable = announce_signable(req.target, req.token, node_id, unann, NS_UNANNOUNCE)
        if not _verify(unann.signature, signable, unann.peer.public_key):
            return
        self.unannounce(req.target, unann.peer.public_key)
        req.reply(None, token=False, closer_nodes=False)

    def _on_refresh(self, token: bytes, req: IncomingRequest) -> None:
        active = _hash(token)
        entry = self.refreshes.get(active)
        if entry is None:
            return
        target, record, announce_self = entry
        public_key = record[:32]
        if announce_self:
            self.router.set(target, RouterEntry(relay=req.from_.address, record=record))
            self.records.remove(target, public_key)
        else:
            self.records.add(target, public_key, record)
        self.refreshes.delete(active)
        self.refreshes.set(token, entry)
        req.reply(None, token=False, closer_nodes=False)

    def on_announce(self, req: IncomingRequest) -> None:
        node_id = self._node_id()
        if req.target is None or req.token is None or node_id is None:
            return
        ann = _decode_announce(req.value)
        if ann is None:
            return
        if ann.peer is None:
            if ann.refresh is not None:
                self._on_refresh(ann.refresh, req)
            return
        signable = announce_signable(req.target, req.token, node_id, ann, NS_ANNOUNCE)
        if ann.signature is None or not _verify(ann.signature, signable, ann.peer.public_key):
            return
        peer = ann.peer
        if len(peer.relay_addresses) > MAX_RELAY_ADDRESSES:
            peer = m.Peer(peer.public_key, tuple(peer.relay_addresses[:MAX_RELAY_ADDRESSES]))
        announce_self = _hash(peer.public_key) == req.target
        record = m.PEER.encode(peer)
        if announce_self:
            self.router.set(req.target, RouterEntry(relay=req.from_.address, record=record))
            self.records.remove(req.target, peer.public_key)
        else:
            current = self.bumps.get(req.target) or 0
            bump = ann.bump or 0
            if bump > current and bump <= self._wall_clock() + MAX_BUMP_DRIFT:
                self.bumps.set(req.target, bump)
            self.records.add(req.target, peer.public_key, record)
        if ann.refresh is not None:
            self.refreshes.set(ann.refresh, (req.target, record, announce_self))
        req.reply(None, token=False, closer_nodes=False)

    # --- mutable and immutable values -----------------------------------------------------------

    def on_mutable_get(self, req: IncomingRequest) -> None:
        if req.target is None or req.value is None:
            return
        try:
            seq = m.decode_uint(req.value)
        except HyperDHTDecodeError:
            return
        stored = self.mutables.get(req.target)
        if stored is None:
            req.reply(None)
            return
        local_seq = m.MUTABLE_GET_RESPONSE.decode(stored).seq
        req.reply(None if local_seq < seq else stored)

    def on_mutable_put(self, req: IncomingRequest) -> None:
        if req.target is None or req.token is None or req.value is None:
            return
        try:
            put = m.MUTABLE_PUT_REQUEST.decode(req.value)
        except HyperDHTDecodeError:
            return
        if _hash(put.public_key) != req.target:
            return
        if not put.value or not verify_mutable(put.signature, put.seq, put.value, put.public_key):
            return
        stored = self.mutables.get(req.target)
        if stored is not None:
            existing = m.MUTABLE_GET_RESPONSE.decode(stored)
            if existing.value and existing.seq == put.seq and put.value != existing.value:
                req.error(ERROR_SEQ_REUSED)
                return
            if put.seq < existing.seq:
                req.error(ERROR_SEQ_TOO_LOW)
                return
        self.mutables.set(
            req.target,
            m.MUTABLE_GET_RESPONSE.encode(m.MutableGetResponse(put.seq, put.value, put.signature)),
        )
        req.reply(None)

    def on_immutable_get(self, req: IncomingRequest) -> None:
        if req.target is None:
            return
        req.reply(self.immutables.get(req.target))

    def on_immutable_put(self, req: IncomingRequest) -> None:
        if req.target is None or req.token is None or req.value is None:
            return
        if _hash(req.value) != req.target:
            return
        self.immutables.set(req.target, bytes(req.value))
        req.reply(None)


def _decode_announce(value: bytes | None) -> m.Announce | None:
    if not value:
        return None
    try:
        return m.ANNOUNCE.decode(value)
    except HyperDHTDecodeError:
        return None
