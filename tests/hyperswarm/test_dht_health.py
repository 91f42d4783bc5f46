"""NetworkHealth: the online/degraded rules of JS dht-rpc ``lib/health.js``, tick by tick."""

from __future__ import annotations

from hyperswarm.dht_rpc.health import NetworkHealth


def _run(ticks: list[tuple[int, int]]) -> tuple[NetworkHealth, list[tuple[bool, bool]]]:
    """Feed per-tick (responses, timeouts) as running totals; return the changes seen."""
    changes: list[tuple[bool, bool]] = []
    health = NetworkHealth(lambda online, degraded: changes.append((online, degraded)))
    responses = timeouts = 0
    for r, t in ticks:
        responses += r
        timeouts += t
        health.update(responses, timeouts)
    return health, changes


def test_a_cold_window_changes_nothing() -> None:
    health, changes = _run([(0, 10)] * 3)
    assert health.cold and health.online and not health.degraded and changes == []


def test_two_offline_ticks_make_the_node_offline_and_a_reply_brings_it_back() -> None:
    health, changes = _run([(10, 0)] * 4 + [(0, 10), (0, 10)])
    assert not health.online and changes == [(False, False)]
    health.update(10**6, 10**6)  # one tick with replies
    assert health.online and changes[-1] == (True, False)


def test_one_offline_tick_is_not_enough() -> None:
    health, changes = _run([(10, 0)] * 4 + [(0, 10), (10, 0)])
    assert health.online and changes == []


def test_four_degraded_ticks_degrade_and_four_healthy_ones_clear_it() -> None:
    health, changes = _run([(10, 0)] * 4 + [(2, 8)] * 4)
    assert health.online and health.degraded and changes == [(True, True)]
    for _ in range(3):
        _step(health, 10, 0)
    assert health.degraded  # three healthy ticks are not enough
    _step(health, 10, 0)
    assert not health.degraded and changes[-1] == (True, False)


def test_idle_ticks_change_nothing() -> None:
    health, changes = _run([(10, 0)] * 4 + [(0, 3)] * 10)
    assert health.online and not health.degraded and changes == []


def test_reset_is_online_and_cold() -> None:
    health, changes = _run([(10, 0)] * 4 + [(0, 10), (0, 10)])
    health.reset()
    assert health.online and health.cold and changes[-1] == (True, False)


def _step(health: NetworkHealth, r: int, t: int) -> None:
    newest = health._at(health._head)
    assert newest is not None
    health.update(newest.responses + r, newest.timeouts + t)
