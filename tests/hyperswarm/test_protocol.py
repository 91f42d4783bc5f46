"""The sans-IO secret-stream connection (protocol.py) and the unordered boxes."""

from __future__ import annotations

import math
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypercore import crypto
from hyperswarm.secret_stream import (
    NS_INITIATOR,
    NS_RESPONDER,
    NS_SEND,
    SecretStreamProtocol,
    SecretStreamProtocolError,
    State,
    UnorderedBoxes,
    stream_id,
)
from hyperswarm.secret_stream.box import ABYTES, frame
from hyperswarm.secret_stream.protocol import IdleTimers, TimerEvent

A = crypto.key_pair(bytes([1]) * 32)
B = crypto.key_pair(bytes([2]) * 32)


def handshake(a: SecretStreamProtocol, b: SecretStreamProtocol) -> tuple[list[bytes], list[bytes]]:
    """Run the handshake; returns the raw writes of each side."""
    writes: tuple[list[bytes], list[bytes]] = ([], [])
    for _ in range(4):
        for i, (x, y) in enumerate(((a, b), (b, a))):
            out = x.data_to_send()
            if out:
                writes[i].append(out)
                y.receive_data(out)
                assert y.next_message() is None
                assert y.next_message() is None  # frames after the handshake (the header)
    return writes


def test_namespaces_match_reference() -> None:
    assert NS_INITIATOR.hex().startswith("a931a0155b5c09e6")
    assert NS_RESPONDER.hex().startswith("742c9d833d430af4")
    assert NS_SEND.hex().startswith("aab97d097471f566")


def test_handshake_between_two_sans_io_peers() -> None:
    a = SecretStreamProtocol(True, A)
    b = SecretStreamProtocol(False, B)
    writes = handshake(a, b)
    # initiator: msg1 (35), then msg3 + its header (67 + 59) in one write; responder: msg2 (99)
    assert [len(w) for w in writes[0]] == [35, 67 + 59]
    assert [len(w) for w in writes[1]] == [99]
    assert a.state is State.AWAIT_HEADER  # the responder's header is still held back
    assert b.state is State.OPEN
    assert a.handshake_hash == b.handshake_hash and a.handshake_hash is not None
    assert a.remote_public_key == B.public_key and b.remote_public_key == A.public_key
    assert a.stream_id == stream_id(a.handshake_hash, True)
    assert b.stream_id == stream_id(a.handshake_hash, False)


def test_messages_both_ways_and_the_held_back_header() -> None:
    a = SecretStreamProtocol(True, A)
    b = SecretStreamProtocol(False, B)
    handshake(a, b)
    first = b.encrypt(b"hi")
    assert len(first) == 59 + 3 + 2 + ABYTES  # the responder's header rides along
    second = b.encrypt(b"")
    assert len(second) == 3 + ABYTES
    a.receive_data(first + second)
    assert a.next_message() == b"hi"
    assert a.next_message() == b""
    assert a.next_message() is None
    b.receive_data(a.encrypt(bytes(70000)))
    assert b.next_message() == bytes(70000)
    assert b.flush_header() == b""


def test_flush_header_sends_the_responder_header_early() -> None:
    a = SecretStreamProtocol(True, A)
    b = SecretStreamProtocol(False, B)
    handshake(a, b)
    header = b.flush_header()
    assert len(header) == 59 and header[3:35] == b.stream_id
    a.receive_data(header)
    assert a.next_message() is None and a.state is State.OPEN
    a.receive_data(b.encrypt(b"x"))
    assert a.next_message() == b"x"


def test_filter_empty_messages() -> None:
    a = SecretStreamProtocol(True, A, filter_empty_messages=True)
    b = SecretStreamProtocol(False, B)
    handshake(a, b)
    a.receive_data(b.encrypt(b"") + b.encrypt(b"") + b.encrypt(b"z"))
    assert a.next_message() == b"z"


def test_handshake_stops_before_messages_that_arrive_with_it() -> None:
    """A responder may get msg3, the header and data frames in one read: next_message
    returns None when the handshake completes and hands out the messages afterwards."""
    a = SecretStreamProtocol(True, A)
    b = SecretStreamProtocol(False, B)
    b.receive_data(a.data_to_send())
    assert b.next_message() is None
    a.receive_data(b.data_to_send())
    assert a.next_message() is None
    b.receive_data(a.data_to_send() + a.encrypt(b"early"))
    assert b.next_message() is None
    assert b.handshake_complete
    assert b.next_message() == b"early"


def opened_pair() -> tuple[SecretStreamProtocol, SecretStreamProtocol]:
    a = SecretStreamProtocol(True, A)
    b = SecretStreamProtocol(False, B)
    handshake(a, b)
    a.receive_data(b.flush_header())
    assert a.next_message() is None
    return a, b


def test_wrong_header_id_or_size_is_refused() -> None:
    a = SecretStreamProtocol(True, A)
    b = SecretStreamProtocol(False, B)
    handshake(a, b)
    header = bytearray(b.flush_header())
    header[3] ^= 1
    a.receive_data(header)
    with pytest.raises(SecretStreamProtocolError, match="Invalid header received"):
        a.next_message()

    a = SecretStreamProtocol(True, A)
    b = SecretStreamProtocol(False, B)
    handshake(a, b)
    a.receive_data(frame(bytes(57)))
    with pytest.raises(SecretStreamProtocolError) as info:
        a.next_message()
    assert info.value.code == "INVALID_HEADER"


def test_a_peer_that_echoes_our_own_header_is_refused() -> None:
    """The ids differ per role, so a reflected header does not pass."""
    a = SecretStreamProtocol(True, A)
    b = SecretStreamProtocol(False, B)
    writes = handshake(a, b)
    a.receive_data(writes[0][-1][-59:])
    with pytest.raises(SecretStreamProtocolError):
        a.next_message()


def test_tampered_short_and_replayed_frames_are_refused() -> None:
    a, b = opened_pair()
    f = bytearray(b.encrypt(b"payload"))
    f[10] ^= 4
    a.receive_data(f)
    with pytest.raises(SecretStreamProtocolError) as info:
        a.next_message()
    assert info.value.code == "DECRYPTION_FAILED"

    a, b = opened_pair()
    a.receive_data(frame(b"x" * 16))
    with pytest.raises(SecretStreamProtocolError, match="Invalid message received"):
        a.next_message()

    a, b = opened_pair()
    f1 = b.encrypt(b"once")
    a.receive_data(f1 + f1)
    assert a.next_message() == b"once"
    with pytest.raises(SecretStreamProtocolError):
        a.next_message()


def test_oversize_handshake_frame_is_refused() -> None:
    b = SecretStreamProtocol(False, B)
    b.receive_data((65536).to_bytes(3, "little"))
    with pytest.raises(SecretStreamProtocolError) as info:
        b.next_message()
    assert info.value.code == "FRAME_TOO_LARGE"


def test_encrypt_before_the_handshake_is_a_usage_error() -> None:
    with pytest.raises(RuntimeError):
        SecretStreamProtocol(True).encrypt(b"x")
    with pytest.raises(RuntimeError):
        _ = SecretStreamProtocol(True).stream_id


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 3), st.lists(st.binary(max_size=80), max_size=8))
def test_arbitrary_bytes_only_raise_protocol_error(stage: int, chunks: list[bytes]) -> None:
    """Garbage at any stage: before msg1/msg2/msg3, or after the handshake."""
    a = SecretStreamProtocol(True, A)
    b = SecretStreamProtocol(False, B)
    if stage == 0:
        target = b
    elif stage == 1:
        b.receive_data(a.data_to_send())
        b.next_message()
        target = a
    elif stage == 2:
        b.receive_data(a.data_to_send())
        b.next_message()
        a.receive_data(b.data_to_send())
        a.next_message()
        target = b
    else:
        handshake(a, b)
        target = a
    try:
        for chunk in chunks:
            target.receive_data(chunk)
            while target.next_message() is not None:
                pass
    except SecretStreamProtocolError:
        pass


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=10), st.integers(1, 200))
def test_stream_survives_any_chunking(messages: list[bytes], chunk: int) -> None:
    a = SecretStreamProtocol(True)
    b = SecretStreamProtocol(False)
    wire_a = bytearray(a.data_to_send())
    # run the handshake, feeding b's side chunk by chunk
    b_sent = bytearray()
    got: list[bytes] = []
    while not b.handshake_complete or not a.handshake_complete:
        piece, wire_a = wire_a[:chunk], wire_a[chunk:]
        b.receive_data(bytes(piece))
        b.next_message()
        out = b.data_to_send()
        if out:
            b_sent += out
            a.receive_data(out)
            a.next_message()
            wire_a += a.data_to_send()
    for m in messages:
        wire_a += a.encrypt(m)
    while wire_a:
        piece, wire_a = wire_a[:chunk], wire_a[chunk:]
        b.receive_data(bytes(piece))
        while (msg := b.next_message()) is not None:
            got.append(msg)
    assert got == messages


def test_idle_timers() -> None:
    t = IdleTimers(2.0, 5.0, now=100.0)
    assert t.next_deadline() == 102.0
    assert t.poll(101.0) is None
    assert t.poll(102.0) is TimerEvent.SEND_KEEP_ALIVE
    t.sent(102.0)
    assert t.next_deadline() == 104.0
    assert t.poll(105.0) is TimerEvent.TIMED_OUT
    assert t.poll(105.0, timeout=False) is TimerEvent.SEND_KEEP_ALIVE
    t.received(105.0)
    assert t.receive_deadline() == 110.0
    off = IdleTimers(None, 0, now=0.0)
    assert off.next_deadline() == math.inf and off.poll(1e9) is None


def test_unordered_boxes_round_trip_and_drop_garbage() -> None:
    hh = os.urandom(64)
    a = UnorderedBoxes(hh, True)
    b = UnorderedBoxes(hh, False)
    d = a.seal(b"datagram")
    assert len(d) == 8 + 16 + 8
    assert b.open(d) == b"datagram"
    assert a.open(d) is None  # own direction uses another key
    assert b.open(d[:-1]) is None and b.open(b"") is None
    assert b.open(a.seal(b"")) == b""


def test_unordered_counter_exhaustion() -> None:
    hh = bytes(64)
    boxes = UnorderedBoxes(hh, True, initial_counter=(2**64 - 2).to_bytes(8, "little"))
    first = boxes.seal(b"a")
    assert first[:8] == (2**64 - 1).to_bytes(8, "little")
    assert boxes.seal(b"b")[:8] == bytes(8)
    exhausted = UnorderedBoxes(hh, True, initial_counter=bytes(8))
    exhausted._counter = 2**64 - 1
    with pytest.raises(RuntimeError):
        exhausted.seal(b"c")
