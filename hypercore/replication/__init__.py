"""Hypercore replication (``hypercore/alpha`` channels over Protomux), wire-compatible with
JS hypercore 11.37.1 ``lib/replicator.js``. What it does:

* on channel open: check the remote's capability (it proves the remote knows the core key,
  bound to this secret-stream), send ``sync`` and a ``range`` for our contiguous prefix;
* serve ``request``s with proofs, ``noData`` when we cannot, and answer ``want`` with
  ``range``/``bitfield``; requests wait while the mux is not drained, and a peer may only
  queue ``MAX_QUEUED_REQUESTS`` of them;
* download: upgrades eagerly, blocks that :meth:`Hypercore.get` waits for, and the ranges of
  :meth:`Hypercore.download`, spread over the peers that have them, at most
  ``MAX_INFLIGHT`` requests per peer;
* every ``data`` message is verified before anything is stored; a peer whose data does not
  verify, or who floods us, is dropped (its channel closes) and reported (``invalid-data``);
* requests unanswered for ``REQUEST_TIMEOUT`` seconds are cancelled and sent elsewhere.

Modules: :mod:`.requests` (our request records and ids), :mod:`.serving` (our answers),
:mod:`.peer` (one remote), :mod:`.replicator` (what the peers of a core share),
:mod:`.limits` (the numbers), all sans-IO; :mod:`.stream` (Trio: streams, muxes, timers).
"""

from .peer import PROTOCOL, Peer
from .replicator import Download, Replicator
from .stream import ReplicationStream, attach, mux_for_stream, replicator_of

__all__ = [
    "PROTOCOL",
    "Download",
    "Peer",
    "ReplicationStream",
    "Replicator",
    "attach",
    "mux_for_stream",
    "replicator_of",
]
