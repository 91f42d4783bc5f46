from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hypercore.bitfield import BITS_PER_PAGE, BYTES_PER_PAGE, Bitfield

positions = st.integers(0, 3 * BITS_PER_PAGE)
ops = st.lists(st.tuples(positions, st.integers(0, 70_000), st.booleans()), max_size=12)


@settings(max_examples=150, deadline=None)
@given(ops, st.lists(positions, min_size=1, max_size=10))
def test_against_a_set_model(operations: list[tuple[int, int, bool]], probes: list[int]) -> None:
    bf = Bitfield()
    model: set[int] = set()
    for start, n, value in operations:
        touched = bf.set_range(start, start + n, value)
        if value:
            model.update(range(start, start + n))
        else:
            model.difference_update(range(start, start + n))
        if n and value:
            assert touched == list(range(start >> 15, ((start + n - 1) >> 15) + 1))
    for p in probes:
        assert bf.get(p) == (p in model)
        expected_unset = next(i for i in range(p, p + 4 * BITS_PER_PAGE + 2) if i not in model)
        assert bf.first_unset(p) == expected_unset
        end = p + 50_000
        expected_set = next((i for i in range(p, end) if i in model), -1)
        assert bf.first_set(p, end) == expected_set
    for page_no in bf.pages():
        page = bf.page(page_no)
        assert len(page) == BYTES_PER_PAGE
        for b in range(0, BITS_PER_PAGE, 997):
            i = page_no * BITS_PER_PAGE + b
            assert bool(page[b >> 3] >> (b & 7) & 1) == (i in model)


def test_page_layout() -> None:
    bf = Bitfield()
    bf.set_range(0, 2, True)
    assert bf.page(0)[:1] == b"\x03"
    bf.set_range(BITS_PER_PAGE + 9, BITS_PER_PAGE + 10, True)
    assert bf.page(1)[1] == 0x02
    again = Bitfield((p, bf.page(p)) for p in bf.pages())
    assert again.get(BITS_PER_PAGE + 9) and again.get(1) and not again.get(2)
    assert again.all_set(0, 2) and not again.all_set(0, 3)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(positions, st.integers(0, 70_000)), max_size=4),
    st.integers(0, 3 * BYTES_PER_PAGE).map(lambda b: 8 * b),
    st.binary(max_size=2 * BYTES_PER_PAGE),
)
def test_insert_overwrites_a_run_of_bytes(
    sets: list[tuple[int, int]], start: int, data: bytes
) -> None:
    bf = Bitfield()
    model: set[int] = set()
    for s, n in sets:
        bf.set_range(s, s + n, True)
        model.update(range(s, s + n))
    bf.insert(start, data)
    end = start + 8 * len(data)
    model.difference_update(range(start, end))
    model.update(start + i for i in range(8 * len(data)) if data[i >> 3] >> (i & 7) & 1)
    for p in [*range(max(0, start - 9), min(end + 9, start + 40)), *range(end - 40, end + 9)]:
        if p >= 0:
            assert bf.get(p) == (p in model)
    assert bf.first_set(0, 4 * BITS_PER_PAGE) == min(model, default=-1)


@settings(max_examples=200)
@given(
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, BITS_PER_PAGE - 1)), max_size=12),
    st.lists(st.integers(0, 400), max_size=4),
    st.integers(0, 400 * BITS_PER_PAGE),
    st.integers(0, 401 * BITS_PER_PAGE),
)
def test_first_set_over_sparse_pages(
    bits: list[tuple[int, int]], cleared: list[int], start: int, end: int
) -> None:
    """first_set skips absent pages in one step; pages present but cleared are looked at."""
    b = Bitfield()
    model: set[int] = set()
    for page, offset in bits:
        index = page * BITS_PER_PAGE + offset
        b.set_range(index, index + 1, True)
        model.add(index)
    for page in cleared:  # present, all zero
        b.set_range(page * BITS_PER_PAGE, (page + 1) * BITS_PER_PAGE, True)
        b.set_range(page * BITS_PER_PAGE, (page + 1) * BITS_PER_PAGE, False)
        model -= set(range(page * BITS_PER_PAGE, (page + 1) * BITS_PER_PAGE))
    found = [i for i in model if start <= i < end]
    assert b.first_set(start, end) == (min(found) if found else -1)
