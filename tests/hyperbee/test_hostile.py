"""A bee over hostile blocks (random levels, pointers out of range, cycles, garbage): every
read and write raises only DecodingError, and always ends."""

from __future__ import annotations

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperbee import DecodingError, Hyperbee
from hyperbee.messages import (
    Header,
    Level,
    Node,
    YoloIndex,
    encode_header,
    encode_node,
    encode_yolo_index,
)
from hypercore import Hypercore, MemoryStorage

small = st.integers(0, 8)
levels = st.builds(Level, st.lists(small, max_size=4), st.lists(small, max_size=8))
blocks = st.builds(
    lambda lv, key, value: encode_node(Node(encode_yolo_index(YoloIndex(lv)), key, value)),
    st.lists(levels, max_size=3),
    st.binary(max_size=2),
    st.none() | st.binary(max_size=2),
)


async def _exercise(raw: list[bytes], key: bytes) -> None:
    async with Hypercore(MemoryStorage()) as core:
        await core.append([encode_header(Header()), *raw])
        async with Hyperbee(core) as bee:
            reads = [
                lambda: bee.get(key),
                lambda: bee.peek(gte=key),
                lambda: bee.get_by_seq(1),
            ]
            for read in reads:
                try:
                    await read()
                except DecodingError:
                    pass
            for it in (
                lambda: bee.read(),
                lambda: bee.read(gt=key, reverse=True),
                lambda: bee.diff(1),
                lambda: bee.diff(max(1, core.length - 1)),
                lambda: bee.history(),
            ):
                try:
                    n = 0
                    async for _ in it():
                        n += 1
                        assert n < 10_000
                except DecodingError:
                    pass
            for write in (lambda: bee.put(key, b"v"), lambda: bee.delete(key)):
                length = core.length
                try:
                    await write()
                except DecodingError:
                    assert core.length == length  # nothing written on bad data


@settings(max_examples=150, deadline=None)
@given(st.lists(blocks | st.binary(max_size=12), min_size=1, max_size=7), st.binary(max_size=2))
def test_hostile_blocks_raise_only_decoding_error(raw: list[bytes], key: bytes) -> None:
    trio.run(_exercise, raw, key)


def test_cycles_end_with_decoding_error() -> None:
    # Block 1's root points at itself through both children: a cycle and a fan-out.
    loop = encode_node(Node(encode_yolo_index(YoloIndex([Level([1], [1, 0, 1, 0])])), b"m"))
    for key in (b"a", b"m", b"z"):
        trio.run(_exercise, [loop], key)
    deep = [
        encode_node(
            Node(encode_yolo_index(YoloIndex([Level([i + 1], [i + 1, 0, i + 1, 0])])), b"m")
        )
        for i in range(6)
    ]
    trio.run(_exercise, deep, b"a")
