"""A long-running HyperDHT node, as the JS ``hyperdht`` command.

    python -m hyperswarm.hyperdht --port 49737 --bootstrap 127.0.0.1:49738,127.0.0.1:49739
    python -m hyperswarm.hyperdht --bootstrap '' --host 127.0.0.1 --port 49737

Without ``--bootstrap`` the node joins the public HyperDHT network. With an empty
``--bootstrap`` it joins nobody and runs as a bootstrap node of a new network on
``--host``/``--port`` (persistent from the start, as JS ``--bootstrap --host``). It prints
its address and its state changes, and runs until interrupted.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import trio

from .constants import DEFAULT_PORT
from .dht import HyperDHT


async def _run(port: int, host: str | None, bootstrap: list[str] | None) -> None:
    if bootstrap == []:
        node = HyperDHT(
            bootstrap=[],
            port=port or DEFAULT_PORT,
            host=host or "127.0.0.1",
            any_port=False,
            ephemeral=False,
            firewalled=False,
            _known_host=host or "127.0.0.1",
        )
        kind = "bootstrap node"
    else:
        node = HyperDHT(
            bootstrap=bootstrap,
            port=port or DEFAULT_PORT,
            host=host or "0.0.0.0",
            any_port=not port,
        )
        kind = "node"
    async with node:
        print(f"{kind} bound to {node.server_socket.address()}", flush=True)
        core = node.core
        became_persistent, became_ephemeral = core.on_persistent, core.on_ephemeral

        def on_persistent() -> None:
            became_persistent()
            print("node is persistent, joining remote routing tables", flush=True)

        def on_ephemeral() -> None:
            became_ephemeral()
            print("node is ephemeral", flush=True)

        core.on_persistent = on_persistent
        core.on_ephemeral = on_ephemeral
        await node.fully_bootstrapped()
        print(f"fully started ({len(node.to_array())} nodes known)", flush=True)
        await trio.sleep_forever()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m hyperswarm.hyperdht", description="Run a HyperDHT node."
    )
    parser.add_argument("--port", type=int, default=0, help=f"UDP port (default {DEFAULT_PORT})")
    parser.add_argument("--host", default=None, help="address to bind")
    parser.add_argument(
        "--bootstrap",
        default=None,
        help="host:port,... to join (empty: join nobody; absent: the public network)",
    )
    args = parser.parse_args(argv)
    bootstrap = None if args.bootstrap is None else [b for b in args.bootstrap.split(",") if b]
    try:
        trio.run(_run, args.port, args.host, bootstrap)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
