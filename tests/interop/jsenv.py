"""Installs the pinned JS packages and talks to the long-lived node helper.

Used by the interop tests (``tests/interop/js``) and by the benchmarks (``benchmarks/js``).
Node and npm are required: their absence is an error, never a reason to skip.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import selectors
import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

INTEROP_JS = Path(__file__).resolve().parent / "js"
_STAMP = ".hypertrio-lock-sha256"


class JSEnvironmentError(RuntimeError):
    """node or npm is missing, or the pinned packages could not be installed."""


def require_node() -> tuple[str, str]:
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        raise JSEnvironmentError("node and npm are required for the interop tests and benchmarks")
    return node, npm


def ensure_installed(directory: Path) -> None:
    """``npm ci`` in ``directory`` unless its node_modules already match its lockfile."""
    _, npm = require_node()
    lock = directory / "package-lock.json"
    if not lock.exists():
        raise JSEnvironmentError(f"{lock} is missing: the JS packages must be pinned")
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    stamp = directory / "node_modules" / _STAMP
    if stamp.exists() and stamp.read_text().strip() == digest:
        return
    proc = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise JSEnvironmentError(f"npm ci failed in {directory}:\n{proc.stdout}\n{proc.stderr}")
    stamp.write_text(digest)


class JSError(Exception):
    """An exception thrown by the JS side for one call."""


def to_wire(value: Any) -> Any:
    """Python value -> JSON value understood by helper.js."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$b": bytes(value).hex()}
    if isinstance(value, float):
        if math.isnan(value):
            return {"$f": "nan"}
        if math.isinf(value):
            return {"$f": "inf" if value > 0 else "-inf"}
        if value == 0 and math.copysign(1.0, value) < 0:
            return {"$f": "-0"}
        return value
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    return value


def from_wire(value: Any) -> Any:
    """JSON value written by helper.js -> Python value."""
    if isinstance(value, list):
        return [from_wire(v) for v in value]
    if isinstance(value, dict):
        if "$b" in value and len(value) == 1:
            return bytes.fromhex(value["$b"])
        if "$f" in value and len(value) == 1:
            return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "-0": -0.0}[value["$f"]]
        return {k: from_wire(v) for k, v in value.items()}
    return value


class JSHelper:
    """A node process running ``helper.js``; every request batches many calls."""

    def __init__(self, directory: Path = INTEROP_JS, *, timeout: float = 120.0) -> None:
        node, _ = require_node()
        self.timeout = timeout
        self._proc = subprocess.Popen(
            [node, "helper.js"],
            cwd=directory,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._proc.stdout is not None
        self._fd = self._proc.stdout.fileno()
        os.set_blocking(self._fd, False)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._fd, selectors.EVENT_READ)
        self._buf = bytearray()
        self._next_id = 0
        if json.loads(self._read_line()) != {"ready": True}:
            raise JSEnvironmentError("helper.js did not start")

    def _read_line(self) -> bytes:
        deadline = time.monotonic() + self.timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self._sel.select(left):
                raise TimeoutError("helper.js did not answer in time")
            chunk = os.read(self._fd, 1 << 20)
            if not chunk:
                raise JSEnvironmentError(f"helper.js exited with {self._proc.wait()}")
            self._buf += chunk
        i = self._buf.index(b"\n")
        line = bytes(self._buf[:i])
        del self._buf[: i + 1]
        return line

    def call(self, fn: str, calls: Iterable[Sequence[Any]]) -> list[Any]:
        """Run ``fn`` once per argument list; a JS exception comes back as a JSError value."""
        self._next_id += 1
        req = {"id": self._next_id, "fn": fn, "calls": [to_wire(list(a)) for a in calls]}
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(req).encode() + b"\n")
        self._proc.stdin.flush()
        resp = json.loads(self._read_line())
        if "error" in resp:
            raise JSEnvironmentError(resp["error"])
        if resp["id"] != self._next_id:
            raise JSEnvironmentError(f"answer {resp['id']} to request {self._next_id}")
        return [from_wire(r["ok"]) if "ok" in r else JSError(r["err"]) for r in resp["results"]]

    def __call__(self, fn: str, *args: Any) -> Any:
        """Run ``fn(*args)`` once; a JS exception is raised as JSError."""
        (result,) = self.call(fn, [args])
        if isinstance(result, JSError):
            raise result
        return result

    def close(self) -> None:
        self._sel.close()
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
