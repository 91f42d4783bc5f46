"""compact-encoding against the pinned JS package: same bytes, and each decodes the other's."""

from __future__ import annotations

import ipaddress
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protomux import encoding as c

from .jsenv import JSError, JSHelper

MAX = c.MAX_SAFE_INTEGER


EDGE_UINTS = [0, 1, 0xFC, 0xFD, 0xFF, 0x100, 0xFFFF, 0x10000, 0xFFFFFF, 0xFFFFFFFF, 2**32, MAX]


def edge_uints(bits: int) -> st.SearchStrategy[int]:
    top = min((1 << bits) - 1, MAX)
    edges = [v for v in EDGE_UINTS if v <= top] + [top]
    return st.sampled_from(edges) | st.integers(0, top) | st.integers(0, min(top, 0x1FFFF))


def ints(bits: int | None) -> st.SearchStrategy[int]:
    lo, hi = (-(2**52), 2**52 - 1) if bits is None else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    small = st.integers(max(lo, -300), min(hi, 300))
    return st.sampled_from([lo, hi, 0, -1, 1]) | st.integers(lo, hi) | small


def ipv6_text(b: bytes) -> str:
    addr = ipaddress.IPv6Address(b)
    text = addr.compressed
    return addr.exploded if "." in text else text


ipv4s = st.binary(min_size=4, max_size=4).map(lambda b: str(ipaddress.IPv4Address(b)))
ipv6s = st.binary(min_size=16, max_size=16).map(ipv6_text) | st.sampled_from(["::1", "::"])

json_keys = st.text(max_size=8).filter(lambda k: not k.startswith("$"))
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=4)
    ),
    max_leaves=10,
)

# (python name, python codec, JS codec spec, value strategy)
CASES: list[tuple[str, c.Codec[Any], Any, st.SearchStrategy[Any]]] = [
    ("uint", c.uint, "uint", edge_uints(64)),
    ("uint8", c.uint8, "uint8", edge_uints(8)),
    ("uint16", c.uint16, "uint16", edge_uints(16)),
    ("uint24", c.uint24, "uint24", edge_uints(24)),
    ("uint32", c.uint32, "uint32", edge_uints(32)),
    ("uint40", c.uint40, "uint40", edge_uints(40)),
    ("uint48", c.uint48, "uint48", edge_uints(48)),
    ("uint56", c.uint56, "uint56", edge_uints(56)),
    ("uint64", c.uint64, "uint64", edge_uints(64)),
    ("uint32be", c.uint32be, "uint32be", edge_uints(32)),
    ("uint64be", c.uint64be, "uint64be", edge_uints(64)),
    ("int", c.int, "int", ints(None)),
    ("int8", c.int8, "int8", ints(8)),
    ("int16", c.int16, "int16", ints(16)),
    ("int24", c.int24, "int24", ints(24)),
    ("int32", c.int32, "int32", ints(32)),
    ("int40", c.int40, "int40", ints(40)),
    ("int48", c.int48, "int48", ints(48)),
    ("int56", c.int56, "int56", ints(None)),
    ("int64", c.int64, "int64", ints(None)),
    ("float32", c.float32, "float32", st.floats(width=32) | st.floats()),
    ("float64", c.float64, "float64", st.floats()),
    ("bool", c.bool, "bool", st.booleans()),
    ("buffer", c.buffer, "buffer", st.binary(max_size=300)),
    ("optional_buffer", c.optional_buffer, "optional_buffer", st.none() | st.binary(min_size=1)),
    ("raw", c.raw, "raw", st.binary()),
    ("string", c.string, "string", st.text(max_size=100)),
    ("utf8", c.utf8, "utf8", st.text()),
    ("fixed32", c.fixed32, "fixed32", st.binary(min_size=32, max_size=32)),
    ("fixed64", c.fixed64, "fixed64", st.binary(min_size=64, max_size=64)),
    ("fixed(3)", c.fixed(3), {"fixed": 3}, st.binary(min_size=3, max_size=3)),
    ("array(uint)", c.array(c.uint), {"array": "uint"}, st.lists(edge_uints(64), max_size=8)),
    ("array(string)", c.array(c.string), {"array": "string"}, st.lists(st.text(), max_size=5)),
    (
        "frame(array(int))",
        c.frame(c.array(c.int)),
        {"frame": {"array": "int"}},
        st.lists(ints(None), max_size=5),
    ),
    ("json", c.json, "json", json_values),
    ("ndjson", c.ndjson, "ndjson", json_values),
    ("none", c.none, "none", st.none()),
    ("uint32array", c.uint32array, "uint32array", st.lists(edge_uints(32), max_size=6)),
    ("ipv4", c.ipv4, "ipv4", ipv4s),
    ("ipv6", c.ipv6, "ipv6", ipv6s),
    ("ip", c.ip, "ip", ipv4s | ipv6s),
    ("ipv4_address", c.ipv4_address, "ipv4_address", st.tuples(ipv4s, edge_uints(16))),
    ("ipv6_address", c.ipv6_address, "ipv6_address", st.tuples(ipv6s, edge_uints(16))),
    ("ip_address", c.ip_address, "ip_address", st.tuples(ipv4s | ipv6s, edge_uints(16))),
]
IDS = [case[0] for case in CASES]

BATCH = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


def to_js(name: str, value: Any) -> Any:
    if name.endswith("_address"):
        host, port = value
        return {"host": host, "port": port}
    return value


def from_js(name: str, value: Any) -> Any:
    if name.endswith("_address"):
        return (value["host"], value["port"])
    return value


def numbers_as_floats(v: Any) -> Any:
    """JS has one number type; JSON.parse('1e17') is the integer 100000000000000000."""
    if isinstance(v, bool) or v is None or isinstance(v, (str, bytes)):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, dict):
        return {k: numbers_as_floats(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [numbers_as_floats(x) for x in v]
    return v


def same(a: Any, b: Any) -> bool:
    a, b = numbers_as_floats(a), numbers_as_floats(b)
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b)


@pytest.mark.parametrize(("name", "codec", "spec", "values"), CASES, ids=IDS)
@BATCH
@given(data=st.data())
def test_same_bytes_both_ways(
    js: JSHelper, name: str, codec: c.Codec[Any], spec: Any, values: Any, data: st.DataObject
) -> None:
    batch = data.draw(st.lists(values, min_size=40, max_size=120))
    py_bytes = [c.encode(codec, v) for v in batch]
    js_bytes = js.call("encode", [[spec, to_js(name, v)] for v in batch])
    for value, ours, theirs in zip(batch, py_bytes, js_bytes, strict=True):
        assert not isinstance(theirs, JSError), (value, theirs)
        assert ours == theirs, (value, ours.hex(), theirs.hex())
    # JS decodes what Python wrote to the value Python encoded ...
    js_values = js.call("decodeAll", [[spec, b] for b in py_bytes])
    for value, ours, theirs in zip(batch, py_bytes, js_values, strict=True):
        assert not isinstance(theirs, JSError), (value, ours.hex(), theirs)
        theirs = from_js(name, theirs)
        assert same(theirs, c.decode(codec, ours)), (value, theirs)


@pytest.mark.parametrize(("name", "codec", "spec", "values"), CASES, ids=IDS)
@BATCH
@given(blobs=st.lists(st.binary(max_size=24), min_size=60, max_size=150))
def test_random_bytes_decode_alike(
    js: JSHelper, name: str, codec: c.Codec[Any], spec: Any, values: Any, blobs: list[bytes]
) -> None:
    """Whatever Python accepts JS accepts with the same value; where JS alone accepts, the bytes
    are ones JS itself never writes (its own re-encoding differs)."""
    js_values = js.call("decodeAll", [[spec, b] for b in blobs])
    lenient: list[tuple[bytes, Any]] = []
    for blob, theirs in zip(blobs, js_values, strict=True):
        try:
            ours = c.decode(codec, blob)
        except c.DecodeError:
            if not isinstance(theirs, JSError):
                lenient.append((blob, theirs))
            continue
        assert not isinstance(theirs, JSError), (blob.hex(), ours, theirs)
        assert same(from_js(name, theirs), ours), (blob.hex(), ours, theirs)
    if lenient:
        again = js.call("encode", [[spec, to_js(name, from_js(name, v))] for _, v in lenient])
        for (blob, theirs), reencoded in zip(lenient, again, strict=True):
            assert reencoded != blob, (blob.hex(), theirs)
