"""A hostile peer speaking the replication wire: one message never takes a core down, a
peer's answers never stall a download, every queue a peer feeds has a bound."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import replace

import pytest
import trio

from hypercore import Hypercore, wire
from hypercore.remote_bitfield import MAX_INDEX
from hypercore.replication import limits
from tests.bounds import loop_watch, peak_memory

from .replication_helpers import (
    PausableStream,
    RawPeer,
    Recorder,
    connect,
    make_blocks,
    open_core,
    raw_peer_of,
    secret_pair,
    wait_peer,
    wait_until,
)

MiB = 1 << 20
MAX_U = (1 << 53) - 1  # the largest uint on the wire


async def _raw_peer_of(
    stack: AsyncExitStack, core: Hypercore, transport: str = "memory"
) -> tuple[RawPeer, PausableStream]:
    """``core`` replicating with an opened RawPeer; returns it once the core has its peer."""
    before = len(core.peers)
    raw, stream = await raw_peer_of(stack, core, transport)
    raw.open(core.key)
    await raw.channel.wait_opened()
    await wait_until(lambda: len(core.peers) == before + 1)
    return raw, stream


async def _honest_download(stack: AsyncExitStack, writer: Hypercore, end: int = -1) -> None:
    """An honest reader still gets the blocks ``[0, end)`` (all by default) of ``writer``."""
    end = writer.length if end < 0 else end
    reader = await open_core(stack, writer.key)
    _, s = await connect(stack, writer, reader)
    await wait_peer(reader, s)
    await reader.update()
    await reader.download(0, end).done()
    assert [await reader.get(i) for i in range(end)] == [await writer.get(i) for i in range(end)]


# ---- 1. range messages with lengths the peer chose -----------------------------------------------


@pytest.mark.parametrize(
    "messages",
    [
        [wire.Range(start=5, length=1 << 31)],
        [wire.Range(start=1, length=1 << 40)],
        [wire.Range(start=0, length=MAX_U), wire.Range(drop=True, start=3, length=MAX_U - 3)],
        [wire.Range(start=7, length=1 << 45), wire.Range(drop=True, start=8, length=MAX_U)],
    ],
    ids=["2^31", "2^40", "drop-2^53", "drop-inside"],
)
async def test_one_range_message_costs_nothing_it_names(messages: list[wire.Range]) -> None:
    """A 9-byte ``range`` names up to 2^53 blocks: applying it takes neither memory nor loop
    time in proportion, the peer stays (the message is well formed), and what it said is
    what the core believes."""
    with trio.fail_after(30):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(make_blocks(20, seed=1))
            raw, _ = await _raw_peer_of(stack, writer)
            peer = writer.peers[0]
            async with loop_watch() as watch:
                with peak_memory() as mem:
                    for m in messages:
                        raw.send("range", m)
                    await wait_until(lambda: peer.remote_bits.runs or peer.remote_contiguous)
                    await trio.sleep(0.05)
            assert mem.peak < 2 * MiB
            assert watch.longest_stall < 0.5
            assert writer.peers == [peer]
            last = messages[-1]
            if last.drop:
                assert not peer.has_block(last.start)
                assert peer.has_block(last.start - 1)
            else:
                assert peer.has_block(last.start) and peer.has_block(last.start + 1000)
            assert not peer.has_block(MAX_INDEX)
            await _honest_download(stack, writer)


# ---- 2. page amplification -----------------------------------------------------------------------


async def test_one_bit_ranges_at_distinct_pages_cost_bytes_not_pages() -> None:
    """Single blocks announced far apart (a 4 KiB page each, once) are runs of 16 bytes."""
    n = 20_000
    with trio.fail_after(60):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(make_blocks(10, seed=2))
            raw, _ = await _raw_peer_of(stack, writer)
            peer = writer.peers[0]
            async with loop_watch() as watch:
                with peak_memory() as mem:
                    for k in range(n):
                        raw.send("range", wire.Range(start=(k + 1) * 32768 + 3, length=1))
                        if k % 500 == 0:
                            await trio.sleep(0)
                    await wait_until(lambda: peer.remote_bits.runs == n)
            assert peer.remote_bits.pages == 0
            assert mem.peak < 8 * MiB  # pages would have been 80 MiB
            assert watch.longest_stall < 0.5
            assert peer.has_block(32768 * 7 + 3) and not peer.has_block(32768 * 7 + 4)


async def test_a_peer_past_the_run_cap_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    from hypercore import remote_bitfield

    monkeypatch.setattr(remote_bitfield, "MAX_RUNS", 100)
    with trio.fail_after(10):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(make_blocks(10, seed=3))
            invalid = Recorder(writer, "invalid-data")
            raw, _ = await _raw_peer_of(stack, writer)
            for k in range(150):
                raw.send("range", wire.Range(start=10 * k + 100, length=1))
            await raw.closed.wait()
            await invalid.wait_count(1)
            assert "disjoint ranges" in str(invalid.calls[0][0])
            assert writer.peers == []
            await _honest_download(stack, writer)


async def test_bitfields_we_did_not_ask_for_are_not_kept() -> None:
    """Bitfield messages answer our wants: one at each of many pages, unasked, allocates
    nothing (each would have been a 4 KiB page)."""
    with trio.fail_after(20):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(make_blocks(10, seed=4))
            raw, _ = await _raw_peer_of(stack, writer)
            peer = writer.peers[0]
            with peak_memory() as mem:
                for k in range(5000):
                    raw.send("bitfield", wire.Bitfield(start=(k + 1) * 32768, bitfield=(1,)))
                    if k % 500 == 0:
                        await trio.sleep(0)
                raw.send("range", wire.Range(start=0, length=3))  # sent last: all were read
                await wait_until(lambda: peer.remote_contiguous == 3)
            assert peer.remote_bits.pages == 0
            assert mem.peak < 4 * MiB
            assert writer.peers == [peer]


# ---- 3. wants from a peer that never reads -------------------------------------------------------


async def test_wants_from_a_peer_that_never_reads_are_bounded() -> None:
    """Each want of a sparse core is answered with bitfield pages. A peer that wants
    (distinct ranges, or the same one unwanted in between, to be answered again) without
    reading: answers wait for the stream to drain, at most MAX_QUEUED_WANTS of them (an
    unwant takes its want out of the queue), then the peer is dropped."""
    with trio.fail_after(60):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append([b"x"] * 70_000)
            await writer.clear(10, 20)  # not contiguous: wants are answered with pages
            invalid = Recorder(writer, "invalid-data")
            raw, stream = await _raw_peer_of(stack, writer, "lockstep")
            victim = writer.peers[0]
            stream.reading = False
            batch = limits.WANT_BATCH
            with peak_memory() as mem:
                for k in range(3 * limits.MAX_QUEUED_WANTS):
                    raw.send("want", wire.Want(start=0, length=batch))
                    raw.send("unwant", wire.Unwant(start=0, length=batch))
                    raw.send("want", wire.Want(start=0, length=batch - 32 * k))
                    if k % 64 == 0:
                        await trio.sleep(0)
                        if victim.removed:
                            break
                await invalid.wait_count(1)
            assert "wants waiting" in str(invalid.calls[0][0])
            assert victim.removed and writer.peers == []
            assert mem.peak < 24 * MiB  # answered in full, 3072 answers were ~40 MiB
            await _honest_download(stack, writer, 10)


async def test_a_repeated_want_is_answered_once() -> None:
    with trio.fail_after(10):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append([b"y"] * 40_000)
            await writer.clear(5, 6)
            raw, _ = await _raw_peer_of(stack, writer)
            for _ in range(10):
                raw.send("want", wire.Want(start=0, length=limits.WANT_BATCH))
            raw.send("want", wire.Want(start=0, length=limits.WANT_BATCH + 1))  # too big
            raw.send("range", wire.Range(start=0, length=1))
            await wait_until(lambda: writer.peers[0].remote_contiguous == 1)
            await trio.sleep(0.05)
            assert sum(name == "bitfield" for name, _ in raw.received) == 2  # one want: 2 pages


# ---- 5. no_data never stalls a download ----------------------------------------------------------


async def _raw_source(
    stack: AsyncExitStack,
    reader: Hypercore,
    source: Hypercore,
    refuse: set[int],
    *,
    forever: bool = False,
) -> RawPeer:
    """A RawPeer of ``reader`` that announces all of ``source`` and serves its blocks, but
    answers the first request for each block of ``refuse`` (every one, ``forever``) with
    ``no_data``."""
    raw, _ = await _raw_peer_of(stack, reader)
    nursery = await stack.enter_async_context(trio.open_nursery())
    stack.callback(nursery.cancel_scope.cancel)
    seen = 0

    async def loop() -> None:
        nonlocal seen
        while True:
            while seen < len(raw.received):
                name, m = raw.received[seen]
                seen += 1
                if name != "request":
                    continue
                if m.block is not None and m.block.index in refuse:
                    if not forever:
                        refuse.discard(m.block.index)
                    raw.send("no_data", wire.NoData(request=m.id, reason=wire.NOT_AVAILABLE))
                    continue
                data = await source.proof(
                    block=m.block,
                    hash=m.hash,
                    seek=m.seek,
                    upgrade=m.upgrade,
                    manifest=m.manifest,
                )
                raw.send("data", replace(data, request=m.id, fork=m.fork))
            await trio.sleep(0.002)

    nursery.start_soon(loop)
    raw.send("sync", wire.Sync(length=source.length, can_upgrade=True, uploading=True))
    raw.send("range", wire.Range(start=0, length=source.length))
    return raw


async def test_a_no_data_answer_does_not_stall_the_download() -> None:
    """The only peer answers ``no_data`` once for block 92 (a replayed or stale answer
    looks the same): the reader goes on with the blocks after it, and asks for 92 again
    after a back-off, as JS does; it does not forget what the peer announced."""
    n = 200
    with trio.fail_after(20):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(make_blocks(n, seed=5))
            reader = await open_core(stack, writer.key)
            raw = await _raw_source(stack, reader, writer, {92, 150})
            await reader.update()
            await reader.download(0, n).done()
            assert await reader.get(92) == await writer.get(92)
            refused = [m for name, m in raw.received if name == "request" and m.block is not None]
            assert sum(m.block.index == 92 for m in refused) == 2


# ---- 7. error messages ---------------------------------------------------------------------------


async def test_a_dropped_peer_error_names_its_code_once() -> None:
    n = 10
    with trio.fail_after(10):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(make_blocks(n, seed=6))
            reader = await open_core(stack, writer.key)
            invalid = Recorder(reader, "invalid-data")
            raw, _ = await _raw_peer_of(stack, reader)
            raw.send("sync", wire.Sync(length=n, can_upgrade=True, uploading=True))
            raw.send("range", wire.Range(start=0, length=n))
            await wait_until(lambda: any(name == "request" for name, _ in raw.received))
            m = next(m for name, m in raw.received if name == "request")
            data = await writer.proof(
                block=m.block, hash=m.hash, upgrade=m.upgrade, manifest=m.manifest
            )
            data = replace(data, request=m.id)
            if data.upgrade is not None:
                bad = replace(data, upgrade=replace(data.upgrade, signature=bytes(64)))
            else:
                assert data.block is not None
                bad = replace(data, block=replace(data.block, value=data.block.value + b"!"))
            raw.send("data", bad)
            await invalid.wait_count(1)
            err = invalid.calls[0][0]
            assert str(err).count(f"{err.code}:") == 1, str(err)


# ---- failures inside a handler stay on the channel -----------------------------------------------


async def test_a_storage_failure_while_handling_a_message_closes_only_that_channel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A message whose handling reads a row that fails (here: the roots of the length a
    peer syncs at) closes that peer's channel; the core and its other peers go on."""
    from hypercore import merkle
    from hypercore.storage import StorageError

    with trio.fail_after(10):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(make_blocks(8, seed=7))
            raw, _ = await _raw_peer_of(stack, writer)

            def broken(*args: object) -> None:
                raise StorageError("tree node 3 of core x: Corruption: block checksum mismatch")

            monkeypatch.setattr(merkle, "roots_at", broken)
            raw.send("sync", wire.Sync(length=3, can_upgrade=True, uploading=True))
            await raw.closed.wait()
            assert writer.peers == []
            monkeypatch.undo()
            await _honest_download(stack, writer)


# ---- silence -------------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", [False, True])
async def test_a_silent_peer_does_not_hold_an_update_forever(
    claim: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer that opens the channel and then says nothing (or claims a longer core and
    never proves it) holds ``update()`` for one request timeout, not forever: the reader
    settles on what its honest peer proves."""
    monkeypatch.setattr(limits, "REQUEST_TIMEOUT", 1.0)
    n = 12
    with trio.fail_after(15):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(make_blocks(n, seed=8))
            reader = await open_core(stack, writer.key)
            raw, _ = await _raw_peer_of(stack, reader)
            if claim:
                raw.send("sync", wire.Sync(length=n + 100, can_upgrade=True, uploading=True))
            _, s = await connect(stack, writer, reader)
            await wait_peer(reader, s)
            await reader.update()
            assert reader.length == n
            assert await reader.get(n - 1) == await writer.get(n - 1)
            if claim:  # it was asked once, and not again for the same length
                asked = [m for name, m in raw.received if name == "request" and m.upgrade]
                assert len(asked) == 1


async def test_a_failing_write_of_downloaded_data_stops_replication_not_the_core(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reader's disk refuses the batch of a download (full, failing): its channels
    close (JS pauses its peers), the core stays open and usable."""
    from hypercore.core import Core
    from hypercore.storage import StorageError

    with trio.fail_after(10):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(make_blocks(30, seed=10))
            reader = await open_core(stack, writer.key)
            _, s = await connect(stack, writer, reader)
            await wait_peer(reader, s)
            await reader.update()
            calls = 0
            flush = Core.flush

            def failing(self: Core) -> None:
                nonlocal calls
                calls += 1
                if self is reader._state:
                    raise StorageError("cannot write: No space left on device")
                flush(self)

            monkeypatch.setattr(Core, "flush", failing)
            reader.download(0, 30)
            await wait_until(lambda: reader.peers == [])
            assert calls > 0
            monkeypatch.undo()
            assert reader.length == 30 and not reader.closed
            assert await reader.info() is not None


async def test_small_wants_of_one_batch_are_each_answered() -> None:
    """JS peers with SMALL_WANTS want 4096 blocks at a time: wants of distinct ranges inside
    one 2^21-block batch are each answered (only an exact repeat is not)."""
    with trio.fail_after(20):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(make_blocks(10_000, seed=11))
            sparse = await open_core(stack, writer.key)
            _, s = await connect(stack, writer, sparse)
            await wait_peer(sparse, s)
            await sparse.update()
            await sparse.download(blocks=[*range(5000, 5010), 9000]).done()
            raw, _ = await _raw_peer_of(stack, sparse)
            raw.received.clear()
            for start in (0, 4096, 8192, 8192):
                raw.send("want", wire.Want(start=start, length=4096))
            raw.send("range", wire.Range(start=0, length=1))
            await wait_until(lambda: sparse.peers[-1].remote_contiguous == 1)
            await trio.sleep(0.05)
            answered = sorted(m.start for name, m in raw.received if name == "bitfield")
            assert answered == [0, 4096, 8192]


async def test_an_upgrade_that_timed_out_is_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer stops reading for longer than a request timeout while it appends: the
    reader's upgrade request times out; it is asked again later, not never."""
    monkeypatch.setattr(limits, "REQUEST_TIMEOUT", 1.0)
    with trio.fail_after(20):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(make_blocks(10, seed=12))
            reader = await open_core(stack, writer.key)
            s_writer, s_reader = await stack.enter_async_context(secret_pair())
            held = PausableStream(s_writer)
            writer.replicate(held)
            reader.replicate(s_reader)
            await wait_peer(reader, s_reader)
            await reader.update()
            assert reader.length == 10
            peer = reader.peers[0]
            # The writer knows our length: its next sync offers the upgrade from 10.
            await wait_until(lambda: writer.peers[0].remote_length == 10)
            held.reading = False
            await writer.append(make_blocks(10, seed=12, start=10))
            await wait_until(lambda: peer.failed_upgrade == 20)  # timed out
            held.reading = True
            await wait_until(lambda: reader.length == 20)


async def test_single_blocks_announced_in_a_wanted_batch_are_not_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An honest peer announces every block it gets in the batches we want, one by one
    (as JS broadcastRange does): those go to pages (bounded by our wants), so it never
    reaches the run cap however sparse they are."""
    from hypercore import remote_bitfield

    monkeypatch.setattr(remote_bitfield, "MAX_RUNS", 100)
    with trio.fail_after(10):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(make_blocks(10, seed=13))
            raw, _ = await _raw_peer_of(stack, writer)
            peer = writer.peers[0]
            peer.wants_sent.add(0)  # as if we had asked it about batch 0
            for k in range(300):
                raw.send("range", wire.Range(start=7 * k + 20, length=1))
            raw.send("range", wire.Range(start=0, length=1))
            await wait_until(lambda: peer.remote_contiguous == 1)
            assert writer.peers == [peer]
            assert peer.remote_bits.runs == 0 and peer.remote_bits.pages == 1
            assert peer.has_block(7 * 299 + 20) and not peer.has_block(7 * 299 + 21)


async def test_a_storage_failure_while_scheduling_closes_only_that_channel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Scheduling reads our tree (the proof nodes a request can skip): a damaged row read
    from the peer's watchdog, or any other task, closes that peer's channel only."""
    from hypercore import merkle
    from hypercore.storage import StorageError

    with trio.fail_after(10):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(make_blocks(20, seed=14))
            reader = await open_core(stack, writer.key)
            _, s = await connect(stack, writer, reader)
            peer = await wait_peer(reader, s)
            await reader.update()

            def broken(*args: object, **kw: object) -> None:
                raise StorageError("tree node 12 of core x: Corruption: simulated")

            monkeypatch.setattr(merkle, "missing_nodes_until", broken)
            peer.avoid[3] = trio.current_time()  # a back-off ending now: the watchdog acts
            download = reader.download(0, 20)
            await wait_until(lambda: reader.peers == [])
            monkeypatch.undo()
            download.cancel()
            assert not reader.closed


async def test_a_peer_that_lacks_everything_it_announced_is_paused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A peer answers ``no_data`` to every block it announced: once it has MAX_AVOIDED
    back-offs, it is paused as a whole (as JS pauses it) instead of being asked again at
    the speed of its answers."""
    monkeypatch.setattr(limits, "MAX_AVOIDED", 4)
    n = 200
    with trio.fail_after(10):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append(make_blocks(n, seed=15))
            reader = await open_core(stack, writer.key)
            raw = await _raw_source(stack, reader, writer, set(range(n)), forever=True)
            await reader.update()
            assert reader.length == n
            reader.download(0, n)
            await trio.sleep(0.5)
            asked = [m for name, m in raw.received if name == "request" and m.block is not None]
            assert len(asked) <= 2 * limits.MAX_INFLIGHT
            assert reader.peers[0].paused_until > 0


async def test_a_download_reaches_blocks_far_past_one_nobody_has(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The only source has every other block: each scan of the range looks at SCAN_LIMIT
    positions; the next goes on where it stopped, so every block it has arrives (the
    scans used to start over at the first missing block and never get past the window)."""
    monkeypatch.setattr(limits, "SCAN_LIMIT", 64)
    n = 1000
    with trio.fail_after(30):
        async with AsyncExitStack() as stack:
            writer = await open_core(stack)
            await writer.append([b"%d" % i for i in range(n)])
            sparse = await open_core(stack, writer.key)
            _, s = await connect(stack, writer, sparse)
            await wait_peer(sparse, s)
            await sparse.update()
            await sparse.download(blocks=range(0, n, 2)).done()
            reader = await open_core(stack, writer.key)
            _, s2 = await connect(stack, sparse, reader)
            await wait_peer(reader, s2)
            await reader.update()
            reader.download(0, n)
            await wait_until(lambda: all(reader._state.bitfield.get(i) for i in range(0, n, 2)))
