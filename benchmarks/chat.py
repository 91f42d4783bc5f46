"""The tutorial chat's costs on a local testnet of 5 nodes on 127.0.0.1, Python and JS side by
side (``benchmarks/js/chat.js`` does the same in JS).

Each round makes two new peers as the tutorial's app does (a swarm, a Corestore with the
``local`` nickname core replicating over every connection, protomux-rpc ``getKey`` and
``message``), joins them to a new topic at the same moment and times until the first chat
message is delivered (median over ``--rounds``). Then one pair sends ``--messages`` chat
messages one after the other (messages per second). Both sides store on RocksDB in a
temporary directory.

Usage: ``python -m benchmarks.chat [--rounds N] [--messages N] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from tests.interop.jsenv import ensure_installed

from .report import JS_DIR, alternate, median_of, run_js, table


class _Peer:
    """One chat peer as the tutorial's app sets it up (without the Hyperbee)."""

    def __init__(self, store: Any, on_message: Callable[[str], None]) -> None:
        self.store = store
        self.local = store.get("local", value_encoding="json")
        self.on_message = on_message
        self.connected = trio.Event()
        self.rpc: Any = None
        self.swarm: Any = None

    async def on_connection(self, conn: Any, _info: Any) -> None:
        from protomux.rpc import RPC

        mux = self.store.replicate(conn)
        rpc = RPC(mux)
        rpc.respond("getKey", lambda _v: self.local.key)
        rpc.respond("message", lambda v: self.on_message(json.loads(bytes(v))["message"]))
        self.rpc = rpc
        self.connected.set()
        try:
            await mux.wait_closed()
        finally:
            if self.rpc is rpc:  # (a duplicate the swarm dropped: the next one takes over)
                self.rpc = None
                self.connected = trio.Event()

    async def send(self, data: bytes) -> None:
        """One chat message over the current connection (again over the next one if the
        swarm drops this one as a duplicate meanwhile)."""
        from protomux.errors import ProtomuxError

        for _ in range(10):
            await self.connected.wait()
            try:
                await self.rpc.request("message", data)
                return
            except ProtomuxError:
                await trio.sleep(0.01)
        raise RuntimeError("no connection held")


@asynccontextmanager
async def _peer(
    boot: list[str], directory: Path, on_message: Callable[[str], None]
) -> AsyncIterator[_Peer]:
    from corestore import Corestore
    from hyperswarm import Hyperswarm

    async with Corestore(str(directory)) as store:
        peer = _Peer(store, on_message)
        await peer.local.ready()
        await peer.local.append({"nickname": directory.name})
        async with Hyperswarm(
            bootstrap=boot, host="127.0.0.1", on_connection=peer.on_connection
        ) as swarm:
            peer.swarm = swarm
            yield peer


async def _python(rounds: int, messages: int) -> dict[str, float]:
    from hyperswarm.testnet import Testnet

    firsts: list[float] = []
    per_second = 0.0
    with tempfile.TemporaryDirectory(prefix="chat-bench-") as tmp:
        async with Testnet(5) as net:
            boot = net.bootstrap_strings()
            for r in range(rounds):
                got = trio.Event()

                def delivered(_message: str, got: trio.Event = got) -> None:
                    got.set()

                async with (
                    _peer(boot, Path(tmp) / f"a{r}", lambda _m: None) as a,
                    _peer(boot, Path(tmp) / f"b{r}", delivered) as b,
                ):
                    topic = os.urandom(32)
                    start = time.perf_counter()
                    a.swarm.join(topic)
                    b.swarm.join(topic)
                    await a.send(json.dumps({"message": "hello"}).encode())
                    await got.wait()
                    firsts.append((time.perf_counter() - start) * 1000)
                    if r == rounds - 1:
                        data = json.dumps({"message": "a chat line of ordinary length"}).encode()
                        t0 = time.perf_counter()
                        for _ in range(messages):
                            await a.send(data)
                        per_second = messages / (time.perf_counter() - t0)
    return {"firstMessageMs": statistics.median(firsts), "messagesPerSecond": per_second}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chat", description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    ensure_installed(JS_DIR)
    py_runs, js_runs = alternate(
        lambda: trio.run(_python, args.rounds, args.messages),
        lambda: run_js("chat.js", args.rounds, args.messages),
        args.repeat,
    )
    py_f, js_f = median_of(py_runs, "firstMessageMs"), median_of(js_runs, "firstMessageMs")
    py_m, js_m = median_of(py_runs, "messagesPerSecond"), median_of(js_runs, "messagesPerSecond")
    rows = [
        ["workload (5-node local testnet)", "Python", "JS", "Python/JS"],
        ["join to first message, median ms", f"{py_f:.0f}", f"{js_f:.0f}", f"{py_f / js_f:.2f}"],
        ["chat messages per second", f"{py_m:.0f}", f"{js_m:.0f}", f"{py_m / js_m:.2f}"],
    ]
    print(table(rows))
    print("(time: Python/JS below 1.5 meets the target; messages: above 1 means Python is faster)")


if __name__ == "__main__":
    main()
