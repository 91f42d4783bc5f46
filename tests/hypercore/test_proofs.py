"""Proofs between two cores: a reader that knows only the key verifies what a writer proves."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypercore import Hypercore, RequestIndex, RequestSeek, RequestUpgrade, crypto, errors
from hypercore.storage import MemoryStorage
from hypercore.wire import DATA, Data
from protomux import encoding as c

SEED = bytes(range(32))


async def writer_with(blocks: list[bytes], **opts: object) -> Hypercore:
    core = Hypercore(MemoryStorage(), key_pair=crypto.key_pair(SEED), **opts)  # type: ignore[arg-type]
    await core.ready()
    if blocks:
        await core.append(blocks)
    return core


async def snapshot_of(core: Hypercore) -> tuple[object, ...]:
    stored = tuple(
        [
            await core.get(i, wait=False, raw=True) if await core.has(i) else None
            for i in range(core.length)
        ]
    )
    return core.length, core.fork, await core.tree_hash() if core.length else b"", stored


async def test_reader_syncs_from_proofs_alone() -> None:
    blocks = [bytes([i]) * (i % 7) for i in range(37)]
    writer = await writer_with(blocks)
    reader = Hypercore(MemoryStorage(), writer.key)
    await reader.ready()
    assert reader.manifest is None
    proof = await writer.proof(upgrade=RequestUpgrade(0, 20), manifest=True)
    assert await reader.verify(proof)
    # The signature covers the writer's whole head: the extra roots come along (JS does so).
    assert reader.length == 37 and reader.manifest == writer.manifest
    assert await reader.tree_hash() == await writer.tree_hash()
    assert not await reader.has(0)
    # Block proofs with the upgrade to the writer's length riding along.
    for i in random.Random(1).sample(range(37), 37):
        nodes = await reader.missing_nodes(i)
        upgrade = RequestUpgrade(reader.length, 37 - reader.length) if reader.length < 37 else None
        proof = await writer.proof(block=RequestIndex(i, nodes), upgrade=upgrade)
        assert await reader.verify(proof)
        assert await reader.get(i) == blocks[i]
    assert reader.length == 37 and reader.contiguous_length == 37
    assert await reader.tree_hash() == await writer.tree_hash()
    # Hash and seek proofs verify too.
    assert await reader.verify(await writer.proof(hash=RequestIndex(5, 0)))
    assert await reader.verify(await writer.proof(seek=RequestSeek(30)))
    # A proof for another fork does not apply.
    await writer.truncate(30)
    assert not await reader.verify(await writer.proof(upgrade=RequestUpgrade(0, 30)))


async def test_encrypted_blocks_travel_encrypted() -> None:
    key = bytes(32)
    writer = await writer_with([b"secret", b"data"], encryption_key=key)
    reader = Hypercore(MemoryStorage(), writer.key, encryption_key=key)
    await reader.ready()
    assert await reader.verify(
        await writer.proof(block=RequestIndex(1, 0), upgrade=RequestUpgrade(0, 2), manifest=True)
    )
    assert await reader.get(1) == b"data"
    assert await reader.get(1, raw=True) == await writer.get(1, raw=True) != b"data"


async def test_proofs_for_the_wrong_core_are_rejected() -> None:
    writer = await writer_with([b"a", b"b"])
    stranger = Hypercore(MemoryStorage(), key_pair=crypto.key_pair(bytes(32)))
    await stranger.ready()
    await stranger.append([b"a", b"b"])
    reader = Hypercore(MemoryStorage(), writer.key)
    await reader.ready()
    with pytest.raises(errors.InvalidSignatureError):
        await reader.verify(await stranger.proof(upgrade=RequestUpgrade(0, 2), manifest=True))
    with pytest.raises(errors.InvalidSignatureError):
        await reader.verify(await stranger.proof(upgrade=RequestUpgrade(0, 2)))
    assert reader.length == 0 and reader.manifest is None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(1, 40),
    st.data(),
)
def test_any_changed_byte_is_rejected_or_harmless(length: int, data: st.DataObject) -> None:
    import trio

    async def run() -> None:
        rng = random.Random(length)
        blocks = [rng.randbytes(rng.randrange(0, 50)) for _ in range(length)]
        writer = await writer_with(blocks)
        start = data.draw(st.integers(0, length - 1))
        reader = Hypercore(MemoryStorage(), writer.key)
        await reader.ready()
        if start:
            assert await reader.verify(
                await writer.proof(upgrade=RequestUpgrade(0, start), manifest=True)
            )
        index = data.draw(st.integers(0, length - 1))
        honest = await writer.proof(
            block=RequestIndex(index, await reader.missing_nodes(index)),
            upgrade=RequestUpgrade(start, length - start),
            manifest=start == 0,
        )
        encoded = c.encode(DATA, honest)
        position = data.draw(st.integers(0, len(encoded) - 1))
        bit = data.draw(st.integers(0, 7))
        tampered = bytearray(encoded)
        tampered[position] ^= 1 << bit
        try:
            proof: Data = c.decode(DATA, bytes(tampered))
        except c.DecodeError:
            return
        before = await snapshot_of(reader)
        try:
            applied = await reader.verify(proof)
        except errors.HypercoreError:
            applied = False
        if not applied:
            assert await snapshot_of(reader) == before
            return
        # Accepted: then it can only have stored what the writer really has.
        assert reader.fork == writer.fork and reader.length <= writer.length
        assert await reader.tree_hash() == await writer.tree_hash(reader.length)
        for i in range(reader.length):
            if await reader.has(i):
                assert await reader.get(i) == blocks[i]

    trio.run(run)


async def test_deferred_proofs_are_readable_at_once_and_written_by_flush(tmp_path: Path) -> None:
    blocks = [bytes([i]) * 10 for i in range(40)]
    writer = await writer_with(blocks)
    reader = Hypercore(tmp_path, writer.key)
    await reader.ready()
    state = reader._open_state()
    assert await reader.verify(await writer.proof(upgrade=RequestUpgrade(0, 40), manifest=True))
    # Asked for together (as a download does), answered in any order.
    asked = [(i, await reader.missing_nodes(i)) for i in range(10, 30)]
    proofs = [await writer.proof(block=RequestIndex(i, n)) for i, n in asked]
    random.Random(2).shuffle(proofs)
    for proof in proofs:
        assert state.verify(proof, defer=True)
    assert [await reader.get(i) for i in range(10, 30)] == blocks[10:30]
    assert state.cs.get_block(10) is None  # not written yet
    # A bad proof changes nothing, pending or not.
    bad = await writer.proof(block=RequestIndex(31, await reader.missing_nodes(31)))
    assert bad.block is not None
    bad = replace(bad, block=replace(bad.block, value=b"forged"))
    with pytest.raises(errors.InvalidChecksumError):
        state.verify(bad, defer=True)
    assert not await reader.has(31)
    state.flush()
    assert state.cs.get_block(10) == blocks[10] and state.cs.get_block(31) is None
    # Closing writes what is still pending.
    last = await writer.proof(block=RequestIndex(0, await reader.missing_nodes(0)))
    assert state.verify(last, defer=True)
    assert reader.contiguous_length == 1
    await reader.aclose()
    async with Hypercore(tmp_path, writer.key) as again:
        assert again.contiguous_length == 1
        for i in [0, *range(10, 30)]:
            assert await again.get(i, wait=False) == blocks[i]
        assert not await again.has(1) and not await again.has(31)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(2, 40), st.data())
def test_a_block_proof_checked_only_up_to_a_stored_node_is_still_safe(
    length: int, data: st.DataObject
) -> None:
    """Proofs asked for before neighbouring blocks arrived carry nodes the reader has since
    stored: it stops at them. Any changed byte is still rejected or harmless."""
    import trio

    async def run() -> None:
        rng = random.Random(length)
        blocks = [rng.randbytes(rng.randrange(0, 50)) for _ in range(length)]
        writer = await writer_with(blocks)
        reader = Hypercore(MemoryStorage(), writer.key)
        await reader.ready()
        state = reader._open_state()
        assert state.verify(await writer.proof(upgrade=RequestUpgrade(0, length), manifest=True))
        index = data.draw(st.integers(0, length - 1))
        stale = await writer.proof(block=RequestIndex(index, await reader.missing_nodes(index)))
        for i in data.draw(st.lists(st.integers(0, length - 1), max_size=8)):
            n = await reader.missing_nodes(i)
            assert state.verify(await writer.proof(block=RequestIndex(i, n)), defer=True)
        encoded = bytearray(c.encode(DATA, stale))
        if data.draw(st.booleans()):
            position = data.draw(st.integers(0, len(encoded) - 1))
            encoded[position] ^= 1 << data.draw(st.integers(0, 7))
        try:
            proof: Data = c.decode(DATA, bytes(encoded))
        except c.DecodeError:
            return
        before = await snapshot_of(reader)
        try:
            applied = state.verify(proof, defer=data.draw(st.booleans()))
        except errors.HypercoreError:
            applied = False
        if not applied:
            assert await snapshot_of(reader) == before
            assert bytes(encoded) != c.encode(DATA, stale)  # the honest proof is accepted
            return
        assert reader.length == length and await reader.tree_hash() == await writer.tree_hash()
        for i in range(length):
            if await reader.has(i):
                assert await reader.get(i) == blocks[i]
        state.flush()

    trio.run(run)


async def test_a_core_opened_empty_answers_tree_lookups_from_memory(tmp_path: Path) -> None:
    blocks = [bytes([i]) * 10 for i in range(64)]
    writer = await writer_with(blocks)
    reader = Hypercore(tmp_path, writer.key)
    await reader.ready()
    state = reader._open_state()
    reads: list[int] = []
    stored_lookup = state.cs.get_tree_node

    def counting(index: int) -> object:
        reads.append(index)
        return stored_lookup(index)

    state.cs.get_tree_node = counting  # type: ignore[method-assign]
    assert await reader.verify(await writer.proof(upgrade=RequestUpgrade(0, 64), manifest=True))
    for i in random.Random(3).sample(range(64), 40):
        n = await reader.missing_nodes(i)
        assert state.verify(await writer.proof(block=RequestIndex(i, n)), defer=i % 2 == 0)
    assert reads == []
    assert await reader.tree_hash() == await writer.tree_hash()
    await reader.aclose()
    # Opened with nodes stored, it reads them (and answers the same).
    async with Hypercore(tmp_path, writer.key) as again:
        assert again._open_state()._nodes_complete is False
        for i in range(64):
            n = await again.missing_nodes(i)
            if await again.has(i):
                assert n == 0
            else:
                assert again._open_state().verify(await writer.proof(block=RequestIndex(i, n)))
        assert [await again.get(i) for i in range(64)] == blocks
