"""The numbers of replication, as JS hypercore 11 has them (or where JS has none, ours).

The modules read them here at each use (``limits.REQUEST_TIMEOUT``), so that one setting
holds for every module, and a test can change it for its run.
"""

from __future__ import annotations

__all__ = [
    "LAST_BLOCKS",
    "MAX_AVOIDED",
    "MAX_INFLIGHT",
    "MAX_INVALID_REQUESTS",
    "MAX_QUEUED_REQUESTS",
    "MAX_QUEUED_WANTS",
    "NOT_AVAILABLE_BACKOFF",
    "REQUEST_TIMEOUT",
    "SCAN_LIMIT",
    "WANT_BATCH",
    "WATCHDOG_TICK",
]

MAX_INFLIGHT = 48  # JS: min(512, 16 * 3) on a non-UDX stream
MAX_QUEUED_REQUESTS = 4096  # requests a peer may have waiting for the mux to drain
MAX_INVALID_REQUESTS = 64
REQUEST_TIMEOUT = 20.0
LAST_BLOCKS = 256  # single new blocks are announced to peers that did not ask, near the head
WANT_BATCH = 1 << 21  # JS wants.js batch (compat mode)
SCAN_LIMIT = 8192  # bitfield positions looked at per scheduling step of one range or seek
MAX_AVOIDED = 4096  # blocks a peer is not asked for again for a while (see Peer.avoid)
#: A block a peer said it lacks (``no_data``) is asked of it again after this many seconds
#: (JS backs off too; forgetting what the peer announced would stall a download for good).
NOT_AVAILABLE_BACKOFF = 2.0
#: How often a peer's watchdog looks for late requests and expired back-offs.
WATCHDOG_TICK = 1.0
#: Wants of a peer waiting to be answered while the stream is not drained (then it is dropped).
MAX_QUEUED_WANTS = 1024
