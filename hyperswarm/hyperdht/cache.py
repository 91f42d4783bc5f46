"""hyperdht's bounded, expiring caches: :class:`Cache` (a port of xache 1.3.0) and
:class:`RecordCache` (a port of record-cache 1.2.0, the announce records).

Both keep two generations, fresh and stale. A write goes to the fresh one; a rotation drops
the stale generation and makes the fresh one stale. Rotations happen

* when the fresh generation grows too big (xache: reaching ``max_size`` entries; record-cache:
  going over ``max_size`` records), so either holds at most about twice ``max_size``;
* on a timer every ``ceil(2/3 * max_age)`` ms, skipped once after a size rotation, so an
  entry that is not touched again lives between 2/3 and 4/3 of ``max_age``.

JS runs that timer with ``setInterval``; here the owner calls ``gc(now)`` with a monotonic
clock in ms, as often as it likes: each call runs the timer ticks that fell due since the last
one. The first call only starts the clock (the JS interval starts in the constructor, so call
``gc(now)`` once when the cache is made). A ``max_age`` of 0 means no timer.
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

__all__ = ["Cache", "RecordCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Every rotation after the second finds both generations empty, so a call that finds many
# ticks due runs at most this many of them.
_MAX_TICKS_PER_CALL = 3


class _Ticker:
    """The JS ``setInterval(gcAuto, ceil(2/3 * maxAge))`` as a clock the owner reads out."""

    __slots__ = ("_next", "interval")

    def __init__(self, max_age: float) -> None:
        self.interval = math.ceil(2 / 3 * max_age) if 0 < max_age < math.inf else 0
        self._next: float | None = None

    def due(self, now: float) -> int:
        """How many ticks fell due up to ``now`` (0 on the first call, which starts the clock)."""
        if self.interval <= 0:
            return 0
        if self._next is None:
            self._next = now + self.interval
            return 0
        if now < self._next:
            return 0
        n = int((now - self._next) // self.interval) + 1
        self._next += n * self.interval
        return min(n, _MAX_TICKS_PER_CALL)


class Cache(Generic[K, V]):
    """A map of at most about ``2 * max_size`` entries expiring after about ``max_age`` ms,
    plus retained entries that never expire (xache semantics).

    :meth:`get` of a stale entry makes it fresh again. :meth:`set` of a retained key does
    nothing (delete it first). Retained entries are not counted against ``max_size``.
    """

    __slots__ = ("_gced", "_latest", "_oldest", "_retained", "_ticker", "max_age", "max_size")

    def __init__(self, max_size: int, max_age: float = 0) -> None:
        self.max_size = max_size
        self.max_age = max_age
        self._latest: dict[K, V] = {}
        self._oldest: dict[K, V] = {}
        self._retained: dict[K, V] = {}
        self._gced = False
        self._ticker = _Ticker(max_age)

    @property
    def size(self) -> int:
        return len(self._latest) + len(self._oldest) + len(self._retained)

    def __len__(self) -> int:
        return self.size

    def __contains__(self, k: object) -> bool:
        return k in self._latest or k in self._oldest or k in self._retained

    def has(self, k: K) -> bool:
        return k in self

    def __iter__(self) -> Iterator[K]:
        return self.keys()

    def keys(self) -> Iterator[K]:
        """Fresh, then stale, then retained keys (JS order)."""
        for m in (self._latest, self._oldest, self._retained):
            yield from list(m)

    def values(self) -> Iterator[V]:
        for m in (self._latest, self._oldest, self._retained):
            yield from list(m.values())

    def items(self) -> Iterator[tuple[K, V]]:
        for m in (self._latest, self._oldest, self._retained):
            yield from list(m.items())

    def get(self, k: K) -> V | None:
        latest = self._latest
        if k in latest:
            return latest[k]
        oldest = self._oldest
        if k in oldest:
            v = oldest.pop(k)
            latest[k] = v
            return v
        return self._retained.get(k)

    def set(self, k: K, v: V) -> None:
        if k in self._retained:
            return
        self._latest[k] = v
        self._oldest.pop(k, None)
        if len(self._latest) >= self.max_size:
            self._gc()

    def retain(self, k: K, v: V) -> None:
        """Store ``k`` outside the generations: it stays until deleted."""
        self._retained[k] = v
        if k in self._latest:
            del self._latest[k]
        else:
            self._oldest.pop(k, None)

    def delete(self, k: K) -> bool:
        for m in (self._latest, self._oldest, self._retained):
            if k in m:
                del m[k]
                return True
        return False

    def clear(self) -> None:
        self._gced = True
        self._latest.clear()
        self._oldest.clear()
        self._retained.clear()

    def gc(self, now: float) -> None:
        """Run the expiry ticks due at ``now`` (ms, monotonic; see the module docstring)."""
        for _ in range(self._ticker.due(now)):
            self._gc_auto()

    def _gc_auto(self) -> None:
        if not self._gced:
            self._gc()
        self._gced = False

    def _gc(self) -> None:
        self._gced = True
        self._oldest = self._latest
        self._latest = {}

    def __repr__(self) -> str:
        return (
            f"Cache(fresh={len(self._latest)}, stale={len(self._oldest)}, "
            f"retained={len(self._retained)})"
        )


class _Record:
    __slots__ = ("index", "value")

    def __init__(self, index: int, value: bytes) -> None:
        self.index = index
        self.value = value


class _RecordSet:
    """The records of one target: a list for random picks, a map by public key."""

    __slots__ = ("by_key", "list")

    def __init__(self) -> None:
        self.list: list[_Record] = []
        self.by_key: dict[bytes, _Record] = {}

    def add(self, key: bytes, value: bytes) -> bool:
        if key in self.by_key:
            return False  # as JS: the stored record is kept, not replaced
        r = _Record(len(self.list), value)
        self.list.append(r)
        self.by_key[key] = r
        return True

    def remove(self, key: bytes) -> bool:
        r = self.by_key.pop(key, None)
        if r is None:
            return False
        _swap(self.list, r.index, len(self.list) - 1)
        self.list.pop()
        return True


class _RecordStore:
    __slots__ = ("records", "size")

    def __init__(self) -> None:
        self.records: dict[bytes, _RecordSet] = {}
        self.size = 0

    def add(self, target: bytes, key: bytes, value: bytes) -> bool:
        s = self.records.get(target)
        if s is None:
            s = self.records[target] = _RecordSet()
        if s.add(key, value):
            self.size += 1
            return True
        return False

    def remove(self, target: bytes, key: bytes) -> bool:
        s = self.records.get(target)
        if s is None or not s.remove(key):
            return False
        self.size -= 1
        if not s.by_key:
            del self.records[target]
        return True

    def get(self, target: bytes) -> list[_Record]:
        s = self.records.get(target)
        return s.list if s is not None else []


def _swap(items: list[_Record], a: int, b: int) -> None:
    ra, rb = items[a], items[b]
    ra.index = b
    rb.index = a
    items[a] = rb
    items[b] = ra


class RecordCache:
    """Announce records by target and public key, at most about ``2 * max_size`` in all,
    expiring after about ``max_age`` ms (record-cache semantics).

    Adding a record for a (target, public key) that is already fresh keeps the stored record;
    adding one that is stale replaces it and makes it fresh. ``max_size`` 0 means no bound
    (JS: ``maxSize || Infinity``). ``rng`` picks the records :meth:`get` returns.
    """

    __slots__ = ("_fresh", "_gced", "_rng", "_stale", "_ticker", "max_age", "max_size")

    def __init__(self, max_size: int, max_age: float = 0, rng: random.Random | None = None) -> None:
        self.max_size: float = max_size if max_size else math.inf
        self.max_age = max_age
        self._rng = rng if rng is not None else random.Random()
        self._fresh = _RecordStore()
        self._stale = _RecordStore()
        self._gced = False
        self._ticker = _Ticker(max_age)

    @property
    def size(self) -> int:
        """Records held, fresh and stale."""
        return self._fresh.size + self._stale.size

    def __len__(self) -> int:
        return self.size

    def add(self, target: bytes, public_key: bytes, record: bytes) -> None:
        self._stale.remove(target, public_key)
        if self._fresh.add(target, public_key, record) and self._fresh.size > self.max_size:
            self._gc()

    def remove(self, target: bytes, public_key: bytes) -> None:
        self._fresh.remove(target, public_key)
        self._stale.remove(target, public_key)

    def get(self, target: bytes, n: int = 0) -> list[bytes]:
        """Up to ``n`` records of ``target`` (all of them when ``n`` is 0), drawn at random
        without repeats from the fresh and stale ones together."""
        if n < 0:
            raise ValueError("n must not be negative")
        a = self._fresh.get(target)
        b = self._stale.get(target)
        a_len, b_len = len(a), len(b)
        total = a_len + b_len
        if n > total or not n:
            n = total
        rng = self._rng
        result: list[bytes] = []
        for _ in range(n):
            j = int(rng.random() * (a_len + b_len))
            if j < a_len:
                result.append(a[j].value)
                a_len -= 1
                _swap(a, j, a_len)
            else:
                j -= a_len
                result.append(b[j].value)
                b_len -= 1
                _swap(b, j, b_len)
        return result

    def clear(self) -> None:
        self._gc()
        self._gc()

    def gc(self, now: float) -> None:
        """Run the expiry ticks due at ``now`` (ms, monotonic; see the module docstring)."""
        for _ in range(self._ticker.due(now)):
            self._gc_auto()

    def _gc_auto(self) -> None:
        if not self._gced:
            self._gc()
        self._gced = False

    def _gc(self) -> None:
        self._stale = self._fresh
        self._fresh = _RecordStore()
        self._gced = True

    def __repr__(self) -> str:
        return f"RecordCache(fresh={self._fresh.size}, stale={self._stale.size})"
