"""hyperswarm.udx.packet: the bytes of libudx's trace, round trips, and hostile datagrams."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyperswarm.udx import UDXDecodeError
from hyperswarm.udx.packet import (
    DATA,
    END,
    HEADER_SIZE,
    MESSAGE,
    SACK,
    Packet,
    decode,
    encode,
    encode_plain,
    stream_id_of,
)

u32 = st.integers(0, 2**32 - 1)


def test_packets_of_the_reference_trace() -> None:
    # DATA|END seq 2 to stream 0x22222222, rwnd 4 MiB (REFERENCE.md section 12)
    raw = bytes.fromhex("ff01030022222222000040000200000000000000") + b"x" * 7
    p = decode(raw)
    assert (p.type, p.stream_id, p.rwnd, p.seq, p.ack) == (DATA | END, 0x22222222, 4 << 20, 2, 0)
    assert p.payload == b"x" * 7 and p.sacks == [] and p.padding == 0
    assert encode(p) == raw
    ack = bytes.fromhex("ff01000011111111000040000000000001000000")
    assert decode(ack).ack == 1 and decode(ack).payload == b"" and encode(decode(ack)) == ack
    msg = bytes.fromhex("ff01080022222222000040000000000000000000") + b"dgram"
    assert decode(msg).type == MESSAGE and decode(msg).payload == b"dgram"
    assert stream_id_of(msg) == 0x22222222


def test_selective_acks_as_libudx_writes_them() -> None:
    p = Packet(SACK, 7, 100, 5, 3, sacks=[(4, 6), (8, 9)])
    raw = encode(p)
    assert raw[3] == 0 and len(raw) == HEADER_SIZE + 16  # offset 0, blocks fill the rest
    assert decode(raw) == p
    with_data = Packet(SACK | DATA, 7, 100, 5, 3, sacks=[(4, 6)], payload=b"abc")
    raw = encode(with_data)
    assert raw[3] == 8 and decode(raw) == with_data


def test_padding_of_a_probe() -> None:
    p = Packet(DATA, 1, 2, 3, 4, payload=b"data", padding=32)
    raw = encode(p)
    assert raw[3] == 32 and raw[HEADER_SIZE : HEADER_SIZE + 32] == bytes(32)
    assert decode(raw) == p


@given(
    st.integers(0, 255).filter(lambda t: not t & SACK),
    u32,
    u32,
    u32,
    u32,
    st.binary(max_size=64),
    st.integers(0, 255),
)
def test_round_trip(
    type_: int, sid: int, rwnd: int, seq: int, ack: int, payload: bytes, padding: int
) -> None:
    p = Packet(type_, sid, rwnd, seq, ack, payload=payload, padding=padding)
    assert decode(encode(p)) == p


@given(st.lists(st.tuples(u32, u32), min_size=1, max_size=31), st.binary(max_size=16))
def test_round_trip_with_sacks(sacks: list[tuple[int, int]], payload: bytes) -> None:
    p = Packet(SACK | (DATA if payload else 0), 1, 2, 3, 4, sacks=sacks, payload=payload)
    assert decode(encode(p)) == p


@given(st.binary(max_size=80))
def test_any_datagram_decodes_or_raises_udx_decode_error(raw: bytes) -> None:
    sid = stream_id_of(raw)
    try:
        p = decode(raw)
    except UDXDecodeError:
        return
    assert sid == p.stream_id
    assert len(p.payload) + HEADER_SIZE <= len(raw)


@given(st.binary(min_size=HEADER_SIZE - 2, max_size=40))
def test_shaped_datagrams(tail: bytes) -> None:
    raw = b"\xff\x01" + tail
    try:
        p = decode(raw)
    except UDXDecodeError:
        assert raw[3] > len(raw) - HEADER_SIZE or len(raw) < HEADER_SIZE
        return
    if not p.type & SACK and raw[HEADER_SIZE : HEADER_SIZE + raw[3]] == bytes(raw[3]):
        assert encode(p) == raw  # (padding is written as zeros; what it held is ignored)


def test_bad_values_refused() -> None:
    with pytest.raises(ValueError):
        encode(Packet(DATA, 2**32, 0, 0, 0))
    with pytest.raises(ValueError):
        encode(Packet(DATA, 0, 0, 0, 0, padding=256))
    for raw in (b"", b"\xff\x01" + bytes(17), b"\xfe\x01" + bytes(18), b"\xff\x02" + bytes(18)):
        with pytest.raises(UDXDecodeError):
            decode(raw)
    assert stream_id_of(b"\x03" + bytes(30)) is None  # a dht-rpc message is not for a stream


@given(
    st.integers(0, 0xFF),
    u32,
    u32,
    u32,
    u32,
    st.binary(max_size=64),
)
def test_the_plain_encoder_is_the_encoder(
    type_: int, stream_id: int, rwnd: int, seq: int, ack: int, payload: bytes
) -> None:
    assert encode_plain(type_, stream_id, rwnd, seq, ack, payload) == encode(
        Packet(type_, stream_id, rwnd, seq, ack, [], payload, 0)
    )
