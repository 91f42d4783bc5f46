"""A local HyperDHT network: N nodes on one host, the first a bootstrapper (JS
``hyperdht/testnet.js``).

From Python::

    async with Testnet(5) as testnet:
        async with HyperDHT(bootstrap=testnet.bootstrap) as dht:
            ...

From a shell, for demos and for JS peers (``--bootstrap`` takes what it prints)::

    python -m hyperswarm.testnet --size 5 --port 49737

prints the bootstrap list as one JSON line (``["127.0.0.1:49737"]``, what a JS ``new
HyperDHT({ bootstrap })`` takes; joined with commas it is what ``--bootstrap`` takes) and runs
until interrupted.

Every node is persistent and not firewalled, as in the JS testnet. Nodes bind to
``host`` (127.0.0.1 by default): nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from types import TracebackType
from typing import Self

import trio

from protomux.encoding import Address

from .hyperdht import HyperDHT

__all__ = ["Testnet", "main"]


class Testnet:
    """``size`` HyperDHT nodes on ``host``; the first on ``port`` (0: any free port)."""

    def __init__(
        self,
        size: int = 10,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bootstrap: Sequence[str | tuple[str, int]] = (),
    ) -> None:
        self.size = size
        self.host = host
        self.port = port
        self.nodes: list[HyperDHT] = []
        self.bootstrap: list[tuple[str, int]] = [
            (b[0], int(b[1])) if isinstance(b, tuple) else _split(b) for b in bootstrap
        ]
        self._stack: list[HyperDHT] = []

    async def __aenter__(self) -> Self:
        try:
            if self.size > 0:
                await self._start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def _start(self) -> None:
        first = HyperDHT(
            ephemeral=False,
            firewalled=False,
            bootstrap=list(self.bootstrap),
            port=self.port,
            host=self.host,
            any_port=self.port == 0,
            _known_host=self.host,
        )
        await self._enter(first)
        if not self.bootstrap:
            self.bootstrap.append((self.host, first.server_socket.address()[1]))
        while len(self.nodes) < self.size:
            node = HyperDHT(
                ephemeral=False,
                firewalled=False,
                bootstrap=list(self.bootstrap),
                host=self.host,
            )
            await self._enter(node)

    async def _enter(self, node: HyperDHT) -> None:
        await node.__aenter__()
        self._stack.append(node)
        with trio.fail_after(30):
            await node.fully_bootstrapped()
        self.nodes.append(node)

    def bootstrap_strings(self) -> list[str]:
        return [f"{h}:{p}" for h, p in self.bootstrap]

    def addresses(self) -> list[Address]:
        return [Address(self.host, n.server_socket.address()[1]) for n in self.nodes]

    async def aclose(self) -> None:
        while self._stack:
            node = self._stack.pop()
            await node.__aexit__(None, None, None)
        self.nodes.clear()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _split(entry: str) -> tuple[str, int]:
    host, _, port = entry.rpartition(":")
    return host, int(port)


async def _serve(size: int, host: str, port: int, bootstrap: list[str]) -> None:
    async with Testnet(size, host=host, port=port, bootstrap=bootstrap) as testnet:
        print(json.dumps(testnet.bootstrap_strings()), flush=True)
        print(
            f"testnet of {size} nodes on {host}; join it with"
            f" --bootstrap {','.join(testnet.bootstrap_strings())}",
            file=sys.stderr,
            flush=True,
        )
        await trio.sleep_forever()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m hyperswarm.testnet",
        description="Run a local HyperDHT testnet and print its bootstrap list (JSON).",
    )
    parser.add_argument("--size", type=int, default=10, help="number of nodes (default 10)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port of the first node (any)")
    parser.add_argument("--bootstrap", default="", help="join an existing network (host:port,...)")
    args = parser.parse_args(argv)
    bootstrap = [b for b in args.bootstrap.split(",") if b]
    try:
        trio.run(_serve, args.size, args.host, args.port, bootstrap)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
