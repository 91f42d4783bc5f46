"""dht-rpc's ``dht.nodes``: its nodes ordered by when they were last added (a port of
time-ordered-set 2.0.1).

Membership is by object identity, as in JS (which links the node objects themselves): adding a
node that is already in the set moves it to the newest end. The JS module writes ``prev`` and
``next`` onto the nodes; here the order lives in the set, so the nodes are left untouched and
walking from the oldest node is :meth:`NodeSet.from_oldest`.

Order: as JS ``toArray()``, :meth:`NodeSet.to_array` and iteration go oldest first;
``to_array(reverse=True)`` goes newest first (what dht-rpc's ``toArray`` asks for).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from itertools import islice
from typing import Generic, TypeVar

__all__ = ["NodeSet"]

N = TypeVar("N")


class NodeSet(Generic[N]):
    """Objects in the order they were last added; add, remove and lookup are O(1)."""

    __slots__ = ("_nodes",)

    def __init__(self) -> None:
        # id(node) -> node: the set holds the node, so its id() stays unique while it is here.
        self._nodes: OrderedDict[int, N] = OrderedDict()

    def has(self, node: object) -> bool:
        return id(node) in self._nodes

    def __contains__(self, node: object) -> bool:
        return id(node) in self._nodes

    def add(self, node: N) -> N:
        """Make ``node`` the newest (moving it there if it is already in the set)."""
        key = id(node)
        nodes = self._nodes
        if key in nodes:
            nodes.move_to_end(key)
        else:
            nodes[key] = node
        return node

    def remove(self, node: N) -> N:
        """Take ``node`` out (nothing happens if it is not in the set); returns it."""
        self._nodes.pop(id(node), None)
        return node

    @property
    def oldest(self) -> N | None:
        return next(iter(self._nodes.values()), None)

    @property
    def latest(self) -> N | None:
        return next(reversed(self._nodes.values()), None)

    def to_array(self, limit: int | None = None, reverse: bool = False) -> list[N]:
        """Up to ``limit`` nodes, oldest first (newest first with ``reverse``).

        As in JS, ``None`` or a negative limit means all of them.
        """
        values = reversed(self._nodes.values()) if reverse else iter(self._nodes.values())
        if limit is None or limit < 0:
            return list(values)
        return list(islice(values, limit))

    def from_oldest(self, n: int) -> list[N]:
        """The ``n`` oldest nodes, oldest first (JS walks ``oldest`` and ``.next``)."""
        return list(islice(self._nodes.values(), max(n, 0)))

    def from_latest(self, n: int) -> list[N]:
        """The ``n`` newest nodes, newest first (JS walks ``latest`` and ``.prev``)."""
        return list(islice(reversed(self._nodes.values()), max(n, 0)))

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[N]:
        """Oldest first, over a snapshot (the set may change while this runs)."""
        return iter(list(self._nodes.values()))

    def __repr__(self) -> str:
        return f"NodeSet({len(self._nodes)} nodes)"
