"""Run every workload in Python and in the pinned JS reference and compare the medians.

Usage: ``python -m benchmarks [--repeat N] [--only SUBSTRING] [--scale FLOAT] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import trio

from tests.interop.jsenv import ensure_installed, require_node

from .report import table
from .workloads import WORKLOADS, AsyncFactory, AsyncOp, BatchOp, Op

JS_DIR = Path(__file__).parent / "js"


@dataclass(frozen=True, slots=True)
class Result:
    workload: str
    ops: int
    python_ops_per_sec: float
    js_ops_per_sec: float

    @property
    def ratio(self) -> float:
        """Python speed over JS speed: above 1 means Python is faster."""
        return self.python_ops_per_sec / self.js_ops_per_sec


def _timed(op: Op, ops: int) -> float:
    start = time.perf_counter()
    for _ in range(ops):
        op()
    return ops / (time.perf_counter() - start)


async def _atimed(op: AsyncOp, ops: int) -> float:
    start = time.perf_counter()
    for _ in range(ops):
        await op()
    return ops / (time.perf_counter() - start)


async def _batch_timed(op: BatchOp, ops: int) -> float:
    start = time.perf_counter()
    await op.batch(ops)
    return ops / (time.perf_counter() - start)


async def _run_async(factory: AsyncFactory, ops: int, repeats: int) -> list[float]:
    async with factory() as op:
        timed = _batch_timed if isinstance(op, BatchOp) else _atimed
        await timed(op, ops)  # type: ignore[arg-type]
        return [await timed(op, ops) for _ in range(repeats)]  # type: ignore[arg-type]


def run_python(name: str, ops: int, repeats: int) -> list[float]:
    """Ops per second of ``repeats`` timed runs after one warm-up run."""
    workload = WORKLOADS[name]
    if workload.async_factory is not None:
        return trio.run(_run_async, workload.async_factory, ops, repeats)
    assert workload.factory is not None
    op = workload.factory()
    _timed(op, ops)
    return [_timed(op, ops) for _ in range(repeats)]


def run_js(node: str, name: str, ops: int, repeats: int) -> list[float]:
    """The same as :func:`run_python`, in one node process running ``js/bench.js``."""
    proc = subprocess.run(
        [node, "bench.js", name, str(ops), str(repeats)],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench.js {name} failed ({proc.returncode}):\n{proc.stderr}")
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    if line["workload"] != name or len(line["ops_per_sec"]) != repeats:
        raise RuntimeError(f"unexpected answer from bench.js: {line}")
    return [float(x) for x in line["ops_per_sec"]]


def format_table(results: Sequence[Result]) -> str:
    rows = [("workload", "Python ops/s", "JS ops/s", "Python/JS")]
    rows += [
        (
            r.workload,
            f"{r.python_ops_per_sec:,.0f}",
            f"{r.js_ops_per_sec:,.0f}",
            f"{r.ratio:.2f}",
        )
        for r in results
    ]
    return table(rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Python and JS ops/s medians per workload; Python/JS > 1: Python is faster.",
    )
    parser.add_argument(
        "--repeat", type=int, default=5, metavar="N", help="timed runs per side (default 5)"
    )
    parser.add_argument(
        "--only", default="", metavar="SUBSTRING", help="run the workloads whose name has SUBSTRING"
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, metavar="FLOAT", help="multiply the op counts"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.scale <= 0:
        parser.error("--repeat and --scale must be positive")
    names = [name for name in WORKLOADS if args.only in name]
    if not names:
        parser.error(f"no workload matches {args.only!r}; known: {', '.join(WORKLOADS)}")

    node, _ = require_node()
    ensure_installed(JS_DIR)
    results = []
    for name in names:
        ops = max(1, round(WORKLOADS[name].ops * args.scale))
        py = run_python(name, ops, args.repeat)
        js = run_js(node, name, ops, args.repeat)
        results.append(Result(name, ops, statistics.median(py), statistics.median(js)))

    if args.json:
        print(json.dumps([asdict(r) | {"ratio": r.ratio} for r in results], indent=2))
    else:
        print(format_table(results))


if __name__ == "__main__":
    main()
