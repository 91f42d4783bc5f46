"""Plain-text tables for the benchmark runners."""

from __future__ import annotations

import json
import statistics
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.interop.jsenv import require_node

__all__ = ["JS_DIR", "alternate", "median_of", "run_js", "table"]

#: The pinned JS side of the benchmarks.
JS_DIR = Path(__file__).parent / "js"

Run = dict[str, float]


def table(rows: Sequence[Sequence[str]]) -> str:
    """``rows[0]`` is the header; the first column is left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def alternate(
    python: Callable[[], Run], js: Callable[[], Run], repeat: int
) -> tuple[list[Run], list[Run]]:
    """Python and JS runs taken in turn, so that a slow spell of the machine slows both sides."""
    py_runs: list[Run] = []
    js_runs: list[Run] = []
    for _ in range(repeat):
        py_runs.append(python())
        js_runs.append(js())
    return py_runs, js_runs


def median_of(runs: Sequence[Run], key: str) -> float:
    """The median of one figure over several runs."""
    return statistics.median(r[key] for r in runs)


def run_js(script: str, *args: object, timeout: float = 600) -> Run:
    """Run ``benchmarks/js/<script>`` with ``args``; its last output line is a JSON object of
    figures."""
    node, _ = require_node()
    out = subprocess.run(
        [node, str(JS_DIR / script), *map(str, args)],
        capture_output=True,
        text=True,
        check=True,
        timeout=timeout,
    )
    result: Run = json.loads(out.stdout.strip().splitlines()[-1])
    return result
