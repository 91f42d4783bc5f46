"""Secret-stream against the pinned JS over the wire: a JS ``NoiseSecretStream`` started with
``handshake:`` over a udx-native stream talks to a Python :class:`SecretStream` started with
``handshake=`` over a Python UDX stream (ordered and unordered messages both ways), and
Noise IK sessions (``pattern``/``remotePublicKey``) over TCP. Everything on 127.0.0.1.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
import trio

from hypercore import crypto
from hyperswarm.secret_stream import FinishedHandshake, NoiseState, SecretStream
from hyperswarm.udx import UDXSocket

from .jsenv import JSHelper

pytestmark = pytest.mark.interop

A = crypto.key_pair(bytes([0x31]) * 32)
B = crypto.key_pair(bytes([0x32]) * 32)
TIMEOUT = 30
ORDERED_FROM_JS = [b"js one", b"", bytes(range(256)) * 300, b"js last"]
ORDERED_FROM_PY = [b"py one", bytes(70000), b"py last"]


async def in_thread(js: JSHelper, fn: str, *args: Any) -> Any:
    return await trio.to_thread.run_sync(functools.partial(js, fn, *args), abandon_on_cancel=True)


def finished_pair() -> tuple[FinishedHandshake, FinishedHandshake]:
    """The keys of a Noise IK handshake between A (initiator) and B, run in memory."""
    init = NoiseState("IK", True, A, remote_static=B.public_key)
    resp = NoiseState("IK", False, B)
    resp.recv(init.send())
    init.recv(resp.send())
    out = []
    for s, kp in ((init, A), (resp, B)):
        assert s.tx and s.rx and s.handshake_hash and s.remote_static
        out.append(FinishedHandshake(kp.public_key, s.remote_static, s.handshake_hash, s.tx, s.rx))
    return out[0], out[1]


def to_js(h: FinishedHandshake) -> dict[str, bytes]:
    return {
        "publicKey": h.public_key,
        "remotePublicKey": h.remote_public_key,
        "hash": h.hash,
        "tx": h.tx,
        "rx": h.rx,
    }


@pytest.mark.parametrize("python_is_initiator", [True, False], ids=["py-initiator", "js-initiator"])
async def test_handshake_streams_over_udx_with_js(js: JSHelper, python_is_initiator: bool) -> None:
    hi, hr = finished_pair()
    ours, theirs = (hi, hr) if python_is_initiator else (hr, hi)
    peer = js("secretStreamUdx.open")
    result: dict[str, Any] = {}
    echoes: set[bytes] = set()
    with trio.fail_after(TIMEOUT):
        async with UDXSocket() as sock:
            await sock.bind(0, "127.0.0.1")
            raw = sock.create_stream(7)
            raw.connect(9, peer["port"], "127.0.0.1")
            opts = {
                "localId": 9,
                "remoteId": 7,
                "port": sock.address()[1],
                "isInitiator": not python_is_initiator,
                "handshake": to_js(theirs),
                "messages": ORDERED_FROM_JS,
                "ms": TIMEOUT * 1000,
            }

            async def run_js() -> None:
                result["js"] = await in_thread(js, "secretStreamUdx.talk", peer["id"], opts)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(run_js)
                async with SecretStream(raw, is_initiator=python_is_initiator, handshake=ours) as s:
                    assert s.remote_public_key == ours.remote_public_key
                    assert s.handshake_hash == hi.hash
                    # Unordered, both ways: JS answers each of ours with "echo:" + it (by
                    # trySend for "try..."). Datagrams may be lost (and JS may not listen
                    # yet), so each is sent until its echo is back: at most 40 times.
                    for i, message in enumerate([b"py:0", b"try:1", b"", b"py:3" * 300]):
                        expect = b"echo:" + message
                        for _ in range(40):
                            if i % 2:
                                assert s.try_send_udp(message)
                            else:
                                assert await s.send_udp(message)
                            with trio.move_on_after(0.25):
                                while expect not in echoes:
                                    echoes.add(await s.receive_udp())
                            if expect in echoes:
                                break
                        assert expect in echoes, message
                    # Ordered: ours first, ended; then JS writes and ends.
                    for m in ORDERED_FROM_PY:
                        await s.send(m)
                    await s.send_eof()
                    got = [m async for m in s]
    js_rec = result["js"]
    assert js_rec["error"] is None and js_rec["opened"] is True
    assert js_rec["isInitiator"] is (not python_is_initiator)
    assert js_rec["handshakeHash"] == hi.hash
    assert js_rec["publicKey"] == theirs.public_key
    assert js_rec["remotePublicKey"] == ours.public_key
    assert got == ORDERED_FROM_JS
    assert js_rec["received"] == ORDERED_FROM_PY
    assert set(js_rec["unordered"]) == {b"py:0", b"try:1", b"", b"py:3" * 300}
    assert js_rec["sendResults"] and all(ok is True for ok in js_rec["sendResults"])
    assert echoes <= {b"echo:" + m for m in js_rec["unordered"]}


async def test_python_ik_client_to_js_ik_server(js: JSHelper) -> None:
    port = js("secretStreamIk.listen", {"seed": bytes([0x32]) * 32})
    messages = [b"ik one", b"", b"ik three" * 1000]
    with trio.fail_after(TIMEOUT):
        tcp = await trio.open_tcp_stream("127.0.0.1", port)
        async with SecretStream(
            tcp, is_initiator=True, key_pair=A, pattern="IK", remote_public_key=B.public_key
        ) as s:
            assert s.remote_public_key == B.public_key
            for m in messages:
                await s.send(m)
                assert await s.receive() == m
            hh = s.handshake_hash
            await s.send_eof()
            with pytest.raises(trio.EndOfChannel):
                await s.receive()
        rec = await in_thread(js, "secretStreamIk.serverResult", TIMEOUT * 1000)
    assert rec["error"] is None
    assert rec["handshakeHash"] == hh
    assert rec["remotePublicKey"] == A.public_key
    assert rec["received"] == messages


async def test_js_ik_client_to_python_ik_server(js: JSHelper) -> None:
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener.socket.getsockname()[1]
    record: dict[str, Any] = {}
    messages = [b"from js", b"", b"x" * 70000]

    async def serve() -> None:
        async with listener:
            tcp = await listener.accept()
        async with SecretStream(tcp, is_initiator=False, key_pair=B, pattern="IK") as s:
            record["hash"] = s.handshake_hash
            record["remote"] = s.remote_public_key
            record["received"] = received = []
            async for m in s:
                received.append(m)
                await s.send(m)

    opts = {
        "seed": bytes([0x31]) * 32,
        "remotePublicKey": B.public_key,
        "messages": messages,
        "ms": TIMEOUT * 1000,
    }
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            rec = await in_thread(js, "secretStreamIk.client", port, opts)
    assert rec["error"] is None and rec["opened"] is True
    assert rec["remotePublicKey"] == B.public_key
    assert record["remote"] == A.public_key
    assert rec["handshakeHash"] == record["hash"]
    assert rec["received"] == messages == record["received"]


async def test_js_ik_client_naming_the_wrong_server_key_fails(js: JSHelper) -> None:
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener.socket.getsockname()[1]
    errors: list[BaseException] = []

    async def serve() -> None:
        async with listener:
            tcp = await listener.accept()
        try:
            async with SecretStream(tcp, is_initiator=False, key_pair=B, pattern="IK"):
                pass
        except trio.BrokenResourceError as exc:
            errors.append(exc)

    opts = {
        "seed": bytes([0x31]) * 32,
        "remotePublicKey": crypto.key_pair(bytes([0x33]) * 32).public_key,
        "messages": [b"never"],
        "ms": 5000,
    }
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            rec = await in_thread(js, "secretStreamIk.client", port, opts)
    assert rec["opened"] is False
    (err,) = errors
    assert getattr(err, "code", None) == "HANDSHAKE_FAILED"
