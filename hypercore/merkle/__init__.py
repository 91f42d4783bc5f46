"""The Merkle tree of hypercore 11 with its proofs, sans I/O.

One import for the three modules that implement it:

* :mod:`hypercore.merkle.tree`: tree heads, append, roots, byte offsets, seek, truncate,
  missing nodes;
* :mod:`hypercore.merkle.proof`: :func:`generate_proof`, the responder's side of a request;
* :mod:`hypercore.merkle.verify`: :func:`verify_proof`, the requester's side of a ``data``
  message, and helpers for the default single-signer signature container.

Stored nodes are read through a :class:`NodeReader` (``get_node(index) -> TreeNode | None``);
nothing here writes: every operation returns what the caller must store or delete.

Failures raise the :mod:`hypercore.errors` classes JS ``lib/merkle-tree.js`` throws, without
a discovery key (the caller adds it with
:meth:`~hypercore.errors.HypercoreError.with_discovery_key`).
"""

from __future__ import annotations

from .proof import (
    IndexRequestLike,
    SeekRequestLike,
    UpgradeRequestLike,
    generate_proof,
)
from .tree import (
    AppendResult,
    HeadLike,
    MemoryNodeStore,
    NodeReader,
    SeekPending,
    TreeHead,
    TruncateResult,
    append,
    block_byte_offset,
    block_node,
    byte_offset,
    byte_range,
    clearable_nodes,
    head_at,
    max_missing_nodes,
    missing_nodes,
    missing_nodes_until,
    parent_node,
    roots_at,
    seek,
    total_size,
    total_span,
    tree_hash,
    truncate,
)
from .verify import (
    SignatureVerifier,
    VerifiedProof,
    decode_default_signature,
    default_signature_verifier,
    encode_default_signature,
    sign_default,
    upgrade_tree,
    verify_proof,
)

__all__ = [
    "AppendResult",
    "HeadLike",
    "IndexRequestLike",
    "MemoryNodeStore",
    "NodeReader",
    "SeekPending",
    "SeekRequestLike",
    "SignatureVerifier",
    "TreeHead",
    "TruncateResult",
    "UpgradeRequestLike",
    "VerifiedProof",
    "append",
    "block_byte_offset",
    "block_node",
    "byte_offset",
    "byte_range",
    "clearable_nodes",
    "decode_default_signature",
    "default_signature_verifier",
    "encode_default_signature",
    "generate_proof",
    "head_at",
    "max_missing_nodes",
    "missing_nodes",
    "missing_nodes_until",
    "parent_node",
    "roots_at",
    "seek",
    "sign_default",
    "total_size",
    "total_span",
    "tree_hash",
    "truncate",
    "upgrade_tree",
    "verify_proof",
]
