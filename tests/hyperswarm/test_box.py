"""Secretstream boxes and the u24le frame parser (box.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl import bindings as sodium

from hyperswarm.secret_stream.box import (
    ABYTES,
    HEADERBYTES,
    MAX_FRAME,
    TAG_FINAL,
    FrameParser,
    PullBox,
    PushBox,
    frame,
)
from hyperswarm.secret_stream.errors import SecretStreamProtocolError

KEY = bytes(range(32))


def test_constants() -> None:
    assert (ABYTES, HEADERBYTES) == (17, 24)


def test_push_pull_round_trip_with_all_buffer_types() -> None:
    push = PushBox(KEY)
    pull = PullBox(KEY, push.header)
    messages: list[bytes | bytearray | memoryview] = [
        b"",
        b"a",
        bytearray(b"bytearray"),
        memoryview(b"xxview")[2:],
        os.urandom(100000),
    ]
    for m in messages:
        box = push.push(m)
        assert len(box) == len(m) + ABYTES
        assert pull.pull(box) == bytes(m)
        assert pull.pull(memoryview(push.push(m))) == bytes(m)


def test_push_frame_layout_and_prefix() -> None:
    push = PushBox(KEY)
    pull = PullBox(KEY, push.header)
    out = push.push_frame(b"hello", b"PREFIX")
    assert out[:6] == b"PREFIX"
    assert int.from_bytes(out[6:9], "little") == 5 + ABYTES == len(out) - 9
    assert pull.pull(bytes(out[9:])) == b"hello"


def test_interoperates_with_pynacl_secretstream() -> None:
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, KEY)
    pull = PullBox(KEY, header)
    for m in [b"one", b"", b"three" * 100]:
        assert pull.pull(sodium.crypto_secretstream_xchacha20poly1305_push(state, m)) == m
    push = PushBox(KEY)
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, push.header, KEY)
    assert sodium.crypto_secretstream_xchacha20poly1305_pull(state, push.push(b"abc")) == (
        b"abc",
        0,
    )
    final = push.push(b"end", TAG_FINAL)
    assert sodium.crypto_secretstream_xchacha20poly1305_pull(state, final) == (b"end", TAG_FINAL)


def test_tampering_and_reordering_are_refused() -> None:
    push = PushBox(KEY)
    boxes = [push.push(b"first"), push.push(b"second")]
    pull = PullBox(KEY, push.header)
    with pytest.raises(SecretStreamProtocolError) as info:
        pull.pull(boxes[1])  # out of order
    assert info.value.code == "DECRYPTION_FAILED"
    pull = PullBox(KEY, push.header)
    bad = bytearray(boxes[0])
    bad[-1] ^= 0x80
    with pytest.raises(SecretStreamProtocolError):
        pull.pull(bad)
    with pytest.raises(SecretStreamProtocolError) as info:
        PullBox(KEY, push.header).pull(b"x" * (ABYTES - 1))
    assert info.value.code == "INVALID_MESSAGE"
    with pytest.raises(SecretStreamProtocolError):
        PullBox(KEY, b"short header")


def test_message_size_limit() -> None:
    push = PushBox(KEY)
    with pytest.raises(ValueError):
        push.push_frame(bytes(MAX_FRAME - ABYTES + 1))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_boxes_only_raise_protocol_error(data: bytes) -> None:
    pull = PullBox(KEY, PushBox(KEY).header)
    with pytest.raises(SecretStreamProtocolError):
        pull.pull(data)


def test_frame_helper() -> None:
    assert frame(b"abc") == b"\x03\x00\x00abc"
    with pytest.raises(ValueError):
        frame(bytes(MAX_FRAME + 1))


def test_parser_frames_and_wanted_bytes() -> None:
    p = FrameParser()
    assert p.next_frame() is None and p.bytes_wanted() == 3
    p.feed(b"\x05\x00")
    assert p.bytes_wanted() == 1
    p.feed(b"\x00ab")
    assert p.next_frame() is None and p.bytes_wanted() == 3 and p.buffered == 5
    p.feed(b"cde\x00\x00\x00\x01")
    first, second = p.next_frame(), p.next_frame()
    assert first is not None and bytes(first) == b"abcde"
    assert second is not None and bytes(second) == b""
    assert p.next_frame() is None and p.buffered == 1


def test_parser_views_stay_valid_after_more_data() -> None:
    p = FrameParser()
    p.feed(frame(b"one") + frame(b"two")[:4])
    first = p.next_frame()
    p.feed(frame(b"two")[4:] + frame(b"three"))
    second = p.next_frame()
    third = p.next_frame()
    assert first is not None and second is not None and third is not None
    assert (bytes(first), bytes(second), bytes(third)) == (b"one", b"two", b"three")


def test_parser_limits_frame_size() -> None:
    p = FrameParser(max_frame=10)
    p.feed(b"\x0b\x00\x00")
    with pytest.raises(SecretStreamProtocolError) as info:
        p.next_frame()
    assert info.value.code == "FRAME_TOO_LARGE"


def test_parser_accumulates_a_large_frame_in_small_chunks() -> None:
    body = os.urandom(1 << 20)
    data = frame(body)
    p = FrameParser()
    for i in range(0, len(data), 1000):
        p.feed(data[i : i + 1000])
        if i + 1000 < len(data):
            assert p.next_frame() is None
    got = p.next_frame()
    assert got is not None and bytes(got) == body


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(max_size=70), max_size=20),
    st.lists(st.integers(1, 40), min_size=1, max_size=30),
)
def test_parser_is_independent_of_chunking(bodies: list[bytes], cuts: list[int]) -> None:
    data = b"".join(frame(b) for b in bodies)
    p = FrameParser()
    got = []
    i = 0
    k = 0
    while i < len(data):
        n = cuts[k % len(cuts)]
        k += 1
        p.feed(data[i : i + n])
        i += n
        while (f := p.next_frame()) is not None:
            got.append(bytes(f))
    assert got == bodies and p.buffered == 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=10), st.integers(0, 2000))
def test_arbitrary_bytes_to_the_parser_only_raise_protocol_error(
    chunks: list[bytes], limit: int
) -> None:
    p = FrameParser(max_frame=limit)
    try:
        for chunk in chunks:
            p.feed(chunk)
            while (f := p.next_frame()) is not None:
                assert len(f) <= limit
    except SecretStreamProtocolError:
        pass


GC_SCRIPT = """
import gc
from hyperswarm.secret_stream.box import PullBox, PushBox
from hyperswarm.secret_stream.errors import SecretStreamProtocolError

class Holder:
    pass

key = bytes(32)
gc.disable()
for i in range(50):
    view = memoryview(bytearray(100))[3:60]
    holder = Holder()
    try:
        PullBox(key, PushBox(key).header).pull(view)
    except SecretStreamProtocolError as exc:
        holder.err = exc
        exc.holder = holder
    del holder, view
    gc.collect()
"""


def test_a_failed_pull_from_a_view_survives_garbage_collection() -> None:
    """Regression: a from_buffer export left alive in a frame kept by the traceback made
    the collector clear the exported memoryview first, and CPython 3.11 segfaulted."""
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", GC_SCRIPT], cwd=root, capture_output=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"BufferError" not in proc.stderr
