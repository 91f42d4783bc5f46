"""Chat peers in processes of their own for the chat tests: examples/chat.py and the headless
JS app (tests/interop/js/chat.js) take the same command line and print the same lines."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parent.parent
CHAT_PY = ROOT / "examples" / "chat.py"
CHAT_JS = ROOT / "tests" / "interop" / "js" / "chat.js"


class ChatProcess:
    """One chat peer: ``await start(nursery)``, :meth:`say` lines, :meth:`expect` output."""

    def __init__(
        self,
        kind: str,
        storage: Path,
        bootstrap: Sequence[str],
        *,
        topic: str | None = None,
        nick: str | None = None,
        node: str = "node",
    ) -> None:
        args = [*([topic] if topic else []), "-s", str(storage), "--bootstrap", ",".join(bootstrap)]
        if nick is not None:
            args += ["--nick", nick]
        if kind == "python":
            self.cmd = [sys.executable, str(CHAT_PY), *args]
        elif kind == "js":
            self.cmd = [node, str(CHAT_JS), *args]
        else:
            raise ValueError(kind)
        self.kind = kind
        self.lines: list[str] = []
        self._changed = trio.Event()
        self._proc: trio.Process | None = None
        self.ended = False

    async def start(self, nursery: trio.Nursery) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self._proc = await trio.lowlevel.open_process(
            self.cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=str(CHAT_JS.parent) if self.kind == "js" else str(ROOT),
            env=env,
        )
        nursery.start_soon(self._read)

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        buffer = b""
        async for chunk in self._proc.stdout:
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            if complete:
                self.lines.extend(line.decode("utf-8", "replace") for line in complete)
                self._changed.set()
                self._changed = trio.Event()
        self.ended = True
        self._changed.set()

    async def say(self, line: str | bytes) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        data = line.encode() if isinstance(line, str) else line
        await self._proc.stdin.send_all(data + b"\n")

    async def expect(
        self, pattern: str | Callable[[str], bool], *, since: int = 0, timeout: float = 30.0
    ) -> int:
        """The index of the first output line from ``since`` on that matches (a regex that
        must match the whole line, or a predicate)."""
        match: Callable[[str], bool]
        if isinstance(pattern, str):
            regex = re.compile(pattern)

            def match(line: str) -> bool:
                return regex.fullmatch(line) is not None
        else:
            match = pattern
        with trio.move_on_after(timeout):
            while True:
                for i in range(since, len(self.lines)):
                    if match(self.lines[i]):
                        return i
                if self.ended:
                    tail = "\n".join(line[:200] for line in self.lines[-20:])
                    raise AssertionError(f"{self.kind} chat ended without {pattern!r}:\n{tail}")
                await self._changed.wait()
        tail = "\n".join(line[:200] for line in self.lines[since:][-30:])
        raise AssertionError(f"{self.kind} chat printed no {pattern!r} in {timeout} s:\n{tail}")

    def value(self, prefix: str) -> str:
        """The rest of the first output line starting with ``prefix``."""
        for line in self.lines:
            if line.startswith(prefix):
                return line[len(prefix) :]
        raise AssertionError(f"no line starting with {prefix!r}")

    async def quit(self) -> None:
        """End input (the chat leaves the room and exits)."""
        assert self._proc is not None
        if self._proc.stdin is not None:
            await self._proc.stdin.aclose()
        with trio.move_on_after(20):
            await self._proc.wait()
        if self._proc.returncode is None:
            self._proc.kill()
            await self._proc.wait()

    def kill(self) -> None:
        """SIGKILL: no goodbye to peers, no unannounce, storage left as it is."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()


class LocalTestnet:
    """``python -m hyperswarm.testnet`` as the README's recipe runs it (on a free port)."""

    def __init__(self, size: int = 5) -> None:
        self.cmd = [sys.executable, "-m", "hyperswarm.testnet", "--size", str(size), "--port", "0"]
        self.bootstrap: list[str] = []
        self._proc: trio.Process | None = None

    async def start(self) -> list[str]:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self._proc = await trio.lowlevel.open_process(
            self.cmd, stdout=subprocess.PIPE, cwd=str(ROOT), env=env
        )
        assert self._proc.stdout is not None
        data = b""
        with trio.fail_after(30):
            while b"\n" not in data:
                chunk = await self._proc.stdout.receive_some()
                if not chunk:
                    raise AssertionError("the testnet ended before printing its bootstrap list")
                data += chunk
        self.bootstrap = [str(b) for b in json.loads(data.split(b"\n", 1)[0])]
        return self.bootstrap

    async def stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            with trio.move_on_after(10):
                await self._proc.wait()
            if self._proc.returncode is None:
                self._proc.kill()
                await self._proc.wait()
