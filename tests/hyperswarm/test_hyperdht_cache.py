"""hyperswarm.hyperdht.cache: Cache (xache) and RecordCache (record-cache) — generations,
size and age limits driven by gc(now), retained entries, random record picks."""

from __future__ import annotations

import random

import pytest

from hyperswarm.hyperdht.cache import Cache, RecordCache

# --- Cache ---------------------------------------------------------------------------------


def test_cache_basics() -> None:
    c: Cache[str, int] = Cache(100, 0)
    assert c.get("a") is None and "a" not in c and len(c) == 0
    c.set("a", 1)
    c.set("b", 2)
    c.set("a", 3)
    assert c.get("a") == 3 and c.has("b") and len(c) == c.size == 2
    assert c.delete("a") and not c.delete("a")
    assert list(c) == ["b"] and list(c.items()) == [("b", 2)] and list(c.values()) == [2]
    c.clear()
    assert len(c) == 0


def test_cache_rotates_when_fresh_generation_fills() -> None:
    c: Cache[int, int] = Cache(3, 0)
    for i in range(3):
        c.set(i, i)
    # reaching max_size made them all stale; a stale get makes the entry fresh again
    assert len(c) == 3 and c.get(0) == 0
    for i in range(3, 6):
        c.set(i, i)  # 0, 3, 4 reach 3: rotate; 1 and 2 are dropped
    assert sorted(c) == [0, 3, 4, 5]


def test_cache_stays_bounded() -> None:
    c: Cache[int, int] = Cache(10, 0)
    for i in range(5000):
        c.set(i, i)
        assert len(c) < 20
    assert c.get(4999) == 4999


def test_cache_expires_by_age() -> None:
    c: Cache[str, int] = Cache(100, 3000)  # a tick every 2000 ms
    c.gc(10_000)  # starts the clock
    c.set("x", 1)
    c.set("y", 2)
    c.gc(11_999)
    assert "x" in c
    c.gc(12_000)  # first tick: stale
    assert "x" in c and "y" in c
    assert c.get("y") == 2  # fresh again
    c.gc(14_000)  # second tick: x expires
    assert "x" not in c and "y" in c
    c.gc(16_000)
    c.gc(18_000)
    assert len(c) == 0


def test_cache_first_gc_only_starts_the_clock() -> None:
    c: Cache[str, int] = Cache(100, 3000)
    c.set("x", 1)
    c.gc(1_000_000)
    c.gc(1_000_000)
    assert "x" in c


def test_cache_tick_is_skipped_after_a_size_rotation() -> None:
    c: Cache[int, int] = Cache(2, 3000)
    c.gc(0)
    c.set(1, 1)
    c.set(2, 2)  # size rotation: both stale
    c.gc(2000)  # skipped, as JS skips the interval after a gc
    assert len(c) == 2
    c.gc(4000)
    assert len(c) == 0


def test_cache_long_jump_is_bounded_and_expires_everything() -> None:
    c: Cache[int, int] = Cache(1000, 3000)
    c.gc(0)
    for i in range(50):
        c.set(i, i)
    c.gc(10**15)  # about 5e11 ticks due: runs a few, expires everything
    assert len(c) == 0
    c.set(1, 1)
    c.gc(10**15 + 1999)  # the clock moved on in whole ticks
    assert 1 in c


def test_cache_without_age_never_expires() -> None:
    c: Cache[int, int] = Cache(100, 0)
    c.gc(0)
    c.set(1, 1)
    for t in range(0, 10**9, 10**8):
        c.gc(t)
    assert c.get(1) == 1


def test_cache_retained_entries() -> None:
    c: Cache[str, int] = Cache(2, 3000)
    c.gc(0)
    c.set("r", 1)
    c.retain("r", 2)  # moved out of the generations
    assert c.get("r") == 2 and len(c) == 1
    c.set("r", 3)  # ignored for a retained key, as JS
    assert c.get("r") == 2
    for i in range(10):
        c.set(f"k{i}", i)
    c.gc(2000)
    c.gc(4000)
    c.gc(6000)
    assert c.get("r") == 2 and list(c) == ["r"]
    assert c.delete("r") and "r" not in c
    c.set("r", 4)
    assert c.get("r") == 4


def test_cache_retain_takes_a_stale_entry() -> None:
    c: Cache[str, int] = Cache(1, 0)
    c.set("a", 1)  # straight to stale (max_size 1)
    c.retain("a", 5)
    assert list(c.items()) == [("a", 5)]


# --- RecordCache ---------------------------------------------------------------------------

T1, T2 = b"\x01" * 32, b"\x02" * 32


def key(i: int) -> bytes:
    return bytes([i]) * 32


def test_records_add_get_remove() -> None:
    rc = RecordCache(100, 0, rng=random.Random(1))
    for i in range(5):
        rc.add(T1, key(i), b"rec%d" % i)
    rc.add(T2, key(9), b"other")
    assert len(rc) == rc.size == 6
    assert sorted(rc.get(T1, 0)) == [b"rec%d" % i for i in range(5)]
    assert sorted(rc.get(T1, 100)) == [b"rec%d" % i for i in range(5)]
    two = rc.get(T1, 2)
    assert len(two) == 2 and len(set(two)) == 2
    assert rc.get(T2, 20) == [b"other"] and rc.get(b"\x03" * 32, 20) == []
    rc.remove(T1, key(0))
    rc.remove(T1, key(0))
    rc.remove(T2, key(9))
    assert len(rc) == 4 and rc.get(T2, 0) == []
    assert sorted(rc.get(T1)) == [b"rec%d" % i for i in range(1, 5)]
    with pytest.raises(ValueError):
        rc.get(T1, -1)


def test_records_pick_uniformly_enough() -> None:
    rc = RecordCache(100, 0, rng=random.Random(2))
    for i in range(10):
        rc.add(T1, key(i), bytes([i]))
    counts = [0] * 10
    for _ in range(1000):
        for r in rc.get(T1, 2):
            counts[r[0]] += 1
    assert all(c > 100 for c in counts)


def test_records_fresh_duplicate_keeps_old_record_stale_one_is_replaced() -> None:
    rc = RecordCache(100, 3000)
    rc.gc(0)
    rc.add(T1, key(1), b"old")
    rc.add(T1, key(1), b"new")
    assert rc.get(T1) == [b"old"] and len(rc) == 1  # as JS: a fresh record is kept
    rc.gc(2000)  # stale now
    rc.add(T1, key(1), b"new")
    assert rc.get(T1) == [b"new"] and len(rc) == 1


def test_records_expire_by_age() -> None:
    rc = RecordCache(100, 3000)
    rc.gc(0)
    rc.add(T1, key(1), b"a")
    rc.gc(2000)
    rc.add(T1, key(2), b"b")
    assert sorted(rc.get(T1)) == [b"a", b"b"]
    rc.gc(4000)
    assert rc.get(T1) == [b"b"]
    rc.gc(6000)
    assert rc.get(T1) == [] and len(rc) == 0


def test_records_stay_bounded() -> None:
    rc = RecordCache(50, 0)
    rng = random.Random(5)
    for i in range(5000):
        rc.add(rng.randbytes(32), rng.randbytes(32), i.to_bytes(4, "big"))
        assert len(rc) <= 2 * 50 + 1  # stale holds what went over: max_size + 1
    rc.clear()
    assert len(rc) == 0


def test_records_size_rotation_skips_next_tick() -> None:
    rc = RecordCache(2, 3000)
    rc.gc(0)
    for i in range(3):
        rc.add(T1, key(i), b"x")  # the third goes over 2: rotation
    rc.gc(2000)  # skipped
    assert len(rc) == 3
    rc.gc(4000)
    assert len(rc) == 0


def test_records_zero_max_size_is_unbounded() -> None:
    rc = RecordCache(0, 0)
    for i in range(300):
        rc.add(T1, i.to_bytes(32, "big"), b"r")
    assert len(rc) == 300


def test_records_get_spans_fresh_and_stale() -> None:
    rc = RecordCache(100, 3000, rng=random.Random(3))
    rc.gc(0)
    for i in range(3):
        rc.add(T1, key(i), bytes([i]))
    rc.gc(2000)
    for i in range(3, 6):
        rc.add(T1, key(i), bytes([i]))
    assert sorted(rc.get(T1)) == [bytes([i]) for i in range(6)]
    seen: set[bytes] = set()
    for _ in range(200):
        seen.update(rc.get(T1, 1))
    assert len(seen) == 6
