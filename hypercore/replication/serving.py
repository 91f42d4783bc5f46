"""What we answer a peer: the ``data``/``noData`` for a request, the ``range``/``bitfield``
messages for a ``want``. Sans-IO: functions of the core and the message; the
:class:`~hypercore.replication.peer.Peer` queues the questions and sends the answers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from .. import wire
from ..core import Core
from ..errors import BlockNotAvailableError
from ..storage import StorageError
from ..wire import Data

__all__ = ["answer_request", "answer_want"]

log = logging.getLogger("hypercore.replicator")


def answer_request(core: Core, m: wire.Request, asker: object) -> Data | wire.NoData:
    """The answer to request ``m`` of ``asker`` (named in the log): a proof against our
    current head, the manifest alone, or ``noData`` (not available). Raises the
    :class:`~hypercore.errors.HypercoreError` of a request that is invalid."""
    head = core.head
    available = m.fork == head.fork and (
        m.block is None or (m.block.index < head.length and core.bitfield.get(m.block.index))
    )
    data: Data | None = None
    if available:
        try:
            data = core.proof(
                block=m.block,
                hash=m.hash,
                seek=m.seek,
                upgrade=m.upgrade,
                manifest=m.manifest and not core.compat,
                request=m.id,
                fork=m.fork,
            )
        except BlockNotAvailableError:
            data = None
        except StorageError as e:
            # Our own disk failed us (a damaged row): the peer is not at fault and the
            # rest of the core can still be served.
            log.warning("cannot serve request %d of %r: %s", m.id, asker, e)
            data = None
    if data is not None:
        return data
    if m.manifest and core.manifest is not None and not core.compat:
        return Data(request=m.id, fork=head.fork, manifest=core.manifest)
    return wire.NoData(request=m.id, reason=wire.NOT_AVAILABLE)


def answer_want(core: Core, start: int, length: int, any: bool) -> list[wire.Range | wire.Bitfield]:
    """What we tell a peer that wants ``[start, start + length)`` (``any``: one block of
    it will do): our contiguous prefix, one block we have, or our bitfield over it."""
    head_length = core.head.length
    contig = min(head_length, core.contiguous_length)
    if start + length < contig or head_length == contig or (any and start < contig):
        return [wire.Range(drop=False, start=0, length=contig)]
    length = min(length, head_length - start)
    if length <= 0:
        return []
    if any:
        bit = core.bitfield.first_set(start, start + length)
        return [wire.Range(drop=False, start=bit, length=1)] if bit != -1 else []
    return [wire.make_bitfield(s, words) for s, words in _bitfield_chunks(core, start, length)]


def _bitfield_chunks(core: Core, start: int, length: int) -> Iterable[tuple[int, bytes]]:
    """Our bitfield over ``[start, start + length)`` as ``(start, little-endian u32 words)``
    pieces of at most one page, start rounded down to 32, pages we lack left out."""
    d = start & 31
    start -= d
    length += d
    end = start + length
    i = start
    while i < end:
        p = i >> 15
        page_end = min(end, (p + 1) << 15)
        if page_end & 31:
            page_end += 32 - (page_end & 31)
        page = core.bitfield.page(p) if core.bitfield.has_page(p) else None
        if page is not None:
            lo = (i - (p << 15)) >> 3
            hi = (page_end - (p << 15)) >> 3
            yield i, page[lo:hi]
        i = (p + 1) << 15
