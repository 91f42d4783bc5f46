from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypercore import Hypercore, crypto, errors
from hypercore.storage import MemoryStorage, StorageLockedError

SEED = bytes(range(32))


async def test_append_get_and_properties() -> None:
    async with Hypercore(MemoryStorage(), key_pair=crypto.key_pair(SEED)) as core:
        assert core.writable and core.length == 0 and core.byte_length == 0
        assert core.key == crypto.core_key(crypto.key_pair(SEED).public_key)
        assert core.discovery_key == crypto.discovery_key(core.key)
        assert core.id is not None and len(core.id) == 52
        assert await core.append(b"hello") == (1, 5)
        assert await core.append([b"world", b"!"]) == (3, 11)
        assert core.length == 3 and core.byte_length == 11 and core.contiguous_length == 3
        assert [await core.get(i) for i in range(3)] == [b"hello", b"world", b"!"]
        assert await core.has(0) and await core.has(0, 3) and not await core.has(3)
        assert await core.seek(0) == (0, 0)
        assert await core.seek(7) == (1, 2)
        assert await core.seek(10) == (2, 0)
        info = await core.info()
        assert (info.length, info.byte_length, info.fork) == (3, 11, 0)
        # REFERENCE.md section 3: tree hash of "hello", "world" is 28ac717e...215b
        assert (await core.tree_hash(2)).hex().startswith("28ac717e")
        assert [b async for b in core.read()] == [b"hello", b"world", b"!"]
        assert [b async for b in core.read(1, 2)] == [b"world"]


async def test_value_encodings() -> None:
    async with Hypercore(MemoryStorage(), value_encoding="json") as core:
        await core.append([{"a": 1}, [1, 2.5]])
        assert await core.get(0) == {"a": 1}
        assert await core.get(1, value_encoding="utf-8") == "[1,2.5]"
        assert await core.get(0, value_encoding="binary") == b'{"a":1}'
        text = core.session(value_encoding="utf-8")
        await text.append("é")
        assert await text.get(2) == "é"
        await text.aclose()


async def test_get_waits_for_append_and_times_out() -> None:
    async with Hypercore(MemoryStorage()) as core:
        with pytest.raises(errors.BlockNotAvailableError):
            await core.get(0, wait=False)
        with pytest.raises(errors.RequestTimeoutError):
            await core.get(0, timeout=0.05)
        got: list[bytes] = []

        async def reader() -> None:
            got.append(await core.get(1))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await trio.sleep(0.01)
            await core.append([b"a", b"b"])
        assert got == [b"b"]


async def test_wait_for_append_and_live_read() -> None:
    async with Hypercore(MemoryStorage()) as core:
        await core.append(b"0")
        seen: list[bytes] = []

        async def follow() -> None:
            async for block in core.read(live=True):
                seen.append(block)
                if len(seen) == 3:
                    return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow)
            await trio.sleep(0.01)
            await core.append(b"1")
            await trio.sleep(0.01)
            await core.append(b"2")
        assert seen == [b"0", b"1", b"2"]
        with pytest.raises(errors.RequestTimeoutError):
            await core.wait_for_append(timeout=0.01)


async def test_truncate_and_fork() -> None:
    async with Hypercore(MemoryStorage()) as core:
        await core.append([b"a", b"bb", b"ccc"])
        hash2 = await core.tree_hash(2)
        snap = core.snapshot()
        await core.truncate(2)
        assert (core.length, core.byte_length, core.fork) == (2, 3, 1)
        assert await core.tree_hash() == hash2
        assert snap.length == 3
        with pytest.raises(errors.SnapshotNotAvailableError):
            await snap.get(2)
        assert await snap.update()
        assert snap.length == 2
        await snap.aclose()
        await core.append(b"d")
        assert [b async for b in core.read()] == [b"a", b"bb", b"d"]
        await core.truncate(1, fork=7)
        assert core.fork == 7
        with pytest.raises(errors.InvalidOperationError):
            await core.truncate(5)


async def test_clear_keeps_length() -> None:
    async with Hypercore(MemoryStorage()) as core:
        await core.append([bytes([i]) * 10 for i in range(10)])
        await core.clear(2, 5)
        assert core.length == 10 and core.contiguous_length == 2
        assert not await core.has(3) and await core.has(5)
        with pytest.raises(errors.BlockNotAvailableError):
            await core.get(3, wait=False)
        assert await core.get(5) == bytes([5]) * 10
        await core.append(b"x")
        assert core.length == 11


async def test_a_writer_can_truncate_into_a_cleared_range() -> None:
    """Found by the list model: truncating to 9 needs the leaf of block 8 as a root, and a
    writer cannot recompute it once the block is cleared, so clear() keeps the tree."""
    async with Hypercore(MemoryStorage()) as core:
        await core.append([b""] * 10)
        await core.clear(8, 10)
        await core.truncate(9)
        assert (core.length, core.fork) == (9, 1)
        assert not await core.has(8) and await core.has(7)
        await core.append(b"again")
        assert await core.get(9) == b"again"


async def test_user_data_sessions_and_close() -> None:
    async with Hypercore(MemoryStorage()) as core:
        await core.set_user_data("foo", b"bar")
        assert await core.get_user_data("foo") == b"bar"
        await core.set_user_data("foo", None)
        assert await core.get_user_data("foo") is None
        s = core.session()
        await s.append(b"x")
        assert core.length == 1
        await s.aclose()
        await s.aclose()
        with pytest.raises(errors.SessionClosedError):
            await s.get(0)
        assert await core.get(0) == b"x"
        ro = core.session(writable=False)
        with pytest.raises(errors.SessionNotWritableError):
            await ro.append(b"y")
        await ro.aclose()


async def test_reopen_directory(tmp_path: Path) -> None:
    kp = crypto.key_pair(SEED)
    async with Hypercore(tmp_path, key_pair=kp) as core:
        await core.append([b"a" * 5000, b"b", b""])
        key = core.key
    async with Hypercore(tmp_path) as again:
        assert again.key == key and again.writable
        assert again.length == 3 and again.byte_length == 5001
        assert await again.get(0) == b"a" * 5000 and await again.get(2) == b""
        await again.append(b"c")
    async with Hypercore(tmp_path, key) as third:
        assert third.length == 4
    # Like a JS store, a directory holds many cores: another key is another (empty) core.
    other = crypto.random_bytes(32)
    async with Hypercore(tmp_path, other) as reader:
        assert reader.key == other and reader.length == 0 and not reader.writable
    async with Hypercore(tmp_path) as default:
        assert default.key == key


async def test_directory_open_twice_fails(tmp_path: Path) -> None:
    async with Hypercore(tmp_path) as core:
        await core.append(b"x")
        with pytest.raises(StorageLockedError):
            async with Hypercore(tmp_path):
                pass


async def test_reader_core_is_not_writable() -> None:
    key = crypto.core_key(crypto.key_pair(SEED).public_key)
    async with Hypercore(MemoryStorage(), key) as core:
        assert not core.writable and core.key == key
        with pytest.raises(errors.SessionNotWritableError):
            await core.append(b"x")


async def test_compat_core() -> None:
    kp = crypto.key_pair(SEED)
    async with Hypercore(MemoryStorage(), key_pair=kp, compat=True) as core:
        assert core.key == kp.public_key
        await core.append(b"x")
        assert core.length == 1


async def test_tampered_head_fails_to_open() -> None:
    storage = MemoryStorage()
    async with Hypercore(storage, key_pair=crypto.key_pair(SEED)) as core:
        await core.append([b"a", b"b"])
        cs = core._state.cs  # type: ignore[union-attr]
        head = cs.get_head()
        assert head is not None
    bad = storage.get_core(crypto.discovery_key(crypto.core_key(crypto.key_pair(SEED).public_key)))
    assert bad is not None
    batch = bad.batch()
    sig = bytearray(head.signature or b"")
    sig[10] ^= 1
    batch.put_head(type(head)(head.fork, head.length, head.root_hash, bytes(sig), head.timestamp))
    batch.commit()
    with pytest.raises(errors.InvalidSignatureError):
        async with Hypercore(storage):
            pass
    batch = bad.batch()
    batch.put_head(type(head)(head.fork, head.length, bytes(32), head.signature, head.timestamp))
    batch.commit()
    with pytest.raises(errors.InvalidChecksumError):
        async with Hypercore(storage):
            pass


# --- model-based: random appends, truncates and clears against a list ------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.lists(st.binary(max_size=40), min_size=1, max_size=6)),
        st.tuples(st.just("truncate"), st.integers(0, 40)),
        st.tuples(st.just("clear"), st.tuples(st.integers(0, 40), st.integers(0, 8))),
        st.tuples(st.just("reopen"), st.none()),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_against_a_list_model(ops: list[tuple[str, object]]) -> None:
    async def run() -> None:
        storage = MemoryStorage()
        kp = crypto.key_pair(SEED)
        core = Hypercore(storage, key_pair=kp)
        await core.ready()
        model: list[bytes | None] = []
        sizes: list[int] = []
        fork = 0
        for op, arg in ops:
            if op == "append":
                assert isinstance(arg, list)
                await core.append(arg)
                model.extend(arg)
                sizes.extend(len(b) for b in arg)
            elif op == "truncate":
                assert isinstance(arg, int)
                n = min(arg, len(model))
                await core.truncate(n)
                fork += 1
                del model[n:]
                del sizes[n:]
            elif op == "clear":
                assert isinstance(arg, tuple)
                start, n = arg
                await core.clear(start, start + n)
                for i in range(start, min(start + n, len(model))):
                    model[i] = None
            else:
                await core.aclose()
                core = Hypercore(storage, key_pair=kp)
                await core.ready()
            assert core.length == len(model) and core.fork == fork
            assert core.byte_length == sum(sizes)
            for i, b in enumerate(model):
                if b is None:
                    assert not await core.has(i)
                else:
                    assert await core.get(i, wait=False) == b
        await core.aclose()

    trio.run(run)


def test_json_encoding_matches_js_bytes() -> None:
    from hypercore.codecs import resolve

    expected = json.dumps({"b": [1, 2]}, separators=(",", ":")).encode()
    assert resolve("json").encode({"b": [1, 2.0]}) == expected
