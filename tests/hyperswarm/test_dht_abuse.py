"""A HyperDHT node under a flood from one address, on 127.0.0.1.

One peer sends tens of thousands of datagrams as fast as it can: garbage, truncated packets,
pings, FIND_NODE, DOWN_HINTs naming the node's neighbours, signed announces and values under
fresh keys, relay requests. What JS bounds stays bounded here: the node's own requests never
exceed the send window (at most 80 unanswered requests sent in one 750 ms slot, 160 over
four slots), DOWN_HINT checks run at
most 10 at a time, record and value caches stay within their limits, nothing raises, and the
node still answers afterwards. Meanwhile the node's own user asks for 600 pings at once: they
queue behind the send window instead of leaving at once.
"""

from __future__ import annotations

import os
import random
from typing import Any

import trio

from hyperswarm.dht_rpc import DOWN_HINT, FIND_NODE, PING, PING_NAT
from hyperswarm.dht_rpc.messages import Request, decode_packet, encode_request
from hyperswarm.dht_rpc.peer import encode_address
from hyperswarm.hyperdht import COMMANDS, HyperDHT
from hyperswarm.hyperdht import messages as m
from hyperswarm.hyperdht.persistent import sign_announce
from hyperswarm.hyperdht.router import FROM_CLIENT
from hyperswarm.testnet import Testnet as LocalTestnet
from protomux.encoding import Address

LOCAL = "127.0.0.1"
MAX_SIZE = 64
FLOOD = 6000  # datagrams of each kind
PINGS = 600


class _Recorder:
    """Wraps the node's transport: counts the requests it sends and, at each, what the send
    window holds (requests not yet answered, in all four slots and in the current one) and
    how many wait for room."""

    def __init__(self, io: Any) -> None:
        self.io = io
        self.inner = io.transport
        self.requests = 0
        self.max_total = 0
        self.max_slot = 0
        self.max_waiting = 0

    def send(self, socket: int, data: bytes, host: str, port: int, ttl: int) -> None:
        if data[:1] == b"\x03":
            window = self.io.congestion
            self.requests += 1
            self.max_total = max(self.max_total, window.total)
            self.max_slot = max(self.max_slot, window._window[window._i])
            self.max_waiting = max(self.max_waiting, len(self.io.pending))
        self.inner.send(socket, data, host, port, ttl)


async def test_a_flood_from_one_address_stays_bounded() -> None:
    rng = random.Random(7)
    async with LocalTestnet(4) as net:
        victim = HyperDHT(
            bootstrap=net.bootstrap_strings(),
            host=LOCAL,
            port=0,
            ephemeral=False,
            max_size=MAX_SIZE,
        )
        async with victim:
            with trio.fail_after(20):
                await victim.fully_bootstrapped()
            assert not victim.ephemeral and victim.persistent is not None
            core = victim.core
            recorder = _Recorder(core.io)
            core.io.transport = recorder
            port = victim.server_socket.address()[1]
            to = Address(LOCAL, port)
            neighbours = [Address(n.host, n.port) for n in core.table.to_array()]
            assert neighbours

            sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
            await sock.bind((LOCAL, 0))
            replies = 0
            max_checks = 0

            async def drain() -> None:
                nonlocal replies
                while True:
                    await sock.recv(65536)
                    replies += 1

            async def send(data: bytes) -> None:
                nonlocal max_checks
                await sock.sendto(data, (LOCAL, port))
                max_checks = max(max_checks, core._checks)
                await trio.lowlevel.checkpoint()

            def req(command: int, **kw: Any) -> bytes:
                return encode_request(Request(rng.randrange(65536), to, command, **kw))

            with trio.fail_after(10):
                # a token for the writes
                await send(req(COMMANDS.IMMUTABLE_GET, target=os.urandom(32)))
                token = None
                while token is None:
                    data, _ = await sock.recvfrom(65536)
                    packet = decode_packet(data)
                    token = getattr(packet, "token", None)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain)
                with trio.fail_after(120):
                    node_id = victim.id
                    assert node_id is not None
                    for i in range(FLOOD):
                        await send(os.urandom(rng.randrange(1, 80)))
                        valid = req(FIND_NODE, internal=True, target=os.urandom(32))
                        await send(valid[: rng.randrange(1, len(valid))])
                        await send(req(PING, internal=True))
                        await send(req(PING_NAT, internal=True, value=rng.randbytes(2)))
                        await send(valid)
                        down = rng.choice(neighbours)
                        await send(req(DOWN_HINT, internal=True, value=encode_address(*down)))
                        if i % 6 == 0:
                            kp = HyperDHT.key_pair(rng.randbytes(32))
                            target = os.urandom(32)
                            ann = m.Announce(m.Peer(kp.public_key, ()), None, None, 0)
                            sig = sign_announce(target, token, node_id, ann, kp)
                            value = m.ANNOUNCE.encode(m.Announce(ann.peer, None, sig, 0))
                            await send(
                                req(COMMANDS.ANNOUNCE, token=token, target=target, value=value)
                            )
                            await send(
                                req(
                                    COMMANDS.IMMUTABLE_PUT,
                                    token=token,
                                    target=HyperDHT.hash(b"v%d" % i),
                                    value=b"v%d" % i,
                                )
                            )
                            await send(
                                req(
                                    COMMANDS.PEER_HANDSHAKE,
                                    target=os.urandom(32),
                                    value=m.HANDSHAKE.encode(
                                        m.Handshake(FROM_CLIENT, b"noise", None, None)
                                    ),
                                )
                            )
                    # the node's own user wants far more requests than the window takes
                    async with trio.open_nursery() as pings:
                        for i in range(PINGS):
                            pings.start_soon(victim.ping, neighbours[i % len(neighbours)])
                    # the node still answers
                    await trio.sleep(1.0)
                    reply = await victim.ping(net.addresses()[0])
                    assert reply.error == 0
                nursery.cancel_scope.cancel()
            sock.close()

            print(
                f"\nflood: {replies} replies, {recorder.requests} requests sent, window at most "
                f"{recorder.max_total} (slot {recorder.max_slot}), {recorder.max_waiting} waiting, "
                f"DOWN_HINT checks <= {max_checks}, "
                f"records {len(victim.persistent.records)}, "
                f"immutables {len(victim.persistent.immutables)}, relayed {victim.router.relayed}"
            )
            assert replies > FLOOD  # it kept answering
            # the node's own requests never exceed the send window
            assert recorder.requests >= PINGS
            assert recorder.max_total <= 160 and recorder.max_slot <= 80
            assert recorder.max_waiting > 0  # the window did hold requests back
            assert max_checks <= 10
            persistent = victim.persistent
            assert len(persistent.records) <= 2 * MAX_SIZE + 1
            assert len(persistent.immutables) <= 2 * (MAX_SIZE // 2)
            assert len(victim.router.forwards) <= 2 * MAX_SIZE
            assert len(core.table) <= 256 * 20
