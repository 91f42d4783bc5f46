"""Protomux and protomux-rpc against the pinned JS packages, live over TCP on 127.0.0.1.

protomux needs a stream of whole messages, and secret-stream is tested elsewhere, so both sides
frame messages on TCP with a 3-byte little-endian length prefix (``FramedTCP`` here,
``FramedStream`` in ``js/fns/protomux.js``). Each scenario runs in both directions: Python
connects to a JS server, and a JS client connects to a Python server (the JS call then runs
in a worker thread while Trio serves it). Both sides record the raw frames, so batches are
compared byte for byte.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from protomux import ChannelRejectedError, Protomux
from protomux import encoding as c
from protomux._frames import BatchFrame, decode_frame
from protomux.rpc import RPC, RemoteError, RPCError

from .jsenv import JSHelper

pytestmark = pytest.mark.interop

TIMEOUT = 20
KEY = bytes((i * 3) & 255 for i in range(32))  # what the JS 'getKey' answers


class FramedTCP(trio.abc.Channel[bytes]):
    """Whole messages over a TCP stream, each prefixed with its u24le length; records them."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buf = bytearray()
        self.sent: list[bytes] = []
        self.received: list[bytes] = []

    async def send(self, value: bytes) -> None:
        self.sent.append(bytes(value))
        await self._stream.send_all(len(value).to_bytes(3, "little") + value)

    async def receive(self) -> bytes:
        buf = self._buf
        while True:
            if len(buf) >= 3:
                n = int.from_bytes(buf[:3], "little")
                if len(buf) >= 3 + n:
                    frame = bytes(buf[3 : 3 + n])
                    del buf[: 3 + n]
                    self.received.append(frame)
                    return frame
            data = await self._stream.receive_some(65536)
            if not data:
                raise trio.EndOfChannel
            buf += data

    async def aclose(self) -> None:
        await self._stream.aclose()


class Inbox:
    """Collects what callbacks saw; ``await get()`` takes the next item (bounded wait)."""

    def __init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[Any](math.inf)

    def put(self, item: Any) -> None:
        self._send.send_nowait(item)

    async def get(self) -> Any:
        with trio.fail_after(TIMEOUT):
            return await self._receive.receive()


def u(n: int) -> bytes:
    return c.encode(c.uint, n)


def s(text: str) -> bytes:
    return c.encode(c.string, text)


# ---- the 'mux' scenario ----------------------------------------------------------------------


class Echo:
    """Our side of an 'echo' channel: four message types; 'req:' strings are acknowledged."""

    def __init__(self, mux: Protomux, id: bytes) -> None:
        self.inbox = Inbox()
        self.closed = trio.Event()
        self.is_remote_close: bool | None = None
        ch = mux.create_channel("echo", id, handshake=c.string, on_close=self._on_close)
        assert ch is not None
        self.ch = ch
        self.string = ch.add_message(c.string, self._on_string)
        self.uint = ch.add_message(c.uint, lambda v, _: self.inbox.put(("uint", v)))
        self.json = ch.add_message(c.json, lambda v, _: self.inbox.put(("json", v)))
        self.buffer = ch.add_message(c.buffer, lambda v, _: self.inbox.put(("buffer", v)))
        ch.open("py:" + id.hex())

    def _on_string(self, value: str, _: Any) -> None:
        self.inbox.put(("string", value))
        if value.startswith("req:"):
            self.string.send("ack:" + value)

    def _on_close(self, is_remote: bool, _: Any) -> None:
        self.is_remote_close = is_remote
        self.closed.set()


async def python_mux_session(stream: FramedTCP) -> dict[str, Any]:
    """Everything the Python side does and checks live; returns what the JS side must see."""
    out: dict[str, Any] = {}
    with trio.fail_after(TIMEOUT):
        async with Protomux(stream) as mux:
            greet = Inbox()

            async def on_greet(id: bytes | None) -> None:
                # The JS side has already sent two messages: they wait for this channel.
                await trio.sleep(0.05)
                ch = mux.create_channel(
                    "greet",
                    handshake=c.string,
                    on_open=lambda hs, _: greet.put(("open", hs)),
                    messages=[{"encoding": c.string, "on_message": lambda v, _: greet.put(v)}],
                )
                assert ch is not None
                ch.open("hello from python")
                out["greet"] = ch

            mux.pair("greet", None, on_greet)

            e1, e2 = Echo(mux, b"\x01"), Echo(mux, b"\x02")
            await e1.ch.wait_opened()
            await e2.ch.wait_opened()
            assert e1.ch.remote_handshake == "js:01"
            assert e2.ch.remote_handshake == "js:02"

            # Messages of several encodings, both ways.
            e1.string.send("hello")
            assert await e1.inbox.get() == ("string", "HELLO")
            e1.uint.send(41)
            assert await e1.inbox.get() == ("uint", 42)
            e1.json.send({"a": [1, "x"], "b": None})
            assert await e1.inbox.get() == ("json", {"echo": {"a": [1, "x"], "b": None}})
            e1.buffer.send(b"\x01\x02\x03")
            assert await e1.inbox.get() == ("buffer", b"\x03\x02\x01")
            e2.string.send("second")
            assert await e2.inbox.get() == ("string", "SECOND")

            # The JS side opened 'greet' and sent before we paired it.
            assert await greet.get() == ("open", "hello from js")
            assert await greet.get() == "early-1"
            assert await greet.get() == "early-2"
            out["greet"].messages[0].send("hi js")

            # The JS side rejects a protocol it does not know.
            nobody = mux.create_channel("nobody")
            assert nobody is not None
            nobody.open()
            with pytest.raises(ChannelRejectedError):
                await nobody.wait_opened()

            # A corked batch with a channel switch and an open inside.
            n_sent = len(stream.sent)
            with mux.corked():
                e1.string.send("x")
                e2.string.send("y")
                e1.string.send("z")
                e3 = Echo(mux, b"\x03")
            open3 = b"\x01" + u(e3.ch.local_id) + s("echo") + b"\x01\x03" + s("py:03")
            l1, l2 = u(e1.ch.local_id), u(e2.ch.local_id)
            out["batch"] = (
                b"\x00\x00"
                + (l1 + b"\x03\x00\x01x")
                + (b"\x00" + l2 + b"\x03\x00\x01y")
                + (b"\x00" + l1 + b"\x03\x00\x01z")
                + (b"\x00\x00" + u(len(open3)) + open3)
            )
            assert await e1.inbox.get() == ("string", "X")
            assert await e2.inbox.get() == ("string", "Y")
            assert await e1.inbox.get() == ("string", "Z")
            await e3.ch.wait_opened()
            assert stream.sent[n_sent:] == [out["batch"]]
            # JS replied to our batch with one batch (it corks while handling one).
            r1, r2, r3 = u(e1.ch.remote_id), u(e2.ch.remote_id), u(e3.ch.remote_id)
            reply_open = b"\x01" + r3 + s("echo") + b"\x01\x03" + s("js:03")
            js_reply = (
                b"\x00\x00"
                + (r1 + b"\x03\x00\x01X")
                + (b"\x00" + r2 + b"\x03\x00\x01Y")
                + (b"\x00" + r1 + b"\x03\x00\x01Z")
                + (b"\x00\x00" + u(len(reply_open)) + reply_open)
            )
            assert js_reply in stream.received

            # The JS side corks; we answer its batch with a batch too.
            e1.string.send("cork")
            assert await e1.inbox.get() == ("string", "req:a")
            assert await e1.inbox.get() == ("uint", 1)
            assert await e1.inbox.get() == ("string", "req:b")
            js_batch = b"\x00\x00" + r1 + b"\x07\x00\x05req:a\x02\x01\x01\x07\x00\x05req:b"
            assert js_batch in stream.received
            frame = decode_frame(js_batch)
            assert isinstance(frame, BatchFrame) and frame.corks
            out["ack_batch"] = b"\x00\x00" + l1 + b"\x0b\x00\x09ack:req:a\x0b\x00\x09ack:req:b"
            e1.string.send("ping")
            assert await e1.inbox.get() == ("string", "PING")
            assert out["ack_batch"] in stream.sent

            # We close e2; the JS side closes e1.
            e2.ch.close()
            assert e2.closed.is_set() and e2.is_remote_close is False
            e1.string.send("after-close")
            assert await e1.inbox.get() == ("string", "AFTER-CLOSE")
            e1.string.send("close-me")
            await e1.closed.wait()
            assert e1.is_remote_close is True
            assert not mux.opened("echo", b"\x01")
            assert mux.opened("echo", b"\x03")
    assert mux.error is None
    assert e3.closed.is_set()
    return out


def check_js_mux_report(report: dict[str, Any], py: dict[str, Any]) -> None:
    assert report["error"] is None
    log = report["log"]
    assert ["echo-open", "01", "py:01"] in log
    assert ["echo-open", "02", "py:02"] in log
    assert ["echo-open", "03", "py:03"] in log
    assert ["echo-uint", "01", 41] in log
    assert ["echo-json", "01", {"a": [1, "x"], "b": None}] in log
    assert ["echo-buffer", "01", "010203"] in log
    assert ["greet-open", "hello from python"] in log
    assert ["greet-msg", "hi js"] in log
    assert ["reject-me-opened", False] in log
    # e2 closed by us while the connection was up, e1 by JS itself, e3 when the stream ended.
    assert log.index(["echo-close", "02", True]) < log.index(["echo-string", "01", "after-close"])
    assert ["echo-close", "01", False] in log
    assert ["echo-close", "03", True] in log
    strings = [e[2] for e in log if e[:2] == ["echo-string", "01"]]
    assert strings[:3] == ["hello", "x", "z"]
    assert ["ack:req:a", "ack:req:b"] == [x for x in strings if x.startswith("ack:")]
    # Our batches arrived byte for byte.
    assert py["batch"].hex() in report["received"]
    assert py["ack_batch"].hex() in report["received"]


# ---- the 'rpc' scenario ----------------------------------------------------------------------


class PyBoom(Exception):
    code = "EPYBOOM"
    context = "py-context"


async def python_rpc_session(stream: FramedTCP) -> dict[str, Any]:
    events: list[Any] = []
    messages: list[Any] = []
    with trio.fail_after(TIMEOUT):
        async with RPC(stream) as rpc:
            rpc.respond("echo", lambda v: v)
            rpc.respond("json", lambda v: {"got": v}, value_encoding=c.json)
            rpc.respond("upper", str.upper, request_encoding=c.string, response_encoding=c.string)

            @rpc.respond("fail")
            def fail(_: Any) -> None:
                raise PyBoom("py boom")

            rpc.respond("failPlain", lambda _: 1 // 0)
            rpc.respond("getKey", lambda _: KEY)

            @rpc.respond("message", request_encoding=c.json, response_encoding=c.json)
            def message(m: Any) -> Any:
                messages.append(m)
                return {"ok": True, "echo": m}

            rpc.respond("event", events.append)

            @rpc.respond("slow")
            async def slow(v: Any) -> Any:
                await trio.sleep(0.05)
                return v

            # Our requests to the JS side.
            assert await rpc.request("echo", b"hi") == b"hi"
            assert await rpc.request("echo", None) is None
            assert await rpc.request("echo", b"") is None  # an empty buffer arrives as null
            got = await rpc.request("json", {"a": [1, "x"]}, value_encoding=c.json)
            assert got == {"got": {"a": [1, "x"]}}
            got = await rpc.request(
                "upper", "abc", request_encoding=c.string, response_encoding=c.string
            )
            assert got == "ABC"
            assert await rpc.request("getKey") == KEY
            got = await rpc.request(
                "message",
                {"text": "hi", "n": [1, 2.5]},
                request_encoding=c.json,
                response_encoding=c.json,
            )
            assert got == {"ok": True, "echo": {"text": "hi", "n": [1, 2.5]}}

            with pytest.raises(RPCError) as info:
                await rpc.request("fail")
            e = info.value
            assert (e.code, e.message, str(e)) == (
                "REQUEST_ERROR",
                "Request failed",
                "REQUEST_ERROR: Request failed",
            )
            assert isinstance(e.cause, RemoteError) and e.__cause__ is e.cause
            assert (e.cause.message, e.cause.code, e.cause.context) == (
                "boom",
                "EBOOM",
                "js-context",
            )
            with pytest.raises(RPCError) as info:
                await rpc.request("failPlain")
            assert info.value.code == "REQUEST_ERROR"
            assert isinstance(info.value.cause, RemoteError)
            assert (info.value.cause.message, info.value.cause.code) == ("plain", None)
            with pytest.raises(RPCError) as info:
                await rpc.request("nope")
            assert (info.value.code, info.value.message, info.value.cause) == (
                "UNKNOWN_METHOD",
                "Unknown method 'nope'",
                None,
            )
            # A request the JS codec cannot decode (a string cut short). (A JSON.parse failure
            # would crash node: safety-catch rethrows SyntaxErrors.)
            with pytest.raises(RPCError) as info:
                await rpc.request("upper", b"\x05ab", request_encoding=c.raw)
            assert info.value.code == "DECODE_ERROR"
            assert info.value.message == "Could not decode request"
            assert isinstance(info.value.cause, RemoteError)

            rpc.event("event", b"from-py")

            # 1,000 requests in flight at once.
            results: dict[int, Any] = {}

            async def one(i: int) -> None:
                results[i] = await rpc.request("echo", b"p%d" % i)

            async with trio.open_nursery() as nursery:
                for i in range(1000):
                    nursery.start_soon(one, i)
            assert results == {i: b"p%d" % i for i in range(1000)}

            # The JS side's async handler runs concurrently.
            start = time.monotonic()
            async with trio.open_nursery() as nursery:
                for i in range(20):
                    nursery.start_soon(rpc.request, "slow", bytes([i]))
            assert time.monotonic() - start < 20 * 0.05 / 2

            # Now the JS side calls our methods and tells us what it got.
            drive = await rpc.request("drive", response_encoding=c.json)
            assert events == [b"from-js"]
            assert messages == [{"text": "hello"}]
            # The raw frames of the first exchange, as REFERENCE.md section 5 shows them.
            assert stream.sent[0] == b"\x00\x01\x01" + s("protomux-rpc") + b"\x00"
            assert stream.sent[1] == b"\x01\x00\x01" + s("echo") + b"\x02hi"
            rid = u(rpc.channel.remote_id)
            assert rid + b"\x01\x00\x01\x02hi" in stream.received
            unknown = b"\x03" + u(10) + s("Unknown method 'nope'") + s("UNKNOWN_METHOD")
            assert rid + b"\x01" + unknown in stream.received
    return drive  # type: ignore[no-any-return]


def check_drive(drive: dict[str, Any]) -> None:
    assert drive["echo"] == b"hi".hex()
    assert drive["echoNull"] is None
    assert drive["echoEmpty"] is None
    assert drive["json"] == {"got": {"a": [1, "x"]}}
    assert drive["upper"] == "ABC"
    assert drive["getKey"] == KEY.hex()
    assert drive["message"] == {"ok": True, "echo": {"text": "hello"}}
    assert drive["fail"] == {
        "message": "REQUEST_ERROR: Request failed",
        "code": "REQUEST_ERROR",
        "cause": {"message": "py boom", "code": "EPYBOOM", "context": "py-context"},
    }
    assert drive["failPlain"] == {
        "message": "REQUEST_ERROR: Request failed",
        "code": "REQUEST_ERROR",
        "cause": {"message": "integer division or modulo by zero", "code": None, "context": None},
    }
    assert drive["unknown"] == {
        "message": "UNKNOWN_METHOD: Unknown method 'nope'",
        "code": "UNKNOWN_METHOD",
        "cause": None,
    }
    assert drive["badRequest"]["code"] == "DECODE_ERROR"
    assert drive["badRequest"]["message"] == "DECODE_ERROR: Could not decode request"
    assert drive["badRequest"]["cause"]["message"]
    assert drive["many"] is True
    assert drive["slow"] is True
    assert drive["slowMs"] < 20 * 50 / 2


def check_js_rpc_report(report: dict[str, Any]) -> None:
    assert report["error"] is None
    log = report["log"]
    assert ["event", b"from-py".hex()] in log
    assert ["message", {"text": "hi", "n": [1, 2.5]}] in log


# ---- running both directions -----------------------------------------------------------------


async def in_thread(js: JSHelper, fn: str, *args: Any) -> Any:
    return await trio.to_thread.run_sync(functools.partial(js, fn, *args), abandon_on_cancel=True)


async def python_client(
    js: JSHelper, scenario: str, session: Callable[[FramedTCP], Awaitable[Any]]
) -> tuple[Any, dict[str, Any]]:
    """Python connects to a JS server."""
    port = await in_thread(js, "protomux.serve", scenario)
    try:
        with trio.fail_after(TIMEOUT):
            tcp = await trio.open_tcp_stream("127.0.0.1", port)
        result = await session(FramedTCP(tcp))
        with trio.fail_after(TIMEOUT + 5):
            report = await in_thread(js, "protomux.session")
    finally:
        await in_thread(js, "protomux.stop")
    return result, report


async def python_server(
    js: JSHelper, scenario: str, session: Callable[[FramedTCP], Awaitable[Any]]
) -> tuple[Any, dict[str, Any]]:
    """A JS client connects to a Python server (the JS call runs in a worker thread)."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    report: dict[str, Any] = {}

    async def client() -> None:
        report.update(await in_thread(js, "protomux.connect", port, scenario))

    with trio.fail_after(TIMEOUT + 5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client)
            tcp = await listeners[0].accept()
            await listeners[0].aclose()
            result = await session(FramedTCP(tcp))
    return result, report


@pytest.mark.parametrize("python_is", ["client", "server"])
async def test_mux_channels_with_js(js: JSHelper, python_is: str) -> None:
    run = python_client if python_is == "client" else python_server
    py, report = await run(js, "mux", python_mux_session)
    check_js_mux_report(report, py)


@pytest.mark.parametrize("python_is", ["client", "server"])
async def test_rpc_with_js(js: JSHelper, python_is: str) -> None:
    run = python_client if python_is == "client" else python_server
    drive, report = await run(js, "rpc", python_rpc_session)
    check_drive(drive)
    check_js_rpc_report(report)
