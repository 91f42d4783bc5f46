"""Hypercore directories move between Node and Python: same key, length, tree hash, blocks."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from hypercore import Hypercore, crypto

from .jsenv import JSHelper

SEED = bytes(range(1, 33))


def mixed_blocks(rng: random.Random, n: int) -> list[bytes]:
    sizes = [0, 1, 5, 100, 1024, 4095, 4096, 4097, 20_000]
    return [rng.randbytes(rng.choice(sizes)) for _ in range(n)]


async def describe(core: Hypercore) -> dict[str, Any]:
    return {
        "key": core.key,
        "discoveryKey": core.discovery_key,
        "length": core.length,
        "byteLength": core.byte_length,
        "fork": core.fork,
        "writable": core.writable,
        "contiguousLength": core.contiguous_length,
        "treeHash": await core.tree_hash(),
    }


async def test_python_writes_js_reads(js: JSHelper, tmp_path: Path) -> None:
    rng = random.Random(1)
    blocks = mixed_blocks(rng, 40)
    async with Hypercore(tmp_path, key_pair=crypto.key_pair(SEED)) as core:
        await core.append(blocks[:1])
        await core.append(blocks[1:25])
        for b in blocks[25:]:
            await core.append(b)
        await core.set_user_data("foo", b"bar")
        ours = await describe(core)
    theirs = js("hypercore.read", str(tmp_path), {"userDataKeys": ["foo"]})
    assert theirs.pop("blocks") == blocks
    assert theirs.pop("userData") == {"foo": b"bar"}
    assert theirs == ours
    # JS can keep writing: Python reopens and sees its appends.
    more = mixed_blocks(rng, 5)
    js("hypercore.write", str(tmp_path), more)
    async with Hypercore(tmp_path) as core:
        assert core.length == 45 and core.writable
        assert [await core.get(i) for i in range(45)] == blocks + more


async def test_js_writes_python_reads(js: JSHelper, tmp_path: Path) -> None:
    rng = random.Random(2)
    blocks = mixed_blocks(rng, 30)
    theirs = js("hypercore.write", str(tmp_path), blocks, {"seed": SEED, "userData": {"a": b"b"}})
    async with Hypercore(tmp_path) as core:
        assert await describe(core) == theirs
        assert core.key == crypto.core_key(crypto.key_pair(SEED).public_key)
        assert [b async for b in core.read()] == blocks
        assert await core.get_user_data("a") == b"b"
        # Python keeps writing; JS reads the result.
        await core.append([b"py", b"thon"])
        ours = await describe(core)
    again = js("hypercore.read", str(tmp_path))
    assert again.pop("blocks") == [*blocks, b"py", b"thon"]
    again.pop("userData")
    assert again == ours


async def test_js_truncates_a_python_core(js: JSHelper, tmp_path: Path) -> None:
    rng = random.Random(3)
    blocks = mixed_blocks(rng, 20)
    async with Hypercore(tmp_path, key_pair=crypto.key_pair(SEED)) as core:
        await core.append(blocks)
        hash7 = await core.tree_hash(7)
    theirs = js("hypercore.truncate", str(tmp_path), 7)
    assert (theirs["length"], theirs["fork"]) == (7, 1)
    async with Hypercore(tmp_path) as core:
        assert (core.length, core.fork) == (7, 1)
        assert await core.tree_hash() == hash7 == theirs["treeHash"]
        assert [b async for b in core.read()] == blocks[:7]
        assert not await core.has(7)
        await core.append(b"after")
        await core.truncate(3)
        ours = await describe(core)
    back = js("hypercore.read", str(tmp_path))
    assert back.pop("blocks") == blocks[:3]
    back.pop("userData")
    assert back == ours and ours["fork"] == 2


async def test_encrypted_cores_both_ways(js: JSHelper, tmp_path: Path) -> None:
    rng = random.Random(4)
    enc = rng.randbytes(32)
    blocks = mixed_blocks(rng, 15)
    js_dir, py_dir = tmp_path / "js", tmp_path / "py"
    theirs = js("hypercore.write", str(js_dir), blocks, {"seed": SEED, "encryptionKey": enc})
    async with Hypercore(js_dir, encryption_key=enc) as core:
        assert await describe(core) == theirs
        assert core.padding == 8
        assert [b async for b in core.read()] == blocks
        raw = await core.get(0, raw=True)
        assert (len(raw) == len(blocks[0]) + 8 and raw[8:] != blocks[0]) or not blocks[0]
    async with Hypercore(py_dir, key_pair=crypto.key_pair(SEED), encryption_key=enc) as core:
        await core.append(blocks)
        await core.truncate(10)
        await core.append(blocks[10:])
        ours = await describe(core)
    back = js("hypercore.read", str(py_dir), {"encryptionKey": enc})
    assert back.pop("blocks") == blocks
    back.pop("userData")
    assert back == ours
    # Without the key the stored blocks are ciphertext.
    plain = js("hypercore.read", str(py_dir))
    assert plain["blocks"][0] != blocks[0]
