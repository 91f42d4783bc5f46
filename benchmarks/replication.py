"""Hypercore replication throughput between two processes, Python and JS on either side.

A writer process appends ``--blocks`` 1 KiB blocks (1,000 per append) to a new core on
RocksDB, then replicates it to every TCP connection on 127.0.0.1 over a secret-stream. A
reader process opens an empty core of that key, connects, and times from the connect until
``download(0, blocks)`` is done: every block verified and stored. The driver runs the four
writer -> reader pairs (Python and JS, ``js/replication.js``) and prints the median MB/s
(10^6 bytes of block data per second) of each and its ratio to JS -> JS.

Usage::

    python -m benchmarks.replication [--repeat N] [--scale FLOAT] [--pairs py-py,js-py] [--json]
    python -m benchmarks.replication writer DIR BLOCKS         # prints {"port": P, "key": HEX}
    python -m benchmarks.replication reader DIR PORT KEY BLOCKS  # prints {"seconds": S}
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

import trio

from hypercore import Hypercore
from hyperswarm import SecretStream
from tests.interop.jsenv import ensure_installed, require_node

from .report import table
from .workloads import BLOCK

JS_DIR = Path(__file__).parent / "js"
ROOT = Path(__file__).resolve().parent.parent

BLOCKS = 100_000
BATCH = 1000
SIDES = ("py", "js")
PAIRS = tuple(f"{w}-{r}" for w in SIDES for r in SIDES)
NAMES = {"py": "Python", "js": "JS"}


# --- the two processes (Python side) -------------------------------------------------------


async def _serve_connection(core: Hypercore, tcp: trio.abc.Stream) -> None:
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        async with SecretStream(tcp, is_initiator=False) as stream, trio.open_nursery() as n:
            core.replicate(stream, nursery=n)  # the nursery ends with the stream


async def writer(directory: Path, blocks: int) -> None:
    """Append ``blocks`` blocks, print the port and key, serve until killed."""
    async with Hypercore(directory) as core:
        for i in range(0, blocks, BATCH):
            await core.append([BLOCK] * min(BATCH, blocks - i))
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        assert core.key is not None
        print(json.dumps({"port": port, "key": core.key.hex()}), flush=True)
        await trio.serve_listeners(partial(_serve_connection, core), listeners)


async def reader(directory: Path, port: int, key: str, blocks: int) -> None:
    """Download ``blocks`` blocks of ``key`` from ``port``; print the seconds it took."""
    async with Hypercore(directory, key) as core:
        peer = trio.Event()
        core.on("peer-add", lambda _peer: peer.set())
        start = time.perf_counter()
        tcp = await trio.open_tcp_stream("127.0.0.1", port)
        async with SecretStream(tcp, is_initiator=True) as stream:
            core.replicate(stream)
            await peer.wait()
            await core.update()
            if core.length < blocks:
                raise RuntimeError(f"the writer has {core.length} blocks, not {blocks}")
            await core.download(0, blocks).done()
            seconds = time.perf_counter() - start
            if core.contiguous_length < blocks:
                raise RuntimeError(f"only {core.contiguous_length} blocks stored")
    print(json.dumps({"seconds": seconds}), flush=True)


# --- the driver ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    pair: str
    blocks: int
    seconds: float

    @property
    def mb_per_sec(self) -> float:
        return self.blocks * len(BLOCK) / self.seconds / 1e6


def _command(side: str, node: str, *args: object) -> tuple[list[str], Path]:
    if side == "py":
        return [sys.executable, "-m", "benchmarks.replication", *map(str, args)], ROOT
    return [node, "replication.js", *map(str, args)], JS_DIR


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    """The first stdout line of ``proc`` as JSON (within ``timeout`` seconds)."""
    name = str(proc.args)
    assert proc.stdout is not None
    buf = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise TimeoutError(f"no answer within {timeout:.0f} s from {name}")
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"{name} exited ({proc.wait()}) without answering")
            buf += chunk
    return dict(json.loads(buf.split(b"\n", 1)[0]))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def _tmpdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="hypertrio-bench-repl-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _writer(side: str, node: str, blocks: int, timeout: float) -> Iterator[tuple[int, str]]:
    """A running writer process: yields its port and key."""
    with _tmpdir() as directory, tempfile.TemporaryFile() as errors:
        cmd, cwd = _command(side, node, "writer", directory, blocks)
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=errors)
        try:
            try:
                line = _read_line(proc, timeout)
            except (TimeoutError, RuntimeError) as exc:
                raise RuntimeError(f"{exc}\n{_tail(errors)}") from None
            yield int(line["port"]), str(line["key"])
        finally:
            _stop(proc)
            if proc.stdout is not None:
                proc.stdout.close()


def _tail(errors: IO[bytes]) -> str:
    errors.seek(0)
    return errors.read().decode(errors="replace")[-4000:]


def _read(side: str, node: str, port: int, key: str, blocks: int, timeout: float) -> float:
    """Run one reader process; the seconds it took to download everything."""
    with _tmpdir() as directory:
        cmd, cwd = _command(side, node, "reader", directory, port, key, blocks)
        try:
            proc = subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{cmd} took more than {timeout:.0f} s") from exc
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd} failed ({proc.returncode}):\n{proc.stderr.decode()}")
        return float(json.loads(proc.stdout.decode().strip().splitlines()[-1])["seconds"])


def run(
    pairs: Sequence[str], blocks: int, repeats: int, timeout: float, *, verbose: bool = False
) -> list[Result]:
    """Median seconds of ``repeats`` downloads per pair; one writer process per writer side
    serves all its readers, which run in turn (each with a new, empty core)."""
    node, _ = require_node()
    if any("js" in pair for pair in pairs):
        ensure_installed(JS_DIR)
    times: dict[str, list[float]] = {pair: [] for pair in pairs}
    for w in SIDES:
        readers = [r for r in SIDES if f"{w}-{r}" in pairs]
        if not readers:
            continue
        with _writer(w, node, blocks, timeout) as (port, key):
            for i in range(repeats):
                for r in readers:
                    seconds = _read(r, node, port, key, blocks, timeout)
                    times[f"{w}-{r}"].append(seconds)
                    if verbose:
                        print(f"  {w}-{r} run {i + 1}: {seconds:.3f} s", file=sys.stderr)
    return [Result(pair, blocks, statistics.median(times[pair])) for pair in pairs]


def _label(pair: str) -> str:
    w, r = pair.split("-")
    return f"{NAMES[w]} -> {NAMES[r]}"


def format_table(results: Sequence[Result]) -> str:
    base = {r.pair: r for r in results}.get("js-js")
    rows = [("writer -> reader", "blocks", "seconds", "MB/s", "/ JS->JS")]
    rows += [
        (
            _label(r.pair),
            f"{r.blocks:,}",
            f"{r.seconds:.2f}",
            f"{r.mb_per_sec:.2f}",
            f"{r.mb_per_sec / base.mb_per_sec:.2f}" if base else "-",
        )
        for r in results
    ]
    return table(rows)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["writer"] and len(argv) == 3:
        trio.run(writer, Path(argv[1]), int(argv[2]))
        return
    if argv[:1] == ["reader"] and len(argv) == 5:
        trio.run(reader, Path(argv[1]), int(argv[2]), argv[3], int(argv[4]))
        return
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.replication",
        description="Hypercore replication over TCP + secret-stream between two processes: "
        "median MB/s of each writer -> reader pair and its ratio to JS -> JS.",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, metavar="N", help="downloads per pair (default 3)"
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        metavar="FLOAT",
        help=f"multiply the block count ({BLOCKS:,})",
    )
    parser.add_argument(
        "--pairs",
        default=",".join(PAIRS),
        metavar="LIST",
        help=f"writer-reader pairs to run (default {','.join(PAIRS)})",
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, metavar="SECONDS", help="per process step"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every run")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.scale <= 0:
        parser.error("--repeat and --scale must be positive")
    pairs = [p for p in PAIRS if p in args.pairs.split(",")]
    if not pairs or set(args.pairs.split(",")) - set(PAIRS):
        parser.error(f"--pairs takes a comma-separated list of {', '.join(PAIRS)}")
    blocks = max(1, round(BLOCKS * args.scale))
    results = run(pairs, blocks, args.repeat, args.timeout, verbose=args.verbose)
    if args.json:
        base = {r.pair: r for r in results}.get("js-js")
        out = [
            asdict(r)
            | {"mb_per_sec": r.mb_per_sec}
            | ({"ratio_to_js_js": r.mb_per_sec / base.mb_per_sec} if base else {})
            for r in results
        ]
        print(json.dumps(out, indent=2))
    else:
        print(format_table(results))


if __name__ == "__main__":
    main()
