"""What kind of NAT a hole-punch socket sits behind (JS hyperdht ``lib/nat.js``).

The sampler pings a few DHT nodes from the socket and records the address each one saw the
ping come from (the ``to`` of its reply). Samples are counted twice, by host and by
(host, port), in lists kept sorted by hits. From them:

* the node is not firewalled: OPEN;
* fewer than 3 samples: UNKNOWN (no verdict yet);
* one (host, port) seen 3 times or more: CONSISTENT (the NAT keeps one mapping per socket);
* every (host, port) seen once: RANDOM (a new mapping per destination);
* the most seen twice: RANDOM when all samples share one host and there are more than 3,
  CONSISTENT when two different (host, port) were each seen twice, RANDOM once more than 4
  samples came in, and no verdict otherwise.

Its ``addresses`` are what the other side should punch at: none while UNKNOWN, the host
(port 0) for RANDOM, and for CONSISTENT every (host, port) seen twice or more, at least two.

Pings go to the newest nodes of the routing table, skipping the 5 newest once the table
holds 8 or more (new nodes are the likeliest to be gone or to be fakes), at most one ping per
node, four pings in all, tried twice. :attr:`Nat.analyzing` is set once a verdict can be
used: CONSISTENT or OPEN, or four samples, or every ping answered or failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from protomux.encoding import Address

from ..dht_rpc.errors import DHTError
from .constants import FIREWALL

if TYPE_CHECKING:
    from ..dht_rpc.io import Session
    from ..udx import UDXSocket
    from .host import ConnectionHost

__all__ = ["MIN_SAMPLES", "Nat", "Sample", "skip_newest"]

#: Pings one sampling round sends.
MIN_SAMPLES = 4


@dataclass(slots=True)
class Sample:
    host: str
    port: int
    hits: int = 1


def skip_newest(table_size: int) -> int:
    """How many of the newest nodes the sampler passes over in a table of ``table_size``."""
    return 5 if table_size >= 8 else 0


def _add_sample(samples: list[Sample], host: str, port: int) -> None:
    for i, s in enumerate(samples):
        if s.port != port or s.host != host:
            continue
        s.hits += 1
        while i > 0 and samples[i - 1].hits < s.hits:
            samples[i - 1], samples[i] = s, samples[i - 1]
            i -= 1
        return
    samples.append(Sample(host, port))


class Nat:
    """The NAT verdict of one socket; see the module docstring. ``firewalled`` is whether the
    node counts itself firewalled (not reachable by others)."""

    def __init__(
        self,
        host: ConnectionHost | None = None,
        session: Session | None = None,
        socket: UDXSocket | None = None,
        *,
        firewalled: bool | None = None,
    ) -> None:
        self.host = host
        self.session = session
        self.socket = socket
        self._firewalled = firewalled
        self.samples_host: list[Sample] = []
        self.samples_full: list[Sample] = []
        self._visited: dict[tuple[str, int], int] = {}  # 1: pinged, 2: sampled
        self._min_samples = MIN_SAMPLES
        self._auto_sampling = False
        self.sampled = 0
        self.firewall = FIREWALL.UNKNOWN if self.firewalled else FIREWALL.OPEN
        self.addresses: list[Address] | None = None
        self.frozen = False
        self.destroyed = False
        #: Set once the verdict is worth using (see the module docstring).
        self.analyzing = trio.Event()

    @property
    def firewalled(self) -> bool:
        if self._firewalled is not None:
            return self._firewalled
        return self.host.firewalled if self.host is not None else True

    # --- sampling -------------------------------------------------------------------------

    def auto_sample(self, retry: bool = True) -> None:
        """Ping up to four nodes from the socket (in the node's nursery) and sample their
        answers; once all are answered or failed with fewer than four samples, try once more
        with other nodes, then give up (``analyzing`` is set either way)."""
        if self._auto_sampling or self.host is None or self.destroyed:
            return
        self._auto_sampling = True
        host = self.host
        nodes = host.nodes_from_latest()
        skip = skip_newest(len(nodes))
        targets: list[Address] = []
        for node in nodes:
            if self.sampled + len(targets) >= self._min_samples:
                break
            if skip > 0:
                skip -= 1
                continue
            if (node.host, node.port) in self._visited:
                continue
            self._visited[(node.host, node.port)] = 1
            targets.append(node)
        host.nursery.start_soon(self._sample_round, targets, retry)

    async def _sample_round(self, targets: list[Address], retry: bool) -> None:
        async with trio.open_nursery() as nursery:
            for node in targets:
                nursery.start_soon(self._ping, node)
        if self.destroyed or self.sampled >= self._min_samples:
            return
        if retry:
            self._auto_sampling = False
            self.auto_sample(False)
            return
        self.analyzing.set()

    async def _ping(self, node: Address) -> None:
        assert self.host is not None
        try:
            reply = await self.host.request(
                command=0,
                internal=True,
                to=node,
                retry=False,
                session=self.session,
                socket=self.socket,
            )
        except DHTError:
            return
        if reply.to is not None and not self.destroyed:
            self.add(reply.to, reply.from_.address)

    def add(self, seen_as: Address, from_: Address) -> None:
        """A node at ``from_`` saw our packet come from ``seen_as``."""
        ref = (from_.host, from_.port)
        if self._visited.get(ref) == 2:
            return
        self._visited[ref] = 2
        _add_sample(self.samples_host, seen_as.host, 0)
        _add_sample(self.samples_full, seen_as.host, seen_as.port)
        self.sampled += 1
        if (self.sampled >= 3 or not self.firewalled) and not self.frozen:
            self.update()
        if self.firewall in (FIREWALL.CONSISTENT, FIREWALL.OPEN):
            self.analyzing.set()
        elif self.sampled >= self._min_samples:
            self.analyzing.set()

    # --- the verdict ----------------------------------------------------------------------

    def update(self) -> None:
        if self.firewalled and self.firewall == FIREWALL.OPEN:
            self.firewall = FIREWALL.UNKNOWN
        self._update_firewall()
        self._update_addresses()

    def freeze(self) -> None:
        """Keep the verdict as it is (it was told to the other side)."""
        self.frozen = True

    def unfreeze(self) -> None:
        self.frozen = False
        self._update_firewall()
        self._update_addresses()

    def destroy(self) -> None:
        self.destroyed = True
        self._auto_sampling = True
        self._min_samples = 0
        self.analyzing.set()

    def _update_firewall(self) -> None:
        if not self.firewalled:
            self.firewall = FIREWALL.OPEN
            return
        if self.sampled < 3:
            return
        full, hosts = self.samples_full, self.samples_host
        top = full[0].hits
        if top >= 3:
            self.firewall = FIREWALL.CONSISTENT
        elif top == 1:
            self.firewall = FIREWALL.RANDOM
        elif len(hosts) == 1 and self.sampled > 3:
            self.firewall = FIREWALL.RANDOM  # one host, two of four samples on other ports
        elif len(hosts) > 1 and full[1].hits > 1:
            self.firewall = FIREWALL.CONSISTENT  # two addresses seen twice each
        elif self.sampled > 4:
            self.firewall = FIREWALL.RANDOM  # no clear answer from all we asked

    def _update_addresses(self) -> None:
        if self.firewall == FIREWALL.UNKNOWN:
            self.addresses = None
        elif self.firewall == FIREWALL.RANDOM:
            self.addresses = [Address(self.samples_host[0].host, 0)]
        elif self.firewall == FIREWALL.CONSISTENT:
            out: list[Address] = []
            for s in self.samples_full:
                if s.hits >= 2 or len(out) < 2:
                    out.append(Address(s.host, s.port))
            self.addresses = out
