"""Hypercore replication between Python and JS peers over TCP (127.0.0.1) and secret-stream:
both directions, live appends, forks, relays in both arrangements, an encrypted core
relayed by a peer without the encryption key, and extension messages."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from hypercore import Hypercore
from hypercore.replication import replicator_of
from hypercore.storage import MemoryStorage
from hypercore.wire import Data
from hyperswarm import SecretStream

from .jsenv import JSHelper

TIMEOUT = 10
MS = 20_000


def blocks(seed: int, n: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(1, 3000)) for _ in range(n)]


async def call(js: JSHelper, fn: str, *args: Any) -> Any:
    """A JS call that may wait on us: run it off the Trio thread."""
    return await trio.to_thread.run_sync(js, fn, *args)


@asynccontextmanager
async def serving(core: Hypercore) -> AsyncIterator[int]:
    """Replicate ``core`` to every TCP connection on 127.0.0.1; yields the port."""
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener.socket.getsockname()[1]

    async def one(tcp: trio.SocketStream) -> None:
        try:
            async with SecretStream(tcp, is_initiator=False) as s:
                core.replicate(s)
                await trio.sleep_forever()
        except trio.BrokenResourceError:
            pass

    async def accept_loop(nursery: trio.Nursery) -> None:
        while True:
            nursery.start_soon(one, await listener.accept())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept_loop, nursery)
        try:
            yield port
        finally:
            nursery.cancel_scope.cancel()
            await listener.aclose()


@asynccontextmanager
async def connected(core: Hypercore, port: int) -> AsyncIterator[SecretStream]:
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    async with SecretStream(tcp, is_initiator=True) as s:
        core.replicate(s)
        yield s


async def wait_peer(core: Hypercore) -> None:
    while not core.peers:
        await trio.sleep(0.01)


async def download_all(core: Hypercore, length: int) -> None:
    await wait_peer(core)
    while core.length < length:
        await core.update()
        if core.length < length:
            await core.wait_for_append()
    await core.download(0, length).done()


async def test_js_writer_python_reader_with_live_appends(js: JSHelper) -> None:
    data = blocks(1, 200)
    srv = js("replicate.serve", None, {"seed": bytes([5]) * 32}, data)
    try:
        async with Hypercore(MemoryStorage(), srv["key"]) as reader:
            with trio.fail_after(TIMEOUT):
                async with connected(reader, srv["port"]):
                    await download_all(reader, 200)
                    assert [await reader.get(i) for i in range(200)] == data
                    more = blocks(2, 5)
                    await call(js, "replicate.append", srv["id"], more)
                    # get() waits for blocks past the current length, fetched live
                    assert await reader.get(204) == more[-1]
                    assert [await reader.get(i) for i in range(200, 205)] == more
                    info = js("replicate.download", srv["id"], 205, MS, False)
                    assert await reader.tree_hash() == info["treeHash"]
    finally:
        js("replicate.close", srv["id"])


async def test_python_writer_js_reader_with_live_appends(js: JSHelper) -> None:
    data = blocks(3, 150)
    async with Hypercore(MemoryStorage()) as writer:
        await writer.append(data)
        with trio.fail_after(TIMEOUT):
            async with serving(writer) as port:
                c = await call(js, "replicate.connect", port, writer.key, {})
                try:
                    out = await call(js, "replicate.download", c["id"], 150, MS, False)
                    assert out["blocks"] == data
                    assert out["treeHash"] == await writer.tree_hash()
                    more = blocks(4, 7)
                    for b in more:  # one by one, while the JS reader is connected
                        await writer.append([b])
                    out = await call(js, "replicate.download", c["id"], 157, MS, False)
                    assert out["blocks"] == data + more
                    assert out["treeHash"] == await writer.tree_hash()
                finally:
                    js("replicate.close", c["id"])


async def test_forks_are_followed_both_ways(js: JSHelper) -> None:
    srv = js("replicate.serve", None, {"seed": bytes([6]) * 32}, [b"a", b"b", b"c", b"d"])
    try:
        async with Hypercore(MemoryStorage(), srv["key"]) as reader:
            with trio.fail_after(TIMEOUT):
                async with connected(reader, srv["port"]):
                    await download_all(reader, 4)
                    assert (reader.length, reader.fork) == (4, 0)
                    await call(js, "replicate.truncate", srv["id"], 2)
                    await call(js, "replicate.append", srv["id"], [b"X", b"Y", b"Z"])
                    while (reader.length, reader.fork) != (5, 1):
                        await trio.sleep(0.01)
                    assert [await reader.get(i) for i in range(5)] == [b"a", b"b", b"X", b"Y", b"Z"]
    finally:
        js("replicate.close", srv["id"])

    async with Hypercore(MemoryStorage()) as writer:
        await writer.append([b"1", b"2", b"3", b"4"])
        with trio.fail_after(TIMEOUT):
            async with serving(writer) as port:
                c = await call(js, "replicate.connect", port, writer.key, {})
                try:
                    out = await call(js, "replicate.download", c["id"], 4, MS, False)
                    assert out["blocks"] == [b"1", b"2", b"3", b"4"]
                    await writer.truncate(1)
                    await writer.append([b"Q", b"R"])
                    for _ in range(400):
                        info = await call(js, "replicate.info", c["id"], False)
                        if (info["fork"], info["length"]) == (1, 3):
                            break
                        await trio.sleep(0.025)
                    out = await call(js, "replicate.download", c["id"], 3, MS, False)
                    assert (out["fork"], out["blocks"]) == (1, [b"1", b"Q", b"R"])
                    assert out["treeHash"] == await writer.tree_hash()
                finally:
                    js("replicate.close", c["id"])


async def test_relay_js_writer_python_relay_js_reader(js: JSHelper) -> None:
    data = blocks(7, 120)
    a = js("replicate.serve", None, {"seed": bytes([7]) * 32}, data)
    c_id = None
    try:
        a_hash = js("replicate.download", a["id"], 120, MS, False)["treeHash"]
        async with Hypercore(MemoryStorage(), a["key"]) as relay:
            with trio.fail_after(TIMEOUT):
                async with connected(relay, a["port"]):
                    await download_all(relay, 120)
                await call(js, "replicate.disconnect", a["id"])  # A leaves
                js("replicate.close", a["id"])
                a = None
                async with serving(relay) as port:
                    c = await call(js, "replicate.connect", port, relay.key, {})
                    c_id = c["id"]
                    out = await call(js, "replicate.download", c_id, 120, MS, False)
                    assert out["blocks"] == data
                    assert out["treeHash"] == a_hash
    finally:
        if a is not None:
            js("replicate.close", a["id"])
        if c_id is not None:
            js("replicate.close", c_id)


async def test_relay_python_writer_js_relay_python_reader(js: JSHelper) -> None:
    data = blocks(8, 120)
    async with Hypercore(MemoryStorage()) as writer:
        await writer.append(data)
        a_hash = await writer.tree_hash()
        with trio.fail_after(TIMEOUT):
            async with serving(writer) as port:
                b = await call(js, "replicate.connect", port, writer.key, {})
                out = await call(js, "replicate.download", b["id"], 120, MS, False)
                assert out["blocks"] == data
                await call(js, "replicate.disconnect", b["id"])
            # the writer is gone (its server closed); B serves what it has
            try:
                relay = await call(js, "replicate.reserve", b["id"])
                async with Hypercore(MemoryStorage(), writer.key) as reader:
                    async with connected(reader, relay["port"]):
                        await download_all(reader, 120)
                        assert [await reader.get(i) for i in range(120)] == data
                        assert await reader.tree_hash() == a_hash
            finally:
                js("replicate.close", b["id"])


async def test_encrypted_core_relayed_by_a_peer_without_the_key(js: JSHelper) -> None:
    key = bytes(range(32))
    data = blocks(9, 60)
    a = js("replicate.serve", None, {"seed": bytes([9]) * 32, "encryptionKey": key}, data)
    c_id = None
    try:
        raw = js("replicate.download", a["id"], 60, MS, True)["blocks"]
        assert raw != data  # stored encrypted
        async with Hypercore(MemoryStorage(), a["key"]) as relay:  # no encryption key
            with trio.fail_after(TIMEOUT):
                async with connected(relay, a["port"]):
                    await download_all(relay, 60)
                assert [await relay.get(i, raw=True) for i in range(60)] == raw
                js("replicate.close", a["id"])
                a = None
                async with serving(relay) as port:
                    c = await call(js, "replicate.connect", port, relay.key, {"encryptionKey": key})
                    c_id = c["id"]
                    out = await call(js, "replicate.download", c_id, 60, MS, False)
                    assert out["blocks"] == data
    finally:
        if a is not None:
            js("replicate.close", a["id"])
        if c_id is not None:
            js("replicate.close", c_id)


async def test_corestores_replicate_every_core_over_one_stream(js: JSHelper) -> None:
    from corestore import Corestore

    spec = [("alpha", blocks(10, 30)), ("beta", blocks(11, 5)), ("empty", [])]
    srv = js("replicate.storeServe", [{"name": n, "blocks": b} for n, b in spec])
    try:
        async with Corestore(MemoryStorage()) as store:
            cores = [store.get(key=k) for k in srv["keys"]]
            with trio.fail_after(TIMEOUT):
                tcp = await trio.open_tcp_stream("127.0.0.1", srv["port"])
                async with SecretStream(tcp, is_initiator=True) as s:
                    store.replicate(s)
                    for core, (_, data) in zip(cores, spec, strict=True):
                        if data:
                            await download_all(core, len(data))
                        assert [await core.get(i) for i in range(len(data))] == data
    finally:
        js("replicate.close", srv["id"])

    # The other way: a Python store serves cores that are stored but not open; the JS store
    # asks for them by key over one stream, and the Python store opens them on demand.
    async with Corestore(MemoryStorage()) as store:
        keys, lengths = [], []
        for name, data in spec:
            core = store.get(name)
            await core.append(data)
            keys.append(core.key)
            lengths.append(len(data))
            await core.aclose()
        assert not any(not s.closed for s in store.cores())
        with trio.fail_after(TIMEOUT):
            (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
            port = listener.socket.getsockname()[1]

            async def serve_one() -> None:
                tcp = await listener.accept()
                async with SecretStream(tcp, is_initiator=False) as s:
                    store.replicate(s)
                    await trio.sleep_forever()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(serve_one)
                out = await call(js, "replicate.storeRead", port, keys, lengths, MS)
                nursery.cancel_scope.cancel()
            await listener.aclose()
        assert [o["blocks"] for o in out] == [d for _, d in spec]
        assert [o["key"] for o in out] == keys


async def test_extension_messages_both_ways(js: JSHelper) -> None:
    """JS and Python cores register the same json extensions on one replication stream and
    exchange messages with alternating names (so the names are compressed both ways)."""
    with trio.fail_after(TIMEOUT):
        served = js("replicate.serve", None, {}, [b"x"])
        try:
            js("replicate.extensions", served["id"], ["a", "b"])
            async with Hypercore(MemoryStorage(), served["key"]) as reader:
                got: list[tuple[str, Any]] = []
                a = reader.register_extension(
                    "a", encoding="json", on_message=lambda m, p: got.append(("a", m))
                )
                b = reader.register_extension(
                    "b", encoding="json", on_message=lambda m, p: got.append(("b", m))
                )
                async with connected(reader, served["port"]):
                    await wait_peer(reader)
                    peer = reader.peers[0]
                    sent = [(a, "a", {"n": 1}), (a, "a", {"n": 2}), (b, "b", {"n": 3})]
                    sent += [(a, "a", {"n": 4})]
                    for ext, _, message in sent:
                        ext.send(message, peer)
                    while len(got) < 9:
                        await trio.sleep(0.01)
                    log = js("replicate.extensionLog", served["id"])
                    assert [tuple(e) for e in log] == [(n, m) for _, n, m in sent]
                    expected: list[tuple[str, Any]] = []
                    for n in (1, 2, 4):
                        m = {"n": n}
                        expected += [("b", {"echo": m}), ("b", {"echo2": m}), ("a", {"back": m})]
                    assert got == expected
        finally:
            js("replicate.close", served["id"])


async def test_extension_messages_from_a_js_client(js: JSHelper) -> None:
    with trio.fail_after(TIMEOUT):
        async with Hypercore(MemoryStorage()) as writer:
            await writer.append([b"x"])
            got: list[tuple[str, Any]] = []
            exts = {
                name: writer.register_extension(
                    name, encoding="json", on_message=lambda m, p, n=name: got.append((n, m))
                )
                for name in ("a", "b")
            }
            async with serving(writer) as port:
                client = js("replicate.connect", port, writer.key, {})
                try:
                    js("replicate.extensions", client["id"], ["a", "b"])
                    for name, n in [("b", 1), ("b", 2), ("a", 3), ("b", 4)]:
                        await call(js, "replicate.extensionBroadcast", client["id"], name, n)
                    while len(got) < 4:
                        await trio.sleep(0.01)
                    assert got == [("b", 1), ("b", 2), ("a", 3), ("b", 4)]
                    exts["a"].broadcast({"hi": "js"})
                    while not js("replicate.extensionLog", client["id"]):
                        await trio.sleep(0.01)
                    assert js("replicate.extensionLog", client["id"]) == [["a", {"hi": "js"}]]
                finally:
                    js("replicate.close", client["id"])


@asynccontextmanager
async def sparse_reader_of(
    js: JSHelper, data: list[bytes], encryption_key: bytes | None = None
) -> AsyncIterator[tuple[Hypercore, list[int]]]:
    """A JS writer of ``data`` and a Python reader connected to it that knows its length
    and has no blocks; yields the reader and the indices it downloads."""
    key = encryption_key
    served = js("replicate.serve", None, {"encryptionKey": key} if key else {}, data)
    try:
        async with Hypercore(MemoryStorage(), served["key"], encryption_key=key) as reader:
            got: list[int] = []
            reader.on("download", lambda index, size, peer: got.append(index))
            async with connected(reader, served["port"]):
                await wait_peer(reader)
                await reader.update()
                yield reader, got
    finally:
        js("replicate.close", served["id"])


async def test_python_downloads_a_block_list_from_js(js: JSHelper) -> None:
    data = blocks(13, 120)
    listed = [3, 50, 51, 119, 64]
    with trio.fail_after(TIMEOUT):
        async with sparse_reader_of(js, data) as (reader, got):
            await reader.download(blocks=listed).done()
            await trio.sleep(0.05)  # anything sent on its own would arrive by now
            assert sorted(got) == sorted(listed)
            for i in range(len(data)):
                stored = await reader.has(i)
                assert stored == (i in listed)
                if stored:
                    assert await reader.get(i) == data[i]


@pytest.mark.parametrize("encrypted", [False, True])
async def test_seek_on_sparse_cores_both_ways(js: JSHelper, encrypted: bool) -> None:
    """A reader with no blocks seeks through its peer: Python on a JS writer's core, JS on a
    Python writer's core; the answers are the writer's own."""
    key = bytes(range(32)) if encrypted else None
    opts: dict[str, Any] = {"encryption_key": key} if key else {}
    js_opts = {"encryptionKey": key} if key else {}
    data = blocks(17, 150)
    sizes = [len(b) for b in data]
    offsets = [0, 7, sum(sizes[:40]), sum(sizes[:40]) + 5, sum(sizes[:101]) - 1, sum(sizes) - 1]
    offsets.append(sum(sizes))  # the byte length: (length, 0)
    with trio.fail_after(TIMEOUT):
        async with sparse_reader_of(js, data, key) as (reader, got):
            answers = [list(await reader.seek(o)) for o in offsets]
            assert got == []
        assert answers[-1] == [len(data), 0]
        async with Hypercore(MemoryStorage(), **opts) as writer:
            await writer.append(data)
            assert [list(await writer.seek(o)) for o in offsets] == answers
            async with serving(writer) as port:
                client = js("replicate.connect", port, writer.key, js_opts)
                try:
                    out = await call(js, "replicate.seek", client["id"], offsets, MS)
                    assert out["answers"] == answers and out["downloads"] == 0
                finally:
                    js("replicate.close", client["id"])


async def _seek_in_background(
    nursery: trio.Nursery, reader: Hypercore, offset: int
) -> list[tuple[int, int] | None]:
    """Start ``reader.seek(offset)``; the answer lands in the returned list."""
    answer: list[tuple[int, int] | None] = []

    async def seek() -> None:
        answer.append(await reader.seek(offset))

    nursery.start_soon(seek)
    rep = replicator_of(reader._open_state())
    while not rep._seeks:
        await trio.sleep(0.005)
    return answer


@pytest.mark.parametrize("encrypted", [False, True])
async def test_seek_past_the_length_both_ways(js: JSHelper, encrypted: bool) -> None:
    """A reader that knows no length yet seeks: its request carries the upgrade and the
    seek. Python on a JS writer's core, JS on a Python writer's core (whose served requests
    show what JS sent); no block is downloaded. Python's answer is the writer's own; JS's
    is what it gets from a JS writer (the writer's own, except for an encrypted core: a
    JS reader that seeks before it knows the manifest seeks with padding 0)."""
    key = bytes(range(32)) if encrypted else None
    opts: dict[str, Any] = {"encryption_key": key} if key else {}
    js_opts = {"encryptionKey": key} if key else {}
    data = blocks(19, 140)
    sizes = [len(b) for b in data]
    offset = sum(sizes[:70]) + 9  # in the first root: a JS responder sends the seek there
    with trio.fail_after(TIMEOUT):
        served = js("replicate.serve", None, js_opts, data)
        try:
            async with Hypercore(MemoryStorage(), served["key"], **opts) as reader:
                got: list[int] = []
                reader.on("download", lambda index, size, peer: got.append(index))
                async with trio.open_nursery() as nursery:
                    answer = await _seek_in_background(nursery, reader, offset)
                    async with connected(reader, served["port"]):
                        while not answer:
                            await trio.sleep(0.01)
                assert reader.length == len(data) and got == []
            js_on_js = await call(
                js, "replicate.seekFresh", served["port"], served["key"], js_opts, offset, MS
            )
        finally:
            js("replicate.close", served["id"])
        async with Hypercore(MemoryStorage(), **opts) as writer:
            await writer.append(data)
            assert answer == [await writer.seek(offset)]
            if not encrypted:
                assert js_on_js["answer"] == list(await writer.seek(offset) or ())
            state = writer._open_state()
            honest = state.proof
            requests: list[dict[str, Any]] = []

            def proof(**kw: Any) -> Data:
                requests.append(kw)
                return honest(**kw)

            state.proof = proof  # type: ignore[method-assign]
            async with serving(writer) as port:
                out = await call(js, "replicate.seekFresh", port, writer.key, js_opts, offset, MS)
            assert out == js_on_js
            assert out["length"] == len(data) and out["downloads"] == 0
            with_seek = [kw for kw in requests if kw["seek"] is not None]
            assert with_seek and with_seek[0]["seek"].bytes == offset
            assert with_seek[0]["upgrade"] is not None and with_seek[0]["hash"] is None
