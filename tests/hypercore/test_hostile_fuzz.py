"""Hypothesis as a hostile peer: arbitrary sequences of well-formed replication messages (any
fields, any order) sent to a writer and to a sparse reader while an honest peer downloads
from them. The honest download completes, memory stays bounded, nothing raises out of the
core (an exception there would end trio.run with it)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypercore import Hypercore, wire
from tests.bounds import peak_memory

from .replication_helpers import connect, make_blocks, open_core, raw_peer_of, wait_peer
from .strategies import (
    bitfields,
    cancels,
    data_messages,
    extensions,
    no_datas,
    ranges,
    requests,
    syncs,
    u32,
    unwants,
    wants,
)

N = 120  # blocks of the writer
SPARSE = (0, 60)  # what the sparse reader has

# Bitfields at a multiple of 32 (others drop the peer at once), near the blocks there are.
aligned_bitfields = st.builds(
    wire.Bitfield,
    start=st.integers(0, 8).map(lambda k: 32 * k),
    bitfield=st.lists(u32, max_size=8).map(tuple),
)

hostile = st.lists(
    st.one_of(
        st.tuples(st.just("sync"), syncs),
        st.tuples(st.just("request"), requests),
        st.tuples(st.just("cancel"), cancels),
        st.tuples(st.just("data"), data_messages),
        st.tuples(st.just("no_data"), no_datas),
        st.tuples(st.just("want"), wants),
        st.tuples(st.just("unwant"), unwants),
        st.tuples(st.just("bitfield"), bitfields | aligned_bitfields),
        st.tuples(st.just("range"), ranges),
        st.tuples(st.just("extension"), extensions),
    ),
    max_size=40,
)


async def _attack_and_download(target: Hypercore, end: int, script: list[tuple[str, Any]]) -> None:
    async with AsyncExitStack() as stack:
        await _attack_and_download_on(stack, target, end, script)


async def _attack_and_download_on(
    stack: AsyncExitStack, target: Hypercore, end: int, script: list[tuple[str, Any]]
) -> None:
    raw, _ = await raw_peer_of(stack, target, "memory")
    raw.open(target.key)
    await raw.channel.wait_opened()
    honest = await open_core(stack, target.key)
    _, s = await connect(stack, target, honest)
    await wait_peer(honest, s)
    download = honest.download(0, end)
    for name, m in script:
        if raw.channel.closed:
            break
        raw.send(name, m)
        await trio.sleep(0)
    await download.done()
    for i in range(end):
        assert await honest.get(i, wait=False) == await target.get(i, wait=False)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(hostile, hostile)
def test_hostile_messages_never_stop_an_honest_download(
    to_writer: list[tuple[str, Any]], to_reader: list[tuple[str, Any]]
) -> None:
    async def main() -> None:
        with trio.fail_after(30):
            async with AsyncExitStack() as stack:
                writer = await open_core(stack)
                await writer.append(make_blocks(N, seed=9))
                sparse = await open_core(stack, writer.key)
                _, s = await connect(stack, writer, sparse)
                await wait_peer(sparse, s)
                await sparse.update()
                await sparse.download(*SPARSE).done()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_attack_and_download, writer, N, to_writer)
                    nursery.start_soon(_attack_and_download, sparse, SPARSE[1], to_reader)

    with peak_memory() as mem:
        trio.run(main)
    assert mem.peak < 64 * (1 << 20)
