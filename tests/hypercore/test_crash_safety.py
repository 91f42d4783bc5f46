"""A writer killed with SIGKILL at random moments never leaves a core that fails to open."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from hypercore import Hypercore

from .crash_writer import expected_block

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 8


def kill_writer_at_random(directory: Path, seed: int, rng: random.Random) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.hypercore.crash_writer", str(directory), str(seed)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # the child has the core open and starts appending
        assert line.startswith("ready"), line
        time.sleep(rng.uniform(0.01, 0.4))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


async def test_sigkill_during_appends_leaves_a_verified_prefix(tmp_path: Path) -> None:
    rng = random.Random(1234)
    lengths = []
    for round_ in range(ROUNDS):
        kill_writer_at_random(tmp_path, round_, rng)
        # Reopening verifies the stored head's tree hash and signature.
        async with Hypercore(tmp_path) as core:
            assert core.length >= (lengths[-1] if lengths else 0)
            assert core.contiguous_length == core.length
            for i in range(core.length):
                assert await core.get(i, wait=False) == expected_block(i)
            assert not await core.has(core.length)
            lengths.append(core.length)
    assert lengths[-1] > 0, lengths
    print("lengths after each kill:", lengths)
