"""hyperbee.messages: round trips, the checked vectors of REFERENCE.md section 9, and
decoders that raise only DecodingError."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hyperbee import DecodingError
from hyperbee.messages import (
    Header,
    Level,
    Metadata,
    Node,
    YoloIndex,
    decode_header,
    decode_node,
    decode_yolo_index,
    encode_header,
    encode_node,
    encode_yolo_index,
)

uints = st.integers(0, 2**53 - 1)
levels = st.builds(Level, st.lists(uints, max_size=10), st.lists(uints, max_size=20))
indexes = st.builds(YoloIndex, st.lists(levels, max_size=5))
opt_bytes = st.none() | st.binary(max_size=40)
headers = st.builds(
    Header,
    st.text(max_size=20),
    st.none() | st.builds(Metadata, opt_bytes, opt_bytes),
)
nodes = st.builds(Node, st.binary(max_size=60), st.binary(max_size=30), opt_bytes)


def test_checked_vectors() -> None:
    assert encode_header(Header()) == bytes.fromhex("0a08") + b"hyperbee"
    assert decode_header(bytes.fromhex("0a08") + b"hyperbee") == Header("hyperbee", None)
    index = YoloIndex(
        [Level([7], [11, 1, 11, 2]), Level([2, 3, 5, 6], []), Level([8, 9, 10, 11], [])]
    )
    encoded = encode_yolo_index(index)
    assert decode_yolo_index(encoded) == index
    # The tombstone shape: a key, no value, levels that do not point at the block itself.
    tomb = Node(encode_yolo_index(YoloIndex([Level([2, 3], [])])), b"a")
    assert encode_node(tomb).hex() == "0a060a040a0202031201" + b"a".hex()
    assert decode_node(encode_node(tomb)) == tomb


@given(indexes)
def test_yolo_index_round_trip(index: YoloIndex) -> None:
    assert decode_yolo_index(encode_yolo_index(index)) == index


@given(headers)
def test_header_round_trip(header: Header) -> None:
    assert decode_header(encode_header(header)) == header


@given(nodes)
def test_node_round_trip(node: Node) -> None:
    assert decode_node(encode_node(node)) == node


@given(st.binary(max_size=80))
def test_decoders_raise_only_decoding_error(data: bytes) -> None:
    for decode in (decode_header, decode_node, decode_yolo_index):
        try:
            decode(data)
        except DecodingError:
            pass


@given(nodes, st.data())
def test_mutated_nodes_raise_only_decoding_error(node: Node, data: st.DataObject) -> None:
    buf = bytearray(encode_node(node))
    if buf:
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(buf)))
    for candidate in (bytes(buf), bytes(buf[:cut])):
        try:
            got = decode_node(candidate)
        except DecodingError:
            continue
        try:
            decode_yolo_index(got.index)
        except DecodingError:
            pass
