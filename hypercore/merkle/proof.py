"""Proof generation: the responder's side of a hypercore ``request`` (JS ``generateProof``).

:func:`generate_proof` answers any combination of a block or hash request, a seek and an
upgrade with the parts of a ``data`` message, node for node and in the order the JS sends
them, so that a JS requester verifies it and the encoded message is byte-identical.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .. import flat_tree as flat
from ..crypto import TreeNode
from ..errors import AssertionFailedError, BadArgumentError, InvalidOperationError
from ..manifest import Prologue
from ..wire import Data, DataBlock, DataHash, DataSeek, DataUpgrade
from .tree import MAX_STEPS, HeadLike, NodeReader

__all__ = [
    "IndexRequestLike",
    "SeekRequestLike",
    "UpgradeRequestLike",
    "generate_proof",
]


class IndexRequestLike(Protocol):
    """A block request (``index`` is a block) or hash request (``index`` is a tree index)."""

    @property
    def index(self) -> int: ...

    @property
    def nodes(self) -> int: ...


class SeekRequestLike(Protocol):
    @property
    def bytes(self) -> int: ...

    @property
    def padding(self) -> int: ...


class UpgradeRequestLike(Protocol):
    @property
    def start(self) -> int: ...

    @property
    def length(self) -> int: ...


class _Target:
    """The block or hash node a request asks for (JS ``normalizeIndexed``)."""

    __slots__ = ("index", "is_block", "last_block", "nodes")

    def __init__(self, index: int, nodes: int, is_block: bool, last_block: int) -> None:
        self.index = index
        self.nodes = nodes
        self.is_block = is_block
        self.last_block = last_block


class _Pending:
    """The node lists of a proof as they are filled in (None: part not produced)."""

    __slots__ = ("additional", "node", "seek", "upgrade")

    def __init__(self) -> None:
        self.node: list[TreeNode] | None = None
        self.seek: list[TreeNode] | None = None
        self.upgrade: list[TreeNode] | None = None
        self.additional: list[TreeNode] | None = None


def _get(reader: NodeReader, index: int) -> TreeNode:
    node = reader.get_node(index)
    if node is None:
        raise InvalidOperationError(f"Expected tree node {index} from storage, got (nil)")
    return node


def _unpadded(node: TreeNode, padding: int, leaves: int) -> int:
    return node.size - padding * leaves if padding else node.size


def generate_proof(
    reader: NodeReader,
    head: HeadLike,
    *,
    block: IndexRequestLike | None = None,
    hash: IndexRequestLike | None = None,
    seek: SeekRequestLike | None = None,
    upgrade: UpgradeRequestLike | None = None,
    block_value: bytes | None = None,
    prologue: Prologue | None = None,
    request: int = 0,
    fork: int | None = None,
) -> Data:
    """The ``data`` message answering a request, from the responder's tree ``head``.

    ``block_value`` is the stored block for a block request (required then). ``prologue`` is
    the manifest's prologue, if any. ``request`` and ``fork`` fill the message's fields (JS
    answers with the fork of the request; ``fork`` defaults to ``head.fork``). An upgrade part
    carries ``head.signature`` and, when the upgrade stops short of ``head.length``, the
    additional nodes that complete the responder's tree.

    Raises the :mod:`hypercore.errors` class the JS raises for a request it would reject
    (mostly :class:`~hypercore.errors.InvalidOperationError`), also for a block request past
    the end of the tree.
    """
    if fork is None:
        fork = head.fork
    if block is not None and block_value is None:
        raise BadArgumentError("block_value is required to answer a block request")
    if block is not None and not 0 <= block.index < head.length:
        raise InvalidOperationError(f"Block {block.index} is out of bounds")

    up_start = up_length = 0
    if upgrade is not None:
        up_start, up_length = upgrade.start, upgrade.length
        if prologue is not None and up_start < prologue.length:
            up_start, up_length = 0, prologue.length

    if head.length == 0:
        return Data(request=request, fork=fork)

    end = 2 * head.length
    frm = 2 * up_start if upgrade is not None else 0
    to = frm + 2 * up_length if upgrade is not None else end
    target: _Target | None = None
    if block is not None:
        target = _Target(2 * block.index, block.nodes, True, block.index)
    elif hash is not None:
        target = _Target(hash.index, hash.nodes, False, flat.right_span(hash.index) // 2)

    if frm >= to or to > end:
        raise InvalidOperationError("Invalid upgrade")
    if seek is not None and upgrade is not None and target is not None and target.index >= frm:
        raise InvalidOperationError("Cannot both do a seek and block/hash request when upgrading")

    p = _Pending()
    sub_tree = end
    if target is not None and (upgrade is None or target.last_block < up_start):
        sub_tree = _nodes_to_root(target.index, target.nodes, to)
        seek_root = (
            _seek_untrusted_tree(reader, head, sub_tree, seek.bytes, seek.padding)
            if seek is not None
            else end
        )
        _block_and_seek_proof(reader, target, seek is not None, seek_root, sub_tree, p)
    elif (target is not None or seek is not None) and upgrade is not None:
        if seek is not None:
            sub_tree = _seek_from_head(reader, to, seek.bytes, seek.padding)
        else:
            assert target is not None
            sub_tree = target.index

    if upgrade is not None:
        _upgrade_proof(reader, target, seek is not None, frm, to, sub_tree, p)
        if end > to:
            p.additional = _upgrade_nodes(reader, to, end)

    data_block = data_hash = data_seek = data_upgrade = None
    if target is not None:
        if p.node is None:
            raise InvalidOperationError("Invalid block request")
        if block is not None:
            assert block_value is not None
            data_block = DataBlock(block.index, block_value, tuple(p.node))
        else:
            data_hash = DataHash(target.index, tuple(p.node))
    if seek is not None and p.seek is not None:
        data_seek = DataSeek(seek.bytes, tuple(p.seek))
    if upgrade is not None:
        data_upgrade = DataUpgrade(
            up_start,
            up_length,
            tuple(p.upgrade or ()),
            tuple(p.additional or ()),
            head.signature,
        )
    return Data(request, fork, data_block, data_hash, data_seek, data_upgrade)


def _nodes_to_root(index: int, nodes: int, end: int) -> int:
    ite = flat.Iterator(index)
    for _ in range(nodes):
        ite.parent()
        if ite.contains(end):
            raise InvalidOperationError("Nodes is out of bounds")
    return ite.index


def _walk_guard(steps: int, what: str) -> int:
    steps += 1
    if steps >= MAX_STEPS:
        raise AssertionFailedError(f"Bad {what}")
    return steps


def _seek_proof(reader: NodeReader, seek_root: int, root: int, p: _Pending) -> None:
    ite = flat.Iterator(seek_root)
    out = [_get(reader, ite.index)]
    steps = 0
    while ite.index != root:
        steps = _walk_guard(steps, f"seekProof seekRoot={seek_root}, root={root}")
        out.append(_get(reader, ite.sibling()))
        ite.parent()
    p.seek = out


def _block_and_seek_proof(
    reader: NodeReader,
    target: _Target | None,
    has_seek: bool,
    seek_root: int,
    root: int,
    p: _Pending,
) -> None:
    if target is None:
        _seek_proof(reader, seek_root, root, p)
        return
    ite = flat.Iterator(target.index)
    out: list[TreeNode] = []
    p.node = out
    if not target.is_block:
        out.append(_get(reader, ite.index))
    steps = 0
    while ite.index != root:
        steps = _walk_guard(steps, f"blockAndSeekProof seekRoot={seek_root}, root={root}")
        ite.sibling()
        if has_seek and ite.contains(seek_root) and ite.index != seek_root:
            _seek_proof(reader, seek_root, ite.index, p)
        else:
            out.append(_get(reader, ite.index))
        ite.parent()


def _upgrade_nodes(
    reader: NodeReader, frm: int, to: int, stand_in: Callable[[int], bool] | None = None
) -> list[TreeNode]:
    """The nodes that grow a tree of ``frm`` blocks into one of ``to`` blocks (JS
    ``upgradeProof`` and ``additionalUpgradeProof``): the siblings above the old last block
    inside the root that holds it, then every later root. ``stand_in(index)`` may provide
    node ``index`` some other way (the block/seek proof that leads up to it): it returns True
    when it did, and the node is left out."""
    out: list[TreeNode] = []
    started = frm == 0
    ite = flat.Iterator(0)
    while ite.full_root(to):
        if ite.index + ite.factor // 2 < frm:
            ite.next_tree()  # a root the requester already has
            continue
        if not started and ite.contains(frm - 2):
            started = True
            root = ite.index
            steps = 0
            ite.seek(frm - 2)
            while ite.index != root:
                steps = _walk_guard(steps, f"upgradeProof target={frm - 2}, root={root}")
                ite.sibling()
                if ite.index > frm - 2 and not (stand_in is not None and stand_in(ite.index)):
                    out.append(_get(reader, ite.index))
                ite.parent()
            ite.next_tree()
            continue
        started = True
        if not (stand_in is not None and stand_in(ite.index)):
            out.append(_get(reader, ite.index))
        ite.next_tree()
    return out


def _upgrade_proof(
    reader: NodeReader,
    target: _Target | None,
    has_seek: bool,
    frm: int,
    to: int,
    sub_tree: int,
    p: _Pending,
) -> None:
    def block_and_seek(index: int) -> bool:
        # the block/seek proof leads up to this node, which the requester then computes
        left, right = flat.spans(index)
        if p.node is None and p.seek is None and left <= sub_tree <= right:
            _block_and_seek_proof(reader, target, has_seek, sub_tree, index, p)
            return True
        return False

    p.upgrade = _upgrade_nodes(reader, frm, to, block_and_seek)


# --- locating a seek inside the responder's tree ------------------------------------------------


def _seek_from_head(reader: NodeReader, end: int, remaining: int, padding: int) -> int:
    """The node holding byte ``remaining`` of the tree ending at leaf ``end``."""
    for root in flat.full_roots(end):
        node = _get(reader, root)
        size = _unpadded(node, padding, flat.count_leaves(root))
        if remaining == size:
            return root
        if remaining > size:
            remaining -= size
            continue
        return _seek_trusted_tree(reader, root, remaining, padding)
    return end


def _seek_trusted_tree(reader: NodeReader, root: int, remaining: int, padding: int) -> int:
    if not remaining:
        return root
    ite = flat.Iterator(root)
    steps = 0
    while ite.index & 1:
        steps = _walk_guard(steps, f"seekTrusted bytes={remaining}, padding={padding}")
        left = reader.get_node(ite.left_child())
        if left is None:
            ite.parent()
            return ite.index
        size = _unpadded(left, padding, ite.count_leaves())
        if size == remaining:
            return ite.index
        if size > remaining:
            continue
        remaining -= size
        ite.sibling()
    return ite.index


def _js_byte_offset(reader: NodeReader, head: HeadLike, index: int) -> int | None:
    """The byte offset JS ``generateProof`` computes for a node, None where it is NaN.

    The JS adds up the sizes of whole roots before the node wrongly (it takes ``.size`` of a
    number), which makes the offset NaN for any node past the first root. Proofs must be the
    same bytes as the JS ones, so the seek part of a proof follows that; the public
    :func:`~hypercore.merkle.tree.byte_offset` is the correct one.
    """
    if index == 2 * head.length:
        return head.byte_length
    if index & 1:
        index = flat.left_span(index)
    end = 0
    offset = 0
    nan = False
    for root in head.roots:
        end += 2 * (root.index - end + 1)
        if index >= end:
            nan = True
            continue
        ite = flat.Iterator(root.index)
        steps = 0
        while ite.index != index:
            steps = _walk_guard(steps, f"getByteOffsetSession index={index}")
            if index < ite.index:
                ite.left_child()
            else:
                offset += _get(reader, ite.left_child()).size
                ite.sibling()
        return None if nan else offset
    raise AssertionFailedError("Failed to find offset")


def _seek_untrusted_tree(
    reader: NodeReader, head: HeadLike, root: int, remaining: int, padding: int
) -> int:
    offset = _js_byte_offset(reader, head, root)
    if offset is None:
        # NaN in the JS: every comparison fails and the seek stops at the root.
        _get(reader, root)
        return root
    if padding:
        offset -= padding * flat.left_span(root) // 2
    if offset > remaining:
        raise InvalidOperationError("Invalid seek")
    if offset == remaining:
        return root
    remaining -= offset
    node = _get(reader, root)
    if _unpadded(node, padding, flat.count_leaves(root)) <= remaining:
        raise InvalidOperationError("Invalid seek")
    return _seek_trusted_tree(reader, root, remaining, padding)
