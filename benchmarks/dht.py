"""HyperDHT on a local testnet of 10 nodes on 127.0.0.1, Python and JS side by side, and the
dht-rpc simulator.

Each side starts its own testnet of 10 nodes in one process (Python: ``hyperswarm.testnet``;
JS: ``hyperdht/testnet``) and one more node that announces ``--announces`` topics one after
the other (the median announce latency: a query to the closest nodes and the commit) and then
runs ``--lookups`` lookups of those topics one after the other, each to its end (lookups per
second). The simulator row grows a sans-IO network of ``--sim-nodes`` nodes on a virtual
clock and times ``--sim-lookups`` lookups (25 at a time): nodes x lookups per second of wall
time.

Usage: ``python -m benchmarks.dht [--lookups N] [--announces N] [--repeat N] [--sim-nodes N]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Sequence

import trio

from tests.interop.jsenv import ensure_installed

from .report import JS_DIR, alternate, median_of, run_js, table


async def _python(lookups: int, announces: int) -> dict[str, float]:
    from hyperswarm.hyperdht import HyperDHT
    from hyperswarm.testnet import Testnet

    async with Testnet(10) as net:
        async with HyperDHT(bootstrap=net.bootstrap_strings(), host="127.0.0.1", port=0) as node:
            await node.fully_bootstrapped()
            latencies = []
            topics = []
            for i in range(announces):
                topic = HyperDHT.hash(b"bench topic %d" % i)
                topics.append(topic)
                start = time.perf_counter()
                await node.announce(topic, HyperDHT.key_pair()).finished()
                latencies.append((time.perf_counter() - start) * 1000)
            found = 0
            start = time.perf_counter()
            for i in range(lookups):
                async for reply in node.lookup(topics[i % len(topics)]):
                    found += len(reply.peers)
            seconds = time.perf_counter() - start
    return {
        "lookupsPerSecond": lookups / seconds,
        "announceMs": statistics.median(latencies),
        "found": found,
    }


def _js(lookups: int, announces: int) -> dict[str, float]:
    return run_js("dht.js", lookups, announces)


def _simulator(nodes: int, lookups: int) -> float:
    from hyperswarm.dht_rpc.simulation import Network

    net = Network(seed=1)
    net.bootstrap_node()
    while len(net.nodes) < nodes:
        net.add_node()
        net.run(20)
    net.run(30_000)
    rng = random.Random(2)
    alive = [n for n in net.alive() if not n.core.ephemeral]
    start = time.perf_counter()
    done = 0
    while done < lookups:
        batch = [(rng.choice(alive), rng.randbytes(32)) for _ in range(min(25, lookups - done))]
        net.lookups(batch)
        done += len(batch)
    return nodes * lookups / (time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dht", description=__doc__)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--announces", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sim-nodes", type=int, default=1000)
    parser.add_argument("--sim-lookups", type=int, default=200)
    args = parser.parse_args(argv)
    ensure_installed(JS_DIR)

    py_runs, js_runs = alternate(
        lambda: trio.run(_python, args.lookups, args.announces),
        lambda: _js(args.lookups, args.announces),
        args.repeat,
    )

    py_l, js_l = median_of(py_runs, "lookupsPerSecond"), median_of(js_runs, "lookupsPerSecond")
    py_a, js_a = median_of(py_runs, "announceMs"), median_of(js_runs, "announceMs")
    rows = [
        ["workload (10-node local testnet)", "Python", "JS", "Python/JS"],
        ["lookups per second", f"{py_l:.0f}", f"{js_l:.0f}", f"{py_l / js_l:.2f}"],
        ["announce latency, median ms", f"{py_a:.2f}", f"{js_a:.2f}", f"{js_a / py_a:.2f}"],
    ]
    print(table(rows))
    print("(Python/JS above 1 means Python is faster; latency ratio is JS ms / Python ms)")
    rate = _simulator(args.sim_nodes, args.sim_lookups)
    print(
        f"\nsimulator: {args.sim_nodes} nodes x {args.sim_lookups} lookups: "
        f"{rate:,.0f} node-lookups per second of wall time"
    )


if __name__ == "__main__":
    main()
