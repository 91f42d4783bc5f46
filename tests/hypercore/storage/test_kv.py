"""The two backends behave the same: random batches of puts, deletes and range deletes."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypercore.storage import MemoryKV, RocksKV, StorageClosedError
from hypercore.storage.kv import KV, Op

# Few distinct bytes so keys collide, prefix each other and ranges cover some of them.
keys = st.binary(min_size=1, max_size=3).map(lambda b: bytes(x % 4 * 0x55 for x in b))
values = st.binary(max_size=6)
ops = st.one_of(
    st.tuples(keys, values, st.none()),
    st.tuples(keys, st.none(), st.none()),
    st.tuples(keys, st.none(), keys),
)
batches = st.lists(st.lists(ops, max_size=12), max_size=6)
ranges = st.lists(
    st.tuples(st.binary(max_size=3), st.binary(max_size=3), st.booleans()), max_size=5
)


def model_apply(model: dict[bytes, bytes], batch: list[Op]) -> None:
    for key, value, end in batch:
        if end is not None:
            for k in [k for k in model if key <= k < end]:
                del model[k]
        elif value is not None:
            model[key] = value
        else:
            model.pop(key, None)


def check(kv: KV, model: dict[bytes, bytes], probes: list[tuple[bytes, bytes, bool]]) -> None:
    everything = sorted(model.items())
    assert list(kv.iterate(b"", b"\xff\xff\xff\xff")) == everything
    assert list(kv.iterate(b"", b"\xff\xff\xff\xff", reverse=True)) == everything[::-1]
    for start, end, reverse in probes:
        want = [(k, v) for k, v in everything if start <= k < end]
        assert list(kv.iterate(start, end, reverse=reverse)) == (want[::-1] if reverse else want)
    for k in {k for b in probes for k in b[:2]} | set(model):
        assert kv.get(k) == model.get(k)


@settings(max_examples=60, deadline=None)
@given(batches, ranges)
def test_memory_and_rocksdb_agree(
    batch_list: list[list[Op]], probes: list[tuple[bytes, bytes, bool]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rocks = RocksKV(Path(tmp) / "db")
        mem = MemoryKV()
        model: dict[bytes, bytes] = {}
        try:
            for batch in batch_list:
                rocks.write(batch)
                mem.write(batch)
                model_apply(model, batch)
                check(mem, model, probes)
                check(rocks, model, probes)
        finally:
            rocks.close()
        reopened = RocksKV(Path(tmp) / "db")
        try:
            check(reopened, model, probes)
        finally:
            reopened.close()


@given(st.lists(st.lists(ops, max_size=40), max_size=8))
def test_memory_against_model(batch_list: list[list[Op]]) -> None:
    mem = MemoryKV()
    model: dict[bytes, bytes] = {}
    for batch in batch_list:
        mem.write(batch)
        model_apply(model, batch)
    check(mem, model, [])
    assert len(mem) == len(model)


def test_iteration_is_a_snapshot(tmp_path: Path) -> None:
    rocks = RocksKV(tmp_path / "db")
    for kv in (MemoryKV(), rocks):
        kv.write([(bytes([i]), b"v", None) for i in range(10)])
        it = kv.iterate(b"\x02", b"\x08")
        assert next(it) == (b"\x02", b"v")
        kv.write([(b"\x00", None, b"\x09")])
        assert [k for k, _ in it] == [bytes([i]) for i in range(3, 8)]
        assert list(kv.iterate(b"", b"\xff")) == [(b"\x09", b"v")]
        kv.close()
        with pytest.raises(StorageClosedError):
            kv.get(b"\x09")
        with pytest.raises(StorageClosedError):
            kv.write([])
