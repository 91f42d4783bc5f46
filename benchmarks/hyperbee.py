"""Hyperbee side by side with JS hyperbee 2.27.3, on a bee in a new RocksDB directory.

Keys are the first 16 bytes of SHA-256 of the little-endian 32-bit index, values 100 bytes
(the index, then zeros). Five phases, each timed on its own, the same work on both sides
(``js/hyperbee.js``): single puts on a new bee; puts in batches on a second bee; random gets
on the second; a full range scan of it; range queries of ``--query-size`` keys from random
keys. Prints the median operations per second of each side and the Python/JS ratio.

Usage: ``python -m benchmarks.hyperbee [--repeat N] [--scale FLOAT] [--json]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import trio

from hyperbee import Hyperbee
from hypercore import Hypercore
from tests.interop.jsenv import ensure_installed, require_node

from .report import table

JS_DIR = Path(__file__).parent / "js"

SINGLE = 20_000
BATCHED = 200_000
BATCH = 1_000
GETS = 50_000
QUERIES = 1_000
QUERY_SIZE = 100
PHASES = ("single_puts", "batched_puts", "random_gets", "full_scan", "range_queries")


def key(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(4, "little")).digest()[:16]


def value(i: int) -> bytes:
    return i.to_bytes(4, "little") + bytes(96)


def indexes(n: int, bound: int, seed: int) -> Iterator[int]:
    """The same pseudo-random indexes as the JS side (a 32-bit LCG)."""
    x = seed
    for _ in range(n):
        x = (x * 1664525 + 1013904223) & 0xFFFFFFFF
        yield x % bound


@dataclass(frozen=True, slots=True)
class Sizes:
    single: int
    batched: int
    gets: int
    queries: int

    def ops(self, phase: str) -> int:
        return {
            "single_puts": self.single,
            "batched_puts": self.batched,
            "random_gets": self.gets,
            "full_scan": self.batched,
            "range_queries": self.queries,
        }[phase]


async def run_python(directory: Path, sizes: Sizes) -> dict[str, float]:
    """Seconds per phase."""
    out: dict[str, float] = {}
    async with Hypercore(directory / "single") as core, Hyperbee(core) as a:
        t = time.perf_counter()
        for i in range(sizes.single):
            await a.put(key(i), value(i))
        out["single_puts"] = time.perf_counter() - t

    async with Hypercore(directory / "batched") as core, Hyperbee(core) as b:
        t = time.perf_counter()
        for start in range(0, sizes.batched, BATCH):
            batch = b.batch()
            for j in range(start, min(start + BATCH, sizes.batched)):
                await batch.put(key(j), value(j))
            await batch.flush()
        out["batched_puts"] = time.perf_counter() - t

        t = time.perf_counter()
        for i in indexes(sizes.gets, sizes.batched, 1):
            e = await b.get(key(i))
            if e is None or int.from_bytes(e.value[:4], "little") != i:
                raise AssertionError(f"bad get {i}")
        out["random_gets"] = time.perf_counter() - t

        t = time.perf_counter()
        n = 0
        async for _ in b.read():
            n += 1
        if n != sizes.batched:
            raise AssertionError(f"the scan saw {n}")
        out["full_scan"] = time.perf_counter() - t

        t = time.perf_counter()
        for i in indexes(sizes.queries, sizes.batched, 2):
            m = 0
            async for _ in b.read(gte=key(i), limit=QUERY_SIZE):
                m += 1
            if m == 0:
                raise AssertionError("an empty range")
        out["range_queries"] = time.perf_counter() - t
    return out


def run_js(node: str, directory: Path, sizes: Sizes) -> dict[str, float]:
    proc = subprocess.run(
        [
            node,
            str(JS_DIR / "hyperbee.js"),
            str(directory),
            str(sizes.single),
            str(sizes.batched),
            str(BATCH),
            str(sizes.gets),
            str(sizes.queries),
            str(QUERY_SIZE),
        ],
        capture_output=True,
        check=False,
        timeout=3600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"js/hyperbee.js failed:\n{proc.stderr.decode(errors='replace')}")
    result: dict[str, float] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return result


@dataclass(frozen=True, slots=True)
class Result:
    phase: str
    ops: int
    python_ops_per_sec: float
    js_ops_per_sec: float

    @property
    def ratio(self) -> float:
        return self.python_ops_per_sec / self.js_ops_per_sec


def run(sizes: Sizes, repeat: int) -> list[Result]:
    node, _ = require_node()
    ensure_installed(JS_DIR)
    py: dict[str, list[float]] = {p: [] for p in PHASES}
    js: dict[str, list[float]] = {p: [] for p in PHASES}
    for _ in range(repeat):
        for side, runs in (("py", py), ("js", js)):
            directory = Path(tempfile.mkdtemp(prefix=f"bench-bee-{side}-"))
            try:
                if side == "py":
                    seconds = trio.run(run_python, directory, sizes)
                else:
                    seconds = run_js(node, directory, sizes)
            finally:
                shutil.rmtree(directory, ignore_errors=True)
            for phase in PHASES:
                runs[phase].append(sizes.ops(phase) / seconds[phase])
    return [
        Result(p, sizes.ops(p), statistics.median(py[p]), statistics.median(js[p])) for p in PHASES
    ]


def format_table(results: Sequence[Result]) -> str:
    rows = [["phase", "ops", "Python ops/s", "JS ops/s", "Python/JS"]]
    for r in results:
        rows.append(
            [
                r.phase,
                f"{r.ops:,}",
                f"{r.python_ops_per_sec:,.0f}",
                f"{r.js_ops_per_sec:,.0f}",
                f"{r.ratio:.2f}",
            ]
        )
    return table(rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hyperbee", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs per side (median)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    def scaled(n: int) -> int:
        return max(1, int(n * args.scale))

    sizes = Sizes(scaled(SINGLE), scaled(BATCHED), scaled(GETS), scaled(QUERIES))
    results = run(sizes, args.repeat)
    if args.json:
        print(json.dumps([asdict(r) | {"ratio": r.ratio} for r in results], indent=2))
    else:
        print(format_table(results))


if __name__ == "__main__":
    main()
