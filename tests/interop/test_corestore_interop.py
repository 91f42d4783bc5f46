"""Corestore directories move between Node and Python: same primary key, named-core keys,
aliases, blocks and user data; and the same rows for the same operations."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from corestore import Corestore, PrimaryKeyMismatchError, keys
from hypercore import Hypercore, MemoryStorage, crypto
from hypercore.storage import RocksDBStorage

from .jsenv import JSHelper

NAMES = ["x", "main", "ü", "a b", "emoji-\U0001f600", "\x00nul", "0" * 300]


def view(store: Corestore, ns: list[str]) -> Corestore:
    for n in ns:
        store = store.namespace(n)
    return store


def get(store: Corestore, spec: dict[str, Any]) -> Hypercore:
    enc = spec.get("encryptionKey")
    if "key" in spec:
        return store.get(key=spec["key"], encryption_key=enc)
    return view(store, spec["ns"]).get(spec["name"], encryption_key=enc)


async def describe(core: Hypercore, spec: dict[str, Any]) -> dict[str, Any]:
    kp = core.key_pair
    return {
        "key": core.key,
        "discoveryKey": core.discovery_key,
        "publicKey": kp.public_key if kp is not None else None,
        "length": core.length,
        "byteLength": core.byte_length,
        "fork": core.fork,
        "writable": core.writable,
        "treeHash": await core.tree_hash(),
        "blocks": [await core.get(i) if await core.has(i) else None for i in range(core.length)],
        "userData": {k: await core.get_user_data(k) for k in spec.get("userDataKeys", [])},
    }


def blocks(rng: random.Random, n: int) -> list[bytes]:
    return [rng.randbytes(rng.choice([0, 1, 7, 100, 4095, 4096, 5000])) for _ in range(n)]


def store_specs(rng: random.Random) -> list[dict[str, Any]]:
    """Named cores in several namespaces (one encrypted), and one core added by key."""
    remote = crypto.core_key(crypto.key_pair(rng.randbytes(32)).public_key)
    return [
        {"ns": [], "name": "main", "blocks": blocks(rng, 5)},
        {
            "ns": ["a"],
            "name": "x",
            "blocks": blocks(rng, 12),
            "userData": [["foo", b"bar"], ["k\x00z", rng.randbytes(40)]],
            "userDataKeys": ["foo", "k\x00z", "missing"],
        },
        {"ns": ["a", "b"], "name": "x", "blocks": blocks(rng, 3)},
        {"ns": ["app"], "name": "empty", "blocks": []},
        {
            "ns": ["sec"],
            "name": "enc",
            "blocks": blocks(rng, 4),
            "encryptionKey": rng.randbytes(32),
        },
        {"key": remote},
    ]


LIST_NAMESPACES = [[], ["a"], ["a", "b"], ["nothing"]]


def namespaces_bytes() -> list[bytes]:
    out = []
    for ns in LIST_NAMESPACES:
        v = keys.DEFAULT_NAMESPACE
        for n in ns:
            v = keys.generate_namespace(v, n)
        out.append(v)
    return out


async def python_write(
    path: Path, specs: list[dict[str, Any]], primary_key: bytes | None = None
) -> dict[str, Any]:
    unsafe = primary_key is not None
    async with Corestore(path, primary_key=primary_key, unsafe=unsafe) as store:
        cores = []
        for spec in specs:
            async with get(store, spec) as core:
                if spec.get("blocks"):
                    await core.append(spec["blocks"])
                for k, v in spec.get("userData", []):
                    await core.set_user_data(k, v)
                cores.append(await describe(core, spec))
        return {
            "primaryKey": store.primary_key,
            "cores": cores,
            "list": store.list(),
            "lists": [store.list(ns) for ns in namespaces_bytes()],
        }


async def python_read(path: Path, specs: list[dict[str, Any]]) -> dict[str, Any]:
    async with Corestore(path) as store:
        cores = []
        for spec in specs:
            core = get(store, spec)
            if spec.get("append"):
                await core.append(spec["append"])
            cores.append(await describe(core, spec))
        return {
            "primaryKey": store.primary_key,
            "cores": cores,
            "list": store.list(),
            "lists": [store.list(ns) for ns in namespaces_bytes()],
        }


async def test_named_keys_match_js(js: JSHelper) -> None:
    rng = random.Random(7)
    calls: list[tuple[bytes, list[tuple[list[str], str]]]] = []
    for _ in range(4):
        pk = rng.randbytes(32)
        specs = [
            ([rng.choice(NAMES) for _ in range(rng.randrange(4))], rng.choice(NAMES))
            for _ in range(8)
        ]
        calls.append((pk, specs))
    calls.append((bytes([7]) * 32, [([], "x"), (["a", "b"], "x")]))
    results = js.call("corestore.keys", calls)
    for (pk, specs), theirs in zip(calls, results, strict=True):
        assert not isinstance(theirs, Exception), theirs
        async with Corestore(MemoryStorage(), primary_key=pk, unsafe=True) as store:
            ours = []
            for ns, name in specs:
                v = view(store, ns)
                core = v.get(name)
                assert core.key_pair is not None
                ours.append(
                    {
                        "key": core.key,
                        "discoveryKey": core.discovery_key,
                        "publicKey": core.key_pair.public_key,
                        "createdPublicKey": v.create_key_pair(name).public_key,
                        "ns": v.ns,
                    }
                )
                assert core.key == keys.named_core_key(pk, v.ns, name)
        assert ours == theirs
    vectors = results[-1]
    assert vectors[0]["key"].hex().endswith("e0c1") and vectors[1]["publicKey"].hex()[:8] == (
        "00bcc870"
    )


async def test_js_store_opens_in_python(js: JSHelper, tmp_path: Path) -> None:
    specs = store_specs(random.Random(1))
    theirs = js("corestore.write", str(tmp_path), None, specs, namespaces_bytes())
    ours = await python_read(tmp_path, specs)
    assert ours == theirs
    assert len(ours["list"]) == len(specs)
    # The core added by key is found by its discovery key too, and is not writable.
    remote = theirs["cores"][-1]
    async with Corestore(tmp_path) as store:
        async with store.get(discovery_key=remote["discoveryKey"]) as core:
            assert core.key == remote["key"] and not core.writable and core.length == 0
        named = theirs["cores"][1]
        assert store.get_auth(named["discoveryKey"]) is not None
        # Python keeps writing the JS-made named core; JS reads it back.
        async with store.namespace("a").get("x") as core:
            await core.append([b"from", b"python"])
    again = js("corestore.read", str(tmp_path), [specs[1]], [])
    assert again["cores"][0]["blocks"][-2:] == [b"from", b"python"]
    assert again["cores"][0]["length"] == 14


async def test_python_store_opens_in_js(js: JSHelper, tmp_path: Path) -> None:
    specs = store_specs(random.Random(2))
    ours = await python_write(tmp_path, specs)
    theirs = js("corestore.read", str(tmp_path), specs, namespaces_bytes())
    assert theirs == ours
    # Node derives the same key pair from the stored primary key and appends to the named core.
    more = [b"node", b"was", b"here"]
    appended = js("corestore.read", str(tmp_path), [{**specs[1], "append": more}], [])
    core_js = appended["cores"][0]
    assert core_js["writable"] and core_js["blocks"] == specs[1]["blocks"] + more
    back = await python_read(tmp_path, [specs[1]])
    assert back["cores"][0] == core_js
    async with Corestore(tmp_path) as store:
        async with store.namespace("a").get("x") as core:
            assert core.writable and core.length == 15
            await core.append(b"and python again")
    final = js("corestore.read", str(tmp_path), [specs[1]], [])
    assert final["cores"][0]["blocks"][-1] == b"and python again"


async def test_same_operations_write_the_same_rows(js: JSHelper, tmp_path: Path) -> None:
    rng = random.Random(3)
    pk = rng.randbytes(32)
    specs = store_specs(rng)
    js("corestore.write", str(tmp_path / "js"), pk, specs, [])
    await python_write(tmp_path / "py", specs, pk)

    def rows(path: Path) -> list[tuple[bytes, bytes]]:
        with RocksDBStorage.open(path) as storage:
            out = []
            for k, v in storage.rows():
                if len(k) == 3 and k[0] == 4 and k[2] == 0:
                    v = v[:-8]  # a core head ends with its write time (ms)
                out.append((k, v))
            return out

    theirs, ours = rows(tmp_path / "js"), rows(tmp_path / "py")
    assert [k for k, _ in ours] == [k for k, _ in theirs]
    assert ours == theirs


async def test_primary_key_mismatch_as_js(js: JSHelper, tmp_path: Path) -> None:
    async with Corestore(tmp_path, primary_key=bytes(32), unsafe=True):
        pass
    assert js("corestore.openError", str(tmp_path), bytes([1]) * 32) == (
        "Another corestore is stored here"
    )
    assert js("corestore.openError", str(tmp_path), bytes(32)) is None
    # And a store made by Node refuses another primary key in Python.
    theirs = js("corestore.write", str(tmp_path / "js"), None, [], [])
    with pytest.raises(PrimaryKeyMismatchError):
        await Corestore(tmp_path / "js", primary_key=bytes(32), unsafe=True).ready()
    async with Corestore(tmp_path / "js", primary_key=theirs["primaryKey"], unsafe=True) as store:
        assert store.list() == []
