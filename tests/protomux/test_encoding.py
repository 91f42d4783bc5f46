from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protomux import encoding as c

MAX = c.MAX_SAFE_INTEGER

# --- strategies for every codec ------------------------------------------------------------


def uints(bits: int) -> st.SearchStrategy[int]:
    return st.integers(0, min((1 << bits) - 1, MAX))


def ints(bits: int | None) -> st.SearchStrategy[int]:
    if bits is None:
        return st.integers(-(2**52), 2**52 - 1)
    return st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

ipv4s = st.ip_addresses(v=4).map(str)
ipv6s = st.ip_addresses(v=6).map(str)

CODECS: list[tuple[str, c.Codec[Any], st.SearchStrategy[Any]]] = [
    ("uint", c.uint, uints(64)),
    ("uint8", c.uint8, uints(8)),
    ("uint16", c.uint16, uints(16)),
    ("uint24", c.uint24, uints(24)),
    ("uint32", c.uint32, uints(32)),
    ("uint40", c.uint40, uints(40)),
    ("uint48", c.uint48, uints(48)),
    ("uint56", c.uint56, uints(56)),
    ("uint64", c.uint64, uints(64)),
    ("uint32be", c.uint32be, uints(32)),
    ("uint64be", c.uint64be, uints(64)),
    ("int", c.int, ints(None)),
    ("int8", c.int8, ints(8)),
    ("int16", c.int16, ints(16)),
    ("int24", c.int24, ints(24)),
    ("int32", c.int32, ints(32)),
    ("int40", c.int40, ints(40)),
    ("int48", c.int48, ints(48)),
    ("int56", c.int56, ints(None)),
    ("int64", c.int64, ints(None)),
    ("float32", c.float32, st.floats(width=32)),
    ("float64", c.float64, st.floats()),
    ("bool", c.bool, st.booleans()),
    ("buffer", c.buffer, st.binary()),
    ("optional_buffer", c.optional_buffer, st.none() | st.binary(min_size=1)),
    ("raw", c.raw, st.binary()),
    ("string", c.string, st.text()),
    ("utf8", c.utf8, st.text()),
    ("fixed32", c.fixed32, st.binary(min_size=32, max_size=32)),
    ("fixed64", c.fixed64, st.binary(min_size=64, max_size=64)),
    ("fixed(5)", c.fixed(5), st.binary(min_size=5, max_size=5)),
    ("array(uint)", c.array(c.uint), st.lists(uints(64))),
    ("array(string)", c.array(c.string), st.lists(st.text())),
    ("frame(array(int))", c.frame(c.array(c.int)), st.lists(ints(None))),
    ("frame(string)", c.frame(c.string), st.text()),
    ("json", c.json, json_values),
    ("ndjson", c.ndjson, json_values),
    ("none", c.none, st.none()),
    ("uint32array", c.uint32array, st.lists(uints(32))),
    ("ipv4", c.ipv4, ipv4s),
    ("ipv6", c.ipv6, ipv6s),
    ("ip", c.ip, ipv4s | ipv6s),
    ("ipv4_address", c.ipv4_address, st.tuples(ipv4s, uints(16))),
    ("ipv6_address", c.ipv6_address, st.tuples(ipv6s, uints(16))),
    ("ip_address", c.ip_address, st.tuples(ipv4s | ipv6s, uints(16))),
]

IDS = [name for name, _, _ in CODECS]


def same(codec_name: str, a: Any, b: Any) -> bool:
    """Equality that knows the codecs' lossy spots (NaN, float32 rounding, IP text)."""
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if codec_name.startswith("ip"):
        return normalise_ip(a) == normalise_ip(b)
    if codec_name.endswith("json"):
        return json_numbers_as_floats(a) == json_numbers_as_floats(b)
    return bool(a == b)


def json_numbers_as_floats(v: Any) -> Any:
    """JS has one number type: 1e17 parses back as the integer 100000000000000000."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, dict):
        return {k: json_numbers_as_floats(x) for k, x in v.items()}
    return [json_numbers_as_floats(x) for x in v]


def normalise_ip(v: Any) -> Any:
    import ipaddress

    if isinstance(v, tuple):
        return (ipaddress.ip_address(v[0]), v[1])
    return ipaddress.ip_address(v)


@pytest.mark.parametrize(("name", "codec", "values"), CODECS, ids=IDS)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_round_trip_and_preencode_size(
    name: str, codec: c.Codec[Any], values: st.SearchStrategy[Any], data: st.DataObject
) -> None:
    value = data.draw(values)
    state = c.State()
    codec.preencode(state, value)
    encoded = c.encode(codec, value)
    assert state.end == len(encoded)
    decoded = c.decode(codec, encoded)
    if name == "float32":
        value = struct.unpack("<f", struct.pack("<f", value))[0]
    assert same(name, decoded, value)
    # Re-encoding what was decoded gives the same bytes (encodings are canonical).
    assert c.encode(codec, decoded) == encoded


@pytest.mark.parametrize(("name", "codec", "values"), CODECS, ids=IDS)
@settings(max_examples=300, deadline=None)
@given(blob=st.binary(max_size=40))
def test_arbitrary_bytes_raise_only_decode_error(
    name: str, codec: c.Codec[Any], values: st.SearchStrategy[Any], blob: bytes
) -> None:
    try:
        value = c.decode(codec, blob)
    except c.DecodeError:
        return
    if name in ("json", "ndjson"):
        # JSON text is not canonical: JSON.parse, and so the JS codecs, take whitespace and
        # ndjson without its newline, and read 1e400 as Infinity, which JSON.stringify writes
        # as null). What decodes is written in a normal form that stays put.
        normal = c.encode(codec, value)
        assert c.encode(codec, c.decode(codec, normal)) == normal
        return
    # Whatever decodes re-encodes to the very same bytes: no silent wrong values. (A NaN
    # decodes as NaN whatever its payload bits, and is written back as JS writes NaN.)
    if not (isinstance(value, float) and math.isnan(value)):
        assert c.encode(codec, value) == blob


@pytest.mark.parametrize(("name", "codec", "values"), CODECS, ids=IDS)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_every_truncation_is_a_decode_error(
    name: str, codec: c.Codec[Any], values: st.SearchStrategy[Any], data: st.DataObject
) -> None:
    encoded = c.encode(codec, data.draw(values))
    if name in ("raw", "none"):
        return  # these take whatever is there
    for cut in range(len(encoded)):
        with pytest.raises(c.DecodeError):
            c.decode(codec, encoded[:cut])


def test_known_vectors() -> None:
    vectors: list[tuple[c.Codec[Any], Any, str]] = [
        (c.uint, 252, "fc"),
        (c.uint, 253, "fdfd00"),
        (c.uint, 65535, "fdffff"),
        (c.uint, 65536, "fe00000100"),
        (c.uint, 2**32 - 1, "feffffffff"),
        (c.uint, 2**32, "ff0000000001000000"),
        (c.int, -1, "01"),
        (c.int, 1, "02"),
        (c.string, "hi", "026869"),
        (c.ipv4_address, ("1.2.3.4", 0x1234), "010203043412"),
        (c.frame(c.uint), 300, "03fd2c01"),
        (c.optional_buffer, None, "00"),
    ]
    for codec, value, hexed in vectors:
        assert c.encode(codec, value).hex() == hexed
    assert c.encode(c.json, {"a": [1, 2.5, None]}) == b'\x12{"a":[1,2.5,null]}'


def test_trailing_bytes() -> None:
    with pytest.raises(c.DecodeError, match="trailing"):
        c.decode(c.uint, b"\x01\x02")
    assert c.decode(c.uint, b"\x01\x02", allow_trailing=True) == 1


@pytest.mark.parametrize(
    "blob",
    [
        "fd0100",  # 1 in three bytes
        "fefc000000",  # 252 in five bytes
        "feffff0000",  # 65535 in five bytes
        "ffffffffff00000000",  # 2^32 - 1 in nine bytes
        "ff0000000000002000",  # 2^53: above what JS can hold
    ],
)
def test_overlong_or_out_of_range_uint(blob: str) -> None:
    with pytest.raises(c.DecodeError):
        c.decode(c.uint, bytes.fromhex(blob))


def test_strict_decoders() -> None:
    with pytest.raises(c.DecodeError):
        c.decode(c.bool, b"\x02")
    with pytest.raises(c.DecodeError):
        c.decode(c.string, b"\x02\xc3\x28")  # invalid UTF-8
    with pytest.raises(c.DecodeError):
        c.decode(c.ip, b"\x05" + bytes(4))  # unknown family
    with pytest.raises(c.DecodeError):
        c.decode(c.array(c.none), bytes.fromhex("fe01001000"))  # 0x100001 items
    with pytest.raises(c.DecodeError):
        c.decode(c.json, c.encode(c.string, "NaN"))
    with pytest.raises(c.DecodeError):
        c.decode(c.json, c.encode(c.string, "[" * 100_000))
    with pytest.raises(c.DecodeError):
        c.decode(c.uint64, bytes.fromhex("0000000000002000"))


@pytest.mark.parametrize(
    ("codec", "value"),
    [
        (c.uint, -1),
        (c.uint, 2**53),
        (c.uint, 1.5),
        (c.uint, None),
        (c.uint8, 256),
        (c.int, 2**52),
        (c.int8, 128),
        (c.int8, -129),
        (c.fixed32, b"short"),
        (c.buffer, "text"),
        (c.string, b"bytes"),
        (c.string, "\ud800"),
        (c.ipv4, "1.2.3"),
        (c.ipv6, "not-an-ip"),
        (c.json, {1: 2}),
        (c.json, object()),
    ],
)
def test_encode_errors(codec: c.Codec[Any], value: Any) -> None:
    with pytest.raises(c.EncodeError):
        c.encode(codec, value)


def test_decode_error_is_value_error() -> None:
    assert issubclass(c.DecodeError, ValueError)
    assert issubclass(c.EncodeError, ValueError)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1.5e-7, "1.5e-7"),
        (0.000001, "0.000001"),
        (123.456, "123.456"),
        (5e-324, "5e-324"),
        (math.nan, "null"),
        (math.inf, "null"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
    ],
)
def test_json_numbers_print_as_in_javascript(value: float, text: str) -> None:
    assert c.stringify(value) == text


def test_frame_skips_unread_bytes_inside_the_frame() -> None:
    # A newer peer may append fields inside a frame; older decoders skip them.
    blob = bytes.fromhex("03") + c.encode(c.uint, 7) + b"\xaa\xbb" + c.encode(c.uint, 9)
    state = c.State(blob)
    assert c.frame(c.uint).decode(state) == 7
    assert c.uint.decode(state) == 9


def test_addresses_decode_to_host_port_pairs() -> None:
    addr = c.decode(c.ip_address, c.encode(c.ip_address, ("::1", 443)))
    assert addr == ("0:0:0:0:0:0:0:1", 443)
    assert addr.family == 6
    assert c.decode(c.ipv4_address, bytes.fromhex("7f0000013412")).family == 4


def test_nan_is_written_as_javascript_writes_it() -> None:
    negative_nan = struct.unpack("<d", bytes.fromhex("010000000000f8ff"))[0]
    assert c.encode(c.float64, negative_nan).hex() == "000000000000f87f"
    assert c.encode(c.float32, negative_nan).hex() == "0000c07f"
    assert math.isnan(c.decode(c.float32, bytes.fromhex("0100c0ff")))
