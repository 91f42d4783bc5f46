"""Hyperbee's API beyond the model test: encodings, subs, cas, batches as context managers,
the header, read-only bees and checkouts, watchers."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from hyperbee import Hyperbee, HyperbeeError, Metadata
from hypercore import Hypercore, MemoryStorage
from protomux import encoding as c


async def test_encodings_and_codec_objects() -> None:
    async with Hypercore(MemoryStorage()) as core, Hyperbee(core, key_encoding="utf-8") as bee:
        await bee.put("n", 7, value_encoding=c.uint)
        e = await bee.get("n", value_encoding=c.uint)
        assert e is not None and e.value == 7 and e.key == "n"
        await bee.put("j", {"a": [1, 2]}, value_encoding="json")
        e = await bee.get("j", value_encoding="json")
        assert e is not None and e.value == {"a": [1, 2]}
        raw = await bee.get("j", value_encoding="binary")
        assert raw is not None and raw.value == b'{"a":[1,2]}'

        class Upper:
            def encode(self, v: str) -> bytes:
                return v.upper().encode()

            def decode(self, b: bytes) -> str:
                return b.decode().lower()

        await bee.put("u", "hello", value_encoding=Upper())
        assert (await bee.get("u", value_encoding="utf-8")).value == "HELLO"  # type: ignore[union-attr]
        with pytest.raises(HyperbeeError):
            await bee.put("bad", object(), value_encoding="json")


async def test_subs_keep_their_keys_apart() -> None:
    async with Hypercore(MemoryStorage()) as core, Hyperbee(core, key_encoding="utf-8") as bee:
        a, b = bee.sub("a"), bee.sub("b")
        nested = a.sub("x", sep="/")
        await a.put("k", b"1")
        await b.put("k", b"2")
        await nested.put("k", b"3")
        await bee.put("k", b"0")
        assert (await a.get("k")).value == b"1"  # type: ignore[union-attr]
        assert (await nested.get("k")).value == b"3"  # type: ignore[union-attr]
        assert [e.key async for e in bee.read()] == ["a\x00k", "a\x00x/k", "b\x00k", "k"]
        assert [e.key async for e in a.read()] == ["k", "x/k"]
        assert [e.key async for e in nested.read()] == ["k"]
        await a.delete("k")
        assert await a.get("k") is None and (await b.get("k")) is not None


async def test_cas_sync_and_async_and_delete() -> None:
    async with Hypercore(MemoryStorage()) as core, Hyperbee(core, value_encoding="json") as bee:
        await bee.put(b"k", 1)
        await bee.put(b"k", 2, cas=lambda prev, new: prev.value == 5)
        assert (await bee.get(b"k")).value == 1  # type: ignore[union-attr]

        async def inc(prev: Any, new: Any) -> bool:
            await trio.sleep(0)
            return bool(prev.value + 1 == new.value)

        await bee.put(b"k", 2, cas=inc)
        assert (await bee.get(b"k")).value == 2  # type: ignore[union-attr]
        length = core.length
        await bee.delete(b"k", cas=lambda prev, new: False)
        await bee.delete(b"missing")
        assert core.length == length
        await bee.delete(b"k", cas=lambda prev, new: new.value is None)
        assert await bee.get(b"k") is None


async def test_batch_context_manager_flushes_or_drops() -> None:
    async with Hypercore(MemoryStorage()) as core, Hyperbee(core) as bee:
        async with bee.batch() as b:
            await b.put(b"a", b"1")
            await b.put(b"b", b"2")
            assert core.length == 1  # the header only: nothing else before the flush
        assert core.length == 3  # header + 2 blocks, one append
        with pytest.raises(RuntimeError):
            async with bee.batch() as b:
                await b.put(b"c", b"3")
                raise RuntimeError("boom")
        assert await bee.get(b"c") is None and core.length == 3
        await bee.put(b"d", b"4")  # the lock was released
        assert core.length == 4


async def test_batch_holds_the_write_lock() -> None:
    async with Hypercore(MemoryStorage()) as core, Hyperbee(core) as bee:
        order: list[str] = []
        b = bee.batch()
        await b.put(b"a", b"1")

        async def writer() -> None:
            await bee.put(b"z", b"9")
            order.append("put")

        async with trio.open_nursery() as n:
            n.start_soon(writer)
            await trio.sleep(0.01)
            order.append("flush")
            await b.flush()
        assert order == ["flush", "put"]
        assert [e.key async for e in bee.read()] == [b"a", b"z"]


async def test_header_metadata_and_versions() -> None:
    meta = Metadata(content_feed=bytes(32), user_data=b"u")
    async with Hypercore(MemoryStorage()) as core, Hyperbee(core, metadata=meta) as bee:
        assert await bee.get_header() is None and bee.version == 1
        await bee.put(b"a", b"1")
        header = await bee.get_header()
        assert header is not None and header.metadata == meta and header.protocol == "hyperbee"
        assert await Hyperbee.is_hyperbee(core)
        await bee.put(b"a", b"2")
        async with bee.snapshot() as snap, bee.checkout(2) as old:
            await bee.put(b"a", b"3")
            assert (await snap.get(b"a")).value == b"2"  # type: ignore[union-attr]
            assert (await old.get(b"a")).value == b"1"  # type: ignore[union-attr]
            with pytest.raises(HyperbeeError):
                await old.put(b"x", b"y")
            assert [h.type async for h in bee.history()] == ["put", "put", "put"]
            assert [h.seq async for h in bee.history(reverse=True, limit=2)] == [3, 2]
            assert (await bee.get_by_seq(1)).value == b"1"


async def test_readonly_bee_refuses_writes() -> None:
    async with Hypercore(MemoryStorage()) as core, Hyperbee(core, readonly=True) as bee:
        with pytest.raises(HyperbeeError):
            await bee.put(b"a", b"1")
        assert core.length == 0


async def test_watch_reports_changes_in_its_range_only() -> None:
    async with Hypercore(MemoryStorage()) as core, Hyperbee(core, key_encoding="utf-8") as bee:
        await bee.put("a", b"0")
        seen: list[tuple[int, int]] = []
        async with bee.watch(gte="m") as w:

            async def consume() -> None:
                async for current, previous in w:
                    seen.append((current.version, previous.version))
                    if len(seen) == 2:
                        return

            with trio.fail_after(5):
                async with trio.open_nursery() as n:
                    n.start_soon(consume)
                    await trio.sleep(0.01)
                    await bee.put("b", b"1")  # outside the range: not reported alone
                    await trio.sleep(0.01)
                    await bee.put("n", b"2")
                    await trio.sleep(0.01)
                    await bee.put("z", b"3")
        assert seen == [(4, 3), (5, 4)]  # the put of "b" moved it on silently


async def test_get_and_watch_follows_one_key() -> None:
    async with Hypercore(MemoryStorage()) as core, Hyperbee(core, key_encoding="utf-8") as bee:
        await bee.put("k", b"1")
        async with bee.get_and_watch("k") as w:
            assert w.node is not None and w.node.value == b"1"
            values: list[Any] = []
            with trio.fail_after(5):
                async with trio.open_nursery() as n:

                    async def consume() -> None:
                        async for node in w:
                            values.append(None if node is None else node.value)
                            if len(values) == 3:
                                return

                    n.start_soon(consume)
                    await trio.sleep(0.01)
                    await bee.put("other", b"x")  # no change of "k"
                    await trio.sleep(0.01)
                    await bee.put("k", b"2")
                    await trio.sleep(0.01)
                    await bee.delete("k")
                    await trio.sleep(0.01)
                    await core.truncate(2)  # back to k = 1, forced
            assert values == [b"2", None, b"1"]
            assert w.node is not None and w.node.value == b"1"


async def test_live_history_goes_on_with_new_writes() -> None:
    async with Hypercore(MemoryStorage()) as core, Hyperbee(core) as bee:
        await bee.put(b"a", b"1")
        seen: list[tuple[str, int]] = []
        with trio.fail_after(5):
            async with trio.open_nursery() as n:

                async def follow() -> None:
                    async for h in bee.history(live=True):
                        seen.append((h.type, h.seq))
                        if len(seen) == 3:
                            return

                n.start_soon(follow)
                await trio.sleep(0.01)
                await bee.put(b"b", b"2")
                await trio.sleep(0.01)
                await bee.delete(b"a")
        assert seen == [("put", 1), ("put", 2), ("del", 3)]
        with pytest.raises(HyperbeeError):
            async for _ in bee.history(live=True, reverse=True):
                pass
