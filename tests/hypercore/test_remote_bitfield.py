"""The remote bitfield against a model: a set of indices over a small domain."""

from __future__ import annotations

import tracemalloc

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from hypercore import remote_bitfield
from hypercore.remote_bitfield import MAX_INDEX, RemoteBitfield

DOMAIN = 3 * 32768 + 100  # a few pages, so runs and pages cross page boundaries

positions = st.integers(0, DOMAIN)
ops = st.one_of(
    st.tuples(st.just("range"), positions, st.integers(0, 70000), st.booleans()),
    st.tuples(st.just("bit"), positions, st.booleans()),
    st.tuples(
        st.just("bitfield"),
        st.integers(0, DOMAIN // 32).map(lambda w: 32 * w),
        st.binary(max_size=64).map(lambda b: b[: len(b) - len(b) % 4]),
        st.sampled_from([b"\x00", b"\xff", b"\x0f"]),
    ),
)


def _apply_model(model: set[int], op: tuple[object, ...]) -> None:
    if op[0] == "bit":
        _, index, value = op
        assert isinstance(index, int)
        if value:
            model.add(index)
        else:
            model.discard(index)
    elif op[0] == "range":
        _, start, length, value = op
        assert isinstance(start, int) and isinstance(length, int)
        span = set(range(start, start + length))
        if value:
            model |= span
        else:
            model -= span
    else:
        _, start, data, fill = op
        assert isinstance(start, int) and isinstance(data, bytes) and isinstance(fill, bytes)
        bits = data + fill * 4  # a longer tail, uniform, to reach whole pages sometimes
        for i, byte in enumerate(bits):
            for b in range(8):
                index = start + 8 * i + b
                if byte >> b & 1:
                    model.add(index)
                else:
                    model.discard(index)


def _apply(rb: RemoteBitfield, op: tuple[object, ...]) -> None:
    if op[0] == "bit":
        _, index, value = op
        assert isinstance(index, int) and isinstance(value, bool)
        assert rb.set_bit(index, value)
    elif op[0] == "range":
        _, start, length, value = op
        assert isinstance(start, int) and isinstance(length, int) and isinstance(value, bool)
        assert rb.set_range(start, start + length, value)
    else:
        _, start, data, fill = op
        assert isinstance(start, int) and isinstance(data, bytes) and isinstance(fill, bytes)
        assert rb.insert(start, data + fill * 4)


@settings(max_examples=150, deadline=None)
@given(st.lists(ops, max_size=25), st.lists(positions, min_size=1, max_size=200))
def test_matches_a_set_of_indices(script: list[tuple[object, ...]], probes: list[int]) -> None:
    rb = RemoteBitfield()
    model: set[int] = set()
    for op in script:
        _apply(rb, op)
        _apply_model(model, op)
    for i in probes + sorted(model)[:50]:
        assert rb.get(i) == (i in model), i
    assert rb.runs <= len(script) + 1
    assert all(0 < rb._pages[p].count(0) < 4096 for p in rb._pages)  # neither empty nor full


def test_whole_pages_become_runs_and_cleared_pages_go() -> None:
    rb = RemoteBitfield()
    assert rb.insert(32768, b"\xff" * 4096)
    assert (rb.pages, rb.runs) == (0, 1)
    assert rb.insert(65536, b"\x01" + bytes(4095))
    assert rb.pages == 1 and rb.get(65536) and not rb.get(65537)
    assert rb.set_range(0, 1 << 40, False)
    assert (rb.pages, rb.runs) == (0, 0)


def test_huge_ranges_cost_one_run() -> None:
    """Lengths a peer chooses (2^40, 2^53) cost neither memory nor time."""
    rb = RemoteBitfield()
    tracemalloc.start()
    try:
        assert rb.set_range(5, 5 + (1 << 40), True)
        assert rb.set_range(1 << 45, 1 << 60, True)  # clamped to MAX_INDEX
        assert rb.set_range(7, (1 << 53) - 1, False)
        assert rb.insert(1 << 50, b"\x01" * 4096)
        assert rb.get(5) and rb.get(6) and not rb.get(7) and not rb.get(1 << 46)
        assert rb.get(1 << 50) and rb.pages == 1
        assert rb.set_range(0, 1 << 62, False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100_000
    assert (rb.runs, rb.pages) == (0, 0)
    assert rb.set_range(MAX_INDEX, MAX_INDEX + 5, True) and not rb.get(MAX_INDEX)


def test_caps_refuse_instead_of_growing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote_bitfield, "MAX_RUNS", 10)
    monkeypatch.setattr(remote_bitfield, "MAX_PAGES", 3)
    rb = RemoteBitfield()
    for k in range(10):
        assert rb.set_range(10 * k, 10 * k + 1, True)
    assert not rb.set_range(1000, 1001, True)
    assert rb.set_range(11, 21, True)  # merges 10 and 20 into one run: allowed
    assert rb.runs == 9
    for p in range(3):
        assert rb.insert(32768 * (p + 1), b"\x01")
    assert not rb.insert(32768 * 5, b"\x01")
    assert rb.pages == 3
