"""Thousands of sans-IO dht-rpc nodes on a simulated network and a virtual clock.

2,000+ nodes bootstrap, then 500 lookups (25 at a time). A lookup succeeds when at least half
of the 20 live nodes truly closest to its target answer it (what an announce to the closest
nodes needs to be found); with no loss every lookup must also find the single closest node.
With 5% loss and 10% churn >= 99% succeed. Hops, messages per lookup and how often the single
closest node answered are printed (``pytest -s``) for the closing note.
"""

from __future__ import annotations

import os
import random

import pytest

from hyperswarm.dht_rpc.simulation import Network, Summary

NODES = int(os.environ.get("HYPERTRIO_SIM_NODES", "2000"))
LOOKUPS = int(os.environ.get("HYPERTRIO_SIM_LOOKUPS", "500"))
BATCH = 25


def _grow(net: Network, size: int) -> None:
    net.bootstrap_node()
    while len(net.nodes) < size:
        net.add_node()
        net.run(20)
    # let the last joiners finish bootstrapping and the tables settle
    net.run(30_000)


def _lookups(net: Network, count: int, rng: random.Random) -> Summary:
    summary = Summary()
    alive = [n for n in net.alive() if not n.core.ephemeral]
    for start in range(0, count, BATCH):
        batch = [(rng.choice(alive), rng.randbytes(32)) for _ in range(min(BATCH, count - start))]
        summary.results.extend(net.lookups(batch))
    return summary


def _report(name: str, net: Network, summary: Summary) -> None:
    hops = sorted(r.hops for r in summary.results)
    print(
        f"\n{name}: {len(net.nodes)} nodes, {len(summary.results)} lookups, "
        f"success {summary.success_rate:.2%}, closest found {summary.exact_rate:.2%}, "
        f"true closest answering {summary.mean_overlap:.1f}/20, "
        f"messages/lookup {summary.mean_messages:.1f}, "
        f"hops mean {summary.mean_hops:.2f} max {hops[-1]}; datagrams sent {net.stats.sent}, "
        f"lost {net.stats.lost}, to dead nodes {net.stats.dead}"
    )


@pytest.fixture(scope="module")
def network() -> Network:
    """One grown network for both tests: the lossless lookups run first, then churn."""
    net = Network(seed=1)
    _grow(net, NODES)
    return net


def test_lookups_on_a_network_without_loss(network: Network) -> None:
    net = network
    persistent = sum(1 for n in net.nodes if not n.core.ephemeral)
    assert persistent == len(net.nodes) >= NODES
    summary = _lookups(net, LOOKUPS, random.Random(2))
    _report("no loss", net, summary)
    assert summary.success_rate == 1.0
    assert summary.exact_rate == 1.0
    # O(log n): a few hops, and far fewer messages than nodes
    assert summary.mean_hops < 6
    assert summary.mean_messages < 120


def test_lookups_with_loss_and_churn(network: Network) -> None:
    net = network
    rng = random.Random(4)
    # 10% of the nodes vanish without a word, then the network loses 5% of all datagrams
    for node in rng.sample(net.nodes[1:], len(net.nodes) // 10):
        net.kill(node)
    net.loss = 0.05
    summary = _lookups(net, LOOKUPS, rng)
    _report("5% loss, 10% churn", net, summary)
    assert summary.success_rate >= 0.99
    assert sum(1 for r in summary.results if r.error is not None) == 0
