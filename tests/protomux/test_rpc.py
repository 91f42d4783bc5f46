"""protomux-rpc: wire bytes, encodings, errors, events, timeouts, closing, concurrency."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from protomux import Protomux
from protomux import encoding as c
from protomux.rpc import (
    RPC,
    RemoteError,
    RPCError,
    request_encoding,
    response_encoding,
)
from protomux.testing import (
    RecordingMessageStream,
    memory_message_stream_pair,
)

TIMEOUT = 10


Recorder = RecordingMessageStream


@asynccontextmanager
async def rpc_pair(**kw: Any) -> AsyncIterator[tuple[RPC, RPC]]:
    a, b = memory_message_stream_pair()
    with trio.fail_after(TIMEOUT):
        async with RPC(a, **kw) as client, RPC(b, **kw) as server:
            yield client, server


def s(text: str) -> bytes:
    return c.encode(c.string, text)


async def test_requests_with_the_default_encoding() -> None:
    async with rpc_pair() as (client, server):
        server.respond("echo", lambda v: v)
        assert await client.request("echo", b"hi") == b"hi"
        assert await client.request("echo", None) is None
        assert await client.request("echo", b"") is None  # as JS: an empty buffer is null
        assert await client.request("echo") is None
        await client.wait_opened()
        assert client.opened and server.opened and not client.closed


async def test_wire_bytes_match_the_js_vectors() -> None:
    a, b = memory_message_stream_pair()
    ra, rb = Recorder(a), Recorder(b)
    with trio.fail_after(TIMEOUT):
        async with RPC(ra) as client, RPC(rb) as server:
            got: list[Any] = []
            server.respond("echo", lambda v: v)
            server.respond("event", got.append)

            @server.respond("boom")
            def boom(_: Any) -> None:
                err = RuntimeError("boom")
                err.code = "EBOOM"  # type: ignore[attr-defined]
                raise err

            assert await client.request("echo", b"hi") == b"hi"
            with pytest.raises(RPCError):
                await client.request("nope")
            with pytest.raises(RPCError):
                await client.request("boom")
            client.event("event", b"ev")
            assert await client.request("echo", b"x") == b"x"
            assert got == [b"ev"]
    assert ra.sent[0] == b"\x00\x01\x01" + s("protomux-rpc") + b"\x00"
    assert ra.sent[1] == b"\x01\x00\x01\x04echo\x02hi"
    assert ra.sent[4] == b"\x01\x00\x00\x05event\x02ev"  # an event: id 0
    assert rb.sent[1] == b"\x01\x01\x00\x01\x02hi"
    assert rb.sent[2] == b"\x01\x01\x03\x02" + s("Unknown method 'nope'") + s("UNKNOWN_METHOD")
    assert rb.sent[3] == (
        b"\x01\x01\x07\x03" + s("Request failed") + s("REQUEST_ERROR") + s("boom") + s("EBOOM")
    )
    assert rb.sent[4:] == [b"\x01\x01\x00\x04\x01x", b"\x00\x03\x01"]  # no answer to the event


async def test_encodings_per_method_and_per_rpc() -> None:
    async with rpc_pair() as (client, server):
        server.respond("json", lambda v: {"got": v}, value_encoding=c.json)
        server.respond("len", lambda v: len(v), request_encoding=c.string, response_encoding=c.uint)
        assert await client.request("json", [1, "a"], value_encoding=c.json) == {"got": [1, "a"]}
        got = await client.request(
            "len", "héllo", request_encoding=c.string, response_encoding=c.uint
        )
        assert got == 5
    async with rpc_pair(value_encoding=c.json) as (client, server):
        server.respond("echo", lambda v: v)
        assert await client.request("echo", {"a": None}) == {"a": None}


async def test_remote_errors_carry_message_code_and_cause() -> None:
    class Failure(Exception):
        code = "EFAIL"
        context = "while testing"

    async with rpc_pair() as (client, server):

        @server.respond("fail")
        async def fail(_: Any) -> None:
            await trio.sleep(0)
            raise Failure("it broke")

        server.respond("plain", lambda _: [][1])
        server.respond("bad-code", lambda _: (_ for _ in ()).throw(SystemExit(3)))
        with pytest.raises(RPCError) as info:
            await client.request("fail")
        e = info.value
        assert (e.code, e.message, str(e)) == (
            "REQUEST_ERROR",
            "Request failed",
            "REQUEST_ERROR: Request failed",
        )
        assert isinstance(e.cause, RemoteError) and e.__cause__ is e.cause
        assert (e.cause.message, e.cause.code, e.cause.context) == (
            "it broke",
            "EFAIL",
            "while testing",
        )
        with pytest.raises(RPCError) as info:
            await client.request("plain")
        assert isinstance(info.value.cause, RemoteError)
        assert info.value.cause.message == "list index out of range"
        assert info.value.cause.code is None
        with pytest.raises(RPCError) as info:
            await client.request("missing")
        assert info.value.code == "UNKNOWN_METHOD" and info.value.cause is None


async def test_handler_exceptions_that_are_not_errors_are_not_caught() -> None:
    a, b = memory_message_stream_pair()
    with pytest.raises(BaseExceptionGroup) as info:
        with trio.fail_after(TIMEOUT):
            async with RPC(a) as client, RPC(b) as server:

                def leave(_: Any) -> None:
                    raise KeyboardInterrupt

                server.respond("leave", leave)
                await client.request("leave")
    assert info.group_contains(KeyboardInterrupt)


async def test_decode_and_encode_errors() -> None:
    async with rpc_pair() as (client, server):
        server.respond("json", lambda v: v, request_encoding=c.json)
        server.respond("unencodable", lambda v: 42)  # not bytes: optional_buffer refuses it
        server.respond("number", lambda v: b"\x05ab", response_encoding=c.raw)
        with pytest.raises(RPCError) as info:
            await client.request("json", b"{not json")
        assert (info.value.code, info.value.message) == ("DECODE_ERROR", "Could not decode request")
        assert isinstance(info.value.cause, RemoteError)
        with pytest.raises(RPCError) as info:
            await client.request("unencodable")
        assert (info.value.code, info.value.message) == (
            "ENCODE_ERROR",
            "Could not encode response",
        )
        with pytest.raises(RPCError) as info:  # our side cannot decode the response
            await client.request("number", response_encoding=c.string)
        assert info.value.code == "DECODE_ERROR"
        assert isinstance(info.value.cause, c.DecodeError)
        with pytest.raises(c.EncodeError):  # our own value: raised locally, nothing sent
            await client.request("json", 42)


async def test_events_run_the_handler_without_a_reply() -> None:
    async with rpc_pair() as (client, server):
        got: list[Any] = []
        server.respond("note", got.append, value_encoding=c.string)
        server.respond("boom", lambda v: 1 // 0)
        client.event("note", "one", value_encoding=c.string)
        client.event("boom")  # the error has nowhere to go
        client.event("unknown")
        client.event("note", "two", request_encoding=c.string)
        server.respond("ping", lambda v: b"pong")
        assert await client.request("ping") == b"pong"
        assert got == ["one", "two"]


async def test_many_requests_in_flight_and_concurrent_async_handlers() -> None:
    async with rpc_pair() as (client, server):
        server.respond("echo", lambda v: v)

        @server.respond("slow")
        async def slow(v: Any) -> Any:
            await trio.sleep(0.05)
            return v

        results: dict[int, Any] = {}

        async def one(i: int, method: str) -> None:
            results[i] = await client.request(method, b"%d" % i)

        async with trio.open_nursery() as nursery:
            for i in range(1000):
                nursery.start_soon(one, i, "echo")
        assert results == {i: b"%d" % i for i in range(1000)}
        start = time.monotonic()
        async with trio.open_nursery() as nursery:
            for i in range(100):
                nursery.start_soon(one, i, "slow")
        assert time.monotonic() - start < 100 * 0.05 / 4


async def test_both_sides_request_each_other_on_one_channel() -> None:
    async with rpc_pair() as (a, b):

        @a.respond("a-side")
        async def a_side(v: Any) -> Any:
            return b"a:" + await a.request("b-side", v)

        b.respond("b-side", lambda v: b"b:" + v)
        assert await b.request("a-side", b"x") == b"a:b:x"


async def test_timeout() -> None:
    async with rpc_pair() as (client, server):
        release = trio.Event()

        @server.respond("hang")
        async def hang(v: Any) -> Any:
            await release.wait()
            return b"late"

        with pytest.raises(RPCError) as info:
            await client.request("hang", timeout=0.02)
        assert info.value.code == "TIMEOUT_EXCEEDED"
        release.set()
        server.respond("echo", lambda v: v)
        assert await client.request("echo", b"after", timeout=5) == b"after"
        assert not client._requests


async def test_cancelled_requests_are_forgotten() -> None:
    async with rpc_pair() as (client, server):

        @server.respond("hang")
        async def hang(v: Any) -> None:
            await trio.sleep_forever()

        with trio.move_on_after(0.02):
            await client.request("hang")
        assert not client._requests


async def test_pending_requests_fail_when_the_channel_closes() -> None:
    async with rpc_pair() as (client, server):

        @server.respond("hang")
        async def hang(v: Any) -> None:
            await trio.sleep_forever()

        async def remote_goes_away() -> None:
            await trio.sleep(0.02)
            server.destroy()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(remote_goes_away)
            with pytest.raises(RPCError) as info:
                await client.request("hang")
        assert info.value.code == "CHANNEL_CLOSED"
        await client.wait_closed()
        assert client.closed
        with pytest.raises(RPCError) as info:
            await client.request("hang")
        assert info.value.code == "CHANNEL_CLOSED"
        with pytest.raises(RPCError):
            client.event("x")


async def test_destroy_fails_our_pending_requests() -> None:
    async with rpc_pair() as (client, server):

        @server.respond("hang")
        async def hang(v: Any) -> None:
            await trio.sleep_forever()

        async def destroy_soon() -> None:
            await trio.sleep(0.02)
            await client.aclose()
            await client.aclose()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(destroy_soon)
            with pytest.raises(RPCError) as info:
                await client.request("hang")
        assert info.value.code == "CHANNEL_DESTROYED"
        await server.wait_closed()


async def test_end_waits_for_requests_in_flight() -> None:
    async with rpc_pair() as (client, server):
        release = trio.Event()

        @server.respond("work")
        async def work(v: Any) -> Any:
            await release.wait()
            return b"done"

        results: list[Any] = []

        async def call() -> None:
            results.append(await client.request("work"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call)
            await trio.sleep(0.02)
            nursery.start_soon(server.end)
            await trio.sleep(0.02)
            assert not server.closed  # still answering
            release.set()
        assert results == [b"done"] and server.closed
        await client.wait_closed()


async def test_rpc_on_an_existing_mux_with_id_and_handshake() -> None:
    a, b = memory_message_stream_pair()
    with trio.fail_after(TIMEOUT):
        async with Protomux(a) as ma, Protomux(b) as mb:
            ra = RPC(ma, id=b"\x01", handshake="from a", handshake_encoding=c.string)
            rb = RPC(mb, id=b"\x01", handshake="from b", handshake_encoding=c.string)
            other_a = RPC(ma, id=b"\x02", protocol="other")
            other_b = RPC(mb, id=b"\x02", protocol="other")
            rb.respond("who", lambda v: b"rb")
            other_b.respond("who", lambda v: b"other")
            assert await ra.request("who") == b"rb"
            assert await other_a.request("who") == b"other"
            assert ra.remote_handshake == "from b" and rb.remote_handshake == "from a"
            assert ra.mux is ma and ra.stream is a and ra.channel.id == b"\x01"
            with pytest.raises(RPCError) as info:
                RPC(ma, id=b"\x01")
            assert info.value.code == "DUPLICATE_CHANNEL"
            async with ra:
                pass
            assert ra.closed and not ma.closed  # leaving an RPC on a shared mux keeps the mux
            await rb.wait_closed()
            assert await other_a.request("who") == b"other"
        with pytest.raises(RPCError) as info:
            RPC(ma)
        assert info.value.code == "CHANNEL_CLOSED"


async def test_cork_batches_requests() -> None:
    a, b = memory_message_stream_pair()
    ra = Recorder(a)
    with trio.fail_after(TIMEOUT):
        async with RPC(ra) as client, RPC(b) as server:
            server.respond("echo", lambda v: v)
            await client.request("echo")
            n = len(ra.sent)
            results: list[Any] = []

            async def call(v: bytes) -> None:
                results.append(await client.request("echo", v))

            async with trio.open_nursery() as nursery:
                client.cork()
                for v in (b"1", b"2", b"3"):
                    nursery.start_soon(call, v)
                await trio.sleep(0.01)
                client.uncork()
            assert sorted(results) == [b"1", b"2", b"3"]
            assert len(ra.sent) == n + 1 and ra.sent[n].startswith(b"\x00\x00\x01")


# --- codecs -----------------------------------------------------------------------------------


def test_response_codec_round_trip() -> None:
    err = RPCError("Request failed", "REQUEST_ERROR", RemoteError("boom", "EBOOM", "ctx"))
    data = c.encode(response_encoding, (5, err, None))
    assert data == (
        b"\x0f\x05" + s("Request failed") + s("REQUEST_ERROR") + s("boom") + s("EBOOM") + s("ctx")
    )
    id, back, value = c.decode(response_encoding, data)
    assert (id, value) == (5, None) and back is not None
    assert (back.message, back.code) == ("Request failed", "REQUEST_ERROR")
    assert isinstance(back.cause, RemoteError)
    assert (back.cause.message, back.cause.code, back.cause.context) == ("boom", "EBOOM", "ctx")
    assert c.encode(response_encoding, (7, None, b"\x02hi")) == b"\x00\x07\x02hi"
    assert c.decode(response_encoding, b"\x00\x07\x02hi") == (7, None, b"\x02hi")
    # compact-encoding-bitfield reads a 0xfd prefix as "two bytes follow", flags first
    assert c.decode(response_encoding, b"\xfd\x00\x00\x07") == (7, None, b"")
    assert c.encode(request_encoding, (1, "echo", b"\x02hi")) == b"\x01\x04echo\x02hi"
    assert c.decode(request_encoding, b"\x01\x04echo\x02hi") == (1, "echo", b"\x02hi")


@settings(max_examples=3000)
@given(st.binary(max_size=40))
def test_arbitrary_bytes_only_raise_decode_error(data: bytes) -> None:
    codecs: list[c.Codec[Any]] = [request_encoding, response_encoding]
    for codec in codecs:
        try:
            c.decode(codec, data)
        except c.DecodeError:
            pass


@settings(max_examples=1000)
@given(
    st.integers(0, 2**53 - 1),
    st.text(),
    st.one_of(st.none(), st.text()),
    st.one_of(st.none(), st.tuples(st.text(), st.text(), st.text())),
)
def test_error_responses_round_trip(
    id: int, message: str, code: str | None, cause: tuple[str, str, str] | None
) -> None:
    remote = RemoteError(cause[0], cause[1] or None, cause[2] or None) if cause else None
    err = RPCError(message, code or None, remote)
    back_id, back, _ = c.decode(response_encoding, c.encode(response_encoding, (id, err, None)))
    assert back_id == id and back is not None
    assert (back.message, back.code) == (message, code or None)
    if remote is None:
        assert back.cause is None
    else:
        assert isinstance(back.cause, RemoteError)
        assert (back.cause.message, back.cause.code, back.cause.context) == (
            remote.message,
            remote.code,
            remote.context,
        )
