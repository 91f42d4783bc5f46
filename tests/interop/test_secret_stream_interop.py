"""Secret-stream against the pinned JS: golden handshakes, boxes, and live TCP sessions.

Live sessions run on 127.0.0.1 in both directions (Python client to a JS server, JS client
to a Python server). The JS helper answers one request at a time, so a JS client runs in a
worker thread while the Python server serves it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import trio

from hypercore import crypto
from hyperswarm.secret_stream import (
    NoiseState,
    PullBox,
    PushBox,
    SecretStream,
    UnorderedBoxes,
    stream_id,
)
from hyperswarm.secret_stream.noise import generate_key_pair

from .jsenv import JSHelper

pytestmark = pytest.mark.interop

CLIENT_SEED = bytes([0x11]) * 32
SERVER_SEED = bytes([0x22]) * 32
CLIENT = crypto.key_pair(CLIENT_SEED)
SERVER = crypto.key_pair(SERVER_SEED)

# Messages echoed in every live session: empty, 1 byte, 64 KiB, then many small ones.
MESSAGES = [b"", b"\x01", bytes(i & 255 for i in range(65536))] + [
    bytes([i & 255]) * (i % 300) for i in range(500)
]
TIMEOUT = 30


async def in_thread(js: JSHelper, fn: str, *args: Any) -> Any:
    """Call the JS helper from a worker thread, so the Trio side keeps running."""
    return await trio.to_thread.run_sync(functools.partial(js, fn, *args), abandon_on_cancel=True)


# ---- golden vectors --------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["XX", "IK"])
def test_noise_handshake_matches_js_byte_for_byte(js: JSHelper, pattern: str) -> None:
    seeds = {
        "initiatorSeed": bytes([1]) * 32,
        "responderSeed": bytes([2]) * 32,
        "initiatorEphemeralSeed": bytes([3]) * 32,
        "responderEphemeralSeed": bytes([4]) * 32,
    }
    payloads = [b"first", b"second", b"third"] if pattern == "IK" else []
    vec = js("secretStream.noiseVector", pattern, {**seeds, "payloads": payloads})

    init_kp, resp_kp = (
        crypto.key_pair(seeds["initiatorSeed"]),
        crypto.key_pair(seeds["responderSeed"]),
    )
    init = NoiseState(
        pattern,
        True,
        init_kp,
        remote_static=resp_kp.public_key if pattern == "IK" else None,
        ephemeral_key_pair=generate_key_pair(seeds["initiatorEphemeralSeed"]),
    )
    resp = NoiseState(
        pattern,
        False,
        resp_kp,
        ephemeral_key_pair=generate_key_pair(seeds["responderEphemeralSeed"]),
    )
    sender, receiver = init, resp
    for i, expected in enumerate(vec["messages"]):
        payload = payloads[i] if i < len(payloads) else b""
        msg = sender.send(payload)
        assert msg == expected, f"message {i}"
        assert receiver.recv(msg) == vec["payloads"][i] == payload
        sender, receiver = receiver, sender
    assert init.complete and resp.complete
    assert init.tx == vec["initiator"]["tx"] == resp.rx == vec["responder"]["rx"]
    assert init.rx == vec["initiator"]["rx"] == resp.tx == vec["responder"]["tx"]
    assert init.handshake_hash == vec["initiator"]["hash"] == resp.handshake_hash
    assert init.remote_static == resp_kp.public_key == vec["initiator"]["rs"]
    assert resp.remote_static == init_kp.public_key == vec["responder"]["rs"]
    if pattern == "XX":
        assert [len(m) for m in vec["messages"]] == [32, 96, 64]


def test_stream_ids_match_js(js: JSHelper) -> None:
    hh = bytes(range(64))
    for is_initiator in (True, False):
        assert stream_id(hh, is_initiator) == js("secretStream.id", hh, is_initiator)


def test_secretstream_boxes_interoperate(js: JSHelper) -> None:
    key = bytes(range(32))
    messages = [b"", b"a", os.urandom(1000), os.urandom(70000)]
    # JS pushes, Python pulls.
    pushed = js("secretStream.push", key, messages)
    pull = PullBox(key, pushed["header"])
    assert [pull.pull(box) for box in pushed["boxes"]] == messages
    # Python pushes, JS pulls.
    push = PushBox(key)
    boxes = [push.push(m) for m in messages]
    assert [len(b) for b in boxes] == [len(m) + 17 for m in messages]
    assert js("secretStream.pull", key, push.header, boxes) == messages
    # A flipped bit is refused by JS too.
    push = PushBox(key)
    bad = bytearray(push.push(b"hello"))
    bad[5] ^= 1
    (result,) = js("secretStream.pull", key, push.header, [bytes(bad)])
    assert "error" in result


def test_unordered_boxes_interoperate(js: JSHelper) -> None:
    hh = os.urandom(64)
    counter = (2**64 - 2).to_bytes(8, "little")  # wraps around after two sends
    messages = [b"", b"x", os.urandom(1200), b"last"]
    for is_initiator in (True, False):
        theirs = js("secretStream.unorderedSeal", hh, is_initiator, counter, messages)
        ours = UnorderedBoxes(hh, is_initiator, initial_counter=counter)
        assert [ours.seal(m) for m in messages] == theirs
        peer = UnorderedBoxes(hh, not is_initiator)
        assert [peer.open(d) for d in theirs] == messages
        opened = js("secretStream.unorderedOpen", hh, not is_initiator, [*theirs, b"x" * 30])
        assert opened == [*messages, None]


# ---- live sessions ---------------------------------------------------------------------------


async def echo_session(s: SecretStream, messages: list[bytes]) -> list[bytes]:
    """Send all messages while receiving as many back."""
    got: list[bytes] = []

    async def sender() -> None:
        for m in messages:
            await s.send(m)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        for _ in messages:
            got.append(await s.receive())
    return got


@pytest.fixture
def js_server(js: JSHelper) -> Iterator[Callable[..., int]]:
    started = []

    def start(**opts: Any) -> int:
        port: int = js("secretStream.listen", {"seed": SERVER_SEED, **opts})
        started.append(port)
        return port

    yield start
    if started:
        js("secretStream.stop")


async def test_python_client_to_js_server(js: JSHelper, js_server: Callable[..., int]) -> None:
    port = js_server()
    with trio.fail_after(TIMEOUT):
        tcp = await trio.open_tcp_stream("127.0.0.1", port)
        async with SecretStream(tcp, is_initiator=True, key_pair=CLIENT) as s:
            assert s.remote_public_key == SERVER.public_key
            assert s.public_key == CLIENT.public_key
            assert len(s.handshake_hash) == 64
            assert await echo_session(s, MESSAGES) == MESSAGES
            # Sequential round trips too (one message in flight at a time).
            for m in [b"ping", b"", bytes(65536)]:
                await s.send(m)
                assert await s.receive() == m
            hh = s.handshake_hash
            await s.send_eof()
            with pytest.raises(trio.EndOfChannel):
                await s.receive()
        (info,) = await in_thread(js, "secretStream.serverInfo", {"wait": 5000})
    assert info["handshakeHash"] == hh
    assert info["remotePublicKey"] == CLIENT.public_key
    assert info["publicKey"] == SERVER.public_key
    assert info["messages"] == sum(1 for m in MESSAGES if m) + 2
    assert info["empty"] == sum(1 for m in MESSAGES if not m) + 1
    assert info["error"] is None


async def serve_one(
    handler: Callable[[SecretStream], Awaitable[None]], **opts: Any
) -> tuple[int, Callable[[], Awaitable[None]]]:
    """A listener on 127.0.0.1 that runs ``handler`` on its first connection."""
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener.socket.getsockname()[1]

    async def run() -> None:
        async with listener:
            tcp = await listener.accept()
        async with SecretStream(tcp, is_initiator=False, key_pair=SERVER, **opts) as s:
            await handler(s)

    return port, run


async def python_echo(s: SecretStream, record: dict[str, Any]) -> None:
    record["handshake_hash"] = s.handshake_hash
    record["remote_public_key"] = s.remote_public_key
    record["received"] = received = []
    async for message in s:
        received.append(message)
        await s.send(message)


async def test_js_client_to_python_server(js: JSHelper) -> None:
    record: dict[str, Any] = {}
    port, serve = await serve_one(lambda s: python_echo(s, record))
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            result = await in_thread(
                js, "secretStream.client", port, {"seed": CLIENT_SEED, "messages": MESSAGES}
            )
    assert result["opened"] and result["complete"] and result["error"] is None
    assert result["handshakeHash"] == record["handshake_hash"]
    assert result["remotePublicKey"] == SERVER.public_key
    assert record["remote_public_key"] == CLIENT.public_key == result["publicKey"]
    assert record["received"] == MESSAGES
    assert result["received"] == MESSAGES
    assert result["closed"]


async def test_js_keep_alive_client_interoperates(js: JSHelper) -> None:
    """A JS client with keep-alive 50 ms idles 400 ms: its empty frames reach us as empty
    messages (we do not filter them without keep-alive), and JS filters our echoes of them."""
    record: dict[str, Any] = {}
    port, serve = await serve_one(lambda s: python_echo(s, record))
    opts = {"seed": CLIENT_SEED, "keepAlive": 50, "idle": 400, "messages": [b"a", b"bc"]}
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            result = await in_thread(js, "secretStream.client", port, opts)
    assert result["error"] is None
    assert result["received"] == [b"a", b"bc"]
    empties = [m for m in record["received"] if not m]
    assert len(empties) >= 3
    assert [m for m in record["received"] if m] == [b"a", b"bc"]


async def test_python_keep_alive_filters_js_keep_alives(js: JSHelper) -> None:
    """Both sides with keep-alive: no empty messages surface on either side."""
    record: dict[str, Any] = {}
    port, serve = await serve_one(lambda s: python_echo(s, record), keep_alive=0.05)
    opts = {
        "seed": CLIENT_SEED,
        "keepAlive": 50,
        "idle": 300,
        "messages": [b"hello"],
        "idleAfter": 300,
    }
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            result = await in_thread(js, "secretStream.client", port, opts)
    assert result["error"] is None
    assert result["received"] == [b"hello"]
    assert record["received"] == [b"hello"]


async def test_python_keep_alive_keeps_js_timeout_at_bay(
    js: JSHelper, js_server: Callable[..., int]
) -> None:
    """A JS server with a 300 ms timeout stays up through 1 s of idleness thanks to our
    100 ms keep-alive. It does not filter empty messages (no keep-alive of its own), so it
    counts our keep-alives and echoes them, and our side drops the echoes."""
    port = js_server(timeout=300)
    with trio.fail_after(TIMEOUT):
        tcp = await trio.open_tcp_stream("127.0.0.1", port)
        async with SecretStream(tcp, is_initiator=True, key_pair=CLIENT, keep_alive=0.1) as s:
            await trio.sleep(1.0)
            await s.send(b"still here")
            assert await s.receive() == b"still here"
        (info,) = await in_thread(js, "secretStream.serverInfo", {"wait": 5000})
    assert info["error"] is None
    assert info["empty"] >= 5
    assert info["messages"] == 1


async def test_js_timeout_cuts_off_a_silent_python_client(
    js: JSHelper, js_server: Callable[..., int]
) -> None:
    port = js_server(timeout=200)
    with trio.fail_after(TIMEOUT):
        tcp = await trio.open_tcp_stream("127.0.0.1", port)
        async with SecretStream(tcp, is_initiator=True, key_pair=CLIENT) as s:
            with pytest.raises((trio.EndOfChannel, trio.BrokenResourceError)):
                await s.receive()
        (info,) = await in_thread(js, "secretStream.serverInfo", {"wait": 5000})
    assert info["error"] == "Stream timed out"


async def test_python_timeout_cuts_off_a_silent_js_client(js: JSHelper) -> None:
    errors: list[BaseException] = []

    async def handler(s: SecretStream) -> None:
        try:
            await s.receive()
        except trio.BrokenResourceError as exc:
            errors.append(exc)

    port, serve = await serve_one(handler, timeout=0.2)
    opts = {"seed": CLIENT_SEED, "messages": [], "expect": 1, "wait": 3000}
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            result = await in_thread(js, "secretStream.client", port, opts)
    assert result["opened"] and result["closed"]
    assert result["received"] == []
    (err,) = errors
    assert getattr(err, "code", None) == "TIMED_OUT"
