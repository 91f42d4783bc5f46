"""Child process of the crash-safety test: appends to a core until it is killed.

python -m tests.hypercore.crash_writer <directory> <seed>
"""

from __future__ import annotations

import hashlib
import random
import sys
from pathlib import Path

import trio

from hypercore import Hypercore, crypto

SEED = bytes(range(32))


def expected_block(index: int) -> bytes:
    """Block ``index`` of the crash test's core: deterministic, of varying size."""
    return hashlib.sha256(index.to_bytes(8, "little")).digest() * (1 + index % 40)


async def main(directory: Path, seed: int) -> None:
    rng = random.Random(seed)
    async with Hypercore(directory, key_pair=crypto.key_pair(SEED)) as core:
        print("ready", core.length, flush=True)
        for _ in range(1_000_000):  # bounded; the parent kills us long before
            n = rng.choice([1, 1, 1, 5, 50])
            start = core.length
            await core.append([expected_block(start + i) for i in range(n)])


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]), int(sys.argv[2]))
