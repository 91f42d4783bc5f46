"""Hypercore replication, Python to Python (hypercore/replication/ and the replication
methods of Hypercore): full and sparse downloads, live appends, relays, peers that leave,
peers that lie, encrypted cores and request floods."""

from __future__ import annotations

import dataclasses
from contextlib import AsyncExitStack
from typing import Any

import pytest
import trio

from hypercore import Hypercore, errors, flat_tree, merkle, wire
from hypercore.crypto import TreeNode
from hypercore.replication import Peer, limits, replicator_of
from hypercore.wire import Data, RequestIndex, RequestSeek, RequestUpgrade

from .replication_helpers import (
    TRANSPORTS,
    Recorder,
    connect,
    make_blocks,
    mirror,
    open_core,
    peer_on,
    raw_peer_of,
    secret_pair,
    wait_peer,
    wait_until,
)


async def assert_same_core(reader: Hypercore, writer: Hypercore) -> None:
    assert reader.length == writer.length
    assert reader.fork == writer.fork
    assert reader.byte_length == writer.byte_length
    assert await reader.tree_hash() == await writer.tree_hash()
    assert await reader.has(0, writer.length)
    for i in range(writer.length):
        assert await reader.get(i, wait=False) == await writer.get(i)


# ---- 1. full download ----------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_full_download(transport: str) -> None:
    n = 300
    blocks = make_blocks(n)
    with trio.fail_after(10):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(blocks)
            reader = await open_core(stack, writer.key)
            assert not reader.writable and reader.length == 0
            _, sr = await connect(stack, writer, reader, transport)
            await wait_peer(reader, sr)
            await reader.update()  # True or False: the upgrade may have come before it
            assert reader.length == n and reader.fork == writer.fork
            assert reader.contiguous_length == 0  # the upgrade brings no blocks
            downloads = Recorder(reader, "download")
            d = reader.download(0, n)
            await d.done()
            assert d.completed
            assert reader.contiguous_length == n
            await assert_same_core(reader, writer)
            assert sorted(c[0] for c in downloads.calls) == list(range(n))
            assert [c[1] for c in sorted(downloads.calls)] == [len(b) for b in blocks]
            assert not await reader.update()  # nothing new


async def test_download_without_update_first() -> None:
    """download() before the length is known still gets the whole (bounded) range."""
    blocks = make_blocks(50, seed=1)
    with trio.fail_after(5):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(blocks)
            reader = await open_core(stack, writer.key)
            d = reader.download(0, 50)
            await connect(stack, writer, reader)
            await d.done()
            await assert_same_core(reader, writer)


async def test_waiting_for_a_finished_download_is_a_checkpoint() -> None:
    with trio.fail_after(5):
        async with AsyncExitStack() as stack:
            core = await open_core(stack)
            await core.append(make_blocks(3, seed=2))
            d = core.download(0, 3)  # all stored: finished at once
            with trio.CancelScope() as scope:
                scope.cancel()
                await d.done()
            assert scope.cancelled_caught
            await d.done()


# ---- 2. sparse --------------------------------------------------------------------------------


@pytest.mark.parametrize("update_first", [True, False])
async def test_sparse_get_downloads_only_what_is_asked(update_first: bool) -> None:
    n = 300
    blocks = make_blocks(n, seed=2)
    wanted = [0, 3, 77, 150, 151, 256, 299]
    with trio.fail_after(5):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(blocks)
            reader = await open_core(stack, writer.key)
            downloads = Recorder(reader, "download")
            uploads = Recorder(writer, "upload")
            _, sr = await connect(stack, writer, reader)
            await wait_peer(reader, sr)
            if update_first:
                await reader.update()
                assert reader.length == n
            for i in reversed(wanted):
                assert await reader.get(i) == blocks[i]
            assert reader.length == n
            # Several gets at once.
            more = [10, 20, 30]
            got: dict[int, bytes] = {}

            async def get(i: int) -> None:
                got[i] = await reader.get(i)

            async with trio.open_nursery() as nursery:
                for i in more:
                    nursery.start_soon(get, i)
            assert got == {i: blocks[i] for i in more}
            await trio.sleep(0.05)  # anything sent on its own would arrive by now
            wanted_all = sorted(wanted + more)
            assert sorted(c[0] for c in downloads.calls) == wanted_all
            assert sorted(c[0] for c in uploads.calls) == wanted_all
            for i in range(n):
                assert await reader.has(i) == (i in wanted_all), i
            assert reader.contiguous_length == 1
            assert await reader.tree_hash() == await writer.tree_hash()
            with pytest.raises(errors.BlockNotAvailableError):
                await reader.get(5, wait=False)


async def test_download_of_a_block_list_fetches_exactly_those() -> None:
    n = 400
    blocks = make_blocks(n, seed=22)
    listed = [399, 5, 6, 7, 200, 64, 5, 130]
    with trio.fail_after(5):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(blocks[:300])
            reader = await open_core(stack, writer.key)
            downloads = Recorder(reader, "download")
            _, sr = await connect(stack, writer, reader)
            await wait_peer(reader, sr)
            d = reader.download(blocks=listed)  # 399 is not written yet: it waits for it
            await wait_until(lambda: len(downloads) == len(set(listed)) - 1)
            assert not d.completed
            await writer.append(blocks[300:])
            await d.done()
            await trio.sleep(0.05)  # anything sent on its own would arrive by now
            assert sorted(c[0] for c in downloads.calls) == sorted(set(listed))
            for i in set(listed):
                assert await reader.get(i, wait=False) == blocks[i]
            assert reader.download(blocks=[5, 6]).completed  # stored already
            cancelled = reader.download(blocks=[1, 2])
            cancelled.cancel()
            with pytest.raises(errors.RequestCancelledError):
                await cancelled.done()
            with pytest.raises(errors.BadArgumentError):
                reader.download(0, 10, blocks=[1])
            with pytest.raises(errors.AssertionFailedError):
                reader.download(blocks=[-1])


@pytest.mark.parametrize("encrypted", [False, True])
async def test_seek_on_a_sparse_core_asks_peers_for_the_tree(encrypted: bool) -> None:
    n = 200
    blocks = make_blocks(n, seed=23)
    opts: dict[str, Any] = {"encryption_key": bytes(range(32))} if encrypted else {}
    with trio.fail_after(10):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack, **opts)
            await writer.append(blocks)
            served = _record_proofs(writer)
            reader = await open_core(stack, writer.key, **opts)
            downloads = Recorder(reader, "download")
            _, sr = await connect(stack, writer, reader)
            await wait_peer(reader, sr)
            await reader.update()
            assert reader.byte_length == writer.byte_length
            sizes = [len(b) for b in blocks]
            boundaries = [sum(sizes[:i]) for i in (1, 77, 128, 199)]
            offsets = [0, 1, 5000, *boundaries, boundaries[1] + 3, sum(sizes) - 1, sum(sizes)]
            for offset in offsets:
                assert await reader.seek(offset) == await writer.seek(offset), offset
            assert await reader.seek(sum(sizes)) == (n, 0)  # the byte length, as JS
            assert len(downloads) == 0  # tree nodes only, no blocks
            seeks = [kw for kw in served if kw["seek"] is not None]
            assert seeks  # hash requests with a seek, as JS sends them
            for kw in seeks:
                assert kw["block"] is None and kw["upgrade"] is None
                assert kw["hash"] is not None and kw["hash"].index % 2 == 0
                assert kw["seek"].bytes in offsets
            assert not await reader.has(0, n)
            # With the tree's roots but no peer: wait=False refuses, a timeout ends the wait.
            alone = await open_core(stack, writer.key, **opts)
            assert await alone.verify(
                await writer.proof(upgrade=RequestUpgrade(0, n), manifest=True)
            )
            with pytest.raises(errors.BlockNotAvailableError):
                await alone.seek(boundaries[1] + 3, wait=False)
            with pytest.raises(errors.RequestTimeoutError):
                await alone.seek(boundaries[1] + 3, timeout=0.05)


def _record_proofs(core: Hypercore) -> list[dict[str, Any]]:
    """The requests ``core`` serves from now on (the arguments of its proofs)."""
    state = core._open_state()
    honest = state.proof
    calls: list[dict[str, Any]] = []

    def proof(**kw: Any) -> Data:
        calls.append(kw)
        return honest(**kw)

    state.proof = proof  # type: ignore[method-assign]
    return calls


@pytest.mark.parametrize("encrypted", [False, True])
async def test_seek_past_the_length_asks_for_the_upgrade_with_the_seek(encrypted: bool) -> None:
    """A seek past the reader's length goes out as an upgrade request with the seek (as JS
    sends it); an empty core seeks 0 to (0, 0) and wait=False returns None past the end."""
    n = 150
    blocks = make_blocks(n, seed=25)
    opts: dict[str, Any] = {"encryption_key": bytes(range(32))} if encrypted else {}
    offset = sum(len(b) for b in blocks[:90]) + 11
    with trio.fail_after(10):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack, **opts)
            await writer.append(blocks)
            served = _record_proofs(writer)
            reader = await open_core(stack, writer.key, **opts)
            downloads = Recorder(reader, "download")
            assert await reader.seek(0) == (0, 0)
            assert await reader.seek(1, wait=False) is None
            answer: list[tuple[int, int] | None] = []

            async def seek() -> None:
                answer.append(await reader.seek(offset))

            nursery = await stack.enter_async_context(trio.open_nursery())
            nursery.start_soon(seek)
            rep = replicator_of(reader._open_state())
            await wait_until(lambda: len(rep._seeks) == 1)
            await connect(stack, writer, reader)
            await wait_until(lambda: len(answer) > 0)
            assert answer == [await writer.seek(offset)]
            assert reader.length == n and len(downloads) == 0
            first = served[0]
            assert first["upgrade"] == RequestUpgrade(0, n)
            assert first["seek"] == RequestSeek(offset, reader.padding)
            assert first["hash"] is None and first["block"] is None


@pytest.mark.parametrize("failure", ["no-data", "timeout", "other-seek"])
async def test_a_seek_request_is_shaped_as_js_and_asked_elsewhere_when_it_fails(
    failure: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hand-made peer gets a hash request for a block of the range the answer lies in, up
    to that range's subtree, with the seek; when it answers noData (or nothing, until the
    timeout, or with a valid proof of a seek to other bytes, which JS does not take either)
    the seek goes to another peer and is not asked of it again."""
    monkeypatch.setattr(limits, "REQUEST_TIMEOUT", 0.4)
    n = 200
    blocks = make_blocks(n, seed=26)
    sizes = [len(b) for b in blocks]
    offset = sum(sizes[:61]) + 7  # in the first root: JS proofs seek only there
    with trio.fail_after(10):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(blocks)
            reader = await open_core(stack, writer.key)
            assert await reader.verify(
                await writer.proof(upgrade=RequestUpgrade(0, n), manifest=True)
            )
            state = reader._open_state()
            pending = merkle.seek(state, state.head, offset)
            assert isinstance(pending, merkle.SeekPending)
            raw, _ = await raw_peer_of(stack, reader, "memory")
            raw.open(writer.key)
            await raw.channel.wait_opened()
            raw.send("sync", wire.Sync(length=n, remote_length=n, can_upgrade=True, uploading=True))
            raw.send("range", wire.Range(start=0, length=n))
            answer: list[tuple[int, int] | None] = []

            async def seek() -> None:
                answer.append(await reader.seek(offset))

            def requests() -> list[wire.Request]:
                return [m for name, m in raw.received if name == "request"]

            nursery = await stack.enter_async_context(trio.open_nursery())
            nursery.start_soon(seek)
            await wait_until(lambda: len(requests()) > 0)
            (req,) = requests()
            assert req.block is None and req.upgrade is None and req.hash is not None
            assert 2 * pending.start <= req.hash.index < 2 * pending.end
            assert req.hash.index % 2 == 0
            assert req.hash.nodes == flat_tree.depth(pending.start + pending.end - 1)
            assert req.seek == RequestSeek(offset, 0)
            if failure == "no-data":
                raw.send("no_data", wire.NoData(request=req.id, reason=wire.NOT_AVAILABLE))
            elif failure == "other-seek":
                # A seek in the same subtree that needs nodes off the hash's path.
                proofs = (
                    writer._open_state().proof(
                        hash=req.hash, seek=RequestSeek(sum(sizes[:i]) + 1, 0), request=req.id
                    )
                    for i in range(pending.start, pending.end)
                )
                wrong = next(d for d in proofs if d.seek is not None and d.seek.nodes)
                assert wrong.seek is not None and wrong.seek.bytes != offset
                raw.send("data", wrong)
            else:
                await wait_until(lambda: ("cancel", wire.Cancel(req.id)) in raw.received)
            await trio.sleep(0.05)
            assert not answer
            _, sr = await connect(stack, writer, reader)
            await wait_peer(reader, sr)
            await wait_until(lambda: len(answer) > 0)
            assert answer == [await writer.seek(offset)]
            assert len(requests()) == 1  # not asked of the failing peer again


async def test_get_beyond_length_waits_for_upgrade() -> None:
    with trio.fail_after(5):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(make_blocks(3))
            reader = await open_core(stack, writer.key)
            _, sr = await connect(stack, writer, reader)
            await wait_peer(reader, sr)
            await reader.update()
            with pytest.raises(errors.RequestTimeoutError):
                await reader.get(10, timeout=0.1)
            assert reader.length == 3


async def test_range_download_and_sparse_relay() -> None:
    """download(start, end) fetches just that range; a peer that has only parts of the core
    (beyond its contiguous prefix, learned through want/bitfield/range) serves those parts."""
    blocks = make_blocks(200, seed=16)
    with trio.fail_after(5):
        async with AsyncExitStack() as stack:
            a = await open_core(stack)
            await a.append(blocks)
            b = await open_core(stack, a.key)
            _, s_b = await connect(stack, a, b)
            await wait_peer(b, s_b)
            await b.update()
            b_downloads = Recorder(b, "download")
            await b.download(100, 150).done()
            assert sorted(c[0] for c in b_downloads.calls) == list(range(100, 150))
            await b.download(0, 50).done()
            await b.download(170, 171).done()
            assert b.contiguous_length == 50

            c = await open_core(stack, a.key)
            _, s_c = await connect(stack, b, c)
            await wait_peer(c, s_c)
            await c.update()
            assert c.length == 200
            c_downloads = Recorder(c, "download")
            await c.download(120, 150).done()
            assert await c.get(170) == blocks[170]
            assert await c.get(20) == blocks[20]
            assert sorted(x[0] for x in c_downloads.calls) == [20, *range(120, 150), 170]
            with pytest.raises(errors.RequestTimeoutError):
                await c.get(160, timeout=0.2)  # B does not have it
            for i in (20, 120, 149, 170):
                assert await c.get(i, wait=False) == blocks[i]


# ---- 3. live ----------------------------------------------------------------------------------


async def test_live_appends_reach_get_and_live_download() -> None:
    first = make_blocks(20, seed=3)
    later = make_blocks(40, seed=3, start=20)
    with trio.fail_after(5):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(first)
            getter = await open_core(stack, writer.key)
            follower = await open_core(stack, writer.key)
            _, s1 = await connect(stack, writer, getter)
            _, s2 = await connect(stack, writer, follower)
            await wait_peer(getter, s1)
            await wait_peer(follower, s2)
            await getter.update()
            await follower.update()
            assert getter.length == follower.length == 20
            live = follower.download(0, None)
            await wait_until(lambda: follower.has(0, 20))

            got: dict[int, bytes] = {}

            async def get(i: int) -> None:
                got[i] = await getter.get(i)

            async with trio.open_nursery() as nursery:
                # Waiting before the blocks exist: they come with the appends.
                for i in (20, 35, 59):
                    nursery.start_soon(get, i)
                await trio.sleep(0.02)
                assert got == {}
                for b in later[:10]:
                    await writer.append(b)  # one at a time
                new_length = await follower.wait_for_append()
                assert 20 < new_length <= 30
                await writer.append(later[10:])  # and a batch
            assert got == {i: (first + later)[i] for i in (20, 35, 59)}
            assert getter.length == 60
            await wait_until(lambda: follower.length == 60)
            await wait_until(lambda: follower.has(0, 60))
            assert not live.completed
            live.cancel()
            await assert_same_core(follower, writer)
            # The getter took only what it asked for.
            assert not await getter.has(21)


# ---- 4. three peers: relaying -----------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_relay_through_middle_peer_with_live_appends(transport: str) -> None:
    """A - B - C: C is connected only to B; B (downloading live) relays A's blocks, also
    the ones A appends while everybody is connected."""
    blocks = make_blocks(150, seed=4)
    with trio.fail_after(8):
        async with AsyncExitStack() as stack:
            a = await open_core(stack)
            await a.append(blocks[:100])
            b = await open_core(stack, a.key)
            c = await open_core(stack, a.key)
            _, sab = await connect(stack, a, b, transport)
            _, sbc = await connect(stack, b, c, transport)
            await wait_peer(b, sab)
            await wait_peer(c, sbc)
            b_live = b.download(0, None)
            await c.update()
            assert c.length == 100  # B upgraded from A, then C from B
            assert len(c.peers) == 1
            await c.download(0, 100).done()
            await assert_same_core(c, a)

            await a.append(blocks[100:120])
            assert await c.get(119) == blocks[119]  # waits: A -> B -> C
            await a.append(blocks[120:])
            await c.download(0, 150).done()
            assert c.length == 150
            await assert_same_core(c, a)
            await wait_until(lambda: b.has(0, 150))
            b_live.cancel()
            with pytest.raises(errors.RequestCancelledError):
                await b_live.done()


async def test_relay_after_the_writer_left() -> None:
    n = 400
    blocks = make_blocks(n, seed=5)
    with trio.fail_after(8):
        async with AsyncExitStack() as stack:
            a = await open_core(stack)
            await a.append(blocks)
            b = await open_core(stack, a.key)
            sa, sb = await connect(stack, a, b)
            a_peer = await wait_peer(b, sb)
            removed = Recorder(b, "peer-remove")
            await b.update()
            await b.download(0, n).done()
            await sa.aclose()  # A goes away
            await wait_until(lambda: not b.peers)
            assert removed.calls == [(a_peer,)]
            assert a_peer.removed and not a_peer.active

            c = await open_core(stack, a.key)
            _, sc = await connect(stack, b, c)
            await wait_peer(c, sc)
            await c.update()
            assert c.length == n
            await c.download(0, n).done()
            await assert_same_core(c, a)
            assert await c.tree_hash() == await a.tree_hash()


async def test_closing_ends_peers_waits_and_downloads() -> None:
    with trio.fail_after(5):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(make_blocks(10, seed=17))
            reader = await open_core(stack, writer.key)
            _, s = await connect(stack, writer, reader)
            peer = await wait_peer(reader, s)
            await reader.update()
            removed = Recorder(reader, "peer-remove")
            await writer.aclose()  # its last session: the core closes, its channels too
            await removed.wait_count(1)
            assert removed.calls == [(peer,)] and reader.peers == []
            with pytest.raises(errors.RequestTimeoutError):
                await reader.get(3, timeout=0.1)

            d = reader.download(0, 10)
            results: list[str] = []

            async def get() -> None:
                with pytest.raises(errors.SessionClosedError):
                    await reader.get(4)
                results.append("get")

            async def done() -> None:
                with pytest.raises(errors.RequestCancelledError):
                    await d.done()
                results.append("done")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(get)
                nursery.start_soon(done)
                await trio.sleep(0.02)
                await reader.aclose()
            assert sorted(results) == ["done", "get"]


# ---- 5. a peer that leaves mid-download -------------------------------------------------------


async def _two_sources(
    stack: AsyncExitStack, n: int, seed: int
) -> tuple[Hypercore, Hypercore, list[bytes]]:
    """Writer A with ``n`` blocks and a full mirror B of it."""
    blocks = make_blocks(n, seed=seed)
    a = await open_core(stack)
    await a.append(blocks)
    b = await mirror(stack, a)
    return a, b, blocks


async def test_peer_disconnects_mid_download() -> None:
    n = 2000
    with trio.fail_after(10):
        async with AsyncExitStack() as stack:
            a, b, _ = await _two_sources(stack, n, seed=6)
            reader = await open_core(stack, a.key)
            s_a, r_a = await connect(stack, a, reader)
            _, r_b = await connect(stack, b, reader)
            peer_a = await wait_peer(reader, r_a)
            peer_b = await wait_peer(reader, r_b)
            await reader.update()
            assert reader.length == n

            from_a = 0
            closing = trio.Event()

            def on_download(index: int, size: int, peer: Peer) -> None:
                nonlocal from_a
                if peer is peer_a:
                    from_a += 1
                    if from_a == 100:
                        closing.set()

            reader.on("download", on_download)
            d = reader.download(0, n)
            await closing.wait()
            await s_a.aclose()  # A's end of the stream to the reader
            assert not await reader.has(0, n)  # the close came mid-download
            await d.done()
            assert peer_a not in reader.peers and peer_b in reader.peers
            await assert_same_core(reader, a)


async def test_stalled_peer_requests_time_out_and_go_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A peer that stops answering (without closing) has its requests cancelled after
    REQUEST_TIMEOUT and asked of another peer."""
    monkeypatch.setattr(limits, "REQUEST_TIMEOUT", 0.4)
    n = 300
    with trio.fail_after(4):
        async with AsyncExitStack() as stack:
            a, b, _ = await _two_sources(stack, n, seed=7)
            assert a._state is not None
            a_rep = replicator_of(a._state)
            serve = Peer._serve

            def silent_serve(self: Peer, m: wire.Request) -> None:
                if self.replicator is a_rep and m.block is not None:
                    return  # swallow it: no data, no noData
                serve(self, m)

            monkeypatch.setattr(Peer, "_serve", silent_serve)
            reader = await open_core(stack, a.key)
            _, r_a = await connect(stack, a, reader)
            peer_a = await wait_peer(reader, r_a)
            await reader.update()
            assert reader.length == n
            d = reader.download(0, n)
            await wait_until(lambda: len(peer_a.inflight) > 0)
            _, r_b = await connect(stack, b, reader)
            await wait_peer(reader, r_b)
            await d.done()
            await assert_same_core(reader, a)


# ---- 6. peers that lie --------------------------------------------------------------------------


def _flip(b: bytes, at: int = 0) -> bytes:
    return b[:at] + bytes([b[at] ^ 0x01]) + b[at + 1 :]


def _tamper(kind: str, data: Data) -> Data:
    """``data`` with one thing changed (or as is when it has nothing of that kind)."""
    if kind == "block-value" and data.block is not None:
        value = data.block.value
        value = _flip(value, len(value) // 2) if value else b"\x00"
        return dataclasses.replace(data, block=dataclasses.replace(data.block, value=value))
    if kind == "block-node" and data.block is not None and data.block.nodes:
        first, *rest = data.block.nodes
        node = type(first)(first.index, first.size, _flip(first.hash))
        return dataclasses.replace(data, block=dataclasses.replace(data.block, nodes=(node, *rest)))
    if kind == "signature" and data.upgrade is not None and data.upgrade.signature:
        upgrade = dataclasses.replace(data.upgrade, signature=_flip(data.upgrade.signature))
        return dataclasses.replace(data, upgrade=upgrade)
    return data


def make_malicious(core: Hypercore, kind: str) -> list[int]:
    """From now on ``core`` serves tampered data (only this core: its Core.proof is
    wrapped). Returns the list the indices of tampered blocks are appended to."""
    state = core._state
    assert state is not None
    honest = state.proof
    tampered: list[int] = []

    def proof(**kw: Any) -> Data:
        block = kw.get("block")
        if kind == "other-block" and block is not None:
            # A valid proof, but of another block than the one asked for.
            other = block.index - 1 if block.index else 1
            tampered.append(block.index)
            return honest(**{**kw, "block": RequestIndex(other, block.nodes)})
        data = honest(**kw)
        bad = _tamper(kind, data)
        if bad is not data and bad.block is not None:
            tampered.append(bad.block.index)
        elif bad is not data:
            tampered.append(-1)
        return bad

    state.proof = proof  # type: ignore[method-assign]
    return tampered


@pytest.mark.parametrize("kind", ["block-value", "block-node", "signature"])
async def test_malicious_peer_is_dropped_and_honest_peer_finishes(kind: str) -> None:
    """The reader downloads from a liar (connected first, so it gets the first requests)
    and an honest mirror: the liar is reported and dropped, nothing it sent is stored, and
    the honest mirror completes the download."""
    n = 300
    with trio.fail_after(8):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(make_blocks(n, seed=8))
            evil = await mirror(stack, writer)
            good = await mirror(stack, writer)
            if kind == "signature":
                await writer.append(make_blocks(10, seed=8, start=n))  # an upgrade to lie about
                n += 10
                await wait_until(lambda: evil.length == n and good.length == n)
                await evil.download(0, n).done()
                await good.download(0, n).done()
            tampered = make_malicious(evil, kind)

            reader = await open_core(stack, writer.key)
            invalid = Recorder(reader, "invalid-data")
            downloads = Recorder(reader, "download")
            added = Recorder(reader, "peer-add")
            _, r_evil = await connect(stack, evil, reader)
            await added.wait_count(1)  # (the liar may be gone again already)
            (evil_peer,) = added.calls[0]
            if kind == "signature":
                # The liar's upgrade (asked for at once: it is longer) is the lie.
                await invalid.wait_count(1)
                assert reader.length == 0
            else:
                await reader.update()
                assert reader.length == n  # upgrades are honest here
            d = reader.download(0, n)  # the liar gets the first requests
            _, r_good = await connect(stack, good, reader)
            good_peer = await wait_peer(reader, r_good)
            await invalid.wait_count(1)
            assert tampered
            err, peer = invalid.calls[0]
            assert isinstance(err, errors.HypercoreError)
            assert peer is evil_peer
            assert not peer.active
            await wait_until(lambda: peer_on(reader, r_evil) is None)

            await d.done()
            assert reader.peers == [good_peer]
            assert len(invalid) == 1
            assert all(c[2] is good_peer for c in downloads.calls)  # none from the liar
            await assert_same_core(reader, writer)


@pytest.mark.parametrize("past_length", [False, True])
async def test_a_tampered_seek_proof_drops_the_peer(past_length: bool) -> None:
    """A seek proof with a forged node (in a hash request's answer, or with ``past_length``
    in an upgrade's) drops the peer before anything is stored; an honest peer answers."""
    n = 100
    blocks = make_blocks(n, seed=24)
    offset = sum(len(b) for b in blocks[:61]) + 2
    with trio.fail_after(8):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(blocks)
            evil = await mirror(stack, writer)
            state = evil._open_state()
            honest = state.proof

            def forge(nodes: tuple[TreeNode, ...]) -> tuple[TreeNode, ...]:
                return (dataclasses.replace(nodes[0], hash=bytes(32)), *nodes[1:])

            def proof(**kw: Any) -> Data:
                data = honest(**kw)
                if kw.get("seek") is None:
                    return data
                if data.seek is not None and data.seek.nodes:
                    return dataclasses.replace(
                        data, seek=dataclasses.replace(data.seek, nodes=forge(data.seek.nodes))
                    )
                # The hash request (for a block chosen at random) brought every node the
                # seek needs: they are in its part.
                if data.hash is not None and data.hash.nodes:
                    return dataclasses.replace(
                        data, hash=dataclasses.replace(data.hash, nodes=forge(data.hash.nodes))
                    )
                return data

            state.proof = proof  # type: ignore[method-assign]
            reader = await open_core(stack, writer.key)
            invalid = Recorder(reader, "invalid-data")
            if past_length:  # the seek waits before the peer comes: it goes with the upgrade
                nursery = await stack.enter_async_context(trio.open_nursery())
                failed = trio.Event()

                async def seek() -> None:
                    with pytest.raises(errors.RequestTimeoutError):
                        await reader.seek(offset, timeout=0.5)
                    failed.set()

                nursery.start_soon(seek)
                rep = replicator_of(reader._open_state())
                await wait_until(lambda: len(rep._seeks) == 1)
                await connect(stack, evil, reader)
                await failed.wait()
                assert reader.length == 0  # nothing of that upgrade was stored
            else:
                _, r_evil = await connect(stack, evil, reader)
                await wait_peer(reader, r_evil)
                await reader.update()
                with pytest.raises(errors.RequestTimeoutError):  # the liar is dropped at once
                    await reader.seek(offset, timeout=0.5)
            assert len(invalid) == 1 and reader.peers == []
            await connect(stack, writer, reader)
            answer = [await reader.seek(offset)]
            assert answer == [await writer.seek(offset)]
            assert len(invalid) == 1


@pytest.mark.parametrize("kind", ["block-value", "block-node", "signature"])
async def test_only_a_malicious_peer(kind: str) -> None:
    n = 50
    with trio.fail_after(5):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(make_blocks(n, seed=9))
            evil = await mirror(stack, writer)
            if kind == "signature":
                await writer.append(make_blocks(10, seed=9, start=n))
                await wait_until(lambda: evil.length == n + 10)
            make_malicious(evil, kind)
            reader = await open_core(stack, writer.key)
            invalid = Recorder(reader, "invalid-data")
            await connect(stack, evil, reader)
            with pytest.raises(errors.RequestTimeoutError):
                await reader.get(5, timeout=0.5)
            assert len(invalid) == 1
            assert reader.peers == []
            assert not await reader.has(5)
            assert reader.contiguous_length == 0
            if kind == "signature":
                assert reader.length == 0  # the forged upgrade was refused
            else:
                assert reader.length == n
                assert await reader.tree_hash() == await writer.tree_hash(n)
            for i in range(reader.length):
                assert not await reader.has(i)


async def test_peer_answering_with_other_blocks_does_not_stall_the_download() -> None:
    """A peer that answers each block request with a valid proof of *another* block: what
    it sends is never stored as the block asked for, the honest peer's blocks complete the
    download, and the liar is not asked over and over (no request/answer spin)."""
    n = 300
    with trio.fail_after(8):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(make_blocks(n, seed=10))
            evil = await mirror(stack, writer)
            good = await mirror(stack, writer)
            answers = make_malicious(evil, "other-block")

            # Only the liar: a get times out, and it was asked a bounded number of times.
            lonely = await open_core(stack, writer.key)
            _, r_lonely = await connect(stack, evil, lonely)
            await wait_peer(lonely, r_lonely)
            await lonely.update()
            assert lonely.length == n
            with pytest.raises(errors.RequestTimeoutError):
                await lonely.get(5, timeout=0.5)
            assert not await lonely.has(5) and not await lonely.has(4)
            assert 1 <= len(answers) < 50, len(answers)

            # The liar and an honest peer: the download completes.
            reader = await open_core(stack, writer.key)
            _, r_evil = await connect(stack, evil, reader)
            await wait_peer(reader, r_evil)
            await reader.update()
            d = reader.download(0, n)
            _, r_good = await connect(stack, good, reader)
            await wait_peer(reader, r_good)
            await d.done()
            await assert_same_core(reader, writer)


# ---- 7. encrypted cores -------------------------------------------------------------------------


async def test_encrypted_core_relayed_by_a_peer_without_the_key() -> None:
    n = 100
    blocks = make_blocks(n, seed=11)
    key = bytes(range(32))
    with trio.fail_after(5):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack, encryption_key=key)
            await writer.append(blocks)
            assert writer.padding == 8
            relay = await open_core(stack, writer.key)  # no encryption key
            assert relay.encryption_key is None and relay.padding == 0
            _, s_relay = await connect(stack, writer, relay)
            await wait_peer(relay, s_relay)
            await relay.update()
            await relay.download(0, n).done()
            assert relay.length == n
            assert await relay.tree_hash() == await writer.tree_hash()
            for i in range(n):
                raw = await relay.get(i, raw=True)
                assert raw == await writer.get(i, raw=True)
                assert raw != blocks[i] and len(raw) == len(blocks[i]) + 8
                assert blocks[i] not in raw

            reader = await open_core(stack, writer.key, encryption_key=key)
            _, s_reader = await connect(stack, relay, reader)
            await wait_peer(reader, s_reader)
            await reader.update()
            assert reader.length == n and len(reader.peers) == 1
            for i in (0, 57, n - 1):
                assert await reader.get(i) == blocks[i]
            await reader.download(0, n).done()
            await assert_same_core(reader, writer)
            assert reader.byte_length == sum(map(len, blocks))

            # Live: an append made while everybody is connected goes through the relay too.
            relay.download(0, None)
            await writer.append(b"secret tail")
            assert await reader.get(n) == b"secret tail"
            assert await relay.get(n, raw=True) != b"secret tail"


# ---- 8. hand-made peers: request floods, bad capabilities ----------------------------------


@pytest.mark.parametrize("limit", [None, 100])
async def test_request_flood_from_a_peer_that_never_reads(
    limit: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer that sends requests and never reads what it is sent: the writer stops serving
    when its stream backs up, queues at most MAX_QUEUED_REQUESTS, then drops the peer."""
    if limit is not None:
        # Still above MAX_INFLIGHT: an honest peer may have that many requests waiting.
        assert limit > limits.MAX_INFLIGHT
        monkeypatch.setattr(limits, "MAX_QUEUED_REQUESTS", limit)
    max_queued = limits.MAX_QUEUED_REQUESTS
    n = 64
    with trio.fail_after(10):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append([bytes([i]) * 32768 for i in range(n)])
            invalid = Recorder(writer, "invalid-data")
            raw, stream = await raw_peer_of(stack, writer)
            raw.open(writer.key)
            await raw.channel.wait_opened()
            await wait_until(lambda: len(writer.peers) == 1)
            victim = writer.peers[0]
            stream.reading = False  # from now on nothing the writer sends is read

            queued: list[int] = []
            served = Recorder(writer, "upload")
            for i in range(max_queued + 500):
                raw.send("request", wire.Request(id=i + 1, block=RequestIndex(i % n, 0)))
                if i % 64 == 0:
                    await trio.sleep(0)  # let the writer read some
                    queued.append(len(victim.queue))
            await invalid.wait_count(1)
            err, peer = invalid.calls[0]
            assert peer is victim
            assert "requests waiting" in str(err)
            assert victim.channel is not None and victim.channel.closed
            assert victim.removed and writer.peers == []
            assert max(queued) <= max_queued
            assert 0 < len(served) < max_queued  # it served until the stream backed up

            # The writer still serves others.
            reader = await open_core(stack, writer.key)
            _, s_reader = await connect(stack, writer, reader)
            await wait_peer(reader, s_reader)
            await reader.update()
            await reader.download(0, n).done()
            await assert_same_core(reader, writer)


async def test_channel_with_a_bad_capability_is_refused() -> None:
    """A peer that knows the discovery key but not the key cannot open the core."""
    with trio.fail_after(5):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(make_blocks(10, seed=12))
            invalid = Recorder(writer, "invalid-data")
            uploads = Recorder(writer, "upload")
            raw, _ = await raw_peer_of(stack, writer, "memory")
            raw.open(writer.key, capability_key=bytes(32))
            await raw.closed.wait()
            await invalid.wait_count(1)
            assert isinstance(invalid.calls[0][0], errors.InvalidCapabilityError)
            assert writer.peers == []
            # Whatever it sent meanwhile was not answered with data.
            raw.send("request", wire.Request(id=1, block=RequestIndex(0, 0)))
            await trio.sleep(0.05)
            assert len(uploads) == 0
            assert all(name not in ("data", "sync", "range") for name, _ in raw.received)


async def test_raw_peer_with_the_right_capability_is_served() -> None:
    """The hand-made peer is right (the two tests above rely on it): with the correct
    capability it gets a sync and its requests answered with proofs that verify."""
    blocks = make_blocks(10, seed=13)
    with trio.fail_after(5):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(blocks)
            raw, _ = await raw_peer_of(stack, writer, "memory")
            raw.open(writer.key)
            await raw.channel.wait_opened()
            raw.send(
                "request",
                wire.Request(
                    id=7,
                    block=RequestIndex(3, 0),
                    upgrade=RequestUpgrade(0, 10),
                    manifest=True,  # we know only the key
                ),
            )
            await wait_until(lambda: any(name == "data" for name, _ in raw.received))
            names = [name for name, _ in raw.received]
            assert names[0] == "sync"
            data = next(v for name, v in raw.received if name == "data")
            assert data.request == 7 and data.block.index == 3
            check = await open_core(stack, writer.key)
            assert await check.verify(data)
            assert await check.get(3, wait=False) == blocks[3]


# ---- several cores on one stream ----------------------------------------------------------------


async def test_two_cores_share_one_stream() -> None:
    """Each core gets its own channel on the stream's one Protomux; each reader gets only
    its own core's blocks."""
    b1 = make_blocks(40, seed=14)
    b2 = make_blocks(25, seed=15)
    with trio.fail_after(5):
        async with AsyncExitStack() as stack:
            w1 = await open_core(stack)
            w2 = await open_core(stack)
            await w1.append(b1)
            await w2.append(b2)
            r1 = await open_core(stack, w1.key)
            r2 = await open_core(stack, w2.key)
            s_w, s_r = await stack.enter_async_context(secret_pair())
            mux_w = w1.replicate(s_w)
            assert w2.replicate(s_w) is mux_w
            mux_r = r1.replicate(s_r)
            assert r2.replicate(s_r) is mux_r
            assert r1.replicate(mux_r) is mux_r  # again, by mux: no second channel
            await wait_peer(r1, s_r)
            await wait_peer(r2, s_r)
            assert len(r1.peers) == len(r2.peers) == 1
            await r1.update()
            await r2.update()
            assert (r1.length, r2.length) == (40, 25)
            await r1.download(0, 40).done()
            await r2.download(0, 25).done()
            await assert_same_core(r1, w1)
            await assert_same_core(r2, w2)
            await w2.append(b"more")
            assert await r2.get(25) == b"more"
            assert r1.length == 40


async def test_a_misaligned_bitfield_message_drops_the_peer() -> None:
    """Bitfield messages start at a multiple of 32 (JS only makes those); anything else is
    garbage from the peer: it is dropped, the core carries on."""
    with trio.fail_after(5):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(make_blocks(4, seed=14))
            invalid = Recorder(writer, "invalid-data")
            raw, _ = await raw_peer_of(stack, writer, "memory")
            raw.open(writer.key)
            while not writer.peers:
                await trio.sleep(0.01)
            raw.send("bitfield", wire.Bitfield(start=33, bitfield=(0xFFFFFFFF,)))
            await raw.closed.wait()
            await invalid.wait_count(1)
            assert writer.peers == []
            assert writer.length == 4 and await writer.get(3, wait=False) is not None


# ---- proofs that rely on earlier ones --------------------------------------------------------


@pytest.mark.parametrize("fail_first", [False, True])
async def test_short_proofs_wait_for_the_proofs_they_rely_on(fail_first: bool) -> None:
    """Blocks asked for together carry only the proof nodes that the earlier requests of the
    batch do not bring. A peer answering them in reverse order is fine (they wait for what
    they rely on); a peer failing the first of them is not dropped: the blocks that relied
    on it are asked for again."""
    n = 64
    blocks = make_blocks(n, seed=21)
    with trio.fail_after(10):
        async with AsyncExitStack() as stack:
            source = await open_core(stack)
            await source.append(blocks)
            reader = await open_core(stack, source.key)
            invalid = Recorder(reader, "invalid-data")
            raw, _ = await raw_peer_of(stack, reader, "memory")
            raw.open(source.key)
            await raw.channel.wait_opened()
            raw.send(
                "sync",
                wire.Sync(fork=0, length=n, remote_length=0, can_upgrade=True, uploading=True),
            )
            raw.send("range", wire.Range(start=0, length=n))
            download = reader.download(0, n)
            asked: list[wire.Request] = []
            short = 0
            failed: int | None = None
            seen = 0
            while not download.completed:
                await wait_until(
                    lambda seen=seen: len(raw.received) > seen or download.completed  # type: ignore[misc]
                )
                new = [v for name, v in raw.received[seen:] if name == "request"]
                seen = len(raw.received)
                block_requests = [r for r in new if r.block is not None]
                for r in new:
                    if r.block is None:  # the upgrade
                        proof = await source.proof(upgrade=r.upgrade, manifest=r.manifest)
                        raw.send("data", dataclasses.replace(proof, request=r.id))
                for r in sorted(block_requests, key=lambda r: -r.block.index):
                    asked.append(r)
                    short += r.block.nodes < await reader.missing_nodes(r.block.index)
                    if fail_first and failed is None and r is block_requests[0]:
                        failed = r.block.index
                        raw.send("no_data", wire.NoData(request=r.id))
                        raw.send("range", wire.Range(start=0, length=n))  # has them after all
                        continue
                    proof = await source.proof(block=r.block)
                    raw.send("data", dataclasses.replace(proof, request=r.id))
            await download.done()
            assert short > n // 4  # most of a batch relies on earlier proofs
            assert len(invalid) == 0 and len(reader.peers) == 1
            if fail_first:
                again = [r.block.index for r in asked]
                assert again.count(failed) == 2 and len(again) > len(set(again)) + 1
            else:
                assert len(asked) == n
            await assert_same_core(reader, source)
