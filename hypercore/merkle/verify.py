"""Proof verification: the requester's side of a hypercore ``data`` message.

:func:`verify_proof` checks a decoded ``data`` message against the reader's tree (JS
``MerkleTree.verify`` with ``verifyTree``/``verifyUpgrade``, and the checks of ``Core.verify``)
and returns what to store. It changes nothing itself; the signature is checked through a
callback so that the caller's manifest decides what a valid signature is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from protomux import encoding as c

from .. import crypto
from .. import flat_tree as flat
from ..crypto import TreeNode
from ..errors import (
    BadArgumentError,
    ForkMismatchError,
    InvalidChecksumError,
    InvalidOperationError,
    InvalidProofError,
    InvalidSignatureError,
)
from ..manifest import Prologue
from ..wire import Data, DataUpgrade
from .tree import HeadLike, NodeReader, TreeHead, block_node, parent_node

__all__ = [
    "SignatureVerifier",
    "VerifiedProof",
    "decode_default_signature",
    "default_signature_verifier",
    "encode_default_signature",
    "sign_default",
    "upgrade_tree",
    "verify_proof",
]

SignatureVerifier = Callable[[bytes, int, int, bytes | None], bool]
"""``verify(tree_hash, length, fork, signature) -> bool``; ``signature`` may be None."""


@dataclass(frozen=True, slots=True)
class VerifiedProof:
    """What a verified proof adds: ``nodes`` to store and, for an upgrade, the new ``head``.

    ``head`` is None when the proof does not move the tree (no upgrade, or an upgrade to a
    length whose roots the reader already has).
    """

    nodes: tuple[TreeNode, ...]
    head: TreeHead | None = None


class _NodeQueue:
    """Proof nodes taken in order, each required to be at the expected index; ``extra`` is
    a computed node that may stand in for one of them."""

    __slots__ = ("extra", "i", "length", "nodes")

    def __init__(self, nodes: Sequence[TreeNode], extra: TreeNode | None = None) -> None:
        self.i = 0
        self.nodes = nodes
        self.extra = extra
        self.length = len(nodes) + (0 if extra is None else 1)

    def shift(self, index: int) -> TreeNode:
        extra = self.extra
        if extra is not None and extra.index == index:
            self.extra = None
            self.length -= 1
            return extra
        if self.i >= len(self.nodes):
            raise InvalidOperationError(f"Expected node {index}, got (nil)")
        node = self.nodes[self.i]
        self.i += 1
        if node.index != index:
            raise InvalidOperationError(f"Expected node {index}, got node {node.index}")
        self.length -= 1
        return node


class _Batch:
    """A tree being grown from the reader's head by the nodes of a proof."""

    __slots__ = ("byte_length", "fork", "length", "nodes", "roots", "signature", "upgraded")

    def __init__(self, head: HeadLike) -> None:
        self.roots = list(head.roots)
        self.length = head.length
        self.byte_length = head.byte_length
        self.fork = head.fork
        self.signature = head.signature
        self.nodes: list[TreeNode] = []
        self.upgraded = False

    def append_root(self, node: TreeNode, ite: flat.Iterator) -> None:
        """Add a new rightmost root at the iterator and merge it with its left siblings."""
        self.upgraded = True
        self.length += ite.factor // 2
        self.byte_length += node.size
        roots = self.roots
        roots.append(node)
        self.nodes.append(node)
        while len(roots) > 1:
            right = roots[-1]
            left = roots[-2]
            if ite.sibling() != left.index:
                ite.sibling()
                break
            parent = parent_node(ite.parent(), right, left)
            self.nodes.append(parent)
            roots.pop()
            roots.pop()
            roots.append(parent)

    def head(self) -> TreeHead:
        return TreeHead(tuple(self.roots), self.length, self.byte_length, self.fork, self.signature)


def _verify_path(
    ite: flat.Iterator,
    start: TreeNode,
    q: _NodeQueue,
    nodes: list[TreeNode],
    reader: NodeReader | None = None,
) -> TreeNode:
    """Hash up from ``start`` with the proof's nodes. With a ``reader``, stop at the first
    node the reader already stores: the caller compares the two, and the proof's nodes
    above it are not needed (the stored tree already proves the rest)."""
    root = start
    nodes.append(root)
    while q.length > 0:
        if reader is not None and reader.get_node(root.index) is not None:
            return root
        node = q.shift(ite.sibling())
        root = parent_node(ite.parent(), root, node)
        nodes.append(node)
        nodes.append(root)
    return root


def _verify_tree(
    data: Data, nodes: list[TreeNode], reader: NodeReader | None = None
) -> TreeNode | None:
    """The root the block/hash and seek parts lead to (not yet trusted), or None. With a
    ``reader`` (only for a proof with no seek and no upgrade part), the node returned may be
    a lower one that the reader already stores."""
    if data.block is not None and data.hash is not None:
        raise InvalidOperationError("A proof has either a block or a hash part, not both")
    seek_nodes = data.seek.nodes if data.seek is not None else ()
    root: TreeNode | None = None
    if seek_nodes:
        ite = flat.Iterator(seek_nodes[0].index)
        q = _NodeQueue(seek_nodes)
        root = _verify_path(ite, q.shift(ite.index), q, nodes)

    if data.block is not None:
        ite = flat.Iterator(2 * data.block.index)
        q = _NodeQueue(data.block.nodes, root)
        return _verify_path(ite, block_node(ite.index, data.block.value), q, nodes, reader)
    if data.hash is not None:
        ite = flat.Iterator(data.hash.index)
        q = _NodeQueue(data.hash.nodes, root)
        return _verify_path(ite, q.shift(ite.index), q, nodes, reader)
    return root


def _verify_upgrade(
    fork: int,
    upgrade: DataUpgrade,
    block_root: TreeNode | None,
    batch: _Batch,
    prologue: Prologue | None,
) -> bool:
    """Grow ``batch`` by an upgrade proof; True if ``block_root`` was used (and so is trusted
    once the new head's signature is)."""
    if prologue is not None:
        start, length = upgrade.start, upgrade.length
        if start < prologue.length and (start != 0 or length < prologue.length):
            raise InvalidProofError("Upgrade does not satisfy prologue")

    q = _NodeQueue(upgrade.nodes, block_root)
    grow = len(batch.roots) > 0
    i = 0
    to = 2 * (upgrade.start + upgrade.length)
    ite = flat.Iterator(0)
    while ite.full_root(to):
        if i < len(batch.roots) and batch.roots[i].index == ite.index:
            i += 1
            ite.next_tree()
            continue
        if grow:
            grow = False
            root = ite.index
            if i < len(batch.roots):
                # siblings that grow the last local root into this one
                ite.seek(batch.roots[-1].index)
                while ite.index != root:
                    batch.append_root(q.shift(ite.sibling()), ite)
                ite.next_tree()
                continue
        batch.append_root(q.shift(ite.index), ite)
        ite.next_tree()

    if prologue is not None and batch.length == prologue.length:
        if prologue.hash != crypto.tree(batch.roots):
            raise InvalidProofError("Invalid hash")

    extra = upgrade.additional_nodes
    if not batch.roots:
        if extra:
            raise InvalidOperationError(f"Unexpected node: {extra[0].index}")
    else:
        ite.seek(batch.roots[-1].index)
        i = 0
        while i < len(extra) and extra[i].index == ite.sibling():
            batch.append_root(extra[i], ite)
            i += 1
        while i < len(extra):
            node = extra[i]
            i += 1
            while node.index != ite.index:
                if ite.factor == 2:
                    raise InvalidOperationError(f"Unexpected node: {node.index}")
                ite.left_child()
            batch.append_root(node, ite)
            ite.sibling()

    batch.signature = upgrade.signature
    batch.fork = fork
    return q.extra is None


def _dedupe(nodes: list[TreeNode]) -> tuple[TreeNode, ...]:
    seen: dict[int, TreeNode] = {}
    for n in nodes:
        seen.setdefault(n.index, n)
    return tuple(seen.values())


def _same(a: TreeNode, b: TreeNode) -> bool:
    return a.size == b.size and bytes(a.hash) == bytes(b.hash)


def verify_proof(
    reader: NodeReader,
    head: HeadLike,
    data: Data,
    verify_signature: SignatureVerifier,
    *,
    prologue: Prologue | None = None,
    stop_at_stored: bool = False,
) -> VerifiedProof:
    """Check a ``data`` message against the reader's tree; return what to store.

    ``reader`` and ``head`` are the reader's stored nodes and current head; ``prologue`` is
    its manifest's prologue, if any. Block values are checked as given (decrypt after).
    Raises the :mod:`hypercore.errors` class the JS raises for the same proof (nodes missing
    or out of place: ``InvalidOperationError``; hashes that do not match the reader's tree:
    ``InvalidChecksumError``; ``InvalidSignatureError``; an upgrade that breaks the prologue:
    ``InvalidProofError``), and :class:`~hypercore.errors.ForkMismatchError` when
    ``data.fork != head.fork``.

    For a proof of a tree with no local state at all (JS ``verifyFullyRemote``), pass an empty
    reader and ``TreeHead(fork=data.fork)``.

    ``stop_at_stored``: a plain block or hash proof (no seek, no upgrade) is checked only up
    to the first node the reader stores, and the proof's nodes above it are ignored. As
    safe (stored nodes are verified), much cheaper when downloading neighbouring blocks,
    but not JS's behaviour for a malformed proof: it may be accepted (its needed part is
    right) or rejected with another error code than JS gives.
    """
    if data.fork != head.fork:
        raise ForkMismatchError(f"Proof is for fork {data.fork}, the tree is at {head.fork}")
    batch = _Batch(head)
    # A plain block or hash proof may stop at the first node we already store.
    plain = stop_at_stored and data.upgrade is None and data.seek is None
    unverified = _verify_tree(data, batch.nodes, reader if plain else None)
    if data.upgrade is not None and _verify_upgrade(
        data.fork, data.upgrade, unverified, batch, prologue
    ):
        unverified = None

    if unverified is not None:
        stored = reader.get_node(unverified.index)
        if stored is None:
            raise InvalidOperationError(
                f"Expected tree node {unverified.index} from storage, got (nil)"
            )
        if not _same(stored, unverified):
            raise InvalidChecksumError(f"Invalid checksum at node {unverified.index}")

    upgraded = batch.upgraded
    if upgraded and batch.length <= head.length:
        # Not an upgrade if the reader already has this tree.
        for r in batch.roots:
            stored = reader.get_node(r.index)
            if stored is None or not _same(stored, r):
                break
        else:
            upgraded = False

    if not upgraded:
        return VerifiedProof(_dedupe(batch.nodes))

    new = batch.head()
    if not verify_signature(new.hash(), new.length, new.fork, new.signature):
        raise InvalidSignatureError("Proof contains an invalid signature")
    return VerifiedProof(_dedupe(batch.nodes), new)


def upgrade_tree(
    head: HeadLike, upgrade: DataUpgrade, fork: int, *, prologue: Prologue | None = None
) -> tuple[TreeHead, tuple[TreeNode, ...]]:
    """Grow ``head`` by the nodes of an upgrade proof, without checking any signature.

    Returns the grown (unverified) head, whose signature and fork are the upgrade's, and the
    nodes it adds. This is how multi-signer patches are applied before a signature check (JS
    ``MerkleTreeBatch.verifyUpgrade``). Raises as :func:`verify_proof`.
    """
    batch = _Batch(head)
    _verify_upgrade(fork, upgrade, None, batch, prologue)
    return batch.head(), _dedupe(batch.nodes)


# --- the default single-signer signature container ---------------------------------------------

_CONTAINER_HEAD = b"\x01\x00"
_CONTAINER_TAIL = b"\x00\x00"


def encode_default_signature(signature: bytes) -> bytes:
    """The 68-byte multisig container a v1 single-signer core stores and sends."""
    if len(signature) != 64:
        raise BadArgumentError("an Ed25519 signature is 64 bytes")
    return _CONTAINER_HEAD + bytes(signature) + _CONTAINER_TAIL


def decode_default_signature(container: bytes) -> bytes | None:
    """The signature of signer 0 in a multisig container, or None if there is none.

    Read as the JS reads it for a single-signer manifest without patches: the whole container
    must decode, only the first input counts, its patch length and the patch nodes are
    ignored, and so are trailing bytes.
    """
    state = c.State(bytes(container), 0, len(container))
    try:
        count = c.uint.decode(state)
        inputs = []
        for _ in range(count):
            signer = c.uint.decode(state)
            signature = c.fixed64.decode(state)
            c.uint.decode(state)
            inputs.append((signer, signature))
        for _ in range(c.uint.decode(state)):
            c.uint.decode(state)
            c.uint.decode(state)
            c.fixed32.decode(state)
    except c.DecodeError:
        return None
    if not inputs or inputs[0][0] != 0:
        return None
    return bytes(inputs[0][1])


def sign_default(
    tree_hash: bytes, length: int, fork: int, manifest_hash: bytes, secret_key: bytes
) -> bytes:
    """Sign a tree state as a default single-signer (v1 manifest) core does: the container."""
    signable = crypto.tree_signable(manifest_hash, tree_hash, length, fork)
    return encode_default_signature(crypto.sign(signable, secret_key))


def default_signature_verifier(manifest_hash: bytes, public_key: bytes) -> SignatureVerifier:
    """A :data:`SignatureVerifier` for a core with the default single-signer manifest."""

    def verify(tree_hash: bytes, length: int, fork: int, signature: bytes | None) -> bool:
        if signature is None:
            return False
        raw = decode_default_signature(signature)
        if raw is None:
            return False
        signable = crypto.tree_signable(manifest_hash, tree_hash, length, fork)
        return crypto.verify(signable, raw, public_key)

    return verify
