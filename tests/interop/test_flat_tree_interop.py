"""flat-tree against the pinned JS package, on random indices up to and above 2^32."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from hypercore import flat_tree as f

from .jsenv import JSError, JSHelper

N = 2000
# JS numbers are exact up to 2^53; results such as spans reach twice the index.
TOP = 2**50


def random_indices(rng: random.Random, n: int, even: bool = False) -> list[int]:
    out = []
    for _ in range(n):
        bits = rng.choice([4, 8, 16, 31, 32, 33, 40, 48, 50])
        i = rng.randrange(1 << bits) % TOP
        out.append(i & ~1 if even else i)
    return out


def norm(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value


UNARY: list[tuple[str, Callable[[int], Any], bool]] = [
    ("depth", f.depth, False),
    ("offset", f.offset, False),
    ("parent", f.parent, False),
    ("sibling", f.sibling, False),
    ("children", f.children, False),
    ("leftChild", f.left_child, False),
    ("rightChild", f.right_child, False),
    ("leftSpan", f.left_span, False),
    ("rightSpan", f.right_span, False),
    ("spans", f.spans, False),
    ("count", f.count, False),
    ("countLeaves", f.count_leaves, False),
    ("nextLeaf", f.next_leaf, False),
    ("fullRoots", f.full_roots, True),
    ("futureRoots", f.future_roots, True),
]


@pytest.mark.parametrize(("js_name", "fn", "even"), UNARY, ids=[u[0] for u in UNARY])
def test_unary_functions(js: JSHelper, js_name: str, fn: Callable[[int], Any], even: bool) -> None:
    rng = random.Random(js_name)
    args = random_indices(rng, N, even) + list(range(64))
    if even:
        args = [a & ~1 for a in args]
    theirs = js.call("flat." + js_name, [[a] for a in args])
    for a, t in zip(args, theirs, strict=True):
        assert not isinstance(t, JSError), (a, t)
        assert norm(fn(a)) == t, (js_name, a)


def test_index(js: JSHelper) -> None:
    rng = random.Random(1)
    args = [(d, rng.randrange(1 << (45 - d))) for d in (rng.randrange(40) for _ in range(N))]
    theirs = js.call("flat.index", args)
    assert [f.index(d, o) for d, o in args] == theirs


def test_patch(js: JSHelper) -> None:
    rng = random.Random(2)
    args = []
    for _ in range(N):
        a, b = sorted(random_indices(rng, 2, even=True))
        args.append((a, b))
    args += [(2 * a, 2 * b) for a in range(12) for b in range(12)]
    theirs = js.call("flat.patch", args)
    for (a, b), t in zip(args, theirs, strict=True):
        assert f.patch(a, b) == t, (a, b)


STEPS = [
    "parent",
    "sibling",
    "leftChild",
    "rightChild",
    "next",
    "prev",
    "leftSpan",
    "rightSpan",
    "nextTree",
    "prevTree",
]
PY_STEP = {
    "parent": "parent",
    "sibling": "sibling",
    "leftChild": "left_child",
    "rightChild": "right_child",
    "next": "next",
    "prev": "prev",
    "leftSpan": "left_span",
    "rightSpan": "right_span",
    "nextTree": "next_tree",
    "prevTree": "prev_tree",
    "isLeft": "is_left",
    "isRight": "is_right",
    "count": "count",
    "countLeaves": "count_leaves",
    "peekLeftSpan": "peek_left_span",
    "peekRightSpan": "peek_right_span",
    "contains": "contains",
    "isRoot": "is_root",
    "fullRoot": "full_root",
}


def test_iterator(js: JSHelper) -> None:
    rng = random.Random(3)
    runs = []
    for start in random_indices(rng, 400, even=False) + list(range(32)):
        start %= 2**40
        steps: list[list[Any]] = []
        for _ in range(25):
            kind = rng.random()
            if kind < 0.6:
                steps.append([rng.choice(STEPS)])
            elif kind < 0.75:
                steps.append([rng.choice(["isLeft", "isRight", "count", "countLeaves"])])
                steps.append([rng.choice(["peekLeftSpan", "peekRightSpan"])])
            elif kind < 0.85:
                steps.append(["contains", rng.randrange(2**41)])
                steps.append(["isRoot", rng.randrange(2**40)])
            else:
                steps.append(["leftSpan"])
        runs.append((start, steps))
    # fullRoot grows a leaf that starts a tree (how merkle-tree.js walks the roots); from any
    # other leaf the JS offset turns fractional, so only the walk it is made for is compared.
    for _ in range(300):
        to = rng.randrange(2 ** rng.randrange(1, 42)) & ~1
        runs.append((0, [["fullRoot", to], ["nextTree"]] * (bin(to).count("1") + 1)))
    theirs = js.call("flat.iterate", [[start, steps] for start, steps in runs])
    for (start, steps), t in zip(runs, theirs, strict=True):
        ite = f.iterator(start)
        ours = []
        for name, *args in steps:
            ret = getattr(ite, PY_STEP[name])(*args)
            ours.append([ret, ite.index, ite.offset, ite.factor])
        assert ours == t, (start, steps)
