"""The Python side of each benchmark workload; ``js/bench.js`` holds the JS twins.

A workload is a factory that does its setup and returns the operation to time; the
runner calls that operation ``ops`` times per timed run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hypercore import crypto
from hypercore.crypto import TreeNode
from hypercore.messages import DATA, Data, DataBlock
from protomux import encoding as c

__all__ = ["WORKLOADS", "Op", "Workload"]

Op = Callable[[], object]
"""One operation of a workload."""

# The same inputs as js/bench.js.
BLOCK = bytes(i & 255 for i in range(1024))
SEED = bytes(range(32))
MESSAGE = bytes((i * 7) & 255 for i in range(112))


@dataclass(frozen=True, slots=True)
class Workload:
    """A factory returning the operation to time, and how many operations one run does."""

    factory: Callable[[], Op]
    ops: int


def _proof_nodes() -> tuple[TreeNode, ...]:
    """The sibling path of leaf 2000 (flat-tree index 4000): one node per depth 0..9."""
    nodes = []
    for depth in range(10):
        offset = (2000 >> depth) ^ 1
        index = (2 * offset + 1) * 2**depth - 1
        nodes.append(TreeNode(index, 1024 * 2**depth, bytes([depth + 1]) * 32))
    return tuple(nodes)


def data_message() -> Op:
    msg = Data(request=7, fork=0, block=DataBlock(index=1000, value=BLOCK, nodes=_proof_nodes()))
    return lambda: c.decode(DATA, c.encode(DATA, msg))


def leaf_hash() -> Op:
    return lambda: crypto.data(BLOCK)


def ed25519_sign() -> Op:
    secret_key = crypto.key_pair(SEED).secret_key
    return lambda: crypto.sign(MESSAGE, secret_key)


def ed25519_verify() -> Op:
    public_key, secret_key = crypto.key_pair(SEED)
    signature = crypto.sign(MESSAGE, secret_key)
    if not crypto.verify(MESSAGE, signature, public_key):
        raise AssertionError("bad signature")
    return lambda: crypto.verify(MESSAGE, signature, public_key)


WORKLOADS: dict[str, Workload] = {
    "data-message-1k": Workload(data_message, 10_000),
    "leaf-hash-1k": Workload(leaf_hash, 200_000),
    "ed25519-sign": Workload(ed25519_sign, 20_000),
    "ed25519-verify": Workload(ed25519_verify, 10_000),
}
"""Workload name (as ``js/bench.js`` knows it) -> Python workload."""
