"""hyperswarm.hyperdht.messages and constants against hyperdht 6.34.0's own lib/messages.js
and lib/constants.js: for every codec, several values (each optional field present and
absent, IPv4/IPv6 addresses, many relays, big integers, empty values, every routing mode) are
the same bytes on both sides and each side decodes the other's bytes to the same value.
Trailing bytes are ignored by both, and on mutated bytes JS never accepts less than we do."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any

import pytest

from hyperswarm.hyperdht import constants as k
from hyperswarm.hyperdht import messages as m
from hyperswarm.hyperdht.errors import HyperDHTDecodeError
from protomux.encoding import Address

from .jsenv import JSError, JSHelper

PK = bytes(range(32))
PK2 = bytes(range(100, 132))
SIG = bytes(range(64))
TOKEN = bytes(range(200, 232))
BIG = 2**53 - 1

A1 = Address("1.2.3.4", 49737)
A2 = Address("255.255.255.255", 65535)
A3 = Address("0.0.0.0", 0)
A4 = Address("10.0.0.1", 1)
V6A = Address("2001:db8:0:0:0:0:0:1", 443)
V6B = Address("fe80:0:0:0:1:2:3:4", 65535)

P0 = m.Peer(PK, ())
P1 = m.Peer(PK, (A1,))
P3 = m.Peer(PK2, (A1, A2, A3))

RELAYS = (
    m.RelayInfo(relay_address=A1, peer_address=A2),
    m.RelayInfo(relay_address=A3, peer_address=A4),
)

FULL_NOISE = m.NoisePayload(
    error=3,
    firewall=k.FIREWALL.RANDOM,
    holepunch=m.HolepunchInfo(id=7, relays=RELAYS),
    addresses4=(A1, A2),
    addresses6=(V6A, V6B),
    udx=m.UdxInfo(reusable_socket=True, id=0xFFFFFFFF, seq=BIG),
    secret_stream=m.SecretStreamInfo(),
    relay_through=m.RelayThroughInfo(public_key=PK, token=TOKEN),
    relay_addresses=(A3, A4),
)

NOISE_PAYLOADS = [
    m.NoisePayload(),
    FULL_NOISE,
    m.NoisePayload(firewall=k.FIREWALL.OPEN, error=k.ERROR.TRY_LATER),
    m.NoisePayload(holepunch=m.HolepunchInfo(id=0)),
    m.NoisePayload(holepunch=m.HolepunchInfo(id=300, relays=RELAYS)),
    m.NoisePayload(addresses4=(A1,)),
    m.NoisePayload(addresses6=(V6A,)),
    m.NoisePayload(udx=m.UdxInfo(id=1, seq=0)),
    m.NoisePayload(udx=m.UdxInfo(reusable_socket=True, id=65536, seq=70000)),
    m.NoisePayload(secret_stream=m.SecretStreamInfo()),
    m.NoisePayload(relay_through=m.RelayThroughInfo(public_key=PK2, token=TOKEN)),
    m.NoisePayload(relay_addresses=()),
    m.NoisePayload(relay_addresses=(A1, A2, A3, A4)),
    m.NoisePayload(firewall=k.FIREWALL.CONSISTENT, udx=m.UdxInfo(id=5, seq=6), relay_addresses=()),
]

HOLEPUNCH_PAYLOADS = [
    m.HolepunchPayload(),
    m.HolepunchPayload(
        error=2,
        firewall=k.FIREWALL.CONSISTENT,
        round=252,  # the most JS encodes: it sizes flags, error, firewall, round as 1 byte each
        connected=True,
        punching=True,
        addresses=(A1, A2, A3),
        remote_address=A4,
        token=TOKEN,
        remote_token=PK,
    ),
    m.HolepunchPayload(connected=True),
    m.HolepunchPayload(punching=True, round=1),
    m.HolepunchPayload(addresses=()),
    m.HolepunchPayload(addresses=(A2,)),
    m.HolepunchPayload(remote_address=A1),
    m.HolepunchPayload(token=TOKEN),
    m.HolepunchPayload(remote_token=TOKEN, firewall=k.FIREWALL.RANDOM),
    m.HolepunchPayload(round=200, error=1),
]

VECTORS: dict[str, tuple[m.Message[Any], list[Any]]] = {
    "peer": (m.PEER, [P0, P1, P3, m.Peer(PK, (A2,) * 5)]),
    "peers": (m.PEERS, [(), (P0,), (P1, P3, P0)]),
    "lookupRawReply": (
        m.LOOKUP_RAW_REPLY,
        [
            m.LookupRawReply((), 0),
            m.LookupRawReply((P1,), 0),
            m.LookupRawReply((P0, P1, P3), 1),
            m.LookupRawReply((P3,), 300),
            m.LookupRawReply((P1, P1), BIG),
        ],
    ),
    "announce": (
        m.ANNOUNCE,
        [
            m.Announce(peer, refresh, sig, bump)
            for peer in (None, P1, P3)
            for refresh in (None, TOKEN)
            for sig in (None, SIG)
            for bump in (0, 1, 2**40)
        ],
    ),
    "mutableSignable": (
        m.MUTABLE_SIGNABLE,
        [
            m.MutableSignable(seq, value)
            for seq, value in [
                (0, b""),
                (1, b"hello"),
                (252, b"\x00"),
                (253, b"x" * 252),
                (0xFFFF, b"y" * 253),
                (0x10000, b"z" * 1000),
                (2**32, b"w"),
                (BIG, b""),
            ]
        ],
    ),
    "mutablePutRequest": (
        m.MUTABLE_PUT_REQUEST,
        [
            m.MutablePutRequest(PK, 0, b"", SIG),
            m.MutablePutRequest(PK2, 1, b"value", SIG),
            m.MutablePutRequest(PK, BIG, b"v" * 1000, bytes(64)),
        ],
    ),
    "mutableGetResponse": (
        m.MUTABLE_GET_RESPONSE,
        [
            m.MutableGetResponse(0, b"", SIG),
            m.MutableGetResponse(70000, b"value", SIG),
            m.MutableGetResponse(BIG, b"v" * 1000, bytes(64)),
        ],
    ),
    "handshake": (
        m.HANDSHAKE,
        [
            m.Handshake(mode, noise, peer, relay)
            for mode in range(5)
            for noise in (b"", bytes(range(96)))
            for peer in (None, A1)
            for relay in (None, A2)
        ],
    ),
    "holepunch": (
        m.HOLEPUNCH,
        [
            m.Holepunch(mode, id_, payload, peer)
            for mode in range(5)
            for id_ in (0, 300, 2**32)
            for payload in (b"", b"p" * 64)
            for peer in (None, A4)
        ],
    ),
    "noisePayload": (m.NOISE_PAYLOAD, NOISE_PAYLOADS),
    "holepunchPayload": (m.HOLEPUNCH_PAYLOAD, HOLEPUNCH_PAYLOADS),
    "pluginRequest": (
        m.PLUGIN_REQUEST,
        [
            m.PluginRequest("echo", 1, 0, None),
            m.PluginRequest("echo", 2, 300, b""),
            m.PluginRequest("plügin ✓", BIG, 7, b"value" * 100),
            m.PluginRequest("", 0, 0, b"x"),
        ],
    ),
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def to_js(v: Any) -> Any:
    """A Python message value as the object the JS codecs take and give."""
    if isinstance(v, Address):
        return {"host": v.host, "port": v.port}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {_camel(f.name): to_js(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, (tuple, list)):
        return [to_js(x) for x in v]
    return v


CASES = [(name, i) for name, (_, values) in VECTORS.items() for i in range(len(values))]


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_encodings_are_the_js_bytes(js: JSHelper, name: str) -> None:
    msg, values = VECTORS[name]
    got = js.call("hyperdhtMessages.encode", [(name, to_js(v)) for v in values])
    for value, js_bytes in zip(values, got, strict=True):
        assert not isinstance(js_bytes, JSError), (value, js_bytes)
        assert msg.encode(value) == js_bytes, value
        assert msg.decode(js_bytes) == value


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_js_decodes_our_bytes_to_the_same_value(js: JSHelper, name: str) -> None:
    msg, values = VECTORS[name]
    encoded = [msg.encode(v) for v in values]
    got = js.call("hyperdhtMessages.decode", [(name, b) for b in encoded])
    for value, js_value in zip(values, got, strict=True):
        assert js_value == to_js(value), value


UINTS = [0, 1, 252, 253, 0xFFFF, 0x10000, 0xFFFFFFFF, 2**32, BIG]


def test_uint(js: JSHelper) -> None:
    got = js.call("hyperdhtMessages.encode", [("uint", n) for n in UINTS])
    assert [m.encode_uint(n) for n in UINTS] == got
    assert [m.decode_uint(b + b"\x01\x02") for b in got] == UINTS
    back = js.call("hyperdhtMessages.decode", [("uint", m.encode_uint(n) + b"zz") for n in UINTS])
    assert back == UINTS


def test_raw_peer_records_in_a_lookup_reply(js: JSHelper) -> None:
    """Already-encoded records go out verbatim, as JS writes its stored records."""
    records = [m.PEER.encode(P1), m.PEER.encode(P3)]
    raw = m.LookupRawReply(tuple(records), 9)  # type: ignore[arg-type]
    js_bytes = js("hyperdhtMessages.encode", "lookupRawReply", {"peers": records, "bump": 9})
    assert m.LOOKUP_RAW_REPLY.encode(raw) == js_bytes
    assert m.encode_lookup_raw_reply(records, 9) == js_bytes
    assert m.encode_lookup_raw_reply([], 0) == b"\x00\x00"
    assert m.LOOKUP_RAW_REPLY.decode(js_bytes) == m.LookupRawReply((P1, P3), 9)


def test_a_lookup_reply_without_bump_decodes_with_bump_0(js: JSHelper) -> None:
    for data in (b"\x00", b"\x01" + m.PEER.encode(P1)):
        assert to_js(m.LOOKUP_RAW_REPLY.decode(data)) == js(
            "hyperdhtMessages.decode", "lookupRawReply", data
        )


def test_trailing_bytes_are_ignored_like_js(js: JSHelper) -> None:
    calls = []
    for name, (msg, values) in VECTORS.items():
        if name == "lookupRawReply":
            continue  # there, bytes after the peers are the bump
        for v in values:
            calls.append((name, msg, msg.encode(v) + b"\x07garbage"))
    got = js.call("hyperdhtMessages.decode", [(name, data) for name, _, data in calls])
    for (name, msg, data), js_value in zip(calls, got, strict=True):
        assert not isinstance(js_value, JSError), (name, data.hex())
        assert to_js(msg.decode(data)) == js_value, (name, data.hex())


def test_a_noise_payload_of_another_version_is_returned_empty(js: JSHelper) -> None:
    for data in (b"\x02", b"\x00\xff\xff", b"\x07" + m.NOISE_PAYLOAD.encode(FULL_NOISE)):
        ours = m.NOISE_PAYLOAD.decode(data)
        assert ours == m.NoisePayload(version=data[0])
        assert to_js(ours) == js("hyperdhtMessages.decode", "noisePayload", data)
        # and it re-encodes (as version 1, what the JS encoder always writes)
        assert m.NOISE_PAYLOAD.encode(ours) == bytes.fromhex("0100" + "0000")


def test_ipv6_shorthand_encodes_like_js(js: JSHelper) -> None:
    value = m.NoisePayload(addresses6=(Address("2001:db8::1", 1), Address("::", 2)))
    assert m.NOISE_PAYLOAD.encode(value) == js(
        "hyperdhtMessages.encode", "noisePayload", to_js(value)
    )


def test_js_reads_our_full_varints_where_its_encoder_assumes_one_byte(js: JSHelper) -> None:
    """JS sizes mode/error/firewall/round as one byte each; we write the whole varint, and
    the JS decoders read it."""
    values: list[tuple[str, m.Message[Any], Any]] = [
        ("handshake", m.HANDSHAKE, m.Handshake(300, b"noise", A1, A2)),
        ("holepunch", m.HOLEPUNCH, m.Holepunch(70000, 1, b"p", A1)),
        ("noisePayload", m.NOISE_PAYLOAD, m.NoisePayload(error=253, firewall=2**40, udx=None)),
        ("holepunchPayload", m.HOLEPUNCH_PAYLOAD, m.HolepunchPayload(error=999, round=2**33)),
    ]
    got = js.call("hyperdhtMessages.decode", [(n, msg.encode(v)) for n, msg, v in values])
    assert got == [to_js(v) for _, _, v in values]


def test_constants_are_the_js_constants(js: JSHelper) -> None:
    got = js("hyperdhtMessages.constants")
    assert dict(k.COMMANDS) == got["COMMANDS"]
    assert dict(k.FIREWALL) == got["FIREWALL"]
    assert dict(k.ERROR) == got["ERROR"]
    assert (k.ERROR_SEQ_REUSED, k.ERROR_SEQ_TOO_LOW) == (
        got["ERROR"]["SEQ_REUSED"],
        got["ERROR"]["SEQ_TOO_LOW"],
    )
    assert list(k.BOOTSTRAP_NODES) == got["BOOTSTRAP_NODES"]
    ns = got["NS"]
    assert k.NS_ANNOUNCE == ns["ANNOUNCE"]
    assert k.NS_UNANNOUNCE == ns["UNANNOUNCE"]
    assert k.NS_MUTABLE_PUT == ns["MUTABLE_PUT"]
    assert k.NS_PEER_HANDSHAKE == ns["PEER_HANDSHAKE"]
    assert k.NS_PEER_HOLEPUNCH == ns["PEER_HOLEPUNCH"]
    assert k.NS_PLUGIN == ns["PLUGIN"]
    assert k.DEFAULT_PORT == 49737


# --- mutated bytes: JS never accepts less than we do ----------------------------------------------


def _mutations(rng: random.Random, data: bytes) -> list[bytes]:
    out = [data[:i] for i in range(len(data))]
    for _ in range(40):
        b = bytearray(data)
        if b:
            i = rng.randrange(len(b))
            b[i] = rng.choice([0, 1, 0xFC, 0xFD, 0xFE, 0xFF, rng.randrange(256), b[i] ^ 1])
        out.append(bytes(b))
    out.extend(bytes(rng.randrange(256) for _ in range(rng.randrange(24))) for _ in range(20))
    return out


def _try(decode: Callable[[bytes], Any], data: bytes) -> Any:
    try:
        return decode(data)
    except HyperDHTDecodeError as e:
        return e


# What our strict compact-encoding refuses and JS reads (laxly): the only allowed disagreement.
LAX_IN_JS = ("non-canonical uint", "invalid utf-8")


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_mutated_bytes_decode_the_same_or_only_we_refuse(js: JSHelper, name: str) -> None:
    """Where we decode, JS decodes to the same value; where JS throws, we raise. Where only we
    refuse, the input has a non-canonical varint or bad UTF-8 (a plugin name)."""
    msg, values = VECTORS[name]
    rng = random.Random(name)
    inputs = [x for v in values[:6] for x in _mutations(rng, msg.encode(v))]
    got = js.call("hyperdhtMessages.decode", [(name, data) for data in inputs])
    agreed = 0
    for data, js_value in zip(inputs, got, strict=True):
        ours = _try(msg.decode, data)
        if not isinstance(ours, HyperDHTDecodeError):
            assert not isinstance(js_value, JSError), (data.hex(), ours)
            assert to_js(ours) == js_value, data.hex()
            agreed += 1
        elif not isinstance(js_value, JSError):
            assert any(why in str(ours) for why in LAX_IN_JS), (data.hex(), ours, js_value)
        else:
            agreed += 1
    assert agreed > len(inputs) // 2
