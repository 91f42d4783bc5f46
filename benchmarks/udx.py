"""UDX stream throughput on 127.0.0.1, Python and udx-native on either end.

Each end runs in its own process (``python -m benchmarks.udx reader|writer BYTES`` or
``node js/udx.js reader|writer BYTES``); the writer sends ``--mb`` megabytes and ends, the
reader times from its first byte to the end. With ``--loss``, the packets of every pair go
through a relay in the driver process that drops that fraction of them (seeded); without,
the ends talk directly. Prints MB/s (10^6 bytes per second) for the four writer -> reader
pairs and each one's ratio to JS -> JS.

Usage: ``python -m benchmarks.udx [--mb N] [--repeat N] [--loss 0.01] [--pairs py-py,...]``.
"""

from __future__ import annotations

import argparse
import json
import random
import select
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import trio

from tests.interop.jsenv import ensure_installed, require_node

from .report import table

JS_DIR = Path(__file__).parent / "js"
SIDES = ("py", "js")
PAIRS = tuple(f"{w}-{r}" for w in SIDES for r in SIDES)
NAMES = {"py": "Python", "js": "JS"}


# --- one end (Python) ------------------------------------------------------------------------


async def _end(role: str, size: int) -> None:
    from hyperswarm.udx import UDXSocket

    async with UDXSocket() as sock:
        await sock.bind(0, "127.0.0.1")
        print(json.dumps({"port": sock.address()[1]}), flush=True)
        line = await trio.to_thread.run_sync(sys.stdin.readline)
        port = json.loads(line)["port"]
        reader = role == "reader"
        stream = sock.create_stream(2 if reader else 1)
        stream.connect(1 if reader else 2, port, "127.0.0.1")
        if reader:
            n, start = 0, 0.0
            while chunk := await stream.receive_some():
                if not start:
                    start = time.perf_counter()
                n += len(chunk)
            seconds = time.perf_counter() - start
            await stream.send_eof()
            print(json.dumps({"seconds": seconds, "bytes": n}), flush=True)
            await trio.sleep(0.3)
        else:
            chunk = bytes(65536)
            left = size
            while left > 0:
                await stream.send_all(chunk[: min(left, len(chunk))])
                left -= min(left, len(chunk))
            await stream.send_eof()
            while await stream.receive_some():
                pass
            conn = stream._conn
            if conn is not None:  # for whoever reads stderr
                print(
                    f"writer: {conn.retransmits} retransmits, cwnd {conn.cwnd:.0f}, "
                    f"srtt {conn.srtt}, rto {conn.rto}",
                    file=sys.stderr,
                )
            await trio.sleep(0.3)


# --- the driver ------------------------------------------------------------------------------


def _spawn(side: str, node: str, role: str, size: int) -> subprocess.Popen[bytes]:
    if side == "py":
        cmd = [sys.executable, "-m", "benchmarks.udx", role, str(size)]
    else:
        cmd = [node, str(JS_DIR / "udx.js"), role, str(size)]
    root = Path(__file__).resolve().parent.parent
    return subprocess.Popen(cmd, cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def _line(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError("no answer from a benchmark process")
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"a benchmark process ended (exit {proc.wait()})")
    result: dict[str, Any] = json.loads(line)
    return result


def _tell(proc: subprocess.Popen[bytes], port: int) -> None:
    stdin: IO[bytes] | None = proc.stdin
    assert stdin is not None
    stdin.write((json.dumps({"port": port}) + "\n").encode())
    stdin.flush()


def _relay_until(
    relay: socket.socket, ports: tuple[int, int], loss: float, reader: subprocess.Popen[bytes]
) -> dict[str, Any]:
    """Forward between the two ends (dropping ``loss`` of the packets) until the reader
    reports."""
    rng = random.Random(1)
    assert reader.stdout is not None
    deadline = time.monotonic() + 600
    out_fd, relay_fd = reader.stdout.fileno(), relay.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([relay_fd, out_fd], [], [], 1.0)
        if out_fd in ready:
            result: dict[str, Any] = json.loads(reader.stdout.readline())
            return result
        if relay_fd in ready:
            for _ in range(256):
                try:
                    data, addr = relay.recvfrom(65536)
                except BlockingIOError:
                    break
                if rng.random() >= loss:
                    relay.sendto(data, ("127.0.0.1", ports[1] if addr[1] == ports[0] else ports[0]))
    raise TimeoutError("the transfer did not finish")


def run_pair(pair: str, node: str, size: int, loss: float) -> float:
    """MB/s of one transfer."""
    writer_side, reader_side = pair.split("-")
    writer = _spawn(writer_side, node, "writer", size)
    reader = _spawn(reader_side, node, "reader", size)
    try:
        wport = _line(writer, 30)["port"]
        rport = _line(reader, 30)["port"]
        if loss > 0:
            relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                # as large as the ends': the relay should lose what it is told to, not what
                # overflows its buffers
                relay.setsockopt(socket.SOL_SOCKET, option, 4 * 1024 * 1024)
            relay.bind(("127.0.0.1", 0))
            relay.setblocking(False)
            via = relay.getsockname()[1]
            _tell(writer, via)
            _tell(reader, via)
            result = _relay_until(relay, (wport, rport), loss, reader)
            relay.close()
        else:
            _tell(writer, rport)
            _tell(reader, wport)
            result = _line(reader, 600)
        if result["bytes"] != size:
            raise RuntimeError(f"{pair}: {result['bytes']} bytes arrived of {size}")
        return float(size / result["seconds"] / 1e6)
    finally:
        for p in (writer, reader):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def main(argv: Sequence[str] | None = None) -> None:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in ("reader", "writer"):
        trio.run(_end, args_list[0], int(args_list[1]))
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks.udx", description=__doc__)
    parser.add_argument("--mb", type=float, default=50.0, help="megabytes per transfer")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--loss", type=float, default=0.0, help="fraction dropped by a relay")
    parser.add_argument("--pairs", default=",".join(PAIRS))
    args = parser.parse_args(args_list)
    node, _ = require_node()
    ensure_installed(JS_DIR)
    size = int(args.mb * 1e6)
    pairs = args.pairs.split(",")
    results = {
        p: statistics.median(run_pair(p, node, size, args.loss) for _ in range(args.repeat))
        for p in pairs
    }
    base = results.get("js-js")
    rows = [["writer -> reader", "MB/s", "vs JS -> JS"]]
    for p in pairs:
        w, r = p.split("-")
        ratio = f"{results[p] / base:.2f}" if base else "-"
        rows.append([f"{NAMES[w]} -> {NAMES[r]}", f"{results[p]:.1f}", ratio])
    print(f"{args.mb:g} MB, loss {args.loss:g}")
    print(table(rows))


if __name__ == "__main__":
    main()
