"""hyperswarm.dht_rpc.table (routing table), .nodes (node set by last seen) and .nat (NAT
sampler): the JS modules' rules on small hand-made cases (the interop tests compare with JS on
large random ones)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from hyperswarm.dht_rpc.nat import NatSampler
from hyperswarm.dht_rpc.nodes import NodeSet
from hyperswarm.dht_rpc.table import RoutingTable, Row


@dataclass(eq=False)
class Node:
    id: bytes
    name: str = ""


def one(b: int) -> bytes:
    return bytes([b])


# --- RoutingTable --------------------------------------------------------------------------


def test_rows_are_one_per_bit_and_made_on_demand() -> None:
    made: list[int] = []
    table: RoutingTable[Node] = RoutingTable(bytes(32), on_row=lambda row: made.append(row.index))
    assert len(table.rows) == 256 and all(r is None for r in table.rows)
    assert table.id == bytes(32) and table.k == 20 and len(table) == 0
    top = bytes([0x80]) + bytes(31)
    last = bytes(31) + b"\x01"
    assert table.add(Node(top)) and table.add(Node(last))
    assert made == [0, 255]
    row0, row255 = table.rows[0], table.rows[255]
    assert row0 is not None and row255 is not None
    assert row0.index == 0 and row0.byte_offset == 0 and row0.data is None
    assert row255.byte_offset == 31 and [n.id for n in row255.nodes] == [last]
    assert len(table) == table.size == 2


def test_add_get_has_remove() -> None:
    table: RoutingTable[Node] = RoutingTable(one(0x00))  # 1-byte ids: 8 rows
    nodes = [Node(one(b)) for b in (0x80, 0x81, 0x40, 0x01, 0x02)]
    for n in nodes:
        assert table.add(n)
    assert len(table) == 5
    assert table.get(one(0x40)) is nodes[2]
    assert table.has(one(0x01)) and not table.has(one(0x03))
    assert table.get(one(0x03)) is None
    assert table.remove(one(0x81)) and not table.remove(one(0x81))
    assert not table.remove(one(0x20))  # its row was never made
    assert len(table) == 4 and not table.has(one(0x81))


def test_same_id_replaces_the_stored_object_in_place() -> None:
    added: list[bytes] = []
    table: RoutingTable[Node] = RoutingTable(
        one(0x00), k=2, on_add=lambda row, node: added.append(node.id)
    )
    a, b = Node(one(0x80), "a"), Node(one(0x90), "b")
    assert table.add(a) and table.add(b)
    a2 = Node(one(0x80), "a2")
    assert table.add(a2)  # the row is full, but the id is there: replaced
    assert table.get(one(0x80)) is a2 and len(table) == 2
    assert added == [one(0x80), one(0x90)]  # a replacement is not an add


def test_own_id_is_not_refused_and_goes_to_the_last_row() -> None:
    table: RoutingTable[Node] = RoutingTable(one(0x55))
    assert table.add(Node(one(0x55)))
    row = table.rows[7]
    assert row is not None and [n.id for n in row.nodes] == [one(0x55)]
    assert table.has(one(0x55))


def test_full_row_refuses_and_reports() -> None:
    full: list[tuple[int, bytes]] = []

    def on_full(row: Row[Node], node: Node) -> None:
        full.append((row.index, node.id))

    table: RoutingTable[Node] = RoutingTable(one(0x00), k=2, on_full_row=on_full)
    assert table.add(Node(one(0x80))) and table.add(Node(one(0xC0)))
    assert not table.add(Node(one(0xA0)))
    assert full == [(0, one(0xA0))]
    assert len(table) == 2 and not table.has(one(0xA0))
    assert table.add(Node(one(0x40)))  # another row


def test_remove_callback() -> None:
    removed: list[bytes] = []
    table: RoutingTable[Node] = RoutingTable(
        one(0x00), on_remove=lambda row, node: removed.append(node.id)
    )
    table.add(Node(one(0x10)))
    table.remove(one(0x10))
    table.remove(one(0x10))
    assert removed == [one(0x10)]


def test_row_nodes_are_sorted_by_id() -> None:
    table: RoutingTable[Node] = RoutingTable(one(0x00), k=100)
    for b in (0xF0, 0x80, 0xC3, 0x81, 0xFF, 0x9A):
        table.add(Node(one(b)))
    row = table.rows[0]
    assert row is not None
    assert [n.id[0] for n in row.nodes] == [0x80, 0x81, 0x9A, 0xC3, 0xF0, 0xFF]


def test_closest_walks_rows_like_js() -> None:
    # Table id 0x00; rows by leading zero count. Target 0x30 is in row 2.
    table: RoutingTable[Node] = RoutingTable(one(0x00), k=20)
    for b in (0x80, 0xFF, 0x40, 0x7F, 0x20, 0x3F, 0x10, 0x01):
        table.add(Node(one(b)))
    ids = [n.id[0] for n in table.closest(one(0x30))]
    # row 2, then rows 1, 0 (each in id order), then rows 3, 7
    assert ids == [0x20, 0x3F, 0x40, 0x7F, 0x80, 0xFF, 0x10, 0x01]
    assert [n.id[0] for n in table.closest(one(0x30), 3)] == [0x20, 0x3F, 0x40]
    # 0x3F is closer to 0x30 by XOR than 0x20, but rows are not sorted by distance
    assert [n.id[0] for n in table.closest(one(0x30), 1)] == [0x20]
    assert table.closest(one(0x30), 0) == table.closest(one(0x30))  # 0 means k, as JS
    assert table.closest(one(0x30), -1) == []


def test_to_array_is_last_row_first() -> None:
    table: RoutingTable[Node] = RoutingTable(one(0x00))
    for b in (0x80, 0xFF, 0x40, 0x01, 0x02, 0x03):
        table.add(Node(one(b)))
    assert [n.id[0] for n in table.to_array()] == [0x01, 0x02, 0x03, 0x40, 0x80, 0xFF]
    assert table.to_array() == table.closest(table.id, 1000)


def test_random_covers_every_node_and_handles_empty() -> None:
    rng = random.Random(3)
    table: RoutingTable[Node] = RoutingTable(bytes(32))
    assert table.random(rng) is None
    nodes = [Node(rng.randbytes(32)) for _ in range(30)]
    for n in nodes:
        table.add(n)
    seen = set()
    for _ in range(2000):
        picked = table.random(rng)
        assert picked is not None
        seen.add(id(picked))
    assert seen == {id(n) for n in table.to_array()}


def test_ids_of_another_length_are_refused() -> None:
    table: RoutingTable[Node] = RoutingTable(bytes(32))
    with pytest.raises(ValueError):
        table.add(Node(bytes(31)))
    with pytest.raises(ValueError):
        table.closest(bytes(33))
    with pytest.raises(ValueError):
        RoutingTable(b"")


def test_k_zero_means_default() -> None:
    assert RoutingTable(bytes(32), k=0).k == 20
    with pytest.raises(ValueError):
        RoutingTable(bytes(32), k=-1)


def test_size_tracks_many_adds_and_removes() -> None:
    rng = random.Random(8)
    table: RoutingTable[Node] = RoutingTable(rng.randbytes(32), k=3)
    ids = [rng.randbytes(32) for _ in range(300)]
    for i in ids:
        table.add(Node(i))
    assert len(table) == len(table.to_array())
    assert all(r is None or len(r.nodes) <= 3 for r in table.rows)
    for i in ids[:150]:
        table.remove(i)
    assert len(table) == len(table.to_array())
    assert all(table.get(n.id) is n for n in table.to_array())


# --- NodeSet -------------------------------------------------------------------------------


def test_node_set_orders_by_last_add() -> None:
    s: NodeSet[Node] = NodeSet()
    assert s.oldest is None and s.latest is None and len(s) == 0 and s.to_array() == []
    a, b, c = Node(b"a"), Node(b"b"), Node(b"c")
    assert s.add(a) is a
    s.add(b)
    s.add(c)
    assert list(s) == [a, b, c] and s.oldest is a and s.latest is c
    s.add(a)  # seen again: now the newest
    assert s.to_array() == [b, c, a]
    assert s.to_array(reverse=True) == [a, c, b]
    assert s.to_array(limit=2) == [b, c] and s.to_array(2, reverse=True) == [a, c]
    assert s.to_array(limit=0) == [] and s.to_array(limit=-1) == [b, c, a]
    assert s.from_oldest(2) == [b, c] and s.from_oldest(10) == [b, c, a]
    assert s.from_latest(1) == [a]
    assert len(s) == 3


def test_node_set_is_by_identity() -> None:
    s: NodeSet[Node] = NodeSet()
    a, twin = Node(b"x"), Node(b"x")
    s.add(a)
    assert a in s and s.has(a) and twin not in s
    assert s.remove(twin) is twin and len(s) == 1  # not there: nothing happens
    assert s.remove(a) is a and a not in s and len(s) == 0
    assert s.oldest is None and s.latest is None


def test_node_set_iteration_survives_removal() -> None:
    s: NodeSet[Node] = NodeSet()
    nodes = [Node(bytes([i])) for i in range(5)]
    for n in nodes:
        s.add(n)
    for n in s:
        s.remove(n)
    assert len(s) == 0


def test_node_set_large_churn() -> None:
    rng = random.Random(2)
    s: NodeSet[Node] = NodeSet()
    nodes = [Node(bytes([i % 256, i // 256])) for i in range(500)]
    model: list[Node] = []
    for _ in range(3000):
        n = rng.choice(nodes)
        if rng.random() < 0.6:
            s.add(n)
            if n in model:
                model.remove(n)
            model.append(n)
        else:
            s.remove(n)
            if n in model:
                model.remove(n)
    assert s.to_array() == model
    assert s.oldest is (model[0] if model else None)
    assert s.latest is (model[-1] if model else None)


# --- NatSampler ----------------------------------------------------------------------------


def state(s: NatSampler) -> tuple[str | None, int, int, int]:
    return s.host, s.port, s.size, s.threshold


def test_nat_first_sample_is_believed() -> None:
    s = NatSampler()
    assert state(s) == (None, 0, 0, 0)
    assert s.add("1.2.3.4", 5000) == 1
    assert state(s) == ("1.2.3.4", 5000, 1, 1)


def test_nat_changing_ports_give_port_zero() -> None:
    s = NatSampler()
    s.add("1.2.3.4", 5000)
    assert s.add("1.2.3.4", 5001) == 1
    assert (s.host, s.port) == ("1.2.3.4", 0)
    s.add("1.2.3.4", 5002)
    assert (s.host, s.port) == ("1.2.3.4", 0)


def test_nat_disagreeing_hosts_give_nothing() -> None:
    s = NatSampler()
    s.add("1.1.1.1", 1)
    s.add("2.2.2.2", 1)
    assert (s.host, s.port) == (None, 0)


def test_nat_thresholds() -> None:
    s = NatSampler()
    expected = [1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 9, 10, 11, 12, 13]
    for i in range(20):
        s.add("1.2.3.4", 4000)
        assert s.threshold == expected[min(i, 15)]
    assert s.size == 16


def test_nat_stable_address_keeps_full_hits() -> None:
    s = NatSampler()
    hits = [s.add("1.2.3.4", 4000) for _ in range(40)]
    assert hits[:16] == list(range(1, 17)) and hits[16:] == [16] * 24
    assert (s.host, s.port) == ("1.2.3.4", 4000)


def test_nat_a_few_outliers_are_tolerated() -> None:
    s = NatSampler()
    for i in range(16):
        if i in (5, 11):
            s.add("6.6.6.6", 9)
        else:
            s.add("1.2.3.4", 4000)
    assert (s.host, s.port) == ("1.2.3.4", 4000)  # 14 hits >= threshold 13


def test_nat_hits_count_occurrences_in_the_window() -> None:
    rng = random.Random(4)
    s = NatSampler()
    for _ in range(500):
        s.add(rng.choice(["a", "b"]), rng.choice([1, 2]))
        samples = s._samples
        assert len(samples) <= 32
        for obj in {id(x): x for x in samples}.values():
            assert obj.hits == sum(1 for x in samples if x is obj)
