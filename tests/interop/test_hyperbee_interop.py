"""hyperbee.messages against JS hyperbee 2.27.3's own codecs: random blocks byte for byte
both ways, and mutated bytes read alike wherever both sides accept them."""

from __future__ import annotations

import random
from typing import Any

from hyperbee import DecodingError
from hyperbee.messages import (
    Header,
    Level,
    Metadata,
    Node,
    YoloIndex,
    decode_node,
    decode_yolo_index,
    encode_header,
    encode_node,
    encode_yolo_index,
)

from .jsenv import JSHelper


def _opt(rng: random.Random) -> bytes | None:
    return None if rng.random() < 0.3 else rng.randbytes(rng.randrange(0, 40))


def _index(rng: random.Random) -> YoloIndex:
    def uint() -> int:
        return rng.choice([rng.randrange(0, 300), rng.randrange(0, 2**40)])

    return YoloIndex(
        [
            Level(
                [uint() for _ in range(rng.randrange(0, 9))],
                [uint() for _ in range(2 * rng.randrange(0, 10))],
            )
            for _ in range(rng.randrange(0, 5))
        ]
    )


def _js_index(index: YoloIndex) -> dict[str, Any]:
    return {"levels": [{"keys": lv.keys, "children": lv.children} for lv in index.levels]}


def _py_index(obj: dict[str, Any]) -> YoloIndex:
    return YoloIndex([Level(list(lv["keys"]), list(lv["children"])) for lv in obj["levels"]])


def _js_node(node: Node) -> dict[str, Any]:
    return {"index": node.index, "key": node.key, "value": node.value}


def _js_header(h: Header) -> dict[str, Any]:
    m = h.metadata
    meta = None if m is None else {"contentFeed": m.content_feed, "userData": m.user_data}
    return {"protocol": h.protocol, "metadata": meta}


def _py_header(obj: dict[str, Any]) -> Header:
    m = obj["metadata"]
    meta = None if m is None else Metadata(m["contentFeed"], m["userData"])
    return Header(obj["protocol"], meta)


def test_random_blocks_match_byte_for_byte(js: JSHelper) -> None:
    rng = random.Random(7)
    for _ in range(150):
        index = _index(rng)
        enc = encode_yolo_index(index)
        assert bytes(js("bee.encode", "yolo", _js_index(index))) == enc
        assert _py_index(js("bee.decode", "yolo", enc)["value"]) == index

        node = Node(enc, rng.randbytes(rng.randrange(0, 30)), _opt(rng))
        enc = encode_node(node)
        assert bytes(js("bee.encode", "node", _js_node(node))) == enc
        got = js("bee.decode", "node", enc)["value"]
        assert Node(got["index"], got["key"], got["value"]) == node

        meta = None if rng.random() < 0.3 else Metadata(_opt(rng), _opt(rng))
        header = Header(rng.choice(["hyperbee", "", "x" * rng.randrange(1, 20)]), meta)
        enc = encode_header(header)
        assert bytes(js("bee.encode", "header", _js_header(header))) == enc
        assert _py_header(js("bee.decode", "header", enc)["value"]) == header


def test_mutated_blocks_read_alike_where_both_accept(js: JSHelper) -> None:
    rng = random.Random(8)
    both = 0
    for _ in range(300):
        index = _index(rng)
        node = Node(encode_yolo_index(index), rng.randbytes(rng.randrange(0, 10)), _opt(rng))
        buf = bytearray(encode_node(node))
        for _ in range(rng.randrange(1, 3)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        if rng.random() < 0.3:
            buf = buf[: rng.randrange(len(buf) + 1)]
        data = bytes(buf)
        theirs = js("bee.decode", "node", data)
        try:
            ours = decode_node(data)
        except DecodingError:
            continue
        assert "value" in theirs, (data.hex(), theirs)
        v = theirs["value"]
        assert Node(v["index"], v["key"], v["value"]) == ours
        both += 1
        their_index = js("bee.decode", "yolo", ours.index)
        try:
            our_index = decode_yolo_index(ours.index)
        except DecodingError:
            continue
        if "value" in their_index:
            assert _py_index(their_index["value"]) == our_index
    assert both > 50
