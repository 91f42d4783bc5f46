"""The tutorial's RPC (``getKey``, ``message``) between Python and JS peers over TCP on
127.0.0.1, secret-stream and protomux-rpc, both directions."""

from __future__ import annotations

from typing import Any

import trio

from hypercore import crypto
from hyperswarm import SecretStream
from protomux import encoding as c
from protomux.rpc import RPC, RPCError

from .jsenv import JSHelper

JS_SEED = bytes([1]) * 32
PY_SEED = bytes([2]) * 32
JS_KEY = bytes(range(32))
PY_KEY = bytes(range(32, 64))


def serve_methods(rpc: RPC, received: list[Any]) -> None:
    rpc.respond("getKey", lambda _value: PY_KEY)

    def on_message(msg: Any) -> Any:
        received.append(msg)
        return {"ok": True, "echo": msg}

    rpc.respond("message", on_message, request_encoding=c.json, response_encoding=c.json)

    def fail(_value: Any) -> Any:
        err = RuntimeError("boom")
        err.code = "EBOOM"  # type: ignore[attr-defined]
        raise err

    rpc.respond("fail", fail)


async def test_python_client_js_server(js: JSHelper) -> None:
    server = js("tutorial.serve", JS_SEED, JS_KEY)
    try:
        with trio.fail_after(20):
            tcp = await trio.open_tcp_stream("127.0.0.1", server["port"])
            kp = crypto.key_pair(PY_SEED)
            async with SecretStream(tcp, is_initiator=True, key_pair=kp) as stream:
                assert stream.remote_public_key == server["publicKey"]
                async with RPC(stream) as rpc:
                    assert await rpc.request("getKey") == JS_KEY
                    msg = {"nick": "py", "text": "hello from Python", "n": [1, 2.5]}
                    reply = await rpc.request(
                        "message", msg, request_encoding=c.json, response_encoding=c.json
                    )
                    assert reply == {"ok": True, "echo": msg}
                    try:
                        await rpc.request("fail")
                    except RPCError as e:
                        assert e.code == "REQUEST_ERROR"
                        assert e.cause is not None and "boom" in str(e.cause)
                    else:
                        raise AssertionError("the remote handler's error did not arrive")
                    # Many requests in flight at once.
                    results: list[bytes] = []

                    async def ask() -> None:
                        results.append(await rpc.request("getKey"))

                    async with trio.open_nursery() as nursery:
                        for _ in range(1000):
                            nursery.start_soon(ask)
                    assert results == [JS_KEY] * 1000
        assert js("tutorial.received") == [msg]
    finally:
        js("tutorial.stop")


async def test_js_client_python_server(js: JSHelper) -> None:
    received: list[Any] = []
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    kp = crypto.key_pair(PY_SEED)
    seen: dict[str, bytes] = {}

    async def serve_one() -> None:
        tcp = await listeners[0].accept()
        async with SecretStream(tcp, is_initiator=False, key_pair=kp) as stream:
            seen["hh"] = stream.handshake_hash
            seen["remote"] = stream.remote_public_key
            async with RPC(stream) as rpc:
                serve_methods(rpc, received)
                with trio.move_on_after(20):
                    await rpc.wait_closed()

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_one)
            message = {"nick": "js", "text": "hello from JS"}
            out = await trio.to_thread.run_sync(js, "tutorial.connect", port, JS_SEED, message)
            nursery.cancel_scope.cancel()
    await listeners[0].aclose()
    assert out["key"] == PY_KEY
    assert out["reply"] == {"ok": True, "echo": message}
    assert out["error"]["code"] == "REQUEST_ERROR" and out["error"]["cause"] == "boom"
    assert received == [message]
    assert out["handshakeHash"] == seen["hh"]
    assert out["remotePublicKey"] == kp.public_key and seen["remote"] == out["publicKey"]
