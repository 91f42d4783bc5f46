"""Opening a core: find or create it in a storage, read its head, bitfield and roots, and
repair what the other rows determine (a bitfield page from the block rows, root nodes from
the nodes or blocks under them, hints from the bitfield); a damaged head, auth or core record
fails the open with a :class:`~hypercore.storage.StorageCorruptionError` naming the row.
"""

from __future__ import annotations

import logging

from . import crypto, flat_tree, merkle
from .bitfield import BITS_PER_PAGE, Bitfield
from .core import Core
from .crypto import KeyPair, TreeNode
from .encryption import DefaultEncryption
from .errors import (
    BadArgumentError,
    DamagedAuthError,
    DamagedSignatureError,
    DamagedTreeError,
    StorageConflictError,
    StorageEmptyError,
)
from .manifest import Manifest
from .merkle import TreeHead
from .storage import Alias, CoreStorage, Storage, StorageCorruptionError, StorageError
from .storage import keys as k
from .storage.records import CoreHead, Hints

__all__ = ["MAX_REPAIR_READS", "create_core", "open_core"]

log = logging.getLogger("hypercore")

#: Rows (tree nodes and blocks) opening may read to recompute damaged or missing root nodes;
#: past it the open fails naming the node (a whole lost subtree is not rehashed block by block).
MAX_REPAIR_READS = 1 << 16


def _missing_auth(discovery_key: bytes, core_pointer: int) -> StorageCorruptionError:
    """The error for a core whose record exists but whose auth row does not."""
    detail = "missing, but the core record points to it"
    return DamagedAuthError("auth", discovery_key, detail, k.core_auth(core_pointer))


def _check_key_pair(key_pair: KeyPair | None) -> None:
    if key_pair is not None and key_pair.secret_key is not None and len(key_pair.secret_key) != 64:
        raise BadArgumentError("secret key must be 64 bytes")


def create_core(
    storage: Storage,
    discovery_key: bytes,
    *,
    key: bytes | None = None,
    key_pair: KeyPair | None = None,
    manifest: Manifest | None = None,
    encryption_key: bytes | None = None,
    create_if_missing: bool = True,
    alias: Alias | None = None,
) -> Core:
    """Open the core ``discovery_key`` of a shared ``storage``, creating it (with ``alias``
    recorded in the same write, for a named core) when it is missing and ``key`` is known
    (JS ``Hypercore.createCore``, what a corestore opens its cores with). The caller owns the
    storage; attach sessions with ``Hypercore(core=...)``."""
    record = storage.get_core_record(discovery_key)
    if record is None:
        if not create_if_missing or key is None:
            raise StorageEmptyError("No Hypercore is stored here", discovery_key)
        if alias is not None:
            # What JS createCore writes for a named core: the core with its alias, in one
            # batch. open_core below then finds it.
            storage.create_core(
                key,
                discovery_key=discovery_key,
                manifest=manifest,
                key_pair=key_pair,
                alias=alias,
            )
    else:
        auth = storage.get_auth(discovery_key)
        if auth is None:
            raise _missing_auth(discovery_key, record.core_pointer)
        if key is not None and key != auth.key:
            raise StorageConflictError("Another Hypercore is stored here", discovery_key)
        key = auth.key
    return open_core(
        storage,
        False,
        key=key,
        key_pair=key_pair,
        manifest=manifest,
        encryption_key=encryption_key,
        compat=False,
        create_if_missing=True,
    )


def open_core(
    storage: Storage,
    owns_storage: bool,
    *,
    key: bytes | None,
    key_pair: KeyPair | None,
    manifest: Manifest | None,
    encryption_key: bytes | None,
    compat: bool,
    create_if_missing: bool,
) -> Core:
    """Open (or create) the core ``key`` in ``storage``; verify its stored head."""
    _check_key_pair(key_pair)
    discovery_key = crypto.discovery_key(key) if key is not None else None
    if discovery_key is None:
        discovery_key = storage.default_discovery_key()
    cs = storage.get_core(discovery_key) if discovery_key is not None else None

    if cs is None:
        if not create_if_missing:
            raise StorageEmptyError("No Hypercore is stored here")
        if key is None:
            if key_pair is None:
                key_pair = crypto.key_pair()
            if manifest is None:
                manifest = crypto.default_signer_manifest(key_pair.public_key)
            key = crypto.core_key(manifest, compat=compat)
        elif manifest is None and key_pair is not None:
            manifest = crypto.default_signer_manifest(key_pair.public_key)
        if manifest is not None and crypto.core_key(manifest, compat=compat) != key:
            raise BadArgumentError("manifest does not match the key")
        # As in JS, the encryption key is never stored: it is given on every open.
        cs = storage.create_core(
            key, discovery_key=crypto.discovery_key(key), manifest=manifest, key_pair=key_pair
        )
    else:
        auth = cs.get_auth()
        if auth is None:
            raise _missing_auth(cs.discovery_key, cs.core_pointer)
        if key is not None and auth.key != key:
            raise StorageConflictError("Another Hypercore is stored here")
        key = auth.key
        if manifest is None:
            manifest = auth.manifest
        if key_pair is None and auth.key_pair is not None:
            pk, sk = auth.key_pair
            key_pair = KeyPair(pk, sk) if sk is not None else None
        if encryption_key is None:
            encryption_key = auth.encryption_key

    compat_core = manifest is not None and crypto.core_key(manifest, compat=True) == key
    encryption = (
        DefaultEncryption(encryption_key, key, compat=compat_core)
        if encryption_key is not None
        else None
    )
    state = Core(storage, owns_storage, cs, key, manifest, key_pair, encryption)
    _load(state)
    return state


def _load(state: Core) -> None:
    """Read the core's head, bitfield and roots; repair what other rows determine (and store
    the repair unless the storage is read-only); verify the head."""
    cs = state.cs
    stored = cs.get_head()
    length = stored.length if stored is not None else 0
    bitfield, repaired_pages = _load_bitfield(cs, length)
    state.bitfield = bitfield
    try:
        hints = cs.get_hints()
    except StorageCorruptionError as e:
        log.warning("%s: ignoring the hints", str(e))
        hints, repaired_pages = None, repaired_pages or []
    repaired_nodes: list[TreeNode] = []
    if stored is None or stored.length == 0:
        try:
            state._nodes_complete = next(iter(cs.tree_nodes()), None) is None
        except StorageCorruptionError:
            state._nodes_complete = False
        fork = stored.fork if stored is not None else 0
        state.head = TreeHead(fork=fork, signature=stored.signature if stored else None)
    else:
        head = TreeHead.from_roots(
            _load_roots(state, stored, repaired_nodes), stored.fork, stored.signature
        )
        head_key = k.data_head(cs.data_pointer)
        dkey = state.discovery_key
        if head.hash() != stored.root_hash:
            detail = "its tree hash is not that of the stored root nodes"
            raise DamagedTreeError("head", dkey, detail, head_key)
        if state.verifier is not None and not state.verifier.verify(
            stored.root_hash, stored.length, stored.fork, stored.signature
        ):
            raise DamagedSignatureError("head", dkey, "its signature does not verify", head_key)
        state.head = head
        state.contiguous_length = min(bitfield.first_unset(0), head.length)
        if hints is not None:
            state.remote_contiguous_length = hints.remote_contiguous_length
    if (repaired_pages is not None or repaired_nodes) and not state.storage.read_only:
        batch = cs.batch()
        batch.put_tree_nodes(repaired_nodes)
        for p in repaired_pages or ():
            if bitfield.has_page(p):
                batch.put_bitfield_page(p, bitfield.page(p))
            else:
                batch.delete_bitfield_page(p)
        if repaired_pages is not None:
            contiguous = min(bitfield.first_unset(0), state.head.length)
            batch.put_hints(Hints(contiguous, state.remote_contiguous_length))
        try:
            batch.commit()
        except StorageError:  # the repair holds in memory; the next open repairs again
            log.exception("core %s: cannot store the repaired rows", state.discovery_key.hex())


def _load_bitfield(cs: CoreStorage, length: int) -> tuple[Bitfield, list[int] | None]:
    """The stored bitfield, and the pages rebuilt from the block rows because their rows were
    damaged (None if none was)."""
    try:
        return Bitfield(cs.bitfield_pages()), None
    except StorageCorruptionError as e:
        log.warning("%s: rebuilding the damaged bitfield pages from the block rows", str(e))
    pages: list[tuple[int, bytes]] = []
    repaired: list[int] = []
    for p in range((length + BITS_PER_PAGE - 1) // BITS_PER_PAGE):
        try:
            page = cs.get_bitfield_page(p)
        except StorageCorruptionError:
            page = _rebuild_page(cs, p, length)
            repaired.append(p)
        if page is not None:
            pages.append((p, page))
    return Bitfield(pages), repaired


def _rebuild_page(cs: CoreStorage, page: int, length: int) -> bytes | None:
    """Bitfield page ``page`` from the block rows that are stored and readable (blocks of a
    dependency's data set, and those past an unreadable one, count as absent: they can be
    downloaded again)."""
    bits = Bitfield()
    start = page * BITS_PER_PAGE
    try:
        for index, _ in cs.blocks(start, min(start + BITS_PER_PAGE, length)):
            bits.set_range(index, index + 1, True)
    except StorageCorruptionError as e:
        log.warning("%s: its block and the next ones in page %d count as absent", str(e), page)
    return bits.page(page) if bits.has_page(page) else None


def _load_roots(state: Core, stored: CoreHead, repaired: list[TreeNode]) -> list[TreeNode]:
    """The roots of the stored head. Missing or damaged ones are recomputed from the nodes
    (or blocks) under them; if the roots then do not hash to the head, each is recomputed
    from its children (a root row whose bytes changed but still decode). Recomputed nodes
    are added to ``repaired``; the caller checks the result against the head."""
    budget = [MAX_REPAIR_READS]
    roots: list[TreeNode] = []
    for index in flat_tree.full_roots(2 * stored.length):
        error: StorageCorruptionError | None = None
        try:
            node = state.get_node(index)
        except StorageCorruptionError as e:
            node, error = None, e
        if node is None:
            node = _rebuild_node(state, index, budget, repaired)
        if node is None:
            if error is not None:
                raise error
            detail = f"missing (a root of the head, length {stored.length}) and not recomputable"
            raise state.cs.damaged(state.cs.tree_node_key(index), detail)
        roots.append(node)
    if crypto.tree(roots) != stored.root_hash:
        recomputed: list[TreeNode] = []
        fixed = [_rebuild_node(state, r.index, budget, recomputed) or r for r in roots]
        if crypto.tree(fixed) == stored.root_hash:
            repaired.extend(recomputed)
            roots = fixed
    state._remember(repaired)
    return roots


def _rebuild_node(
    state: Core, index: int, budget: list[int], out: list[TreeNode]
) -> TreeNode | None:
    """Tree node ``index`` hashed again from its children (stored, else recomputed likewise)
    or, for a leaf, from its block; None when something under it is lost or the read budget
    is spent. Every recomputed node is appended to ``out``."""
    children = flat_tree.children(index)
    if children is None:
        budget[0] -= 1
        try:
            block = state.cs.get_block(index // 2) if budget[0] >= 0 else None
        except StorageCorruptionError:
            block = None
        if block is None:
            return None
        node = merkle.block_node(index, block)
    else:
        parts: list[TreeNode] = []
        for child in children:
            budget[0] -= 1
            if budget[0] < 0:
                return None
            try:
                part = state.get_node(child)
            except StorageCorruptionError:
                part = None
            if part is None:
                part = _rebuild_node(state, child, budget, out)
            if part is None:
                return None
            parts.append(part)
        node = merkle.parent_node(index, parts[0], parts[1])
    out.append(node)
    return node
