"""hyperbee.tree on hostile blocks: only DecodingError, and always an end (cycles included).
Reading real bees is tested against JS in tests/interop/test_hyperbee_interop.py."""

from __future__ import annotations

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperbee import DecodingError
from hyperbee.messages import Level, Node, YoloIndex, encode_node, encode_yolo_index
from hyperbee.tree import TreeReader

small = st.integers(0, 8)
levels = st.builds(Level, st.lists(small, max_size=4), st.lists(small, max_size=8))
blocks = st.builds(
    lambda lv, key, value: encode_node(Node(encode_yolo_index(YoloIndex(lv)), key, value)),
    st.lists(levels, max_size=3),
    st.binary(max_size=2),
    st.none() | st.binary(max_size=2),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(blocks | st.binary(max_size=12), min_size=1, max_size=7), st.binary(max_size=2))
def test_hostile_trees_raise_only_decoding_error(raw: list[bytes], key: bytes) -> None:
    chain = [b"header", *raw]

    async def get_block(seq: int) -> bytes:
        return chain[seq]

    async def run() -> None:
        tree = TreeReader(get_block, len(chain))
        try:
            await tree.get(key)
        except DecodingError:
            pass
        try:
            n = 0
            async for _ in tree.entries():
                n += 1
                assert n < 100_000
        except DecodingError:
            pass

    trio.run(run)


def test_a_cycle_ends_with_decoding_error() -> None:
    loop = encode_node(Node(encode_yolo_index(YoloIndex([Level([1], [1, 0, 1, 0])])), b"m"))

    async def get_block(seq: int) -> bytes:
        return loop

    async def run() -> None:
        tree = TreeReader(get_block, 2)
        try:
            await tree.get(b"a")
        except DecodingError:
            pass
        else:
            raise AssertionError("a cycle must not end normally")
        try:
            async for _ in tree.entries():
                pass
        except DecodingError:
            return
        raise AssertionError("a cycle must not end normally")

    trio.run(run)
