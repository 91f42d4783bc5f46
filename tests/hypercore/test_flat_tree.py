from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hypercore import flat_tree as f

indices = st.integers(0, 2**60)
leaves = st.integers(0, 2**59).map(lambda i: 2 * i)


def test_known_values() -> None:
    assert f.full_roots(6) == [1, 4]
    assert f.full_roots(10) == [3, 8]
    assert f.full_roots(16) == [7]
    assert f.full_roots(0) == []
    assert [f.depth(i) for i in range(8)] == [0, 1, 0, 2, 0, 1, 0, 3]
    assert f.parent(0) == 1 and f.parent(2) == 1 and f.parent(1) == 3 and f.parent(5) == 3
    assert f.children(3) == (1, 5) and f.children(2) is None
    assert f.left_child(0) == -1 and f.right_child(0) == -1
    assert f.spans(7) == (0, 14) and f.spans(4) == (4, 4)
    assert f.count(7) == 15 and f.count_leaves(7) == 8
    assert f.index(3, 1) == 23
    assert f.sibling(0) == 2 and f.sibling(3) == 11
    assert f.next_leaf(3) == 8


@given(indices)
def test_structure(i: int) -> None:
    d, o = f.depth(i), f.offset(i)
    assert f.index(d, o) == i
    p = f.parent(i)
    assert f.depth(p) == d + 1
    kids = f.children(p)
    assert kids is not None and i in kids
    assert f.sibling(f.sibling(i)) == i
    assert set(kids) == {i, f.sibling(i)}
    lo, hi = f.spans(i)
    assert (lo, hi) == (f.left_span(i), f.right_span(i))
    assert (hi - lo) // 2 + 1 == f.count_leaves(i)
    assert lo <= i <= hi and lo % 2 == 0 and hi % 2 == 0


@given(leaves)
def test_full_roots_cover_the_leaves(leaf: int) -> None:
    roots = f.full_roots(leaf)
    covered = 0
    for r in roots:
        lo, hi = f.spans(r)
        assert lo == covered
        covered = hi + 2
    assert covered == leaf
    assert len(roots) == bin(leaf // 2).count("1")


@given(st.integers(0, 2**40), st.integers(1, 2**40))
def test_patch_reaches_the_new_roots(a: int, gap: int) -> None:
    frm, to = 2 * a, 2 * (a + gap)
    patch = f.patch(frm, to)
    if frm == 0:
        assert patch == []
        return
    # Every new root is either in the patch or already a root of the old tree.
    old = set(f.full_roots(frm))
    for root in f.full_roots(to):
        assert root in old or root in patch


@given(leaves)
def test_iterator_walks_like_the_functions(leaf: int) -> None:
    ite = f.iterator(leaf)
    i = leaf
    for _ in range(20):
        assert ite.parent() == f.parent(i)
        i = f.parent(i)
        assert ite.index == i and ite.offset == f.offset(i)
        assert ite.sibling() == f.sibling(i)
        i = f.sibling(i)
    assert ite.left_span() == f.left_span(i)


def test_iterator_full_roots() -> None:
    ite = f.iterator(0)
    roots = []
    for _ in range(10):
        if not ite.full_root(22):
            break
        roots.append(ite.index)
        ite.next_tree()
    assert roots == f.full_roots(22)
