"""Plain-text tables for the benchmark runners."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

__all__ = ["alternate", "median_of", "table"]

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
