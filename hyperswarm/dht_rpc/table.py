"""The Kademlia routing table of dht-rpc (a port of kademlia-routing-table 1.0.6).

The table has one row per bit of its own id. A node goes to the row numbered by the length of
the prefix its id shares with the table's id, and each row keeps at most ``k`` nodes sorted by
id. Nodes are any objects with an ``id`` of the table id's length (32 bytes in dht-rpc); the
table stores the objects themselves, so dht-rpc can keep the same object here and in its
:class:`~hyperswarm.dht_rpc.nodes.NodeSet`.

As in the JS module:

* rows are made when a node first lands in them (``rows[i]`` is ``None`` until then);
* adding a node whose id is already in its row replaces the stored object, in place;
* the table's own id is *not* refused: it lands in the last row, like an id differing only in
  the last bit (dht-rpc checks for its own id before calling :meth:`RoutingTable.add`);
* :meth:`RoutingTable.closest` walks the rows from the target's row towards the shorter shared
  prefixes, then towards the longer ones, taking each row's nodes in id order; it does not sort
  by XOR distance.

The JS events are callbacks: ``on_row(row)`` when a row is made, ``on_full_row(row, node)``
when ``node`` was refused by a full row, ``on_add(row, node)`` when a node was inserted (not
when one replaced another with the same id) and ``on_remove(row, node)`` when one left.
"""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["DEFAULT_K", "HasId", "RoutingTable", "Row"]

DEFAULT_K = 20


class HasId(Protocol):
    """What the table needs of a node: its id."""

    @property
    def id(self) -> bytes: ...


N = TypeVar("N", bound=HasId)


def _node_id(node: HasId) -> bytes:
    return node.id


class Row(Generic[N]):
    """The nodes whose ids share exactly ``index`` leading bits with the table's id.

    ``nodes`` is sorted by id. ``data`` is free for the owner (JS has the same slot).
    ``byte_offset`` is the first byte where the ids of this row may differ from each other.
    """

    __slots__ = ("byte_offset", "data", "index", "nodes", "table")

    def __init__(self, table: RoutingTable[N], index: int) -> None:
        self.data: Any = None
        self.byte_offset = index >> 3
        self.index = index
        self.table = table
        self.nodes: list[N] = []

    def _search(self, id: bytes) -> tuple[int, bool]:
        i = bisect_left(self.nodes, id, key=_node_id)
        return i, i < len(self.nodes) and self.nodes[i].id == id

    def add(self, node: N) -> bool:
        """Insert ``node`` (or replace the node with its id); ``False`` if the row is full."""
        i, found = self._search(node.id)
        if found:
            self.nodes[i] = node
            return True
        table = self.table
        if len(self.nodes) >= table.k:
            if table.on_full_row is not None:
                table.on_full_row(self, node)
            return False
        self.nodes.insert(i, node)
        if table.on_add is not None:
            table.on_add(self, node)
        return True

    def remove(self, id: bytes) -> bool:
        i, found = self._search(id)
        if not found:
            return False
        node = self.nodes.pop(i)
        if self.table.on_remove is not None:
            self.table.on_remove(self, node)
        return True

    def get(self, id: bytes) -> N | None:
        i, found = self._search(id)
        return self.nodes[i] if found else None

    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        return f"Row(index={self.index}, nodes={len(self.nodes)})"


class RoutingTable(Generic[N]):
    """A k-bucket routing table around ``id`` (see the module docstring)."""

    __slots__ = (
        "_created",
        "_id",
        "_id_int",
        "_k",
        "_rows",
        "_size",
        "on_add",
        "on_full_row",
        "on_remove",
        "on_row",
    )

    def __init__(
        self,
        id: bytes,
        k: int = DEFAULT_K,
        on_full_row: Callable[[Row[N], N], None] | None = None,
        *,
        on_row: Callable[[Row[N]], None] | None = None,
        on_add: Callable[[Row[N], N], None] | None = None,
        on_remove: Callable[[Row[N], N], None] | None = None,
    ) -> None:
        if not id:
            raise ValueError("the table id must not be empty")
        if k < 0:
            raise ValueError("k must not be negative")
        self._id = bytes(id)
        self._id_int = int.from_bytes(self._id, "big")
        self._k = k or DEFAULT_K  # as JS: 0 means the default
        self._size = 0
        self._rows: list[Row[N] | None] = [None] * (len(self._id) * 8)
        self._created: list[int] = []  # the indexes of the rows that exist, ascending
        self.on_full_row = on_full_row
        self.on_row = on_row
        self.on_add = on_add
        self.on_remove = on_remove

    @property
    def id(self) -> bytes:
        return self._id

    @property
    def k(self) -> int:
        return self._k

    @property
    def rows(self) -> list[Row[N] | None]:
        """One slot per bit of the id; ``None`` for a row no node has landed in yet."""
        return self._rows

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return self._size

    def _diff(self, id: bytes) -> int:
        """The row of ``id``: how many leading bits it shares with the table id (the last row
        for the table id itself)."""
        if len(id) != len(self._id):
            raise ValueError(f"ids must be {len(self._id)} bytes, got {len(id)}")
        x = int.from_bytes(id, "big") ^ self._id_int
        if x == 0:
            return len(self._rows) - 1
        return len(self._rows) - x.bit_length()

    def add(self, node: N) -> bool:
        """Put ``node`` in its row; ``False`` (and ``on_full_row``) when that row is full and
        has no node with this id."""
        i = self._diff(node.id)
        row = self._rows[i]
        if row is None:
            row = self._rows[i] = Row(self, i)
            insort(self._created, i)
            if self.on_row is not None:
                self.on_row(row)
        before = len(row.nodes)
        if not row.add(node):
            return False
        self._size += len(row.nodes) - before
        return True

    def remove(self, id: bytes) -> bool:
        row = self._rows[self._diff(id)]
        if row is None or not row.remove(id):
            return False
        self._size -= 1
        return True

    def get(self, id: bytes) -> N | None:
        row = self._rows[self._diff(id)]
        return None if row is None else row.get(id)

    def has(self, id: bytes) -> bool:
        return self.get(id) is not None

    def random(self, rng: random.Random) -> N | None:
        """A node picked uniformly with ``rng`` (``None`` when the table is empty)."""
        n = int(rng.random() * self._size)
        for row in self._rows:
            if row is None:
                continue
            if n < len(row.nodes):
                return row.nodes[n]
            n -= len(row.nodes)
        return None

    def closest(self, target: bytes, k: int | None = None) -> list[N]:
        """Up to ``k`` (default: the table's k) nodes near ``target``, in JS's order: the
        target's row and then the rows of shorter shared prefix, then the rows of longer
        shared prefix; within a row, by id."""
        if not k:
            k = self._k
        result: list[N] = []
        if k < 0:
            return result
        d = self._diff(target)
        rows = self._rows
        created = self._created
        split = bisect_right(created, d)
        for j in (*range(split - 1, -1, -1), *range(split, len(created))):
            row = rows[created[j]]
            if row is None or not row.nodes:
                continue
            result.extend(row.nodes[: k - len(result)])
            if len(result) >= k:
                break
        return result

    def to_array(self) -> list[N]:
        """Every node: the last row first, each row in id order (JS ``closest(id, Infinity)``)."""
        result: list[N] = []
        for row in reversed(self._rows):
            if row is not None:
                result.extend(row.nodes)
        return result

    def __repr__(self) -> str:
        return f"RoutingTable(id={self._id.hex()}, k={self._k}, size={self._size})"
