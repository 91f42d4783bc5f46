"""Hyperbee against a dict: random puts, deletes, batches (flushed or dropped), gets, ranges
and checkouts of earlier versions, driven by a hypothesis state machine."""

from __future__ import annotations

from typing import Any

import trio
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from hyperbee import Hyperbee
from hypercore import Hypercore, MemoryStorage

keys = st.binary(min_size=0, max_size=3)
values = st.binary(max_size=4)
ops = st.lists(st.tuples(st.booleans(), keys, values), max_size=20)


def _bounded(model: dict[bytes, bytes], b: dict[str, Any]) -> list[bytes]:
    """The keys in range; as in JS, ``gt`` wins over ``gte`` and ``lt`` over ``lte``."""
    b = dict(b)
    if "gt" in b:
        b.pop("gte", None)
    if "lt" in b:
        b.pop("lte", None)
    out = []
    for k in sorted(model):
        if "gt" in b and not k > b["gt"]:
            continue
        if "gte" in b and not k >= b["gte"]:
            continue
        if "lt" in b and not k < b["lt"]:
            continue
        if "lte" in b and not k <= b["lte"]:
            continue
        out.append(k)
    return out


class BeeModel(RuleBasedStateMachine):
    """Every rule opens the same in-memory core and a bee over it in its own ``trio.run``."""

    @initialize()
    def start(self) -> None:
        self.storage = MemoryStorage()
        self.model: dict[bytes, bytes] = {}
        self.versions: dict[int, dict[bytes, bytes]] = {1: {}}

    def run(self, fn: Any) -> Any:
        async def main() -> Any:
            async with Hypercore(self.storage) as core:
                bee = Hyperbee(core)
                await bee.ready()
                result = await fn(bee)
                self.versions[bee.version] = dict(self.model)
                return result

        return trio.run(main)

    @rule(key=keys, value=values)
    def put(self, key: bytes, value: bytes) -> None:
        self.model[key] = value
        self.run(lambda bee: bee.put(key, value))

    @rule(key=keys)
    def delete(self, key: bytes) -> None:
        self.model.pop(key, None)
        self.run(lambda bee: bee.delete(key))

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def delete_existing(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.model)))
        self.delete(key)

    @rule(batch=ops, flush=st.booleans(), probe=keys)
    def batch(self, batch: list[tuple[bool, bytes, bytes]], flush: bool, probe: bytes) -> None:
        pending = dict(self.model)

        async def go(bee: Hyperbee) -> None:
            b = bee.batch()
            for is_put, k, v in batch:
                if is_put:
                    await b.put(k, v)
                    pending[k] = v
                else:
                    await b.delete(k)
                    pending.pop(k, None)
                got = await b.get(probe)  # a batch reads its own writes
                assert (got.value if got else None) == pending.get(probe)
            listed = [e.key async for e in b.read()]
            assert listed == sorted(pending)
            if flush:
                await b.flush()
            else:
                await b.aclose()

        self.run(go)
        if flush:
            self.model = pending

    @rule(key=keys)
    def get(self, key: bytes) -> None:
        got = self.run(lambda bee: bee.get(key))
        assert (got.value if got else None) == self.model.get(key)

    @rule(
        bounds=st.fixed_dictionaries(
            {}, optional={"gt": keys, "gte": keys, "lt": keys, "lte": keys}
        ),
        reverse=st.booleans(),
        limit=st.none() | st.integers(0, 5),
    )
    def read(self, bounds: dict[str, Any], reverse: bool, limit: int | None) -> None:
        async def go(bee: Hyperbee) -> list[tuple[bytes, bytes]]:
            return [
                (e.key, e.value) async for e in bee.read(**bounds, reverse=reverse, limit=limit)
            ]

        got = self.run(go)
        want = _bounded(self.model, bounds)
        if reverse:
            want.reverse()
        if limit is not None:
            want = want[:limit]
        assert got == [(k, self.model[k]) for k in want]

    @rule(data=st.data())
    def checkout(self, data: st.DataObject) -> None:
        version = data.draw(st.sampled_from(sorted(self.versions)))
        expected = self.versions[version]

        async def go(bee: Hyperbee) -> None:
            async with bee.checkout(version) as old:
                assert [(e.key, e.value) async for e in old.read()] == sorted(expected.items())
                for k in list(expected)[:3]:
                    e = await old.get(k)
                    assert e is not None and e.value == expected[k]
            changed = {d.left.key if d.left else d.right.key async for d in bee.diff(version)}  # type: ignore[union-attr]
            keys_ = set(expected) | set(self.model)
            assert changed <= keys_
            assert {k for k in keys_ if expected.get(k) != self.model.get(k)} <= changed

        self.run(go)

    @invariant()
    def listing_matches(self) -> None:
        if not hasattr(self, "model"):
            return
        got = self.run(lambda bee: _listing(bee))
        assert got == sorted(self.model.items())


async def _listing(bee: Hyperbee) -> list[tuple[bytes, bytes]]:
    return [(e.key, e.value) async for e in bee.read()]


BeeModel.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
test_bee_model = BeeModel.TestCase
