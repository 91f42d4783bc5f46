"""Frame codec: the vectors of REFERENCE.md section 5, batches, and fuzzing of the decoders."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protomux import encoding as c
from protomux._frames import (
    MAX_BATCH,
    MAX_BATCH_DEPTH,
    BatchBuilder,
    BatchFrame,
    CloseFrame,
    MessageFrame,
    OpenFrame,
    RejectFrame,
    UnknownControlFrame,
    decode_frame,
    encode_close,
    encode_open,
    encode_reject,
    uint_bytes,
)


def test_control_vectors() -> None:
    # checked against JS: a refused open, close of local id 1, protomux-rpc open with id 0xab
    assert encode_reject(1) == bytes.fromhex("000201")
    assert encode_close(1) == bytes.fromhex("000301")
    assert encode_open(1, "protomux-rpc", b"\xab") == (b"\x00\x01\x01\x0cprotomux-rpc\x01\xab")
    assert encode_open(300, "p", None, c.string, "hs") == (b"\x00\x01\xfd\x2c\x01\x01p\x00\x02hs")


def test_corked_batch_vector() -> None:
    # checked against JS: x on channel 3, y on channel 2, z on channel 3
    b = BatchBuilder()
    for channel, text in ((3, "x"), (2, "y"), (3, "z")):
        assert b.push(channel, b"\x00" + c.encode(c.string, text)) is None
    assert b.build() == bytes.fromhex("000003 03000178 0002 03000179 0003 0300017a")
    assert BatchBuilder().build() is None


def test_batch_size_accounting_matches_the_frame() -> None:
    b = BatchBuilder()
    for channel, entry in ((1, b"\x00\x01a"), (1, b"\x00" * 300), (0, b"\x03\x05"), (70000, b"x")):
        b.push(channel, entry)
    frame = b.build()
    assert frame is not None
    # The running size (what the 8 MiB cut looks at) is the frame's size, as JS counts it.
    assert b.size == len(frame)


def test_batches_are_cut_at_8_mib() -> None:
    b = BatchBuilder()
    entry = b"\x00" + bytes(1024 * 1024)
    out = [b.push(1, entry) for _ in range(9)]
    assert out[:8] == [None] * 8  # the 9th push finds 8 MiB collected and sends them first
    first = out[8]
    assert first is not None and len(first) > MAX_BATCH
    frame = decode_frame(first)
    assert isinstance(frame, BatchFrame) and len(frame.entries) == 8
    rest = b.build()
    assert rest is not None
    frame = decode_frame(rest)
    assert isinstance(frame, BatchFrame) and len(frame.entries) == 1


def test_decode_control_frames() -> None:
    assert decode_frame(b"") is None
    assert decode_frame(b"\x00\x01\x01\x0cprotomux-rpc\x01\xab\x02hs") == OpenFrame(
        1, "protomux-rpc", b"\xab", b"\x02hs"
    )
    assert decode_frame(b"\x00\x01\x02\x01p\x00") == OpenFrame(2, "p", None, b"")
    assert decode_frame(b"\x00\x02\x05") == RejectFrame(5)
    assert decode_frame(b"\x00\x03\x05trailing") == CloseFrame(5)
    assert decode_frame(b"\x00\x09abc") == UnknownControlFrame(9, b"abc")
    assert decode_frame(b"\x05\x02payload") == MessageFrame(5, 2, b"payload")


def test_decode_batches() -> None:
    frame = decode_frame(bytes.fromhex("000003 03000178 0002 03000179 0003 0300017a"))
    assert frame == BatchFrame(
        (
            MessageFrame(3, 0, b"\x01x"),
            MessageFrame(2, 0, b"\x01y"),
            MessageFrame(3, 0, b"\x01z"),
        ),
        corks=True,
    )
    # control messages inside a batch (channel 0), and a batch with one entry does not cork
    frame = decode_frame(b"\x00\x00\x00\x02\x02\x07\x00\x01\x02\x03\x01")
    assert frame == BatchFrame((RejectFrame(7), MessageFrame(1, 3, b"\x01")), corks=True)
    # a channel switch after the only entry still makes JS cork
    frame = decode_frame(b"\x00\x00\x00\x02\x02\x07\x00\x01")
    assert frame == BatchFrame((RejectFrame(7),), corks=True)
    assert decode_frame(b"\x00\x00\x01\x02\x00a") == BatchFrame(
        (MessageFrame(1, 0, b"a"),), corks=False
    )
    # an entry longer than the rest of the batch is cut to it, as JS does
    assert decode_frame(b"\x00\x00\x01\x09\x00ab") == BatchFrame(
        (MessageFrame(1, 0, b"ab"),), corks=False
    )
    # nested batches are read
    inner = b"\x00\x01\x03\x00\x01q"
    frame = decode_frame(b"\x00\x00\x00" + uint_bytes(len(inner)) + inner)
    assert frame == BatchFrame(
        (BatchFrame((MessageFrame(1, 0, b"\x01q"),), corks=False),), corks=False
    )


def nested_batch(depth: int) -> bytes:
    body = b"\x01\x02\x00a"  # first channel 1, one entry: type 0, payload "a"
    for _ in range(depth):
        entry = b"\x00" + body  # a control entry of type 0: a batch
        body = b"\x00" + uint_bytes(len(entry)) + entry  # first channel 0, that one entry
    return b"\x00\x00" + body


def test_deeply_nested_batches_are_refused() -> None:
    frame = decode_frame(nested_batch(MAX_BATCH_DEPTH - 1))
    for _ in range(MAX_BATCH_DEPTH - 1):
        assert isinstance(frame, BatchFrame)
        frame = frame.entries[0]
    assert frame == BatchFrame((MessageFrame(1, 0, b"a"),), corks=False)
    with pytest.raises(c.DecodeError):
        decode_frame(nested_batch(MAX_BATCH_DEPTH))


@pytest.mark.parametrize(
    "data",
    [
        b"\x01",  # no type
        b"\xfd\x01",  # truncated channel id
        b"\x00\x01\x01\x05ab",  # protocol string cut short
        b"\x00\x01\x01\x01\xff\x00",  # invalid utf-8
        b"\x00\x02",  # reject without id
        b"\x00\x00",  # batch without a first channel
        b"\x00\x00\x01\x00",  # channel switch without the channel
        b"\x00\x00\x01\x05",  # entry whose type is missing
        b"\x00\x01\xff\x00\x00\x00\x00\x00\x00\x20\x00\x01p\x00",  # id above 2^53 - 1
    ],
)
def test_malformed_frames_raise_decode_error(data: bytes) -> None:
    with pytest.raises(c.DecodeError):
        decode_frame(data)


@settings(max_examples=3000)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_only_raise_decode_error(data: bytes) -> None:
    try:
        decode_frame(data)
    except c.DecodeError:
        pass


control = st.sampled_from([b"\x00\x00", b"\x00\x01", b"\x00\x02", b"\x00\x03", b"\x01\x00"])


@settings(max_examples=3000)
@given(control, st.lists(st.integers(0, 255) | st.sampled_from([0x00, 0xFD, 0xFE, 0xFF])))
def test_frame_like_bytes_only_raise_decode_error(head: bytes, rest: list[int]) -> None:
    try:
        decode_frame(head + bytes(rest))
    except c.DecodeError:
        pass


@given(
    st.lists(
        st.tuples(st.integers(0, 300), st.binary(min_size=1, max_size=40)),
        min_size=1,
        max_size=20,
    )
)
def test_batch_round_trip(entries: list[tuple[int, bytes]]) -> None:
    b = BatchBuilder()
    for channel, payload in entries:
        b.push(channel, b"\x07" + payload)  # type 7: unknown control type or message type 7
    frame = b.build()
    assert frame is not None
    decoded = decode_frame(frame)
    assert isinstance(decoded, BatchFrame)
    expected = [
        UnknownControlFrame(7, p) if ch == 0 else MessageFrame(ch, 7, p) for ch, p in entries
    ]
    assert list(decoded.entries) == expected
    assert decoded.corks == (len(entries) > 1)
