"""Property tests of hyperswarm.hyperdht.messages: random valid values of every message
round-trip (also with bytes after them, which decoding ignores), and arbitrary bytes,
truncations and single-byte mutations of valid encodings raise nothing but
HyperDHTDecodeError (caused by a compact-encoding DecodeError, never an accident of the
code); whatever decodes re-encodes without error.

HYPERTRIO_FUZZ_EXAMPLES sets the examples per test (default 200)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyperswarm.hyperdht import messages as m
from hyperswarm.hyperdht.errors import HyperDHTDecodeError
from protomux import encoding as c
from protomux.encoding import Address

EXAMPLES = int(os.environ.get("HYPERTRIO_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

MAX = 2**53 - 1

b32 = st.binary(min_size=32, max_size=32)
b64 = st.binary(min_size=64, max_size=64)
small = st.integers(0, 252)
uints = st.integers(0, 300) | st.integers(0, MAX)
values = st.binary(max_size=300)

ipv4 = st.builds(
    Address,
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
    st.integers(0, 65535),
)
# IPv6 hosts in the form both decoders give: eight lowercase hex groups, no "::".
ipv6 = st.builds(
    Address,
    st.lists(st.integers(0, 0xFFFF), min_size=8, max_size=8).map(
        lambda g: ":".join(format(x, "x") for x in g)
    ),
    st.integers(0, 65535),
)
ipv4s = st.lists(ipv4, max_size=3).map(tuple)
maybe_ipv4 = st.none() | ipv4

peers = st.builds(m.Peer, b32, ipv4s)
peer_tuples = st.lists(peers, max_size=3).map(tuple)

noise_payloads = st.builds(
    m.NoisePayload,
    version=st.just(1),
    error=uints,
    firewall=uints,
    holepunch=st.none()
    | st.builds(
        m.HolepunchInfo,
        id=uints,
        relays=st.lists(
            st.builds(m.RelayInfo, relay_address=ipv4, peer_address=ipv4), max_size=3
        ).map(tuple),
    ),
    addresses4=ipv4s,
    addresses6=st.lists(ipv6, max_size=3).map(tuple),
    udx=st.none()
    | st.builds(
        m.UdxInfo,
        version=st.just(1),
        reusable_socket=st.booleans(),
        id=st.integers(0, 0xFFFFFFFF),
        seq=uints,
    ),
    secret_stream=st.none() | st.just(m.SecretStreamInfo()),
    relay_through=st.none()
    | st.builds(m.RelayThroughInfo, version=st.just(1), public_key=b32, token=b32),
    relay_addresses=st.none() | ipv4s,
)

holepunch_payloads = st.builds(
    m.HolepunchPayload,
    error=uints,
    firewall=uints,
    round=uints,
    connected=st.booleans(),
    punching=st.booleans(),
    addresses=st.none() | ipv4s,
    remote_address=maybe_ipv4,
    token=st.none() | b32,
    remote_token=st.none() | b32,
)

STRATEGIES: dict[str, tuple[m.Message[Any], st.SearchStrategy[Any]]] = {
    "peer": (m.PEER, peers),
    "peers": (m.PEERS, peer_tuples),
    "lookupRawReply": (m.LOOKUP_RAW_REPLY, st.builds(m.LookupRawReply, peer_tuples, uints)),
    "announce": (
        m.ANNOUNCE,
        st.builds(m.Announce, st.none() | peers, st.none() | b32, st.none() | b64, uints),
    ),
    "mutableSignable": (m.MUTABLE_SIGNABLE, st.builds(m.MutableSignable, uints, values)),
    "mutablePutRequest": (
        m.MUTABLE_PUT_REQUEST,
        st.builds(m.MutablePutRequest, b32, uints, values, b64),
    ),
    "mutableGetResponse": (
        m.MUTABLE_GET_RESPONSE,
        st.builds(m.MutableGetResponse, uints, values, b64),
    ),
    "handshake": (
        m.HANDSHAKE,
        st.builds(m.Handshake, small | uints, values, maybe_ipv4, maybe_ipv4),
    ),
    "holepunch": (
        m.HOLEPUNCH,
        st.builds(m.Holepunch, small | uints, uints, values, maybe_ipv4),
    ),
    "noisePayload": (m.NOISE_PAYLOAD, noise_payloads),
    "holepunchPayload": (m.HOLEPUNCH_PAYLOAD, holepunch_payloads),
    "pluginRequest": (
        m.PLUGIN_REQUEST,
        st.builds(m.PluginRequest, st.text(max_size=20), uints, uints, st.none() | values),
    ),
}
NAMES = sorted(STRATEGIES)


def _decode_or_refuse(msg: m.Message[Any], data: bytes) -> None:
    """``msg.decode(data)`` raises only HyperDHTDecodeError from a DecodeError, or gives a
    value that re-encodes and decodes again."""
    try:
        value = msg.decode(data)
    except HyperDHTDecodeError as e:
        assert isinstance(e.__cause__, c.DecodeError), repr(e.__cause__)
        return
    again = msg.encode(value)
    msg.decode(again)


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_only_raise_decode_errors(name: str, raw: bytes) -> None:
    _decode_or_refuse(STRATEGIES[name][0], raw)


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(
    data=st.data(),
    tail=st.binary(max_size=8),
    cut=st.integers(0, 2**16),
    where=st.integers(0, 2**16),
    byte=st.integers(0, 255),
)
def test_valid_values_round_trip_and_damaged_ones_only_raise_decode_errors(
    name: str, data: st.DataObject, tail: bytes, cut: int, where: int, byte: int
) -> None:
    msg, strategy = STRATEGIES[name]
    value = data.draw(strategy)
    encoded = msg.encode(value)
    assert c.encode(msg.codec, value) == encoded
    assert msg.decode(encoded) == value
    assert msg.decode(encoded + tail) == value

    _decode_or_refuse(msg, encoded[: cut % (len(encoded) + 1)])
    if encoded:
        i = where % len(encoded)
        mutated = encoded[:i] + bytes((byte,)) + encoded[i + 1 :]
        _decode_or_refuse(msg, mutated)
        _decode_or_refuse(msg, mutated[: cut % (len(mutated) + 1)])


@FUZZ
@given(n=uints, tail=st.binary(max_size=8))
def test_uint_round_trips_and_ignores_trailing_bytes(n: int, tail: bytes) -> None:
    assert m.decode_uint(m.encode_uint(n) + tail) == n


@FUZZ
@given(raw=st.binary(max_size=12))
def test_decode_uint_only_raises_decode_errors(raw: bytes) -> None:
    try:
        m.decode_uint(raw)
    except HyperDHTDecodeError as e:
        assert isinstance(e.__cause__, c.DecodeError)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("junk", [None, 5, "text", [1, 2], object()])
def test_non_bytes_input_is_a_decode_error(name: str, junk: Any) -> None:
    with pytest.raises(HyperDHTDecodeError):
        STRATEGIES[name][0].decode(junk)
    with pytest.raises(HyperDHTDecodeError):
        m.decode_uint(junk)


def test_decode_accepts_bytearray_and_memoryview() -> None:
    data = m.PEER.encode(m.Peer(bytes(32), (Address("1.2.3.4", 5),)))
    assert m.PEER.decode(bytearray(data)) == m.PEER.decode(memoryview(data)) == m.PEER.decode(data)


@pytest.mark.parametrize(
    ("msg", "value"),
    [
        (m.PEER, m.Peer(bytes(31), ())),
        (m.PEER, m.Peer(bytes(32), (Address("::1", 1),))),
        (m.PEER, m.Peer(bytes(32), (Address("1.2.3.4", 65536),))),
        (m.ANNOUNCE, m.Announce(None, bytes(31), None, 0)),
        (m.ANNOUNCE, m.Announce(None, None, bytes(32), 0)),
        (m.ANNOUNCE, m.Announce(None, None, None, -1)),
        (m.MUTABLE_SIGNABLE, m.MutableSignable(2**53, b"")),
        (m.MUTABLE_SIGNABLE, m.MutableSignable(1, "text")),  # type: ignore[arg-type]
        (m.HANDSHAKE, m.Handshake(0, b"", Address("1.2.3", 1), None)),
        (m.HANDSHAKE, m.Handshake(True, b"", None, None)),
        (m.NOISE_PAYLOAD, m.NoisePayload(addresses6=(Address("1.2.3.4", 1),))),
        (m.NOISE_PAYLOAD, m.NoisePayload(udx=m.UdxInfo(id=-1, seq=0))),
        (m.HOLEPUNCH_PAYLOAD, m.HolepunchPayload(token=b"short")),
        (m.PLUGIN_REQUEST, m.PluginRequest("\ud800", 1, 1, None)),
        (m.PEER, "not a peer"),
        (m.NOISE_PAYLOAD, m.NoisePayload(holepunch=5)),  # type: ignore[arg-type]
    ],
)
def test_unrepresentable_values_raise_encode_errors(msg: m.Message[Any], value: Any) -> None:
    with pytest.raises(c.EncodeError):
        msg.encode(value)


def test_a_udx_stream_id_over_32_bits_does_not_decode() -> None:
    """A UDX stream id is 32 bits (JS would decode a larger compact uint, and no UDX stream
    can have it): a payload with one is a bad payload, not a crash later in UDX."""
    data = m.NOISE_PAYLOAD.encode(m.NoisePayload(udx=m.UdxInfo(id=2**32, seq=0)))
    with pytest.raises(HyperDHTDecodeError):
        m.NOISE_PAYLOAD.decode(data)
    ok = m.NOISE_PAYLOAD.encode(m.NoisePayload(udx=m.UdxInfo(id=2**32 - 1, seq=0)))
    assert m.NOISE_PAYLOAD.decode(ok).udx == m.UdxInfo(id=2**32 - 1, seq=0)
