"""Which blocks a core has: a bitfield in 4096-byte pages, as hypercore stores it.

Page ``p`` covers blocks ``[32768 * p, 32768 * (p + 1))``; block ``b`` is bit ``b & 7`` (least
significant first) of byte ``(b % 32768) >> 3`` of its page. Pages that were never set are
absent and read as all zeros.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator

__all__ = ["BITS_PER_PAGE", "BYTES_PER_PAGE", "Bitfield"]

BYTES_PER_PAGE = 4096
BITS_PER_PAGE = BYTES_PER_PAGE * 8
_ONES = b"\xff" * BYTES_PER_PAGE


def _low_zero(byte: int) -> int:
    """Index of the lowest zero bit of a byte that is not 0xff."""
    inv = ~byte & 0xFF
    return (inv & -inv).bit_length() - 1


def _low_one(byte: int) -> int:
    return (byte & -byte).bit_length() - 1


class Bitfield:
    """A sparse bitfield made of whole pages."""

    __slots__ = ("_pages",)

    def __init__(self, pages: Iterable[tuple[int, bytes]] = ()) -> None:
        self._pages: dict[int, bytearray] = {}
        for p, data in pages:
            if len(data) != BYTES_PER_PAGE:
                raise ValueError(f"bitfield page {p} has {len(data)} bytes")
            self._pages[p] = bytearray(data)

    def get(self, index: int) -> bool:
        page = self._pages.get(index >> 15)
        if page is None:
            return False
        i = index & (BITS_PER_PAGE - 1)
        return bool(page[i >> 3] >> (i & 7) & 1)

    def page(self, p: int) -> bytes:
        """The 4096 bytes of page ``p`` (zeros when unset)."""
        page = self._pages.get(p)
        return bytes(page) if page is not None else bytes(BYTES_PER_PAGE)

    def insert(self, start: int, data: bytes | bytearray) -> None:
        """Overwrite ``len(data) * 8`` bits from ``start`` (a multiple of 8) with ``data``
        (bit ``i`` of the range is bit ``i & 7`` of byte ``i >> 3``, as the pages store it)."""
        if start & 7:
            raise ValueError("a bitfield insert starts at a multiple of 8")
        i = 0
        while i < len(data):
            bit = start + 8 * i
            p = bit >> 15
            off = (bit & (BITS_PER_PAGE - 1)) >> 3
            chunk = data[i : i + BYTES_PER_PAGE - off]
            page = self._pages.get(p)
            if page is None and any(chunk):
                page = self._pages[p] = bytearray(BYTES_PER_PAGE)
            if page is not None:
                page[off : off + len(chunk)] = chunk
            i += len(chunk)

    def has_page(self, p: int) -> bool:
        """Whether page ``p`` has ever been touched."""
        return p in self._pages

    def pages(self) -> Iterator[int]:
        """Page numbers that have been touched, ascending."""
        return iter(sorted(self._pages))

    def set_range(self, start: int, end: int, value: bool) -> list[int]:
        """Set (or clear) the bits ``[start, end)``; returns the touched page numbers."""
        touched: list[int] = []
        while start < end:
            p = start >> 15
            page_end = min(end, (p + 1) * BITS_PER_PAGE)
            page = self._pages.get(p)
            if page is None:
                if not value:
                    start = page_end
                    continue
                page = self._pages[p] = bytearray(BYTES_PER_PAGE)
            _set_bits(page, start - p * BITS_PER_PAGE, page_end - p * BITS_PER_PAGE, value)
            touched.append(p)
            start = page_end
        return touched

    def first_unset(self, start: int) -> int:
        """The first index at or after ``start`` whose bit is 0."""
        i = start
        while True:
            p = i >> 15
            page = self._pages.get(p)
            if page is None:
                return i
            off = i & (BITS_PER_PAGE - 1)
            byte_i = off >> 3
            b = page[byte_i] | ((1 << (off & 7)) - 1)  # treat bits before ``off`` as set
            if b != 0xFF:
                return p * BITS_PER_PAGE + (byte_i << 3) + _low_zero(b)
            rest = page[byte_i + 1 :]
            ones = len(rest) - len(rest.lstrip(b"\xff"))
            if ones < len(rest):
                j = byte_i + 1 + ones
                return p * BITS_PER_PAGE + (j << 3) + _low_zero(page[j])
            i = (p + 1) * BITS_PER_PAGE

    def first_set(self, start: int, end: int) -> int:
        """The first index in ``[start, end)`` whose bit is 1, or -1 (time in proportion to
        the pages looked at: absent pages are skipped in one step)."""
        i = start
        present: list[int] | None = None  # the page numbers, sorted once if needed
        while i < end:
            p = i >> 15
            page = self._pages.get(p)
            if page is None and (end - i) >> 15 > len(self._pages):
                if present is None:
                    present = sorted(self._pages)
                k = bisect_right(present, p)
                if k == len(present):
                    return -1
                p = present[k]
                i = p * BITS_PER_PAGE
                page = self._pages[p]
            base = p * BITS_PER_PAGE
            if page is not None:
                off = i - base
                byte_i = off >> 3
                b = page[byte_i] & ~((1 << (off & 7)) - 1) & 0xFF
                if b:
                    found = base + (byte_i << 3) + _low_one(b)
                    return found if found < end else -1
                rest = page[byte_i + 1 :]
                zeros = len(rest) - len(rest.lstrip(b"\x00"))
                if zeros < len(rest):
                    j = byte_i + 1 + zeros
                    found = base + (j << 3) + _low_one(page[j])
                    return found if found < end else -1
            i = base + BITS_PER_PAGE
        return -1

    def all_set(self, start: int, end: int) -> bool:
        """Whether every bit of ``[start, end)`` is 1."""
        return start >= end or self.first_unset(start) >= end


def _set_bits(page: bytearray, start: int, end: int, value: bool) -> None:
    """Set bits ``[start, end)`` of one page."""
    first_full = (start + 7) >> 3
    last_full = end >> 3
    if first_full > last_full:  # inside one byte
        mask = ((1 << (end - start)) - 1) << (start & 7)
        _apply(page, start >> 3, mask, value)
        return
    if start & 7:
        _apply(page, start >> 3, (0xFF << (start & 7)) & 0xFF, value)
    if last_full > first_full:
        n = last_full - first_full
        page[first_full:last_full] = _ONES[:n] if value else bytes(n)
    if end & 7:
        _apply(page, last_full, (1 << (end & 7)) - 1, value)


def _apply(page: bytearray, i: int, mask: int, value: bool) -> None:
    page[i] = page[i] | mask if value else page[i] & ~mask & 0xFF
