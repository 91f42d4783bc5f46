"""Hypothesis strategies for hypercore values, shared by unit and interop tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from hypercore.crypto import TreeNode
from hypercore.manifest import Manifest, Prologue, Signer
from hypercore.wire import (
    Bitfield,
    Cancel,
    Data,
    DataBlock,
    DataHash,
    DataSeek,
    DataUpgrade,
    Extension,
    Handshake,
    NoData,
    Range,
    Request,
    RequestIndex,
    RequestSeek,
    RequestUpgrade,
    Sync,
    Unwant,
    Want,
)

MAX = 2**53 - 1

b32 = st.binary(min_size=32, max_size=32)
uints = st.integers(0, 300) | st.integers(0, MAX)

signers = st.builds(Signer, namespace=b32, public_key=b32)
signer_lists = st.lists(signers, max_size=4).map(tuple)

# Version 0 manifests in the three shapes their decoder produces.
manifests_v0 = st.one_of(
    st.builds(
        Manifest,
        version=st.just(0),
        quorum=st.just(0),
        prologue=st.builds(Prologue, hash=b32, length=st.just(0)),
    ),
    st.builds(Manifest, version=st.just(0), quorum=st.just(1), signers=signers.map(lambda s: (s,))),
    st.builds(
        Manifest,
        version=st.just(0),
        quorum=uints,
        signers=signer_lists,
        allow_patch=st.just(True),
    ),
)

manifests_v1 = st.builds(
    Manifest,
    version=st.integers(1, 3),
    quorum=uints,
    signers=signer_lists,
    allow_patch=st.booleans(),
    prologue=st.none() | st.builds(Prologue, hash=b32, length=uints),
    linked=st.none() | st.lists(b32, max_size=3).map(tuple),
    user_data=st.none() | st.binary(max_size=40),
)

manifests = manifests_v0 | manifests_v1

nodes = st.builds(TreeNode, index=uints, size=uints, hash=b32)
node_lists = st.lists(nodes, max_size=6).map(tuple)

data_messages = st.builds(
    Data,
    request=uints,
    fork=uints,
    block=st.none()
    | st.builds(DataBlock, index=uints, value=st.binary(max_size=200), nodes=node_lists),
    hash=st.none() | st.builds(DataHash, index=uints, nodes=node_lists),
    seek=st.none() | st.builds(DataSeek, bytes=uints, nodes=node_lists),
    upgrade=st.none()
    | st.builds(
        DataUpgrade,
        start=uints,
        length=uints,
        nodes=node_lists,
        additional_nodes=node_lists,
        signature=st.none() | st.binary(min_size=1, max_size=80),
    ),
    manifest=st.none() | manifests,
)


# --- replication messages (hypercore.wire) ---------------------------------------------------

u32 = st.integers(0, 2**32 - 1)
index_parts = st.none() | st.builds(RequestIndex, index=uints, nodes=uints)

syncs = st.builds(
    Sync,
    fork=uints,
    length=uints,
    remote_length=uints,
    can_upgrade=st.booleans(),
    uploading=st.booleans(),
    downloading=st.booleans(),
    has_manifest=st.booleans(),
    allow_push=st.booleans(),
)
requests = st.builds(
    Request,
    id=uints,
    fork=uints,
    block=index_parts,
    hash=index_parts,
    seek=st.none() | st.builds(RequestSeek, bytes=uints, padding=uints),
    upgrade=st.none() | st.builds(RequestUpgrade, start=uints, length=uints),
    manifest=st.booleans(),
    priority=st.just(0) | st.integers(0, 2) | uints,
)
cancels = st.builds(Cancel, request=uints)
no_datas = st.builds(NoData, request=uints, reason=st.sampled_from([0, 1, 2]) | uints)
wants = st.builds(Want, start=uints, length=uints, any=st.booleans())
unwants = st.builds(Unwant, start=uints, length=uints, any=st.booleans())
bitfields = st.builds(Bitfield, start=uints, bitfield=st.lists(u32, max_size=20).map(tuple))
ranges = st.builds(Range, drop=st.booleans(), start=uints, length=st.just(1) | uints)
extensions = st.builds(Extension, name=st.text(max_size=20), message=st.binary(max_size=60))
handshakes = st.builds(
    Handshake, seeks=st.booleans(), capability=st.binary(min_size=32, max_size=32)
)


# --- the JS shapes of these values (as hypercore/lib/messages.js reads and writes them) ----


def manifest_to_js(m: Manifest) -> dict[str, Any]:
    return {
        "version": m.version,
        "hash": m.hash,
        "allowPatch": m.allow_patch,
        "quorum": m.quorum,
        "signers": [
            {"signature": s.signature, "namespace": s.namespace, "publicKey": s.public_key}
            for s in m.signers
        ],
        "prologue": None
        if m.prologue is None
        else {"hash": m.prologue.hash, "length": m.prologue.length},
        "linked": None if m.linked is None else list(m.linked),
        "userData": m.user_data,
    }


def manifest_from_js(o: dict[str, Any]) -> Manifest:
    p = o["prologue"]
    return Manifest(
        version=o["version"],
        quorum=o["quorum"],
        signers=tuple(
            Signer(namespace=s["namespace"], public_key=s["publicKey"], signature=s["signature"])
            for s in o["signers"]
        ),
        allow_patch=o["allowPatch"],
        prologue=None if p is None else Prologue(hash=p["hash"], length=p["length"]),
        linked=None if o["linked"] is None else tuple(o["linked"]),
        user_data=o["userData"],
        hash=o["hash"],
    )


def _nodes_js(nodes: tuple[TreeNode, ...]) -> list[dict[str, Any]]:
    return [{"index": n.index, "size": n.size, "hash": n.hash} for n in nodes]


def _nodes_py(nodes: list[dict[str, Any]]) -> tuple[TreeNode, ...]:
    return tuple(TreeNode(n["index"], n["size"], n["hash"]) for n in nodes)


def data_to_js(d: Data) -> dict[str, Any]:
    b, h, s, u = d.block, d.hash, d.seek, d.upgrade
    return {
        "request": d.request,
        "fork": d.fork,
        "block": None
        if b is None
        else {"index": b.index, "value": b.value, "nodes": _nodes_js(b.nodes)},
        "hash": None if h is None else {"index": h.index, "nodes": _nodes_js(h.nodes)},
        "seek": None if s is None else {"bytes": s.bytes, "nodes": _nodes_js(s.nodes)},
        "upgrade": None
        if u is None
        else {
            "start": u.start,
            "length": u.length,
            "nodes": _nodes_js(u.nodes),
            "additionalNodes": _nodes_js(u.additional_nodes),
            "signature": u.signature,
        },
        "manifest": None if d.manifest is None else manifest_to_js(d.manifest),
    }


def data_from_js(o: dict[str, Any]) -> Data:
    b, h, s, u = o["block"], o["hash"], o["seek"], o["upgrade"]
    return Data(
        request=o["request"],
        fork=o["fork"],
        block=None if b is None else DataBlock(b["index"], b["value"], _nodes_py(b["nodes"])),
        hash=None if h is None else DataHash(h["index"], _nodes_py(h["nodes"])),
        seek=None if s is None else DataSeek(s["bytes"], _nodes_py(s["nodes"])),
        upgrade=None
        if u is None
        else DataUpgrade(
            u["start"],
            u["length"],
            _nodes_py(u["nodes"]),
            _nodes_py(u["additionalNodes"]),
            u["signature"],
        ),
        manifest=None if o["manifest"] is None else manifest_from_js(o["manifest"]),
    )
