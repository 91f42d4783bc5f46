"""The replication message codecs of ``hypercore.wire`` (JS ``messages.wire.*``)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypercore import wire
from hypercore.wire import (
    DATA,
    Bitfield,
    Cancel,
    Extension,
    Handshake,
    NoData,
    Range,
    Request,
    RequestIndex,
    RequestSeek,
    RequestUpgrade,
    Sync,
    Unwant,
    Want,
)
from protomux import encoding as c

from .strategies import (
    bitfields,
    cancels,
    data_messages,
    extensions,
    handshakes,
    no_datas,
    ranges,
    requests,
    syncs,
    unwants,
    wants,
)

# In protomux type order, then the handshake.
CASES: list[tuple[c.Codec[Any], st.SearchStrategy[Any]]] = [
    (wire.SYNC, syncs),
    (wire.REQUEST, requests),
    (wire.CANCEL, cancels),
    (wire.DATA, data_messages),
    (wire.NO_DATA, no_datas),
    (wire.WANT, wants),
    (wire.UNWANT, unwants),
    (wire.BITFIELD, bitfields),
    (wire.RANGE, ranges),
    (wire.EXTENSION, extensions),
    (wire.HANDSHAKE, handshakes),
]
ALL_CODECS = [codec for codec, _ in CASES]

any_message = st.one_of(*(st.tuples(st.just(codec), strategy) for codec, strategy in CASES))


def test_messages_are_in_protomux_type_order() -> None:
    assert wire.MESSAGES == tuple(ALL_CODECS[:10])
    assert wire.DATA is DATA
    assert (wire.NOT_AVAILABLE, wire.INVALID_REQUEST) == (1, 2)


@settings(max_examples=300)
@given(any_message)
def test_round_trip(case: tuple[c.Codec[Any], Any]) -> None:
    codec, m = case
    state = c.State()
    codec.preencode(state, m)
    encoded = c.encode(codec, m)
    assert state.end == len(encoded)
    assert c.decode(codec, encoded) == m


@settings(max_examples=100)
@given(
    st.sampled_from([wire.SYNC, wire.REQUEST, wire.CANCEL, wire.BITFIELD, wire.RANGE]), st.data()
)
def test_every_prefix_of_a_strict_message_is_rejected(
    codec: c.Codec[Any], data: st.DataObject
) -> None:
    strategy = dict(CASES)[codec]
    encoded = c.encode(codec, data.draw(strategy))
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(c.DecodeError):
        c.decode(codec, encoded[:cut])


@settings(max_examples=400)
@given(st.binary(max_size=80))
def test_arbitrary_bytes_raise_only_decode_error(blob: bytes) -> None:
    for codec in ALL_CODECS:
        try:
            c.decode(codec, blob)
        except c.DecodeError:
            pass
        try:  # as protomux does: no check of trailing bytes
            codec.decode(c.State(blob, 0, len(blob)))
        except c.DecodeError:
            pass


# --- vectors ------------------------------------------------------------------------------------

CAP = bytes(range(32))

# From the captured exchange of REFERENCE.md section 4 (the payload after channel and type).
TRACE = [
    (wire.SYNC, "07000000", Sync(can_upgrade=True, uploading=True, downloading=True)),
    (
        wire.SYNC,
        "0f000300",
        Sync(length=3, can_upgrade=True, uploading=True, downloading=True, has_manifest=True),
    ),
    (wire.RANGE, "000003", Range(start=0, length=3)),
    (wire.REQUEST, "1801000003", Request(1, upgrade=RequestUpgrade(0, 3), manifest=True)),
    (
        wire.SYNC,
        "0e000303",
        Sync(length=3, remote_length=3, uploading=True, downloading=True, has_manifest=True),
    ),
    (wire.REQUEST, "210100010101", Request(1, block=RequestIndex(1, 1), priority=1)),
    (wire.HANDSHAKE, "01" + CAP.hex(), Handshake(capability=CAP)),
]

# What the JS writes for the other shapes (checked against messages.js in the interop tests).
WRITTEN = [
    (wire.NO_DATA, "0500", NoData(5)),
    (wire.NO_DATA, "050101", NoData(5, wire.NOT_AVAILABLE)),
    (wire.NO_DATA, "fd000101fd0001", NoData(256, 256)),
    (wire.WANT, "00fd0010", Want(0, 4096)),
    (wire.WANT, "fe00002000fd001001", Want(2**21, 4096, any=True)),
    (wire.UNWANT, "0000", Unwant(0, 0)),
    (wire.RANGE, "0207", Range(start=7, length=1)),
    (wire.RANGE, "0307", Range(drop=True, start=7, length=1)),
    (wire.RANGE, "010700", Range(drop=True, start=7, length=0)),
    (wire.BITFIELD, "200201000000ffffffff", Bitfield(32, (1, 0xFFFFFFFF))),
    (wire.BITFIELD, "0000", Bitfield(0)),
    (wire.CANCEL, "fd00fc", Cancel(0xFC00)),
    (wire.EXTENSION, "0161ff", Extension("a", b"\xff")),
    (wire.EXTENSION, "00", Extension("")),
    (wire.EXTENSION, "02c3a9", Extension("é")),
    (wire.HANDSHAKE, "00" + CAP.hex(), Handshake(seeks=False, capability=CAP)),
    (wire.SYNC, "1f010203", Sync(1, 2, 3, True, True, True, True, True)),
    (
        wire.REQUEST,
        "3f0203" + "0405" + "0607" + "0809" + "0a0b" + "02",
        Request(
            2,
            3,
            block=RequestIndex(4, 5),
            hash=RequestIndex(6, 7),
            seek=RequestSeek(8, 9),
            upgrade=RequestUpgrade(10, 11),
            manifest=True,
            priority=2,
        ),
    ),
]


@pytest.mark.parametrize(("codec", "hex_", "m"), TRACE + WRITTEN)
def test_vectors(codec: c.Codec[Any], hex_: str, m: Any) -> None:
    assert c.encode(codec, m).hex() == hex_
    assert c.decode(codec, bytes.fromhex(hex_)) == m


# Shapes the JS never writes but reads: short forms, unknown flag bits, parts behind a flag
# that carry the default value. They decode; re-encoding gives the canonical form.
READ_ONLY = [
    (wire.NO_DATA, "05", NoData(5)),
    (wire.NO_DATA, "050100", NoData(5)),
    (wire.NO_DATA, "0502", NoData(5)),  # flag bit 1 is unknown: no reason follows
    (wire.WANT, "0004", Want(0, 4)),  # the short form is what JS writes; see WRITTEN
    (wire.WANT, "000400", Want(0, 4)),
    (wire.WANT, "000403", Want(0, 4, any=True)),
    (wire.UNWANT, "000402", Unwant(0, 4)),
    (wire.SYNC, "e0000000", Sync()),
    (wire.SYNC, "fd0001000000", Sync()),  # flags 256: only unknown bits
    (wire.REQUEST, "20010000", Request(1)),  # priority 0 behind flag 32
    (wire.REQUEST, "c0010000", Request(1)),
    (wire.RANGE, "000701", Range(start=7, length=1)),  # length 1 without flag 2
    (wire.RANGE, "060709", Range(start=7, length=1)),  # flag 2 wins: the 09 is left unread
    (wire.HANDSHAKE, "03" + CAP.hex(), Handshake(capability=CAP)),
]


@pytest.mark.parametrize(("codec", "hex_", "m"), READ_ONLY)
def test_lenient_shapes(codec: c.Codec[Any], hex_: str, m: Any) -> None:
    data = bytes.fromhex(hex_)
    state = c.State(data, 0, len(data))
    assert codec.decode(state) == m
    assert c.decode(codec, c.encode(codec, m)) == m


def test_trailing_bytes_are_left_to_the_caller() -> None:
    data = bytes.fromhex("060709")
    state = c.State(data, 0, len(data))
    assert wire.RANGE.decode(state) == Range(start=7, length=1)
    assert state.start == 2
    with pytest.raises(c.DecodeError):
        c.decode(wire.RANGE, data)
    assert c.decode(wire.RANGE, data, allow_trailing=True) == Range(start=7, length=1)


@pytest.mark.parametrize(
    ("codec", "hex_"),
    [
        (wire.SYNC, "fd0700000000"),  # non-canonical flags
        (wire.CANCEL, "fe00010000"),  # non-canonical id
        (wire.CANCEL, "ff0000000000002000"),  # 2^53: above what the JS represents
        (wire.BITFIELD, "0002000000"),  # 2 words announced, 3 bytes given
        (wire.EXTENSION, "01ff"),  # invalid UTF-8 name
        (wire.EXTENSION, "05aa"),
        (wire.HANDSHAKE, "01" + "00" * 31),
        (wire.NO_DATA, "0501"),  # reason announced, missing
        (wire.WANT, "0004fd"),
        (wire.REQUEST, "0101"),
    ],
)
def test_bad_bytes(codec: c.Codec[Any], hex_: str) -> None:
    with pytest.raises(c.DecodeError):
        c.decode(codec, bytes.fromhex(hex_))


@pytest.mark.parametrize(
    ("codec", "m"),
    [
        (wire.HANDSHAKE, Handshake(capability=bytes(31))),
        (wire.BITFIELD, Bitfield(0, (2**32,))),
        (wire.BITFIELD, Bitfield(0, (-1,))),
        (wire.SYNC, Sync(fork=-1)),
        (wire.SYNC, Sync(length=2**53)),
        (wire.REQUEST, Request(1, priority=-1)),
        (wire.NO_DATA, NoData(1, -1)),
        (wire.EXTENSION, Extension("\ud800")),
    ],
)
def test_unencodable_values(codec: c.Codec[Any], m: Any) -> None:
    with pytest.raises(c.EncodeError):
        c.encode(codec, m)


def test_range_and_handshake_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        Range(False, 0, 3)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Handshake(True, CAP)  # type: ignore[call-arg]


@given(st.integers(0, 2**20), st.binary(max_size=64).map(lambda b: b[: len(b) & ~3]))
def test_bitfield_bytes_are_the_little_endian_words(start: int, data: bytes) -> None:
    m = wire.make_bitfield(start, data)
    assert wire.bitfield_bytes(m) == data
    assert (
        c.encode(wire.BITFIELD, m)
        == c.encode(c.uint, start) + c.encode(c.uint, len(data) // 4) + data
    )


def test_bitfield_bit_order() -> None:
    m = wire.make_bitfield(64, bytes.fromhex("01000080"))
    assert m.bitfield == (0x80000001,)  # blocks 64 and 95
    with pytest.raises(ValueError):
        wire.make_bitfield(0, b"\x01")
    with pytest.raises(ValueError):
        wire.bitfield_bytes(Bitfield(0, (2**32,)))
