"""A query's default commit (``commit=True``, JS ``commit: true``) sends the query's command
again to each of the closest nodes with the token that node gave: plain dht-rpc nodes on
127.0.0.1 with a custom command that answers without a token and records a write with one."""

from __future__ import annotations

import socket
from collections.abc import Callable

import trio

from hyperswarm.dht_rpc import DHT, IncomingRequest

WRITE = 42


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_the_default_commit_writes_with_each_nodes_token() -> None:
    written: list[tuple[int, bytes | None]] = []

    def handler_for(i: int) -> Callable[[IncomingRequest], bool]:
        def on_request(req: IncomingRequest) -> bool:
            if req.command != WRITE:
                return False
            if req.token is not None:
                written.append((i, req.value))
            req.reply(None)
            return True

        return on_request

    port = _free_udp_port()
    boot = [f"127.0.0.1:{port}"]
    with trio.fail_after(30):
        async with DHT.bootstrapper(port, "127.0.0.1") as first:
            first.on_request(handler_for(0))
            nodes = []
            for i in range(1, 5):
                node = DHT(bootstrap=boot, host="127.0.0.1", ephemeral=False, firewalled=False)
                await node.__aenter__()
                nodes.append(node)
                node.on_request(handler_for(i))
                await node.fully_bootstrapped()
            try:
                async with DHT(bootstrap=boot, host="127.0.0.1") as client:
                    await client.fully_bootstrapped()
                    q = client.query(bytes(32), WRITE, b"value", commit=True)
                    await q.finished()
                    assert q.closest_replies
                    assert len(written) == len(q.closest_replies)
                    assert all(value == b"value" for _, value in written)
            finally:
                for node in reversed(nodes):
                    await node.__aexit__(None, None, None)
