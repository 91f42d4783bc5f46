"""index-encoder codecs and key builders."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hypercore.storage import keys as k
from protomux import encoding as c

MAX = 2**53 - 1
uints = st.integers(0, 300) | st.integers(0, 70_000) | st.integers(0, MAX)


@pytest.mark.parametrize(
    ("n", "hex_"),
    [
        (0, "00"),
        (251, "fb"),
        (252, "fc00fc"),
        (65535, "fcffff"),
        (65536, "fd00010000"),
        (2**32 - 1, "fdffffffff"),
        (2**32, "fe0000000100000000"),
        (MAX, "fe001fffffffffffff"),
    ],
)
def test_uint_vectors(n: int, hex_: str) -> None:
    assert k.encode_uint(n).hex() == hex_
    assert c.encode(k.UINT, n).hex() == hex_
    assert c.decode(k.UINT, bytes.fromhex(hex_)) == n
    assert k.decode_uint(bytes.fromhex("aa" + hex_), 1) == (n, 1 + len(hex_) // 2)


def test_uint_infinity_and_errors() -> None:
    assert k.UINT_INFINITY == b"\xff"
    assert k.encode_uint(MAX) < k.UINT_INFINITY
    for bad in (-1, MAX + 1, 1.5, True, "1"):
        with pytest.raises(c.EncodeError):
            k.encode_uint(bad)  # type: ignore[arg-type]
    for raw in ("ff", "fc00fb", "fd0000ffff", "fe00000000ffffffff", "fe0020000000000000", "fc00"):
        with pytest.raises(c.DecodeError):
            c.decode(k.UINT, bytes.fromhex(raw))


def test_string_and_buffer_vectors() -> None:
    assert k.encode_string("foo").hex() == "00666f6f0001"
    assert c.encode(k.STRING, "foo").hex() == "00666f6f0001"
    assert k.encode_buffer(b"\x00\x01\x00").hex() == "0000020100020001"
    assert c.decode(k.BUFFER, bytes.fromhex("0000020100020001")) == b"\x00\x01\x00"
    assert k.encode_string("").hex() == "000001"
    assert k.encode_string("k\x00z").hex() == "006b00027a0001"  # as JS wrote it
    for raw in ("", "01", "00", "0061", "006100", "00610003", "00ff"):
        with pytest.raises(c.DecodeError):
            c.decode(k.BUFFER, bytes.fromhex(raw))
    with pytest.raises(c.DecodeError):
        c.decode(k.STRING, bytes.fromhex("00ff0001"))


@given(uints, uints)
def test_uint_order_and_round_trip(a: int, b: int) -> None:
    ea, eb = k.encode_uint(a), k.encode_uint(b)
    assert (ea < eb) == (a < b) and (ea == eb) == (a == b)
    assert c.decode(k.UINT, ea) == a
    assert ea < k.UINT_INFINITY


@given(st.binary(max_size=20), st.binary(max_size=20), st.binary(max_size=4))
def test_buffer_order_and_round_trip(a: bytes, b: bytes, tail: bytes) -> None:
    ea, eb = k.encode_buffer(a), k.encode_buffer(b)
    assert (ea < eb) == (a < b)
    assert c.decode(k.BUFFER, ea) == a
    # A whole key after the buffer does not disturb decoding or order.
    value, end = k.decode_buffer(ea + tail)
    assert value == a and end == len(ea)
    if a != b:
        assert (ea + tail < eb + tail) == (a < b)


@given(st.text(max_size=12), st.text(max_size=12))
def test_string_order_and_round_trip(a: str, b: str) -> None:
    ea, eb = k.encode_string(a), k.encode_string(b)
    assert (ea < eb) == (a.encode() < b.encode())
    assert c.decode(k.STRING, ea) == a


@given(st.binary(max_size=30))
def test_decoders_raise_only_decode_error(raw: bytes) -> None:
    for decode in (k.decode_uint, k.decode_buffer, k.decode_string):
        try:
            decode(raw, 0)
        except c.DecodeError:
            pass
    for codec in (k.UINT, k.BUFFER, k.STRING):
        try:
            c.decode(codec, raw, allow_trailing=True)  # type: ignore[misc]
        except c.DecodeError:
            pass


def test_key_builders_match_the_js_dump() -> None:
    dkey = bytes(range(32))
    ns = bytes(32)
    assert k.store_head() == b"\x00"
    assert k.core_by_discovery_key(dkey) == b"\x01" + dkey
    assert k.core_by_alias(ns, "x") == b"\x02" + ns + bytes.fromhex("00780001")
    assert k.core_auth(0).hex() == "030000"
    assert k.core_auth(1).hex() == "030100"
    assert k.core_sessions(300).hex() == "03fc012c01"
    assert k.data_head(0).hex() == "040000"
    assert k.data_dependency(0).hex() == "040001"
    assert k.data_hints(0).hex() == "040002"
    assert k.data_block(0, 1).hex() == "04000301"
    assert k.data_block(2, 300).hex() == "040203fc012c"
    assert k.data_tree(0, 2).hex() == "04000402"
    assert k.data_bitfield(0, 0).hex() == "0400050000"
    assert k.data_user_data(0, "foo").hex() == "04000600666f6f0001"
    assert k.group_topic(dkey) == b"\x05" + dkey
    assert k.group_entry(1, 2, 3).hex() == "0601" + "0000000000000002" + "03"
    assert k.decode_alias_key(k.core_by_alias(dkey, "a\x00b")) == (dkey, "a\x00b")
    start, end = k.alias_range(dkey)
    assert start < k.core_by_alias(dkey, "\U0010ffff" * 3) < end
    with pytest.raises(c.EncodeError):
        k.core_by_discovery_key(b"short")
