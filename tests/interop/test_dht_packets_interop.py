"""hyperswarm.dht_rpc.messages against dht-rpc 6.27.0's own lib/io.js: every request and
response shape (each optional field alone and all together, internal or not, tids at the
edges), JS bytes equal ours, each side reads the other's bytes to the same fields, write
tokens are the same keyed BLAKE2b, and a claimed node id is kept only when it is the hash of
the sender's address."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from hyperswarm.dht_rpc.io import IO
from hyperswarm.dht_rpc.messages import (
    Request,
    Response,
    decode_packet,
    encode_request,
    encode_response,
)
from hyperswarm.dht_rpc.peer import node_id
from hyperswarm.dht_rpc.table import RoutingTable
from hyperswarm.dht_rpc.timers import TimerQueue
from protomux.encoding import Address

from .jsenv import JSHelper

TO = Address("10.1.2.3", 49737)
ID = bytes(range(32))
TOKEN = bytes(range(100, 132))
TARGET = bytes(range(200, 232))
CLOSER = [Address("127.0.0.1", 10001), Address("192.168.7.9", 65535), Address("1.2.3.4", 1)]


def _addr(a: Address) -> dict[str, Any]:
    return {"host": a.host, "port": a.port}


REQUESTS = [
    dict(tid=tid, id=i, token=tok, internal=internal, command=cmd, target=tgt, value=val)
    for (tid, cmd), i, tok, internal, tgt, val in itertools.product(
        [(0, 0), (65535, 2), (4660, 300), (1, 70000)],
        [None, ID],
        [None, TOKEN],
        [False, True],
        [None, TARGET],
        [None, b"", b"v" * 300],
    )
]


def _request(o: dict[str, Any]) -> Request:
    return Request(
        o["tid"], TO, o["command"], o["id"], o["token"], o["internal"], o["target"], o["value"]
    )


@pytest.mark.parametrize("o", REQUESTS[::7] + REQUESTS[-3:])
def test_requests_are_the_bytes_js_sends(js: JSHelper, o: dict[str, Any]) -> None:
    got = js("dhtPackets.request", {**o, "to": _addr(TO)})
    assert encode_request(_request(o)) == got
    assert decode_packet(got) == _request(o)


def test_every_request_shape_round_trips_through_js(js: JSHelper) -> None:
    # The sender's id is kept by JS only when it hashes the source address.
    src = Address("127.0.0.1", 40000)
    for o in REQUESTS:
        o = {**o, "id": node_id(src.host, src.port) if o["id"] else None}
        raw = encode_request(_request(o))
        seen = js("dhtPackets.decode", raw, src.host, src.port, TOKEN)
        assert seen["kind"] == "request"
        assert seen["tid"] == o["tid"] and seen["command"] == o["command"]
        assert seen["to"] == _addr(TO) and seen["internal"] == o["internal"]
        assert seen["fromId"] == o["id"]
        assert seen["token"] == o["token"] and seen["target"] == o["target"]
        assert seen["value"] == o["value"]


RESPONSES = [
    dict(tid=tid, id=i, token=tok, has_closer=closer, error=err, value=val)
    for tid, i, tok, closer, err, val in itertools.product(
        [0, 65535, 777],
        [None, ID],
        [False, True],
        [False, True],
        [0, 1, 2, 16, 300],
        [None, b"", b"x" * 260],
    )
    if not (err and val is not None)  # JS error replies carry no value
]
SECRETS = [bytes(32), bytes(range(32))]


@pytest.mark.parametrize("o", RESPONSES[::11] + RESPONSES[-2:])
def test_responses_are_the_bytes_js_sends(js: JSHelper, o: dict[str, Any]) -> None:
    got = js(
        "dhtPackets.response",
        {
            "tid": o["tid"],
            "id": o["id"],
            "to": _addr(TO),
            "target": TARGET,
            "closerNodes": [_addr(a) for a in CLOSER],
            "hasCloserNodes": o["has_closer"],
            "token": o["token"],
            "error": o["error"],
            "value": o["value"],
            "secrets": list(SECRETS),
        },
    )
    token = _token(SECRETS, TO.host, 1) if o["token"] else None
    mine = Response(
        o["tid"],
        TO,
        o["id"],
        token,
        tuple(CLOSER) if o["has_closer"] else (),
        o["error"],
        o["value"],
    )
    assert encode_response(mine) == got
    assert decode_packet(got) == mine


def test_every_response_shape_round_trips_through_js(js: JSHelper) -> None:
    src = Address("127.0.0.1", 40001)
    for o in RESPONSES:
        rid = node_id(src.host, src.port) if o["id"] else None
        mine = Response(
            o["tid"],
            TO,
            rid,
            TOKEN if o["token"] else None,
            tuple(CLOSER) if o["has_closer"] else (),
            o["error"],
            o["value"],
        )
        seen = js("dhtPackets.decode", encode_response(mine), src.host, src.port)
        assert seen["kind"] == "response" and seen["tid"] == o["tid"]
        assert seen["fromId"] == rid and seen["to"] == _addr(TO)
        assert seen["token"] == mine.token and seen["error"] == o["error"]
        want_closer = [{"id": None, **_addr(a)} for a in CLOSER] if o["has_closer"] else None
        assert seen["closerNodes"] == want_closer
        assert seen["value"] == o["value"]


def test_a_wrong_node_id_is_dropped_by_both(js: JSHelper) -> None:
    src = Address("127.0.0.1", 40002)
    raw = encode_request(Request(5, TO, 0, node_id("127.0.0.1", 40003), None, True))
    assert js("dhtPackets.decode", raw, src.host, src.port)["fromId"] is None


class _NoTransport:
    def send(self, socket: int, data: bytes, host: str, port: int, ttl: int) -> None:
        raise AssertionError("nothing is sent here")


def _token(secrets: list[bytes], host: str, i: int) -> bytes:
    io = IO(
        RoutingTable(bytes(32)),
        _NoTransport(),
        TimerQueue(),
        rng=random.Random(0),
        on_request=lambda req, external: None,
        on_response=lambda reply, external: None,
        on_timeout=lambda req: None,
    )
    io._secrets = list(secrets)
    first = io.token(host, i)
    assert io.token(host, i) == first  # the second comes from the cache
    return first


def test_write_tokens_are_the_ones_js_makes(js: JSHelper) -> None:
    for host in ["127.0.0.1", "10.0.0.200", "255.255.255.255"]:
        for i in (0, 1):
            assert _token(SECRETS, host, i) == js("dhtPackets.token", SECRETS, host, i)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x03",
        b"\x03\x04",
        b"\x13\x00\x01\x00\x7f\x00\x00\x01\x10",
        b"\x03\x01\x00\x00\x7f\x00\x00\x01\x10\x27" + bytes(10),
        b"\x13\x04\x00\x00\x7f\x00\x00\x01\x10\x27\x05" + bytes(12),
        b"\x13\x10\x00\x00\x7f\x00\x00\x01\x10\x27\x05ab",
        b"\x23\x00\x00\x00\x7f\x00\x00\x01\x10\x27\x00",
    ],
)
def test_js_and_we_drop_the_same_bad_datagrams(js: JSHelper, raw: bytes) -> None:
    from hyperswarm.dht_rpc.errors import DHTDecodeError

    assert js("dhtPackets.decode", raw, "127.0.0.1", 40004) is None
    with pytest.raises(DHTDecodeError):
        decode_packet(raw)
