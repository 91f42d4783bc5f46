"""Hyperbees replicated between Python and JS hyperbee 2.27.3 over TCP + secret-stream on
127.0.0.1: a JS bee read by a sparse Python reader (which downloads only the blocks its reads
need, and sees live writes through get_and_watch and watch), and a Python bee read by a JS
reader; both answer every query as the writer does."""

from __future__ import annotations

import random

import trio

from hyperbee import Hyperbee
from hypercore import Hypercore, MemoryStorage

from .jsenv import JSHelper
from .test_hyperbee_bee_interop import CONFIGS, _ops, _py_opts, _queries, _query, _run
from .test_replication_interop import call, connected, serving


async def test_js_bee_read_by_a_sparse_python_reader_live(js: JSHelper) -> None:
    cfg = CONFIGS[0]
    rng = random.Random(5)
    ops = _ops(rng, cfg, 300)
    # The queries need the versions: compute them on a local Python bee (same blocks as JS).
    async with Hypercore(MemoryStorage()) as local, Hyperbee(local, **_py_opts(cfg)) as lbee:
        versions = await _run(lbee, ops)
    queries = _queries(rng, cfg, versions)
    srv = await call(js, "bee.serve", cfg, ops, queries)
    try:
        async with Hypercore(MemoryStorage(), srv["key"]) as core:
            async with connected(core, srv["port"]), Hyperbee(core, **_py_opts(cfg)) as bee:
                with trio.fail_after(20):
                    while core.length < srv["length"]:
                        await core.update()
                        await trio.sleep(0.01)
                    # One get on a fresh reader fetches a root-to-leaf path, no more.
                    key = next(op[2] for op in ops if op[0] == "put" and op[1] is None)
                    assert await bee.get(key) is not None
                    stored = sum([await core.has(i) for i in range(core.length)])
                    assert 1 <= stored <= 20 < core.length // 10, stored
                    assert await _query(bee, queries) == srv["results"]

                    # Live: a write on the JS side reaches get_and_watch and watch.
                    async with bee.get_and_watch("live") as w, bee.watch(gte="live") as ranged:
                        assert w.node is None
                        length = await call(js, "bee.apply", srv["id"], [["put", None, "live", 1]])
                        node = await w.__anext__()
                        assert node is not None and node.value == 1 and node.seq == length - 1
                        current, previous = await ranged.__anext__()
                        assert current.version == length and previous.version < length
                        entry = await current.get("live")
                        assert entry is not None and entry.value == 1
    finally:
        await call(js, "bee.unserve", srv["id"])


async def test_python_bee_read_by_a_js_reader(js: JSHelper) -> None:
    for n, cfg in enumerate(CONFIGS[:2]):
        rng = random.Random(50 + n)
        ops = _ops(rng, cfg, 250)
        async with Hypercore(MemoryStorage()) as core, Hyperbee(core, **_py_opts(cfg)) as bee:
            versions = await _run(bee, ops)
            queries = _queries(rng, cfg, versions)
            answers = await _query(bee, queries)
            async with serving(core) as port:
                got = await call(js, "bee.remote", port, core.key, cfg, core.length, queries[:3])
                assert got["results"] == answers[:3]  # header, version, one get
                assert got["stored"] < core.length // 5  # sparse: only what those needed
                got = await call(js, "bee.remote", port, core.key, cfg, core.length, queries)
                assert got["results"] == answers
