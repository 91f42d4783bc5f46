"""Hyperbee against JS hyperbee 2.27.3: the same operations (subs, deletes, batches, cas,
json values) give byte-identical blocks; every query (get, ranges, peek, history, diff,
get_by_seq, header) answers the same; a bee written by JS reads the same in Python from JS's
own directory, and a bee written by Python reads the same in JS from Python's."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from hyperbee import DiffEntry, Entry, HistoryEntry, Hyperbee, Metadata
from hypercore import Hypercore

from .jsenv import JSHelper

SUBS: list[list[str] | None] = [None, None, ["s1"], ["s1", "t"], ["s2"]]


def _value(rng: random.Random, cfg: dict[str, Any]) -> Any:
    if cfg.get("valueEncoding") == "json":
        return rng.choice(
            [
                rng.randrange(-1000, 1000),
                "".join(rng.choice("xyzé") for _ in range(rng.randrange(0, 6))),
                [rng.randrange(10), "q"],
                {"a": rng.randrange(5), "b": [True, None]},
            ]
        )
    if rng.random() < 0.05:
        return None
    return rng.randbytes(rng.randrange(0, 14))


def _key(rng: random.Random, cfg: dict[str, Any]) -> Any:
    if cfg.get("keyEncoding") == "utf-8":
        return "".join(rng.choice("abcZ/\u00e9") for _ in range(rng.randrange(1, 4)))
    return rng.choice([b"\x00", b"\xff", b""]) + rng.randbytes(rng.randrange(0, 3))


def _ops(rng: random.Random, cfg: dict[str, Any], n: int) -> list[Any]:
    used: list[tuple[Any, Any, Any]] = []

    def op(sub: Any) -> list[Any]:
        r = rng.random()
        if used and r < 0.25:
            return ["del", sub, rng.choice(used)[1] if rng.random() < 0.8 else _key(rng, cfg)]
        if used and r < 0.32:
            _s, k, v = rng.choice(used)
            guess = v if rng.random() < 0.5 else _value(rng, cfg)
            return ["cas-put", sub, k, _value(rng, cfg), guess]
        if used and r < 0.38:  # the same value again (alwaysDuplicate decides)
            _s, k, v = rng.choice(used)
            return ["put", sub, k, v]
        k, v = _key(rng, cfg), _value(rng, cfg)
        used.append((sub, k, v))
        return ["put", sub, k, v]

    ops: list[Any] = []
    for _ in range(n):
        sub = rng.choice(SUBS)
        if rng.random() < 0.12:
            ops.append(["batch", sub, [op(sub) for _ in range(rng.randrange(0, 14))]])
        else:
            ops.append(op(sub))
    return ops


def _range(rng: random.Random, cfg: dict[str, Any], limit: bool = True) -> dict[str, Any]:
    r: dict[str, Any] = {}
    for bound in ("gt", "gte", "lt", "lte"):
        if rng.random() < 0.3:
            r[bound] = _key(rng, cfg)
    if rng.random() < 0.5:
        r["reverse"] = True
    if limit and rng.random() < 0.3:
        r["limit"] = rng.randrange(0, 6)
    return r


def _queries(rng: random.Random, cfg: dict[str, Any], versions: list[int]) -> list[Any]:
    version = versions[-1]
    q: list[Any] = [["header"], ["version"]]
    for _ in range(40):
        q.append(["get", rng.choice(SUBS), _key(rng, cfg)])
    for _ in range(25):
        q.append(["range", rng.choice(SUBS), _range(rng, cfg)])
    for _ in range(8):
        q.append(["peek", rng.choice(SUBS), _range(rng, cfg, limit=False)])
    for _ in range(8):
        h: dict[str, Any] = {}
        for bound in ("gt", "gte", "lt", "lte"):
            if rng.random() < 0.3:
                h[bound] = rng.randrange(-version + 1, version + 2)
        if rng.random() < 0.4:
            h["reverse"] = True
        if rng.random() < 0.3:
            h["limit"] = rng.randrange(0, 10)
        q.append(["history", h])
    for _ in range(10):
        r = _range(rng, cfg)
        r.pop("reverse", None)
        q.append(["diff", rng.choice(SUBS), rng.choice(versions), r])
    for _ in range(15):
        q.append(["seq", rng.randrange(1, version)])
    return q


def _sub(bee: Hyperbee, names: list[str] | None) -> Hyperbee:
    for n in names or []:
        bee = bee.sub(n)
    return bee


async def _apply(target: Any, op: list[Any]) -> None:
    if op[0] == "put":
        await target.put(op[2], op[3])
    elif op[0] == "del":
        await target.delete(op[2])
    elif op[0] == "cas-put":
        want = op[4]
        await target.put(op[2], op[3], cas=lambda prev, new: prev.value == want)


async def _run(bee: Hyperbee, ops: list[Any]) -> list[int]:
    """Applies ``ops``; returns the versions between them (a batch's inner ones are not
    versions: only its last block carries a root)."""
    versions = [1]
    for op in ops:
        versions.append(bee.version)
        if op[0] == "batch":
            async with _sub(bee, op[1]).batch() as b:
                for o in op[2]:
                    await _apply(b, o)
        else:
            await _apply(_sub(bee, op[1]), op)
    versions.append(bee.version)
    return versions


def _entry(e: Entry | HistoryEntry | None) -> dict[str, Any] | None:
    if e is None:
        return None
    d = {"seq": e.seq, "key": e.key, "value": e.value}
    if isinstance(e, HistoryEntry):
        return {"type": e.type, **d}
    return d


def _diff(d: DiffEntry) -> dict[str, Any]:
    return {"left": _entry(d.left), "right": _entry(d.right)}


async def _query(bee: Hyperbee, queries: list[Any]) -> list[Any]:
    out: list[Any] = []
    for q in queries:
        if q[0] == "get":
            out.append(_entry(await _sub(bee, q[1]).get(q[2])))
        elif q[0] == "range":
            out.append([_entry(e) async for e in _sub(bee, q[1]).read(**q[2])])
        elif q[0] == "peek":
            out.append(_entry(await _sub(bee, q[1]).peek(**q[2])))
        elif q[0] == "history":
            out.append([_entry(e) async for e in bee.history(**q[1])])
        elif q[0] == "diff":
            out.append([_diff(d) async for d in _sub(bee, q[1]).diff(q[2], **q[3])])
        elif q[0] == "seq":
            e = await bee.get_by_seq(q[1])
            out.append({"key": e.key, "value": e.value})
        elif q[0] == "header":
            h = await bee.get_header()
            m = None if h is None else h.metadata
            out.append(
                None
                if h is None
                else {
                    "protocol": h.protocol,
                    "metadata": None
                    if m is None
                    else {"contentFeed": m.content_feed, "userData": m.user_data},
                }
            )
        elif q[0] == "version":
            out.append(bee.version)
    return out


CONFIGS: list[dict[str, Any]] = [
    {"keyEncoding": "utf-8", "valueEncoding": "json"},
    {},
    {
        "keyEncoding": "utf-8",
        "valueEncoding": "json",
        "sep": "/",
        "metadata": {"contentFeed": bytes(range(32)), "userData": b"hello"},
    },
    {"alwaysDuplicate": False},
]


def _py_opts(cfg: dict[str, Any]) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "key_encoding": cfg.get("keyEncoding"),
        "value_encoding": cfg.get("valueEncoding"),
    }
    if "alwaysDuplicate" in cfg:
        opts["always_duplicate"] = cfg["alwaysDuplicate"]
    if "sep" in cfg:
        opts["sep"] = cfg["sep"]
    if "metadata" in cfg:
        m = cfg["metadata"]
        opts["metadata"] = Metadata(m["contentFeed"], m["userData"])
    return opts


def _js_opts(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg.items()}


async def test_same_operations_same_blocks_and_answers_both_ways(
    js: JSHelper, tmp_path: Path
) -> None:
    for n, cfg in enumerate(CONFIGS):
        rng = random.Random(100 + n)
        ops = _ops(rng, cfg, 160)
        js_dir, py_dir = tmp_path / f"js{n}", tmp_path / f"py{n}"
        async with Hypercore(py_dir) as core, Hyperbee(core, **_py_opts(cfg)) as bee:
            versions = await _run(bee, ops)
            ours = [await core.get(i) for i in range(core.length)]
            queries = _queries(rng, cfg, versions)
            answers = await _query(bee, queries)
        built = js("bee.run", str(js_dir), _js_opts(cfg), ops, queries)
        theirs = [bytes(b) for b in built["blocks"]]
        assert len(ours) == len(theirs) > 150
        assert sum(1 for a in answers if a) > 50
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            assert a == b, (n, i)
        assert answers == built["results"]
        # JS's directory read by Python, Python's by JS.
        async with Hypercore(js_dir) as core, Hyperbee(core, **_py_opts(cfg)) as bee:
            assert await _query(bee, queries) == built["results"]
        assert js("bee.query", str(py_dir), _js_opts(cfg), queries) == built["results"]
