"""What a peer told us it has: a bitfield whose size follows the bytes the peer sent.

A peer announces blocks with ``range`` messages (a start and a length, any length) and with
``bitfield`` messages (raw bits, in answer to our ``want``). Applying a range page by page, as
a local :class:`~hypercore.bitfield.Bitfield` would, costs memory and time in proportion to a
number the peer chose (one 9-byte message could ask for 2^40 bits). Here a range is one
interval (a *run*) whatever its length, and only the raw bits of ``bitfield`` messages live in
4096-byte pages; a page wholly set becomes a run, a page wholly clear is dropped. Every
operation costs time in proportion to the runs and pages it touches, never to the length of a
range.

Caps (the caller drops the peer when a method returns False):

* :data:`MAX_RUNS` disjoint runs. Announcements of adjacent blocks merge into one run, and
  single blocks announced in the batches we want go to pages (:meth:`set_bit`), so an honest
  peer needs one run per hole in the ranges it announces; the cap bounds a peer's runs to
  ~1 MiB.
* :data:`MAX_PAGES` pages of raw bits (16 MiB): a ``want`` asks for one batch of 2^21 blocks
  (64 pages) and a peer is sent at most 64 of them, so an honest peer never exceeds it.
* Indices at or past :data:`MAX_INDEX` (2^53, JS's largest exact integer) are ignored.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right

from .bitfield import BITS_PER_PAGE, BYTES_PER_PAGE

__all__ = ["MAX_INDEX", "MAX_PAGES", "MAX_RUNS", "RemoteBitfield"]

MAX_INDEX = 1 << 53
MAX_RUNS = 65536
MAX_PAGES = 4096

_FULL = b"\xff" * BYTES_PER_PAGE
_EMPTY = bytes(BYTES_PER_PAGE)


class RemoteBitfield:
    """Sorted disjoint runs ``[start, end)`` of set bits, plus pages of raw bits."""

    __slots__ = ("_ends", "_pages", "_starts")

    def __init__(self) -> None:
        # Unsigned 64-bit arrays: 16 bytes a run, searched with bisect.
        self._starts = array("Q")
        self._ends = array("Q")
        self._pages: dict[int, bytearray] = {}

    @property
    def runs(self) -> int:
        return len(self._starts)

    @property
    def pages(self) -> int:
        return len(self._pages)

    def get(self, index: int) -> bool:
        i = bisect_right(self._starts, index) - 1
        if i >= 0 and index < self._ends[i]:
            return True
        page = self._pages.get(index >> 15)
        if page is None:
            return False
        b = index & (BITS_PER_PAGE - 1)
        return bool(page[b >> 3] >> (b & 7) & 1)

    def set_range(self, start: int, end: int, value: bool) -> bool:
        """Set (or clear) ``[start, end)``; False when that would pass :data:`MAX_RUNS`."""
        end = min(end, MAX_INDEX)
        if start >= end:
            return True
        if value:
            return self._add_run(start, end)
        if not self._cut_runs(start, end):
            return False
        self._clear_pages(start, end)
        return True

    def set_bit(self, index: int, value: bool) -> bool:
        """Set (or clear) one bit in its page rather than as a run: for announcements of
        single blocks in the batches we want, which pages already bound (so they never
        count against :data:`MAX_RUNS`). False when that would pass a cap."""
        if index >= MAX_INDEX:
            return True
        if not value and not self._cut_runs(index, index + 1):
            return False
        if value and self.get(index):
            return True
        p = index >> 15
        page = self._pages.get(p)
        if page is None:
            if not value:
                return True
            if len(self._pages) >= MAX_PAGES:
                return False
            page = self._pages[p] = bytearray(BYTES_PER_PAGE)
        b = index & (BITS_PER_PAGE - 1)
        if value:
            page[b >> 3] |= 1 << (b & 7)
            if page == _FULL:
                del self._pages[p]
                return self._add_run(p << 15, (p + 1) << 15)
        else:
            page[b >> 3] &= ~(1 << (b & 7)) & 0xFF
            if page == _EMPTY:
                del self._pages[p]
        return True

    def insert(self, start: int, data: bytes) -> bool:
        """The bits of a ``bitfield`` message: the whole truth about ``len(data) * 8`` bits
        from ``start`` (a multiple of 8). False when that would pass a cap."""
        if start & 7:
            raise ValueError("a bitfield insert starts at a multiple of 8")
        end = min(start + 8 * len(data), MAX_INDEX)
        if start >= end:
            return True
        if not self._cut_runs(start, end):
            return False
        i = 0
        n = (end - start) >> 3
        while i < n:
            bit = start + 8 * i
            p = bit >> 15
            off = (bit & (BITS_PER_PAGE - 1)) >> 3
            size = min(BYTES_PER_PAGE - off, n - i)
            chunk = data[i : i + size]
            i += size
            page = self._pages.get(p)
            if page is None:
                if not any(chunk):
                    continue
                if size == BYTES_PER_PAGE and chunk == _FULL:
                    if not self._add_run(p << 15, (p + 1) << 15):
                        return False
                    continue
                if len(self._pages) >= MAX_PAGES:
                    return False
                page = self._pages[p] = bytearray(BYTES_PER_PAGE)
            page[off : off + size] = chunk
            if page == _FULL:
                del self._pages[p]
                if not self._add_run(p << 15, (p + 1) << 15):
                    return False
            elif page == _EMPTY:
                del self._pages[p]
        return True

    # --- runs ---------------------------------------------------------------------------------

    def _add_run(self, start: int, end: int) -> bool:
        starts, ends = self._starts, self._ends
        i = bisect_left(ends, start)  # the first run that ends at or after ``start``
        j = bisect_right(starts, end)  # runs from ``j`` on start after ``end``
        if i == j:
            if len(starts) >= MAX_RUNS:
                return False
            starts.insert(i, start)
            ends.insert(i, end)
            return True
        new_start = min(start, starts[i])
        new_end = max(end, ends[j - 1])
        starts[i:j] = array("Q", (new_start,))
        ends[i:j] = array("Q", (new_end,))
        return True

    def _cut_runs(self, start: int, end: int) -> bool:
        """Remove ``[start, end)`` from the runs (pages untouched)."""
        starts, ends = self._starts, self._ends
        i = bisect_right(ends, start)  # the first run that ends after ``start``
        j = bisect_left(starts, end)  # runs from ``j`` on start at or after ``end``
        if i >= j:
            return True
        keep_s: list[int] = []
        keep_e: list[int] = []
        if starts[i] < start:
            keep_s.append(starts[i])
            keep_e.append(start)
        if ends[j - 1] > end:
            keep_s.append(end)
            keep_e.append(ends[j - 1])
        if len(starts) - (j - i) + len(keep_s) > MAX_RUNS:
            return False
        starts[i:j] = array("Q", keep_s)
        ends[i:j] = array("Q", keep_e)
        return True

    # --- pages --------------------------------------------------------------------------------

    def _clear_pages(self, start: int, end: int) -> None:
        if not self._pages:
            return
        first = start >> 15
        last = (end - 1) >> 15
        if last - first + 1 <= len(self._pages):
            touched = [p for p in range(first, last + 1) if p in self._pages]
        else:
            touched = [p for p in self._pages if first <= p <= last]
        for p in touched:
            page = self._pages[p]
            base = p << 15
            lo = max(start, base) - base
            hi = min(end, base + BITS_PER_PAGE) - base
            for b in range(lo, min(hi, (lo + 7) & ~7)):
                page[b >> 3] &= ~(1 << (b & 7)) & 0xFF
            full_lo = (lo + 7) >> 3
            full_hi = hi >> 3
            if full_hi > full_lo:
                page[full_lo:full_hi] = bytes(full_hi - full_lo)
            for b in range(max(full_hi << 3, lo), hi):
                page[b >> 3] &= ~(1 << (b & 7)) & 0xFF
            if page == _EMPTY:
                del self._pages[p]
