"""The NAT lab: it stays inside its own namespace (no route out, the host's network
untouched), its routers behave as the NATs they claim to be (consistent: one mapping for
every destination; random: one per destination; nothing unsolicited gets in, replies do),
``block_lan`` separates hosts behind one router, and closing it leaves no process behind.

UDP is driven by small agents, one python process per socket in a lab host, each told what
to do line by line, so that one test can order sends and receives across namespaces."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from hyperswarm import natlab
from hyperswarm.natlab import Host, Lab

# One UDP socket bound to argv[1] ("port" prints its port), then commands from stdin, one
# JSON array a line, one JSON answer a line each:
#   ["send", ip, port, text] -> null
#   ["recv", seconds]        -> [ip, port, text], or null if nothing came in time
AGENT = r"""
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
print(json.dumps(s.getsockname()[1]), flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd[0] == "send":
        s.sendto(cmd[3].encode(), (cmd[1], cmd[2]))
        print("null", flush=True)
    else:
        s.settimeout(cmd[1])
        try:
            data, (ip, port) = s.recvfrom(2048)
            print(json.dumps([ip, port, data.decode()]), flush=True)
        except socket.timeout:
            print("null", flush=True)
"""

QUIET = 0.4
"""Seconds to wait for a datagram that must not arrive."""


class Agent:
    """A UDP socket on ``port`` in ``host``."""

    def __init__(self, host: Host, port: int) -> None:
        self.host = host
        self.proc = host.spawn(
            [sys.executable, "-c", AGENT, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port: int = self._answer(10.0)

    def _answer(self, timeout: float) -> Any:
        out = self.proc.stdout
        assert out is not None
        ready, _, _ = select.select([out], [], [], timeout)
        assert ready, f"agent in {self.host.name} did not answer in {timeout} s"
        line = out.readline()
        assert line, f"agent in {self.host.name} exited ({self.proc.poll()})"
        return json.loads(line)

    def _ask(self, cmd: list[Any], timeout: float) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._answer(timeout)

    def send(self, ip: str, port: int, text: str = "hi") -> None:
        self._ask(["send", ip, port, text], 5.0)

    def recv(self, timeout: float = 3.0) -> tuple[str, int, str] | None:
        got = self._ask(["recv", timeout], timeout + 5.0)
        return None if got is None else (got[0], got[1], got[2])


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    reason = natlab.available()
    if reason is not None:
        pytest.skip(reason)
    with Lab() as lab:
        yield lab


def link_names(host: Host | None = None) -> set[str]:
    """Interface names in ``host``, or in this process's own namespace."""
    argv = ["ip", "-br", "link"]
    if host is None:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True).stdout
    else:
        out = host.run(argv).stdout
    return {line.split()[0].split("@")[0] for line in out.splitlines() if line.strip()}


def test_no_route_out_and_the_host_network_untouched() -> None:
    reason = natlab.available()
    if reason is not None:
        pytest.skip(reason)
    ours = link_names()
    assert "pub" not in ours
    netns_dir = os.listdir("/run/netns") if os.path.isdir("/run/netns") else None
    with Lab() as lab:
        r = lab.router("r", "consistent")
        a = lab.host("a", r)
        p = lab.public_host("p")
        assert natlab._netns_id(lab.pid) != natlab._netns_id("self")
        assert not lab.has_route_out()
        if netns_dir is not None:  # the lab registers its namespaces in its own /run/netns
            assert os.listdir("/run/netns") == netns_dir
        assert link_names(lab.public) == {"lo", "pub", "pub-2", "pub-3"}
        assert link_names(r) == {"lo", "wan", "lan", "lan-2"}
        assert link_names(a) == {"lo", "eth0"}
        assert link_names(p) == {"lo", "eth0"}
        for host in lab.hosts:
            default = host.run(["ip", "-4", "route", "show", "default"]).stdout.strip()
            got = host.run(["ip", "-4", "route", "get", "1.1.1.1"], check=False)
            if host is a:
                assert default == f"default via {r.lan} dev eth0"
                assert got.returncode == 0 and f"via {r.lan} dev eth0" in got.stdout
            else:
                assert default == "", host
                assert got.returncode != 0, (host, got.stdout)
            assert host.run(["ip", "-6", "route", "show", "default"]).stdout.strip() == ""
        assert "default" not in lab.routes().replace(f"default via {r.lan} dev eth0", "")
        assert link_names() == ours  # created in the lab only, in the test's own namespace
    assert link_names() == ours
    assert (os.listdir("/run/netns") if os.path.isdir("/run/netns") else None) == netns_dir


def test_consistent_nat_keeps_one_mapping_for_every_destination(lab: Lab) -> None:
    r = lab.router("rc", "consistent")
    h = lab.host("hc", r)
    seers = [Agent(lab.public, 5001), Agent(lab.public, 5002)]
    me = Agent(h, 4444)
    for seer in seers:
        me.send(lab.public.address, seer.port)
    seen = [seer.recv() for seer in seers]
    assert seen[0] is not None and seen[1] is not None
    assert seen[0][:2] == seen[1][:2] == (r.wan, 4444)


def test_random_nat_maps_every_destination_apart(lab: Lab) -> None:
    r = lab.router("rr", "random")
    h = lab.host("hr", r)
    seers = [Agent(lab.public, port) for port in (6001, 6002, 6003)]
    me = Agent(h, 4444)
    for seer in seers:
        me.send(lab.public.address, seer.port)
    seen = [seer.recv() for seer in seers]
    assert all(s is not None and s[0] == r.wan for s in seen), seen
    # three ports drawn at random: all the same one about once in 4e9 runs
    assert len({s[1] for s in seen if s is not None}) > 1, seen


def test_block_lan_separates_hosts_behind_one_router(lab: Lab) -> None:
    r = lab.router("rl", "consistent")
    a, b = lab.host("la", r), lab.host("lb", r)
    sa, sb = Agent(a, 7000), Agent(b, 7000)
    sa.send(b.address, 7000, "ping")
    assert sb.recv() == (a.address, 7000, "ping")
    sb.send(a.address, 7000, "pong")
    assert sa.recv() == (b.address, 7000, "pong")

    lab.block_lan(r)
    c = lab.host("lc", r)  # added after the block: blocked too
    sc = Agent(c, 7000)
    sa.send(b.address, 7000, "ping")
    sb.send(a.address, 7000, "pong")
    sc.send(a.address, 7000, "from c")
    assert sb.recv(QUIET) is None
    assert sa.recv(QUIET) is None
    # the router and the public segment are still reachable
    router_side = Agent(r, 7001)
    for agent, host in ((sa, a), (sc, c)):
        agent.send(r.lan, 7001, host.name)
        assert router_side.recv() == (host.address, 7000, host.name)
    seer = Agent(lab.public, 7002)
    sb.send(lab.public.address, 7002, "out")
    assert seer.recv() == (r.wan, 7000, "out")


def test_nothing_unsolicited_gets_in_but_replies_do(lab: Lab) -> None:
    r = lab.router("rf", "consistent")
    h = lab.host("hf", r)
    inside = Agent(h, 4600)
    outside = Agent(lab.public, 5600)
    other = lab.public_host("pf")
    elsewhere = Agent(other, 5600)

    outside.send(r.wan, 4600, "unsolicited")
    assert inside.recv(QUIET) is None

    inside.send(lab.public.address, 5600, "hello")
    got = outside.recv()
    assert got == (r.wan, 4600, "hello")
    outside.send(got[0], got[1], "reply")
    assert inside.recv() == (lab.public.address, 5600, "reply")
    # the mapping lets in that destination only, not another public host
    elsewhere.send(r.wan, 4600, "stranger")
    assert inside.recv(QUIET) is None


async def test_open_process_runs_in_the_host(lab: Lab) -> None:
    r = lab.router("rt", "random")
    h = lab.host("ht", r)
    with trio.fail_after(10):
        proc = await h.open_process(["ip", "-br", "-4", "addr"], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        out = b""
        while chunk := await proc.stdout.receive_some():
            out += chunk
        assert await proc.wait() == 0
    assert f"{h.address}/24" in out.decode()


def test_close_leaves_no_process_behind() -> None:
    reason = natlab.available()
    if reason is not None:
        pytest.skip(reason)
    lab = Lab()
    r = lab.router("r", "random")
    h = lab.host("h", r)
    tracked = h.spawn(["sleep", "600"])
    # a child of a tracked process and an untracked process: the lab kills them too
    h.spawn(["sh", "-c", "sleep 600 & wait"])
    untracked = subprocess.Popen(lab.public.command(["sleep", "600"]))
    deadline = time.monotonic() + 5
    while len(lab.processes()) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(lab.processes()) == 5, lab.processes()  # holder, 3 sleeps, sh
    holder = lab.pid
    lab.close()
    assert tracked.poll() is not None
    assert untracked.wait(timeout=5) is not None
    assert lab.processes() == []
    with pytest.raises(ProcessLookupError):
        os.kill(holder, 0)
    lab.close()  # idempotent
    with pytest.raises(natlab.LabError):
        lab.public_host("late")


def test_a_hairpin_router_lets_its_hosts_meet_at_their_public_addresses(lab: Lab) -> None:
    r = lab.router("rh", "consistent", hairpin=True)
    a, b = lab.host("ha", r), lab.host("hb", r)
    lab.block_lan(r)
    sa, sb = Agent(a, 4700), Agent(b, 4701)
    seer = Agent(lab.public, 5700)
    # b's socket is mapped once it sent out; a reaches it at the router's public address
    sb.send(lab.public.address, 5700, "out")
    assert seer.recv() == (r.wan, 4701, "out")
    sa.send(r.wan, 4701, "hairpin")
    assert sb.recv() == (r.wan, 4700, "hairpin")  # from a's public address
    sb.send(r.wan, 4700, "back")
    assert sa.recv() == (r.wan, 4701, "back")
    # a port nobody is mapped to leads nowhere, and the LAN stays blocked
    sa.send(r.wan, 4999, "nobody")
    sa.send(b.address, 4701, "direct")
    assert sb.recv(QUIET) is None
    with pytest.raises(ValueError):
        lab.router("rx", "random", hairpin=True)
