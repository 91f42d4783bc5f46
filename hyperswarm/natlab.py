"""A NAT lab: hosts behind real Linux NATs, built from network namespaces, for testing hole
punching and everything else that depends on what a NAT does to UDP.

Layout::

    lab namespace (root of the lab)        "public", 23.0.0.1 on bridge ``pub``
      |-- bridge pub, 23.0.0.0/24          the public segment (no bogon addresses)
      |     |-- public_host("p")           namespace, eth0 23.0.0.k, no NAT
      |     |-- router("r1", "consistent") namespace, wan 23.0.0.k
      |     |     `-- bridge lan, 192.168.1.1/24
      |     |           `-- host("a", behind=r1)   eth0 192.168.1.2, default via 192.168.1.1
      |     `-- router("r2", "random")     wan 23.0.0.k, LAN 192.168.2.0/24
      |           `-- host("b", behind=r2)

A router masquerades everything it forwards out of its WAN link (nftables). ``consistent``
is plain ``masquerade``: a socket keeps its port, so every destination sees it at the same
address (the mapping depends on the source alone). ``random`` is ``masquerade fully-random``:
every destination sees a different random port. A router drops what arrives on its WAN link
unless conntrack knows it as a reply, so nothing reaches a host behind it unsolicited. It
drops such packets before conntrack records them (as a home router's firewall does), so an
unsolicited packet does not take the port a host behind it would be mapped to.
``Lab.block_lan(router)`` stops hosts behind one router reaching each other directly (a drop
rule on the router's LAN bridge, as on a guest network with client isolation). A consistent
router made with ``hairpin=True`` also takes packets from its LAN to its own public address
and a port a host is mapped to, and passes them to that host with the router's public address
as their source (NAT hairpinning, or loopback): hosts behind it reach each other at their
public addresses, as a client and a server behind one NAT do when they punch. (It learns the
mappings from what leaves the WAN link; a consistent NAT keeps a socket's port.) Routers are
plain IP routers: their bridge does not pass LAN frames through the IP firewall.

The public segment uses 23.0.0.0/24 (any prefix given as ``subnet``) and not a private or
documentation range, as the DHT treats those addresses as LAN or reserved.

Safety rule: the whole lab lives inside one fresh network and mount namespace that the lab
creates itself (``unshare --net --mount --propagation private``), held open by one holder
process. That namespace has no link to the host's network, and the inner namespaces
(``ip netns``) are registered on a tmpfs mounted over ``/run/netns`` inside the lab's own
mount namespace, so nothing is created in the host's namespaces or its ``/run/netns``. Every
command runs through ``nsenter --target HOLDER --net --mount`` (and ``ip netns exec NAME``
for the inner namespaces). Closing the lab kills every process started in it, then every
process left in any of its namespaces, then the holder; the namespaces vanish with them. The
holder also cleans up and exits when its stdin closes, so the lab goes away when the process
that built it dies. Building a lab needs root.

From Python::

    with Lab() as lab:
        r = lab.router("r1", "consistent")
        a = lab.host("a", behind=r)
        out = a.run(["ip", "route"]).stdout
        proc = a.spawn([sys.executable, "-c", "..."], stdout=subprocess.PIPE)
        # in trio code: await a.open_process([...])

From a shell (as root)::

    python -m hyperswarm.natlab                  # build the demo lab, print it, wait for ^C
    python -m hyperswarm.natlab --in a -- sh     # run a command in host "a" of the demo lab

The demo lab has router ``r1`` (consistent NAT) with host ``a`` behind it, router ``r2``
(random NAT) with host ``b`` behind it, and the public host ``public`` (23.0.0.1). While it
waits it prints the ``nsenter`` line that runs a command in any of its hosts from another
terminal.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

import trio

__all__ = ["NATS", "Host", "Lab", "LabError", "Router", "available", "main"]

NATS = ("consistent", "random")
"""The kinds of NAT a router can do."""

BRIDGE = "pub"
"""The public bridge in the lab's root namespace."""

TIMEOUT = 10.0
"""Seconds any setup command may take."""

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")

# The holder: runs as the lab's first process inside the new namespaces. It refuses to run
# in its parent's network namespace, says "ready", waits for its stdin to close, then kills
# every process left in the lab's namespaces (its own and those under /run/netns, which is
# the lab's private tmpfs) and exits.
_HOLDER = r"""
import os, signal, sys, time
outer = sys.argv[1]
own = os.readlink("/proc/self/ns/net")
if own == outer or own == os.readlink("/proc/%d/ns/net" % os.getppid()):
    sys.exit("natlab holder: not in a new network namespace")
sys.stdout.write("ready\n")
sys.stdout.flush()
while sys.stdin.buffer.read(4096):
    pass
ids = {own}
for name in os.listdir("/run/netns"):
    try:
        ids.add("net:[%d]" % os.stat("/run/netns/" + name).st_ino)
    except OSError:
        pass
ids.discard(outer)
try:
    ids.discard(os.readlink("/proc/1/ns/net"))
except OSError:
    pass
me = str(os.getpid())
for _ in range(100):
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and pid != me:
            try:
                if os.readlink("/proc/%s/ns/net" % pid) in ids:
                    pids.append(int(pid))
            except OSError:
                pass
    if not pids:
        break
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    time.sleep(0.02)
"""

# Mount a tmpfs over /run/netns inside the lab's mount namespace (over /run if the host has
# no /run/netns, so that nothing is created on the host's filesystem), then become the holder.
_HOLDER_SH = """set -e
if [ -d /run/netns ]; then
  mount -t tmpfs -o mode=755 natlab /run/netns
else
  mount -t tmpfs -o mode=755 natlab /run
  mkdir /run/netns
fi
ip link set lo up
exec "$0" -c "$1" "$2"
"""


class LabError(Exception):
    """A lab could not be built or a setup command failed."""


def _netns_id(pid: int | str) -> str:
    return os.readlink(f"/proc/{pid}/ns/net")


class Host:
    """A network namespace in the lab: the lab's root namespace (the public host), a public
    host, a router or a host behind a router."""

    def __init__(
        self,
        lab: Lab,
        name: str,
        address: str,
        *,
        netns: str | None,
        router: Router | None = None,
    ) -> None:
        self.lab = lab
        self.name = name
        self.address = address
        """Its IPv4 address (a router's: its WAN address)."""
        self.router = router
        """The router it is behind, or None for a public host or a router."""
        self.netns = netns
        """Its ``ip netns`` name inside the lab; None for the lab's root namespace."""

    @property
    def gateway(self) -> str | None:
        """Its default gateway: its router's LAN address, or None (no default route)."""
        return None if self.router is None else self.router.lan

    def command(self, argv: Sequence[str], *, cwd: str | None = None) -> list[str]:
        """The argv that runs ``argv`` inside this host, in directory ``cwd`` (default: the
        current directory). Processes started from it are not tracked by the lab (but still
        die when it closes)."""
        self.lab._check_open()
        prefix = ["nsenter", f"--target={self.lab.pid}", "--net", "--mount"]
        prefix.append(f"--wd={cwd if cwd is not None else os.getcwd()}")
        if self.netns is not None:
            prefix += ["ip", "netns", "exec", self.netns]
        return [*prefix, *argv]

    def spawn(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` in this host (``subprocess.Popen`` keyword arguments apply). It runs
        in a session of its own, which the lab kills when it closes."""
        cwd = _own_session(kwargs)
        proc: subprocess.Popen[Any] = subprocess.Popen(
            self.command(argv, cwd=cwd), start_new_session=True, **kwargs
        )
        self.lab._track(proc)
        return proc

    async def open_process(self, argv: Sequence[str], **kwargs: Any) -> trio.Process:
        """``spawn`` for trio code: a ``trio.Process`` (``trio.lowlevel.open_process``)."""
        cwd = _own_session(kwargs)
        proc = await trio.lowlevel.open_process(
            self.command(argv, cwd=cwd), start_new_session=True, **kwargs
        )
        self.lab._track(proc)
        return proc

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = TIMEOUT,
        check: bool = True,
        input: str | None = None,
        **kwargs: Any,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in this host to completion, text output captured; the whole session
        is killed after ``timeout`` seconds (``subprocess.TimeoutExpired``). With ``check``,
        a nonzero exit raises ``subprocess.CalledProcessError``."""
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        proc = self.spawn(
            argv,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            text=True,
            **kwargs,
        )
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_session(proc.pid)
            proc.communicate()
            raise
        result = subprocess.CompletedProcess(list(argv), proc.returncode, out, err)
        if check:
            result.check_returncode()
        return result

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.address}>"


class Router(Host):
    """A namespace with a WAN link on the public segment and a LAN bridge of its own, NATing
    what it forwards from the LAN out of the WAN link."""

    def __init__(
        self, lab: Lab, name: str, wan: str, *, nat: str, index: int, hairpin: bool = False
    ) -> None:
        super().__init__(lab, name, wan, netns=name)
        self.nat = nat
        """``consistent`` or ``random``."""
        self.hairpin = hairpin
        """Whether hosts behind it reach each other at their public addresses."""
        self.wan = wan
        """Its public address."""
        self.index = index
        self.lan = f"192.168.{index}.1"
        """Its address on its LAN, 192.168.<index>.1/24: the hosts' gateway."""
        self.lan_blocked = False
        """Whether hosts behind it can reach each other directly (see ``Lab.block_lan``)."""
        self.hosts: list[Host] = []
        """The hosts behind it."""


def _own_session(kwargs: dict[str, Any]) -> str | None:
    """Take ``cwd`` out of Popen keyword arguments and refuse those that would keep the child
    in our own process group (the lab kills the child's whole session)."""
    for key in ("start_new_session", "process_group", "preexec_fn"):
        if key in kwargs:
            raise ValueError(f"natlab starts each process in its own session; drop {key}=")
    cwd = kwargs.pop("cwd", None)
    return None if cwd is None else os.fspath(cwd)


def _kill_session(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Lab:
    """A NAT lab in a fresh network namespace (see the module docstring). Use as a context
    manager or call ``close``. Not thread-safe."""

    def __init__(self, subnet: str = "23.0.0") -> None:
        if not re.fullmatch(r"\d{1,3}\.\d{1,3}\.\d{1,3}", subnet):
            raise ValueError(f"subnet is the first three octets, like 23.0.0: {subnet!r}")
        self.subnet = subnet
        self.hosts: list[Host] = []
        """Every namespace of the lab: the public host first, then in order of creation."""
        self.routers: list[Router] = []
        self._procs: list[subprocess.Popen[Any] | trio.Process] = []
        self._netns_ids: set[str] = set()
        self._next_octet = 2
        self._closed = False
        self._outer = _netns_id("self")
        self._holder = subprocess.Popen(
            [
                "unshare",
                "--net",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                _HOLDER_SH,
                sys.executable,
                _HOLDER,
                self._outer,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.pid = self._holder.pid
        """The holder's pid: ``nsenter --target PID --net --mount`` enters the lab."""
        atexit.register(self.close)
        try:
            self._await_ready()
            self._netns_ids.add(_netns_id(self.pid))
            if _netns_id(self.pid) == self._outer:  # the holder checks this too
                raise LabError("the lab's namespace is this process's own")
            self.public = Host(self, "public", f"{subnet}.1", netns=None)
            """The lab's root namespace, on the public bridge at <subnet>.1."""
            self.hosts.append(self.public)
            self._sh(
                f"""
                ip link add {BRIDGE} type bridge
                ip link set {BRIDGE} up
                ip addr add {subnet}.1/24 dev {BRIDGE}
                """
            )
        except BaseException:
            self.close()
            raise

    def _await_ready(self) -> None:
        out = self._holder.stdout
        assert out is not None
        ready, _, _ = select.select([out], [], [], TIMEOUT)
        line = out.readline() if ready else b""
        if line != b"ready\n":
            self._holder.kill()
            _, err = self._holder.communicate(timeout=TIMEOUT)
            raise LabError(
                "could not create the lab's namespaces: "
                + (err.decode(errors="replace").strip() or "timed out")
            )

    # -- building -------------------------------------------------------------------------

    def _sh(self, script: str) -> str:
        """Run a shell script (``set -ex``; lines stripped, so that here-documents end) in
        the lab's root namespace; its stdout."""
        self._check_open()
        script = "\n".join(line.strip() for line in script.splitlines() if line.strip())
        proc = subprocess.run(
            self.public.command(["sh", "-exc", script], cwd="/"),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-6:])
            raise LabError(f"lab setup failed (exit {proc.returncode}):\n{tail}")
        return proc.stdout

    def _check_open(self) -> None:
        if self._closed:
            raise LabError("the lab is closed")

    def _new_name(self, name: str) -> None:
        if not _NAME.fullmatch(name):
            raise ValueError(f"a host name is a letter then letters, digits, _ or -: {name!r}")
        if any(h.name == name for h in self.hosts):
            raise ValueError(f"the lab already has a host named {name!r}")

    def _new_public_address(self) -> int:
        octet = self._next_octet
        if octet > 254:
            raise LabError("the public segment is full")
        self._next_octet += 1
        return octet

    def _add_netns(self, name: str, script: str) -> None:
        """Create namespace ``name`` and run ``script`` to wire it up."""
        out = self._sh(
            f"""
            ip netns add {name}
            ip -n {name} link set lo up
            {script}
            stat -L -c %i /run/netns/{name}
            """
        )
        self._netns_ids.add(f"net:[{out.split()[-1]}]")

    def public_host(self, name: str) -> Host:
        """A new namespace on the public segment at the next free address, without NAT."""
        self._new_name(name)
        octet = self._new_public_address()
        address = f"{self.subnet}.{octet}"
        self._add_netns(
            name,
            f"""
            ip link add {BRIDGE}-{octet} type veth peer name eth0 netns {name}
            ip link set {BRIDGE}-{octet} master {BRIDGE} up
            ip -n {name} addr add {address}/24 dev eth0
            ip -n {name} link set eth0 up
            """,
        )
        host = Host(self, name, address, netns=name)
        self.hosts.append(host)
        return host

    def router(self, name: str, nat: str, *, hairpin: bool = False) -> Router:
        """A new router: WAN link on the public segment at the next free address, a LAN
        bridge at 192.168.<index>.1/24 (index: 1 for the first router, and so on), NAT of
        kind ``nat`` (``consistent`` or ``random``) for what it forwards out of the WAN, and
        with ``hairpin`` (consistent only) NAT hairpinning (see the module docstring)."""
        if nat not in NATS:
            raise ValueError(f"nat is one of {', '.join(NATS)}: {nat!r}")
        if hairpin and nat != "consistent":
            raise ValueError("hairpinning is for consistent NATs (a random one keeps no port)")
        self._new_name(name)
        index = len(self.routers) + 1
        if index > 254:
            raise LabError("too many routers")
        octet = self._new_public_address()
        wan = f"{self.subnet}.{octet}"
        masquerade = "masquerade fully-random" if nat == "random" else "masquerade"
        self._add_netns(
            name,
            f"""
            ip link add {BRIDGE}-{octet} type veth peer name wan netns {name}
            ip link set {BRIDGE}-{octet} master {BRIDGE} up
            ip -n {name} addr add {wan}/24 dev wan
            ip -n {name} link set wan up
            ip -n {name} link add lan type bridge
            ip -n {name} addr add 192.168.{index}.1/24 dev lan
            ip -n {name} link set lan up
            ip netns exec {name} sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
            ip netns exec {name} sh -c 'f=/proc/sys/net/bridge/bridge-nf-call-iptables;
                if [ -e $f ]; then echo 0 > $f; fi'
            ip netns exec {name} nft -f - <<'EOF'
            table ip nat {{
                chain post {{
                    type nat hook postrouting priority 100; policy accept;
                    oifname "wan" {masquerade}
                }}
            }}
            table ip filter {{
                chain guard {{
                    type filter hook forward priority 0; policy accept;
                    iifname "wan" ct state established,related accept
                    iifname "wan" drop
                }}
                chain inbound {{
                    type filter hook input priority 0; policy accept;
                    iifname "wan" ct state established,related accept
                    iifname "wan" drop
                }}
            }}
            EOF
            """,
        )
        if hairpin:
            self._sh(
                f"""
                ip netns exec {name} nft -f - <<'EOF'
                table ip hairpin {{
                    map ports {{
                        type inet_service : ipv4_addr; flags dynamic,timeout; timeout 180s;
                    }}
                    chain learn {{
                        type filter hook forward priority 10; policy accept;
                        oifname "wan" meta l4proto udp update @ports {{ udp sport : ip saddr }}
                    }}
                    chain pre {{
                        type nat hook prerouting priority -100; policy accept;
                        iifname "lan" ip daddr {wan} dnat ip to udp dport map @ports
                    }}
                    chain post {{
                        type nat hook postrouting priority 100; policy accept;
                        oifname "lan" ct status dnat snat ip to {wan}
                    }}
                }}
                EOF
                """
            )
        router = Router(self, name, wan, nat=nat, index=index, hairpin=hairpin)
        self.hosts.append(router)
        self.routers.append(router)
        return router

    def host(self, name: str, behind: Router) -> Host:
        """A new namespace on ``behind``'s LAN at 192.168.<index>.k, default route via the
        router."""
        if behind.lab is not self:
            raise ValueError("that router is in another lab")
        self._new_name(name)
        k = len(behind.hosts) + 2
        if k > 254:
            raise LabError(f"the LAN of {behind.name} is full")
        address = f"192.168.{behind.index}.{k}"
        r = behind.name
        self._add_netns(
            name,
            f"""
            ip -n {r} link add lan-{k} type veth peer name eth0 netns {name}
            ip -n {r} link set lan-{k} master lan up
            ip -n {name} addr add {address}/24 dev eth0
            ip -n {name} link set eth0 up
            ip -n {name} route add default via {behind.lan}
            """,
        )
        host = Host(self, name, address, netns=name, router=behind)
        behind.hosts.append(host)
        self.hosts.append(host)
        return host

    def block_lan(self, router: Router) -> None:
        """Stop hosts behind ``router`` from reaching each other directly, now and for hosts
        added later: the router's LAN bridge drops every frame it would forward from one port
        to another (an nftables ``bridge`` forward chain with policy drop). Hosts still reach
        the router, and through it the public segment."""
        if router.lab is not self:
            raise ValueError("that router is in another lab")
        if router.lan_blocked:
            return
        self._sh(
            f"""
            ip netns exec {router.name} nft -f - <<'EOF'
            table bridge isolation {{
                chain drop_between_ports {{
                    type filter hook forward priority 0; policy drop;
                }}
            }}
            EOF
            """
        )
        router.lan_blocked = True

    # -- inspecting -----------------------------------------------------------------------

    def routes(self) -> str:
        """Every namespace's links, addresses and routes, as text."""
        parts = []
        for host in self.hosts:
            parts.append(f"== {host.name} ({host.address}) ==")
            for argv in (["ip", "-br", "link"], ["ip", "-br", "-4", "addr"], ["ip", "route"]):
                parts.append(host.run([*argv]).stdout.rstrip())
        return "\n".join(parts) + "\n"

    def has_route_out(self) -> bool:
        """Whether any namespace of the lab could send to an address outside it: the root
        namespace must be a fresh one, and in every namespace ``ip route get 1.1.1.1`` must
        fail, except in a host behind a router, where it must go to its router."""
        if _netns_id(self.pid) == _netns_id("self"):
            return True
        for host in self.hosts:
            got = host.run(["ip", "-4", "route", "get", "1.1.1.1"], check=False)
            if host.gateway is None:
                if got.returncode == 0:
                    return True
            elif got.returncode != 0 or f" via {host.gateway} dev eth0 " not in got.stdout:
                return True
        return False

    def processes(self) -> list[int]:
        """The pids of the processes in the lab's namespaces (the holder among them)."""
        ids = self._netns_ids - {self._outer}
        try:
            ids.discard(_netns_id(1))
        except OSError:  # pid 1 may be out of reach (another user namespace)
            pass
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if _netns_id(entry) in ids:
                        pids.append(int(entry))
                except OSError:
                    pass
        return pids

    def layout(self) -> str:
        """The lab's hosts and addresses, one a line."""
        lines = [f"public        {self.public.address:<15} the lab's root namespace (bridge)"]
        for host in self.hosts[1:]:
            if isinstance(host, Router):
                blocked = ", LAN blocked" if host.lan_blocked else ""
                what = f"router, {host.nat} NAT, LAN {host.lan}/24{blocked}"
            elif host.router is not None:
                what = f"behind {host.router.name}"
            else:
                what = "public host"
            lines.append(f"{host.name:<13} {host.address:<15} {what}")
        return "\n".join(lines)

    # -- closing --------------------------------------------------------------------------

    def _track(self, proc: subprocess.Popen[Any] | trio.Process) -> None:
        self._procs = [p for p in self._procs if p.poll() is None]
        self._procs.append(proc)

    def close(self) -> None:
        """Kill every process started in the lab, then everything left in its namespaces,
        then the holder. Idempotent."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        for proc in self._procs:
            if proc.poll() is None:
                _kill_session(proc.pid)
        deadline = time.monotonic() + TIMEOUT
        for proc in self._procs:
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
        self._procs.clear()
        holder = self._holder
        if holder.poll() is None:
            assert holder.stdin is not None
            holder.stdin.close()  # the holder kills what is left in the lab, then exits
            try:
                holder.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                holder.kill()
                holder.wait(timeout=TIMEOUT)
        for pipe in (holder.stdin, holder.stdout, holder.stderr):
            if pipe is not None:
                pipe.close()
        for _ in range(100):  # in case the holder died before it could clean up
            pids = self.processes()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@functools.cache
def available() -> str | None:
    """None if a lab can be built here, else why not (checked by building a small one)."""
    if os.name != "posix" or not sys.platform.startswith("linux"):
        return "the NAT lab needs Linux network namespaces"
    if os.geteuid() != 0:
        return "the NAT lab needs root (network namespaces, nftables)"
    missing = [tool for tool in ("unshare", "nsenter", "ip", "nft") if shutil.which(tool) is None]
    if missing:
        return f"the NAT lab needs {', '.join(missing)} on PATH"
    try:
        with Lab() as lab:
            router = lab.router("probe", "consistent")
            lab.host("probed", router)
            lab.block_lan(router)
    except (LabError, OSError, subprocess.SubprocessError) as e:
        return f"cannot build a NAT lab here: {e}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hyperswarm.natlab",
        description="Build a demo NAT lab (router r1: consistent NAT, host a behind it; "
        "router r2: random NAT, host b behind it; public host 'public' at 23.0.0.1), print "
        "it, then run COMMAND in a host, or wait for Ctrl-C.",
    )
    parser.add_argument("--in", dest="host", default="public", help="host to run COMMAND in")
    parser.add_argument("--subnet", default="23.0.0", help="public segment (default 23.0.0)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    reason = available()
    if reason is not None:
        print(f"natlab: {reason}", file=sys.stderr)
        return 1
    with Lab(args.subnet) as lab:
        r1 = lab.router("r1", "consistent")
        r2 = lab.router("r2", "random")
        lab.host("a", r1)
        lab.host("b", r2)
        print(lab.layout(), file=sys.stderr)
        hosts = {h.name: h for h in lab.hosts}
        if args.host not in hosts:
            print(f"natlab: no host {args.host!r} in the demo lab", file=sys.stderr)
            return 2
        if command:
            return subprocess.run(hosts[args.host].command(command), check=False).returncode
        print(
            f"\nto run a command in host NAME: nsenter --target {lab.pid} --net --mount "
            "ip netns exec NAME COMMAND  (public: drop 'ip netns exec NAME')\n"
            "Ctrl-C (or SIGTERM) closes the lab",
            file=sys.stderr,
        )
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # close the lab on TERM too
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
