"""The Merkle tree of hypercore 11 with its proofs, sans I/O.

One import for the three modules that implement it:

* :mod:`hypercore.merkle_tree`: tree heads, append, roots, byte offsets, seek, truncate,
  missing nodes;
* :mod:`hypercore.merkle_proof`: :func:`generate_proof`, the responder's side of a request;
* :mod:`hypercore.merkle_verify`: :func:`verify_proof`, the requester's side of a ``data``
  message, and helpers for the default single-signer signature container.

Stored nodes are read through a :class:`NodeReader` (``get_node(index) -> TreeNode | None``);
nothing here writes: every operation returns what the caller must store or delete.
"""

from __future__ import annotations

from .merkle_proof import (
    IndexRequestLike,
    InvalidRequestError,
    RequestIndex,
    RequestSeek,
    RequestUpgrade,
    SeekRequestLike,
    UpgradeRequestLike,
    generate_proof,
)
from .merkle_tree import (
    AppendResult,
    HeadLike,
    MemoryNodeStore,
    MerkleError,
    MissingNodeError,
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
from .merkle_verify import (
    ForkMismatchError,
    InvalidProofError,
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
    "ForkMismatchError",
    "HeadLike",
    "IndexRequestLike",
    "InvalidProofError",
    "InvalidRequestError",
    "MemoryNodeStore",
    "MerkleError",
    "MissingNodeError",
    "NodeReader",
    "RequestIndex",
    "RequestSeek",
    "RequestUpgrade",
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
