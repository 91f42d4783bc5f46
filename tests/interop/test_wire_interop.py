"""The replication message codecs against JS ``hypercore/lib/messages.js`` (``wire.*``).

Random messages of every type, with every optional part and flag: the JS encodes them to the
bytes Python encodes and decodes Python's bytes to the same values; bytes the JS writes decode
in Python. Mutated encodings decode the same on both sides whenever Python accepts them, and
the JS replicator registers the codecs in the order of ``hypercore.wire.MESSAGES``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from hypercore import wire
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
from protomux import encoding as c

from ..hypercore.strategies import data_from_js, data_to_js
from .jsenv import JSError, JSHelper

pytestmark = pytest.mark.interop

Obj = dict[str, Any]
MAX = 2**53 - 1
PER_TYPE = 300


# --- random values, seeded ----------------------------------------------------------------------


def uint(r: random.Random) -> int:
    """Every varint width, and the edges of each."""
    k = r.randrange(8)
    if k == 0:
        return r.choice([0, 1, 0xFC, 0xFD, 0xFFFF, 0x10000, 0xFFFFFFFF, 0x100000000, MAX])
    if k <= 3:
        return r.randrange(0x100)
    if k == 4:
        return r.randrange(0x10000)
    if k == 5:
        return r.randrange(2**32)
    return r.randrange(MAX + 1)


def flag(r: random.Random) -> bool:
    return r.random() < 0.5


def maybe(r: random.Random, make: Callable[[], Any]) -> Any:
    return make() if flag(r) else None


def blob(r: random.Random, n: int) -> bytes:
    return r.randbytes(r.randrange(n + 1))


def text(r: random.Random) -> str:
    alphabet = "abcXYZ09-_/ é€中😀\u0000"
    return "".join(r.choice(alphabet) for _ in range(r.randrange(12)))


def gen_sync(r: random.Random) -> Sync:
    return Sync(uint(r), uint(r), uint(r), flag(r), flag(r), flag(r), flag(r), flag(r))


def gen_request(r: random.Random) -> Request:
    return Request(
        uint(r),
        uint(r),
        block=maybe(r, lambda: RequestIndex(uint(r), uint(r))),
        hash=maybe(r, lambda: RequestIndex(uint(r), uint(r))),
        seek=maybe(r, lambda: RequestSeek(uint(r), uint(r))),
        upgrade=maybe(r, lambda: RequestUpgrade(uint(r), uint(r))),
        manifest=flag(r),
        priority=r.choice([0, 0, 1, 2, uint(r)]),
    )


def gen_cancel(r: random.Random) -> Cancel:
    return Cancel(uint(r))


def gen_nodes(r: random.Random) -> tuple[TreeNode, ...]:
    return tuple(TreeNode(uint(r), uint(r), r.randbytes(32)) for _ in range(r.randrange(4)))


def gen_manifest(r: random.Random) -> Manifest:
    signers = tuple(Signer(r.randbytes(32), r.randbytes(32)) for _ in range(r.randrange(3)))
    return Manifest(
        version=r.choice([1, 2]),
        quorum=uint(r),
        signers=signers,
        allow_patch=flag(r),
        prologue=maybe(r, lambda: Prologue(r.randbytes(32), uint(r))),
        linked=maybe(r, lambda: tuple(r.randbytes(32) for _ in range(r.randrange(3)))),
        user_data=maybe(r, lambda: r.randbytes(r.randrange(1, 20))),
    )


def gen_data(r: random.Random) -> Data:
    return Data(
        uint(r),
        uint(r),
        block=maybe(r, lambda: DataBlock(uint(r), blob(r, 40), gen_nodes(r))),
        hash=maybe(r, lambda: DataHash(uint(r), gen_nodes(r))),
        seek=maybe(r, lambda: DataSeek(uint(r), gen_nodes(r))),
        upgrade=maybe(
            r,
            lambda: DataUpgrade(
                uint(r),
                uint(r),
                gen_nodes(r),
                gen_nodes(r),
                maybe(r, lambda: r.randbytes(r.choice([1, 64, 68]))),
            ),
        ),
        manifest=maybe(r, lambda: gen_manifest(r)),
    )


def gen_no_data(r: random.Random) -> NoData:
    return NoData(uint(r), r.choice([0, wire.NOT_AVAILABLE, wire.INVALID_REQUEST, uint(r)]))


def gen_want(r: random.Random) -> Want:
    return Want(uint(r), uint(r), flag(r))


def gen_unwant(r: random.Random) -> Unwant:
    return Unwant(uint(r), uint(r), flag(r))


def gen_bitfield(r: random.Random) -> Bitfield:
    words = [r.choice([0, 0xFFFFFFFF, r.randrange(2**32)]) for _ in range(r.randrange(10))]
    return Bitfield(uint(r), tuple(words))


def gen_range(r: random.Random) -> Range:
    return Range(drop=flag(r), start=uint(r), length=r.choice([0, 1, 1, uint(r)]))


def gen_extension(r: random.Random) -> Extension:
    return Extension(text(r), blob(r, 30))


def gen_handshake(r: random.Random) -> Handshake:
    return Handshake(seeks=flag(r), capability=r.randbytes(32))


# --- the JS shapes ------------------------------------------------------------------------------


def _pair(p: Any, a: str, b: str) -> Obj | None:
    return None if p is None else {a: getattr(p, a), b: getattr(p, b)}


def request_to_js(m: Request) -> Obj:
    return {
        "id": m.id,
        "fork": m.fork,
        "block": _pair(m.block, "index", "nodes"),
        "hash": _pair(m.hash, "index", "nodes"),
        "seek": _pair(m.seek, "bytes", "padding"),
        "upgrade": _pair(m.upgrade, "start", "length"),
        "manifest": m.manifest,
        "priority": m.priority,
    }


def request_from_js(o: Obj) -> Request:
    b, h, s, u = o["block"], o["hash"], o["seek"], o["upgrade"]
    return Request(
        o["id"],
        o["fork"],
        block=None if b is None else RequestIndex(b["index"], b["nodes"]),
        hash=None if h is None else RequestIndex(h["index"], h["nodes"]),
        seek=None if s is None else RequestSeek(s["bytes"], s["padding"]),
        upgrade=None if u is None else RequestUpgrade(u["start"], u["length"]),
        manifest=o["manifest"],
        priority=o["priority"],
    )


def sync_to_js(m: Sync) -> Obj:
    return {
        "fork": m.fork,
        "length": m.length,
        "remoteLength": m.remote_length,
        "canUpgrade": m.can_upgrade,
        "uploading": m.uploading,
        "downloading": m.downloading,
        "hasManifest": m.has_manifest,
        "allowPush": m.allow_push,
    }


def sync_from_js(o: Obj) -> Sync:
    return Sync(
        o["fork"],
        o["length"],
        o["remoteLength"],
        o["canUpgrade"],
        o["uploading"],
        o["downloading"],
        o["hasManifest"],
        o["allowPush"],
    )


@dataclass(frozen=True)
class Kind:
    """One message type: its JS name, codec, generator and JS shape both ways."""

    js_name: str
    codec: c.Codec[Any]
    gen: Callable[[random.Random], Any]
    to_js: Callable[[Any], Obj]
    from_js: Callable[[Obj], Any]


KINDS = [
    Kind("sync", wire.SYNC, gen_sync, sync_to_js, sync_from_js),
    Kind("request", wire.REQUEST, gen_request, request_to_js, request_from_js),
    Kind(
        "cancel",
        wire.CANCEL,
        gen_cancel,
        lambda m: {"request": m.request},
        lambda o: Cancel(o["request"]),
    ),
    Kind("data", wire.DATA, gen_data, data_to_js, data_from_js),
    Kind(
        "noData",
        wire.NO_DATA,
        gen_no_data,
        lambda m: {"request": m.request, "reason": m.reason},
        lambda o: NoData(o["request"], o["reason"]),
    ),
    Kind(
        "want",
        wire.WANT,
        gen_want,
        lambda m: {"start": m.start, "length": m.length, "any": m.any},
        lambda o: Want(o["start"], o["length"], o["any"]),
    ),
    Kind(
        "unwant",
        wire.UNWANT,
        gen_unwant,
        lambda m: {"start": m.start, "length": m.length, "any": m.any},
        lambda o: Unwant(o["start"], o["length"], o["any"]),
    ),
    Kind(
        "bitfield",
        wire.BITFIELD,
        gen_bitfield,
        lambda m: {"start": m.start, "bitfield": list(m.bitfield)},
        lambda o: Bitfield(o["start"], tuple(o["bitfield"])),
    ),
    Kind(
        "range",
        wire.RANGE,
        gen_range,
        lambda m: {"drop": m.drop, "start": m.start, "length": m.length},
        lambda o: Range(drop=o["drop"], start=o["start"], length=o["length"]),
    ),
    Kind(
        "extension",
        wire.EXTENSION,
        gen_extension,
        lambda m: {"name": m.name, "message": m.message},
        lambda o: Extension(o["name"], o["message"]),
    ),
    Kind(
        "handshake",
        wire.HANDSHAKE,
        gen_handshake,
        lambda m: {"seeks": m.seeks, "capability": m.capability},
        lambda o: Handshake(seeks=o["seeks"], capability=o["capability"]),
    ),
]
IDS = [k.js_name for k in KINDS]


def ok(result: Any) -> Any:
    if isinstance(result, JSError):
        raise result
    return result


# --- tests --------------------------------------------------------------------------------------


def test_the_js_replicator_registers_these_codecs_in_this_order(js: JSHelper) -> None:
    channel = js("wire.channel")
    assert channel["protocol"] == "hypercore/alpha"
    assert channel["handshake"] == "handshake"
    by_name = {k.js_name: k.codec for k in KINDS}
    assert tuple(by_name[name] for name in channel["messages"]) == wire.MESSAGES


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_random_messages_match_byte_for_byte(js: JSHelper, kind: Kind) -> None:
    r = random.Random(f"wire-{kind.js_name}")
    msgs = [kind.gen(r) for _ in range(PER_TYPE)]
    ours = [c.encode(kind.codec, m) for m in msgs]

    # JS encodes the same values to the same bytes...
    theirs = js.call("wire.encode", [(kind.js_name, kind.to_js(m)) for m in msgs])
    for m, mine, their in zip(msgs, ours, theirs, strict=True):
        assert ok(their) == mine, m

    # ... reads Python's bytes back as the same values, to the last byte ...
    decoded = js.call("wire.decode", [(kind.js_name, b) for b in ours])
    for m, d in zip(msgs, decoded, strict=True):
        d = ok(d)
        assert d["rest"] == 0
        assert kind.from_js(d["value"]) == m

    # ... and what the JS writes decodes in Python to what the JS itself reads from it.
    back = js.call("wire.roundTrip", [(kind.js_name, kind.to_js(m)) for m in msgs])
    for their, b in zip(theirs, back, strict=True):
        assert c.decode(kind.codec, ok(their)) == kind.from_js(ok(b))


def mutate(r: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(r.randrange(1, 4)):
        op = r.randrange(4)
        if op == 0 and b:
            b[r.randrange(len(b))] = r.randrange(256)
        elif op == 1 and b:
            del b[r.randrange(len(b)) :]
        elif op == 2:
            b.insert(r.randrange(len(b) + 1), r.choice([0, 1, 2, 0x20, 0xFD, r.randrange(256)]))
        elif b:
            b[0] = r.randrange(256)  # the flags, most often
    return bytes(b)


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_mutated_bytes_decode_alike(js: JSHelper, kind: Kind) -> None:
    """Whatever Python accepts, the JS reads as the same value and the same length."""
    r = random.Random(f"mutate-{kind.js_name}")
    blobs = [mutate(r, c.encode(kind.codec, kind.gen(r))) for _ in range(PER_TYPE)]
    results = js.call("wire.decode", [(kind.js_name, b) for b in blobs])
    accepted = 0
    for data, theirs in zip(blobs, results, strict=True):
        state = c.State(data, 0, len(data))
        try:
            mine = kind.codec.decode(state)
        except c.DecodeError:
            continue  # the JS may accept (overlong varints, U+FFFD, ...): Python is stricter
        accepted += 1
        assert not isinstance(theirs, JSError), (data.hex(), theirs)
        assert kind.from_js(theirs["value"]) == mine, data.hex()
        assert theirs["rest"] == state.end - state.start, data.hex()
    assert accepted > PER_TYPE // 10


SHORT_FORMS = [
    ("noData", "05"),
    ("noData", "0500"),
    ("noData", "050100"),
    ("noData", "050203"),
    ("want", "0004"),
    ("want", "000403"),
    ("unwant", "000402"),
    ("sync", "fd0001010203"),
    ("request", "20010000"),
    ("request", "e101000102"),
    ("range", "000701"),
    ("range", "060709"),
    ("bitfield", "0000"),
    ("extension", "00"),
    ("extension", ""),  # name missing: both refuse
    ("handshake", "03" + "ab" * 32),
]


@pytest.mark.parametrize(("name", "hex_"), SHORT_FORMS)
def test_short_and_lenient_forms_decode_alike(js: JSHelper, name: str, hex_: str) -> None:
    kind = next(k for k in KINDS if k.js_name == name)
    data = bytes.fromhex(hex_)
    theirs = js.call("wire.decode", [(name, data)])[0]
    state = c.State(data, 0, len(data))
    try:
        mine = kind.codec.decode(state)
    except c.DecodeError:
        assert isinstance(theirs, JSError)
        return
    assert kind.from_js(ok(theirs)["value"]) == mine
    assert theirs["rest"] == state.end - state.start
