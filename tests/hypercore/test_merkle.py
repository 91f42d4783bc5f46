"""The Merkle tree and its proofs: append against a naive recomputation, seeks and byte offsets
against a list model, and proofs of every shape round-tripped through a reader that knows
only a signed prefix of the tree, where any one-byte change to the proof must be rejected."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from hypercore import crypto, errors, wire
from hypercore import flat_tree as flat
from hypercore import merkle as m
from hypercore.crypto import TreeNode
from hypercore.manifest import Prologue
from hypercore.wire import DATA, Data, DataUpgrade
from protomux import encoding as c

KEY_PAIR = crypto.key_pair(bytes(range(32)))
MANIFEST_HASH = crypto.manifest_hash(crypto.default_signer_manifest(KEY_PAIR.public_key))
VERIFY = m.default_signature_verifier(MANIFEST_HASH, KEY_PAIR.public_key)

block_lists = st.lists(st.binary(max_size=12), min_size=1, max_size=40)
FAST = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- a naive model ---------------------------------------------------------------------------


def naive_node(blocks: Sequence[bytes], index: int) -> TreeNode:
    if not index & 1:
        return m.block_node(index, blocks[index // 2])
    left, right = flat.children(index) or (0, 0)
    return m.parent_node(index, naive_node(blocks, left), naive_node(blocks, right))


def naive_nodes(blocks: Sequence[bytes]) -> dict[int, TreeNode]:
    """Every node whose leaves are all present."""
    out = {}
    for index in range(2 * len(blocks)):
        if flat.right_span(index) < 2 * len(blocks):
            out[index] = naive_node(blocks, index)
    return out


def naive_roots(blocks: Sequence[bytes]) -> list[TreeNode]:
    return [naive_node(blocks, r) for r in flat.full_roots(2 * len(blocks))]


def signed(head: m.TreeHead) -> m.TreeHead:
    sig = m.sign_default(head.hash(), head.length, head.fork, MANIFEST_HASH, KEY_PAIR.secret_key)
    return dataclasses.replace(head, signature=sig)


def build(blocks: Sequence[bytes], fork: int = 0) -> tuple[m.MemoryNodeStore, m.TreeHead]:
    r = m.append([], 0, 0, blocks)
    store = m.MemoryNodeStore()
    store.put_nodes(r.nodes)
    return store, signed(m.TreeHead(tuple(r.roots), r.length, r.byte_length, fork))


def reader_of(
    writer: m.MemoryNodeStore, length: int, rng: random.Random, fork: int = 0
) -> tuple[m.MemoryNodeStore, m.TreeHead]:
    """A reader at ``length``: the roots, and the paths of some verified proofs (a node, its
    sibling, their parent, its sibling, ... up to a root), as a real reader stores them."""
    roots = m.roots_at(writer, length)
    root_indices = {r.index for r in roots}
    store = m.MemoryNodeStore()
    store.put_nodes(roots)
    share = rng.random()
    for i in writer.nodes:
        if flat.right_span(i) >= 2 * length or rng.random() >= share:
            continue
        while i not in root_indices:
            store.put_nodes([writer.nodes[i], writer.nodes[flat.sibling(i)]])
            i = flat.parent(i)
    return store, m.TreeHead.from_roots(roots, fork)


# --- append, roots, truncate -------------------------------------------------------------------


@given(st.lists(st.lists(st.binary(max_size=10), max_size=9), max_size=8))
def test_append_batches_match_a_naive_tree(batches: list[list[bytes]]) -> None:
    roots: list[TreeNode] = []
    length = byte_length = 0
    stored: dict[int, TreeNode] = {}
    blocks: list[bytes] = []
    for batch in batches:
        r = m.append(roots, length, byte_length, batch)
        for n in r.nodes:
            assert n.index not in stored
            stored[n.index] = n
        roots, length, byte_length = r.roots, r.length, r.byte_length
        blocks += batch
        assert length == len(blocks)
        assert byte_length == sum(map(len, blocks))
        assert roots == naive_roots(blocks)
        assert m.tree_hash(roots) == crypto.tree(naive_roots(blocks))
    assert stored == naive_nodes(blocks)
    store = m.MemoryNodeStore(stored)
    for k in range(len(blocks) + 1):
        assert m.roots_at(store, k) == naive_roots(blocks[:k])
        head = m.head_at(store, k)
        assert (head.length, head.byte_length) == (k, sum(map(len, blocks[:k])))


def test_known_vector() -> None:
    # REFERENCE.md section 3: "hello", "world".
    r = m.append([], 0, 0, [b"hello", b"world"])
    assert [n.index for n in r.nodes] == [0, 2, 1]
    assert r.nodes[0].hash.hex().startswith("f2391083")
    assert r.roots[0].hash.hex().startswith("56826d33")
    assert m.tree_hash(r.roots).hex().startswith("28ac717e")


@given(block_lists, st.data())
def test_truncate_then_append_is_a_fresh_tree(blocks: list[bytes], data: st.DataObject) -> None:
    store, head = build(blocks)
    k = data.draw(st.integers(0, len(blocks)))
    t = m.truncate(store, head, k)
    assert t.head.fork == head.fork + 1
    assert t.head.roots == tuple(naive_roots(blocks[:k]))
    assert (t.head.length, t.head.byte_length) == (k, sum(map(len, blocks[:k])))
    store.delete_range(t.delete_start, t.delete_end)
    store.delete_nodes(t.delete_nodes)
    assert store.nodes == naive_nodes(blocks[:k])
    more = data.draw(st.lists(st.binary(max_size=8), max_size=6))
    r = m.append(t.head.roots, t.head.length, t.head.byte_length, more)
    store.put_nodes(r.nodes)
    assert store.nodes == naive_nodes(blocks[:k] + more)


def test_truncate_refuses_to_grow() -> None:
    store, head = build([b"a", b"b"])
    with pytest.raises(errors.HypercoreError):
        m.truncate(store, head, 3)
    t = m.truncate(store, head, 2, fork=7)
    assert (t.head.fork, t.delete_start, t.delete_end, t.delete_nodes) == (7, 0, 0, ())


def test_clearable_nodes_keep_what_other_blocks_need() -> None:
    _, head = build([b"a", b"b", b"c", b"d"])
    present = {0, 1, 2, 3}

    def has_any(s: int, e: int) -> bool:
        return any(s <= i < e for i in present)

    # Clearing block 1 keeps leaf 2: block 0's proof needs it.
    assert m.clearable_nodes(head.roots, 1, 2, has_any) == []
    present = {0, 1}
    assert m.clearable_nodes(head.roots, 2, 4, has_any) == [4, 6]


# --- byte offsets and seek ----------------------------------------------------------------------


def model_seek(sizes: Sequence[int], offset: int) -> tuple[int, int] | None:
    if offset == 0:
        return 0, 0
    pos = 0
    for i, s in enumerate(sizes):
        if pos <= offset < pos + s:
            return i, offset - pos
        pos += s
    return (len(sizes), 0) if offset == pos else None


@given(
    st.lists(st.integers(1, 9), min_size=1, max_size=40),
    st.integers(0, 3),
    st.randoms(use_true_random=False),
)
def test_seek_and_offsets_against_a_list(
    sizes: list[int], padding: int, rng: random.Random
) -> None:
    blocks = [bytes(s + padding) for s in sizes]
    store, head = build(blocks)
    total = sum(sizes)
    pos = 0
    for i, b in enumerate(blocks):
        assert m.block_byte_offset(store, head, i) == pos
        assert m.byte_range(store, head, 2 * i) == (pos, len(b))
        pos += len(b)
    assert m.block_byte_offset(store, head, len(blocks)) == head.byte_length
    for index in range(1, 2 * len(blocks), 2):
        lo, hi = flat.spans(index)
        if hi < 2 * len(blocks):
            offset = sum(map(len, blocks[: lo // 2]))
            assert m.byte_offset(store, head, index) == offset
            assert m.byte_range(store, head, index) == (
                offset,
                sum(map(len, blocks[lo // 2 : hi // 2 + 1])),
            )
    with pytest.raises(errors.HypercoreError):
        m.byte_range(store, head, 2 * len(blocks))

    partial, _ = reader_of(store, len(blocks), rng)
    for offset in range(total + 3):
        want = model_seek(sizes, offset)
        got = m.seek(store, head, offset, padding)
        if want is None:
            assert got == m.SeekPending(len(blocks), 0)
        else:
            assert got == want
        got = m.seek(partial, head, offset, padding)
        if want is None:
            assert got == m.SeekPending(len(blocks), 0)
        elif isinstance(got, m.SeekPending):
            assert got.start <= want[0] < got.end
        else:
            assert got == want


def test_seek_at_empty_blocks_follows_the_tree() -> None:
    store, head = build([b"abc", b"", b"", b"de"])
    # Blocks 1, 2 and 3 all start at byte 3: the JS answers the block after the left subtree.
    assert m.seek(store, head, 3) == (2, 0)
    store, head = build([b"abc", b"", b"de"])
    assert m.seek(store, head, 3) == (2, 0)


# --- missing nodes -------------------------------------------------------------------------------


@given(block_lists, st.randoms(use_true_random=False))
def test_missing_nodes(blocks: list[bytes], rng: random.Random) -> None:
    writer, _ = build(blocks)
    length = rng.randint(0, len(blocks))
    reader, _ = reader_of(writer, length, rng)
    head = 2 * length
    roots = set(flat.full_roots(head))
    for index in range(2 * len(blocks) + 4):
        if flat.right_span(index) >= head:
            assert m.missing_nodes(reader, index, length) == 0
            assert m.max_missing_nodes(index, length) == 0
            continue
        count = 0
        i = index
        while i not in roots and reader.get_node(i) is None:
            count += 1
            i = flat.parent(i)
        assert m.missing_nodes(reader, index, length) == count
        top = 0
        i = index
        while i not in roots:
            i = flat.parent(i)
            top += 1
        assert m.max_missing_nodes(index, length) == top


# --- proofs --------------------------------------------------------------------------------------


def request_for(
    draw: Any, blocks: Sequence[bytes], head: m.TreeHead, reader: m.MemoryNodeStore, length: int
) -> dict[str, Any]:
    """A request of a random shape, valid the way the JS replicator makes them."""
    n = head.length
    shapes = ["upgrade", "block+upgrade", "hash+upgrade", "seek+upgrade"] if length < n else []
    if length > 0:
        shapes += ["block", "hash"]
    if length > 0 and sum(map(len, blocks[:length])) > 0:
        shapes.append("hash+seek")
    shape = draw(st.sampled_from(shapes))
    event(shape)
    req: dict[str, Any] = {}
    target = length
    if "upgrade" in shape:
        target = draw(st.integers(length + 1, n))
        req["upgrade"] = wire.RequestUpgrade(length, target - length)
    if "block" in shape:
        i = draw(st.integers(0, target - 1))
        req["block"] = wire.RequestIndex(i, m.missing_nodes(reader, 2 * i, length))
        req["block_value"] = blocks[i]
    if shape == "hash+seek":
        # As the replicator resolves a seek: a hash of a block in the pending range, or of
        # the block found, with the seek attached.
        reader_head = m.head_at(reader, length)
        offset = draw(st.integers(0, reader_head.byte_length - 1))
        found = m.seek(reader, reader_head, offset)
        if isinstance(found, m.SeekPending):
            index = draw(st.integers(found.start, found.end - 1))
            nodes = flat.depth(found.start + found.end - 1)
        else:
            # any block under the same root, with a proof up to that root
            assume(len(blocks[found[0]]) > 0)
            root = next(
                r for r in flat.full_roots(2 * length) if flat.right_span(r) >= 2 * found[0]
            )
            lo, hi = flat.spans(root)
            index = draw(st.integers(lo // 2, hi // 2))
            nodes = m.max_missing_nodes(2 * index, length)
        req["hash"] = wire.RequestIndex(2 * index, nodes)
        req["seek"] = wire.RequestSeek(offset)
    elif "hash" in shape:
        candidates = [
            x
            for x in range(2 * target)
            if flat.right_span(x) < 2 * target
            and (flat.right_span(x) < 2 * length or flat.left_span(x) >= 2 * length)
        ]
        x = draw(st.sampled_from(candidates))
        nodes = m.missing_nodes(reader, x, length)
        req["hash"] = wire.RequestIndex(x, nodes)
    if shape == "seek+upgrade":
        req["seek"] = wire.RequestSeek(draw(st.integers(0, head.byte_length)))
    return req


def encoded_variants(encoded: bytes, rng: random.Random) -> list[bytes]:
    out = []
    for pos in range(len(encoded)):
        b = bytearray(encoded)
        b[pos] ^= rng.randrange(1, 256)
        out.append(bytes(b))
    return out


def only_unproven_fields_differ(a: Data, b: Data) -> bool:
    """The request id and the seek's byte offset are matched against the request, not proven."""
    if a.seek is not None and b.seek is not None:
        b = dataclasses.replace(b, seek=dataclasses.replace(b.seek, bytes=a.seek.bytes))
    return dataclasses.replace(b, request=a.request) == a


def assert_sound(
    writer: m.MemoryNodeStore,
    head: m.TreeHead,
    blocks: Sequence[bytes],
    proof: Data,
    result: m.VerifiedProof,
) -> None:
    """Everything a verified proof yields is the writer's."""
    for node in result.nodes:
        assert writer.get_node(node.index) == node
    if result.head is not None:
        # the signature container may differ where the JS ignores it (patch length, tail)
        assert dataclasses.replace(result.head, signature=head.signature) == head
        assert VERIFY(head.hash(), head.length, head.fork, result.head.signature)
    if proof.block is not None:
        assert proof.block.value == blocks[proof.block.index]


def check_proof(
    writer: m.MemoryNodeStore,
    head: m.TreeHead,
    blocks: Sequence[bytes],
    reader: m.MemoryNodeStore,
    reader_head: m.TreeHead,
    req: dict[str, Any],
    rng: random.Random,
    tamper: bool = True,
) -> m.VerifiedProof:
    proof = m.generate_proof(writer, head, request=5, **req)
    event(
        f"parts: {', '.join(k for k in ('block', 'hash', 'seek', 'upgrade') if getattr(proof, k))}"
    )
    if proof.upgrade is not None and proof.upgrade.additional_nodes:
        event("additional nodes")
    encoded = c.encode(DATA, proof)
    assert c.decode(DATA, encoded) == proof
    before = (dict(reader.nodes), reader_head)
    result = m.verify_proof(reader, reader_head, proof, VERIFY)

    # Everything it adds is the writer's, and an upgrade lands on the writer's head.
    assert_sound(writer, head, blocks, proof, result)
    if "upgrade" in req:
        assert result.head == head
    else:
        assert result.head is None
    if "block" in req:
        assert proof.block is not None
        assert proof.block.value == blocks[req["block"].index]

    if tamper:
        for variant in encoded_variants(encoded, rng):
            try:
                changed = c.decode(DATA, variant)
            except c.DecodeError:
                continue
            if only_unproven_fields_differ(proof, changed):
                continue
            try:
                accepted = m.verify_proof(reader, reader_head, changed, VERIFY)
            except errors.HypercoreError:
                continue
            # A few changes turn the proof into another valid one (as they would for the JS):
            # an upgrade range that leaves out what is not needed, or a hash part read as a
            # seek part. Whatever such a proof yields must still be the writer's.
            assert_sound(writer, head, blocks, changed, accepted)
    assert (reader.nodes, reader_head) == before
    return result


@FAST
@given(block_lists, st.data())
def test_proofs_verify_and_any_changed_byte_is_rejected(
    blocks: list[bytes], data: st.DataObject
) -> None:
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    writer, head = build(blocks)
    length = data.draw(st.integers(0, len(blocks)))
    reader, reader_head = reader_of(writer, length, rng)
    req = request_for(data.draw, blocks, head, reader, length)
    check_proof(writer, head, blocks, reader, reader_head, req, rng)


@settings(max_examples=400, deadline=None)
@given(block_lists, st.data())
def test_proofs_verify(blocks: list[bytes], data: st.DataObject) -> None:
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    writer, head = build(blocks, fork=data.draw(st.integers(0, 3)))
    length = data.draw(st.integers(0, len(blocks)))
    reader, reader_head = reader_of(writer, length, rng, fork=head.fork)
    req = request_for(data.draw, blocks, head, reader, length)
    result = check_proof(writer, head, blocks, reader, reader_head, req, rng, tamper=False)
    # Storing the result and asking again for the same thing needs no more nodes.
    reader.put_nodes(result.nodes)
    if "block" in req:
        new_length = result.head.length if result.head is not None else length
        assert m.missing_nodes(reader, 2 * req["block"].index, new_length) == 0


@FAST
@given(block_lists, st.data())
def test_conflict_check_proof_verifies_from_nothing(
    blocks: list[bytes], data: st.DataObject
) -> None:
    # The replicator's fork check: upgrade {0, n} checked against no local state at all.
    writer, head = build(blocks)
    target = data.draw(st.integers(1, len(blocks)))
    proof = m.generate_proof(writer, head, upgrade=wire.RequestUpgrade(0, target))
    result = m.verify_proof(m.MemoryNodeStore(), m.TreeHead(fork=proof.fork), proof, VERIFY)
    assert result.head == head


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.binary(min_size=1, max_size=9), min_size=1, max_size=40),
    st.randoms(use_true_random=False),
)
def test_seek_resolves_through_hash_and_seek_proofs(
    blocks: list[bytes], rng: random.Random
) -> None:
    # The replicator's seek: while seek() is pending, ask for a hash of a block in the range
    # with the seek attached, verify, store, and seek again.
    writer, head = build(blocks)
    reader = m.MemoryNodeStore()
    reader.put_nodes(head.roots)
    reader_head = dataclasses.replace(head)
    sizes = [len(b) for b in blocks]
    for offset in range(1, head.byte_length):
        for _ in range(64):
            got = m.seek(reader, reader_head, offset)
            if not isinstance(got, m.SeekPending):
                break
            index = rng.randrange(got.start, got.end)
            nodes = flat.depth(got.start + got.end - 1)
            proof = m.generate_proof(
                writer,
                head,
                hash=wire.RequestIndex(2 * index, nodes),
                seek=wire.RequestSeek(offset),
            )
            assert proof.seek is not None or proof.hash is not None
            result = m.verify_proof(reader, reader_head, proof, VERIFY)
            assert result.head is None
            reader.put_nodes(result.nodes)
        assert got == model_seek(sizes, offset)


def test_upgrade_past_a_shorter_target_carries_additional_nodes() -> None:
    blocks = [bytes([i]) * (i + 1) for i in range(13)]
    writer, head = build(blocks)
    reader, reader_head = reader_of(writer, 3, random.Random(0))
    proof = m.generate_proof(writer, head, upgrade=wire.RequestUpgrade(3, 4))
    assert proof.upgrade is not None
    assert [n.index for n in proof.upgrade.nodes] == [6, 9, 12]
    assert [n.index for n in proof.upgrade.additional_nodes] == [14, 19, 24]
    result = m.verify_proof(reader, reader_head, proof, VERIFY)
    assert result.head == head


def test_upgrade_the_reader_already_has_needs_no_signature() -> None:
    writer, head = build([b"a", b"b", b"c", b"d"])
    proof = m.generate_proof(writer, head, upgrade=wire.RequestUpgrade(0, 4))
    assert proof.upgrade is not None
    reader = m.MemoryNodeStore({3: head.roots[0]})
    # Without any signature check: the roots are already trusted.
    bad = dataclasses.replace(proof, upgrade=dataclasses.replace(proof.upgrade, signature=None))
    result = m.verify_proof(reader, m.TreeHead.from_roots(head.roots), bad, VERIFY)
    assert result.head is None


def test_signature_and_fork_errors() -> None:
    writer, head = build([b"a", b"b", b"c"], fork=2)
    proof = m.generate_proof(writer, head, upgrade=wire.RequestUpgrade(0, 3))
    assert proof.upgrade is not None
    with pytest.raises(errors.ForkMismatchError):
        m.verify_proof(m.MemoryNodeStore(), m.TreeHead(), proof, VERIFY)
    empty = m.TreeHead(fork=2)
    for sig in (None, b"\x01" * 68, m.encode_default_signature(bytes(64))):
        bad = dataclasses.replace(proof, upgrade=dataclasses.replace(proof.upgrade, signature=sig))
        with pytest.raises(errors.HypercoreError) as e:
            m.verify_proof(m.MemoryNodeStore(), empty, bad, VERIFY)
        assert e.value.code == "INVALID_SIGNATURE"
    other = m.default_signature_verifier(MANIFEST_HASH, crypto.key_pair(bytes(32)).public_key)
    with pytest.raises(errors.HypercoreError):
        m.verify_proof(m.MemoryNodeStore(), empty, proof, other)


def test_error_codes() -> None:
    blocks = [b"a", b"bb", b"ccc", b"dddd", b"e"]
    writer, head = build(blocks)
    reader, reader_head = reader_of(writer, 4, random.Random(1))
    reader.nodes = {3: reader.nodes[3]}
    proof = m.generate_proof(writer, head, block=wire.RequestIndex(1, 2), block_value=b"bb")
    assert proof.block is not None
    assert [n.index for n in proof.block.nodes] == [0, 5]
    m.verify_proof(reader, reader_head, proof, VERIFY)

    wrong_value = dataclasses.replace(proof, block=dataclasses.replace(proof.block, value=b"xx"))
    with pytest.raises(errors.HypercoreError) as e:
        m.verify_proof(reader, reader_head, wrong_value, VERIFY)
    assert e.value.code == "INVALID_CHECKSUM"

    short = dataclasses.replace(proof, block=dataclasses.replace(proof.block, nodes=()))
    with pytest.raises(errors.HypercoreError) as e:
        m.verify_proof(reader, reader_head, short, VERIFY)
    assert e.value.code == "INVALID_OPERATION"

    swapped = dataclasses.replace(
        proof, block=dataclasses.replace(proof.block, nodes=proof.block.nodes[::-1])
    )
    with pytest.raises(errors.HypercoreError) as e:
        m.verify_proof(reader, reader_head, swapped, VERIFY)
    assert e.value.code == "INVALID_OPERATION"


def test_invalid_requests() -> None:
    blocks = [b"a", b"bb", b"ccc", b"dddd", b"e"]
    writer, head = build(blocks)

    def bad(**req: Any) -> str:
        with pytest.raises(errors.HypercoreError) as e:
            m.generate_proof(writer, head, **req)
        return e.value.code

    assert bad(upgrade=wire.RequestUpgrade(0, 6)) == "INVALID_OPERATION"
    assert bad(upgrade=wire.RequestUpgrade(3, 0)) == "INVALID_OPERATION"
    assert bad(upgrade=wire.RequestUpgrade(6, 1)) == "INVALID_OPERATION"
    assert bad(block=wire.RequestIndex(5), block_value=b"") == "INVALID_OPERATION"
    assert bad(block=wire.RequestIndex(0, 3), block_value=b"a") == "INVALID_OPERATION"
    assert (
        bad(
            block=wire.RequestIndex(4),
            block_value=b"e",
            seek=wire.RequestSeek(3),
            upgrade=wire.RequestUpgrade(2, 3),
        )
        == "INVALID_OPERATION"
    )
    # a hash straddling the requester's length cannot be proven with the upgrade
    assert bad(hash=wire.RequestIndex(3), upgrade=wire.RequestUpgrade(2, 2)) == "INVALID_OPERATION"
    # a seek outside the subtree of the block proof
    assert bad(hash=wire.RequestIndex(0, 1), seek=wire.RequestSeek(7)) == "INVALID_OPERATION"
    # missing nodes
    partial = m.MemoryNodeStore({i: n for i, n in writer.nodes.items() if i != 2})
    with pytest.raises(errors.HypercoreError):
        m.generate_proof(partial, head, block=wire.RequestIndex(0, 2), block_value=b"a")
    with pytest.raises(ValueError, match="block_value"):
        m.generate_proof(writer, head, block=wire.RequestIndex(0))
    # an empty responder answers nothing
    assert m.generate_proof(
        m.MemoryNodeStore(), m.TreeHead(), upgrade=wire.RequestUpgrade(0, 1)
    ) == Data(0, 0)


def test_prologue() -> None:
    blocks = [b"a", b"bb", b"ccc", b"dddd", b"e"]
    writer, head = build(blocks)
    prefix = m.roots_at(writer, 3)
    prologue = Prologue(crypto.tree(prefix), 3)
    # Upgrades that start inside the prologue are widened to [0, prologue.length].
    proof = m.generate_proof(writer, head, upgrade=wire.RequestUpgrade(1, 4), prologue=prologue)
    assert proof.upgrade is not None
    assert (proof.upgrade.start, proof.upgrade.length) == (0, 3)
    result = m.verify_proof(m.MemoryNodeStore(), m.TreeHead(), proof, VERIFY, prologue=prologue)
    assert result.head == head
    narrow = dataclasses.replace(proof, upgrade=DataUpgrade(1, 2, proof.upgrade.nodes))
    with pytest.raises(errors.HypercoreError) as e:
        m.verify_proof(m.MemoryNodeStore(), m.TreeHead(), narrow, VERIFY, prologue=prologue)
    assert e.value.code == "INVALID_PROOF"
    wrong = Prologue(bytes(32), 3)
    with pytest.raises(errors.HypercoreError) as e:
        m.verify_proof(m.MemoryNodeStore(), m.TreeHead(), proof, VERIFY, prologue=wrong)
    assert e.value.code == "INVALID_PROOF"


def test_upgrade_tree_applies_patch_nodes() -> None:
    blocks = [bytes([i]) for i in range(11)]
    writer, head = build(blocks)
    _, at4 = build(blocks[:4])
    proof = m.generate_proof(writer, head, upgrade=wire.RequestUpgrade(4, 7))
    assert proof.upgrade is not None
    grown, nodes = m.upgrade_tree(at4, proof.upgrade, 0)
    assert grown.roots == head.roots and grown.length == 11
    assert all(writer.get_node(n.index) == n for n in nodes)


def test_default_signature_container() -> None:
    sig = bytes(range(64))
    box = m.encode_default_signature(sig)
    assert box.hex() == "0100" + sig.hex() + "0000"
    assert m.decode_default_signature(box) == sig
    assert m.decode_default_signature(box[:-1]) is None
    assert m.decode_default_signature(b"\x00\x00") is None
    assert m.decode_default_signature(b"\x01\x01" + box[2:]) is None  # signer 1
    # As the JS: a patch length and trailing bytes are ignored.
    assert m.decode_default_signature(box[:-2] + b"\x05\x00\x07") == sig
