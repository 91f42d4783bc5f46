"""HyperDHT connections on a local testnet of 5 nodes on 127.0.0.1, Python and JS side by side.

Each side starts its own testnet in one process (Python: ``hyperswarm.testnet``; JS:
``hyperdht/testnet``), a server node and a client node. The client makes ``--connections``
connections to the server one after the other, each: connect, send one message, wait for its
echo, close (connections per second). Then it sends ``--megabytes`` MiB one way over one
connection, a secret-stream on UDX (bytes per second, until the server has them all).

Usage: ``python -m benchmarks.connect [--connections N] [--megabytes N] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import trio

from tests.interop.jsenv import ensure_installed

from .report import JS_DIR, alternate, median_of, run_js, table

CHUNK = 64 * 1024


async def _python(connections: int, megabytes: int) -> dict[str, float]:
    from hyperswarm.hyperdht import HyperDHT
    from hyperswarm.secret_stream import SecretStream
    from hyperswarm.testnet import Testnet

    total = megabytes * 1024 * 1024
    sink: dict[str, trio.Event | int] = {}

    async def handler(stream: SecretStream) -> None:
        done = sink.pop("done", None)
        if isinstance(done, trio.Event):
            got = 0
            while got < total:
                data = await stream.receive_some()
                if not data:
                    break
                got += len(data)
            done.set()
            return
        async for message in stream:
            await stream.send(message)

    async with Testnet(5) as net:
        boot = net.bootstrap_strings()
        async with (
            HyperDHT(bootstrap=boot, host="127.0.0.1", port=0) as server_node,
            HyperDHT(bootstrap=boot, host="127.0.0.1", port=0) as client_node,
        ):
            await server_node.fully_bootstrapped()
            await client_node.fully_bootstrapped()
            key_pair = HyperDHT.key_pair(b"\x07" * 32)
            server = server_node.create_server(on_connection=handler)
            await server.listen(key_pair)

            start = time.perf_counter()
            for _ in range(connections):
                async with await client_node.connect(key_pair.public_key) as stream:
                    await stream.send(b"ping")
                    await stream.receive()
            per_second = connections / (time.perf_counter() - start)

            done = trio.Event()
            sink["done"] = done
            stream = await client_node.connect(key_pair.public_key)
            async with stream:
                chunk = bytes(CHUNK)
                start = time.perf_counter()
                sent = 0
                while sent < total:
                    await stream.send_all(chunk)
                    sent += len(chunk)
                await done.wait()
                bytes_per_second = total / (time.perf_counter() - start)
            await server.close()
    return {"connectionsPerSecond": per_second, "bytesPerSecond": bytes_per_second}


def _js(connections: int, megabytes: int) -> dict[str, float]:
    return run_js("connect.js", connections, megabytes)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.connect", description=__doc__)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--megabytes", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    ensure_installed(JS_DIR)

    py_runs, js_runs = alternate(
        lambda: trio.run(_python, args.connections, args.megabytes),
        lambda: _js(args.connections, args.megabytes),
        args.repeat,
    )

    py_c, js_c = (
        median_of(py_runs, "connectionsPerSecond"),
        median_of(js_runs, "connectionsPerSecond"),
    )
    py_b, js_b = median_of(py_runs, "bytesPerSecond"), median_of(js_runs, "bytesPerSecond")
    rows = [
        ["workload (5-node local testnet)", "Python", "JS", "Python/JS"],
        ["connections per second", f"{py_c:.0f}", f"{js_c:.0f}", f"{py_c / js_c:.2f}"],
        [
            "secret-stream on UDX, MB/s",
            f"{py_b / 1e6:.1f}",
            f"{js_b / 1e6:.1f}",
            f"{py_b / js_b:.2f}",
        ],
    ]
    print(table(rows))
    print("(Python/JS above 1 means Python is faster)")


if __name__ == "__main__":
    main()
