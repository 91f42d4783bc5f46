"""The hyperdht message codecs (JS hyperdht ``lib/messages.js``, 6.34.0).

Each message has a frozen dataclass, a compact-encoding :class:`~protomux.encoding.Codec`
(``peer_codec``, ``announce_codec``, ...: they compose with the other codecs) and a
:class:`Message` object (``PEER``, ``ANNOUNCE``, ...) with ``encode(value) -> bytes`` and
``decode(data) -> value``.

=====================  ==============================================================
message                layout
=====================  ==============================================================
PEER                   ``fixed32 publicKey``, ``ipv4Address[] relayAddresses``
PEERS                  ``PEER[]``
LOOKUP_RAW_REPLY       ``PEER[] peers``, then ``uint bump`` if any bytes are left
ANNOUNCE               ``uint flags`` (1 peer, 2 refresh, 4 signature, 8 bump), ``PEER``,
                       ``fixed32 refresh``, ``fixed64 signature``, ``uint bump``
MUTABLE_SIGNABLE       ``uint seq``, ``buffer value``
MUTABLE_PUT_REQUEST    ``fixed32 publicKey``, ``uint seq``, ``buffer value``,
                       ``fixed64 signature``
MUTABLE_GET_RESPONSE   ``uint seq``, ``buffer value``, ``fixed64 signature``
HANDSHAKE              ``uint flags`` (1 peerAddress, 2 relayAddress), ``uint mode``,
                       ``buffer noise``, ``ipv4Address peerAddress``,
                       ``ipv4Address relayAddress``
HOLEPUNCH              ``uint flags`` (1 peerAddress), ``uint mode``, ``uint id``,
                       ``buffer payload``, ``ipv4Address peerAddress``
NOISE_PAYLOAD          ``uint version`` (1; any other version ends the message),
                       ``uint flags`` (1 holepunch, 2 addresses4, 4 addresses6, 8 udx,
                       16 secretStream, 32 relayThrough, 64 relayAddresses),
                       ``uint error``, ``uint firewall``, then the parts the flags name
HOLEPUNCH_PAYLOAD      ``uint flags`` (1 connected, 2 punching, 4 addresses,
                       8 remoteAddress, 16 token, 32 remoteToken), ``uint error``,
                       ``uint firewall``, ``uint round``, then the parts the flags name
PLUGIN_REQUEST         ``string plugin``, ``uint version``, ``uint command``,
                       ``uint flags`` (1 value), ``buffer value``
=====================  ==============================================================

Encoders write the bytes the JS writes. A field is present when it is not None, as a JS
object or buffer is truthy: an empty ``relay_addresses``/``addresses`` tuple is still
written (flag set, zero items), while ``addresses4``/``addresses6`` of a noise payload are
written only when not empty and ``Announce.bump`` only when not 0. Version fields are
always written as 1, whatever the value says (as the JS encoder does).

Decoders read what the JS reads: bytes after the message are ignored (JS ``c.decode`` does
not check for them), unknown flag bits are ignored, and a noise payload whose version is not
1 decodes to that version with every other field empty. Unlike the JS, they reject
non-canonical varints, integers above 2^53 - 1 and invalid UTF-8 in a plugin name (the
compact-encoding port is strict about those). ``Message.decode`` raises only
:class:`~hyperswarm.hyperdht.errors.HyperDHTDecodeError`, whatever the input;
``Message.encode`` raises :class:`~protomux.encoding.EncodeError` on a value it cannot
represent (a key of the wrong size, an IPv6 host where IPv4 goes, a negative int).

The JS encoders size the ``mode``, ``error``, ``firewall`` and ``round`` varints as one byte
each: for a value above 252 they throw (``offset is out of bounds``) or silently write
truncated bytes (a holepunch payload with ``round=300`` comes out as ``000000fd``). These
write the full varint, which the JS decoders read correctly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from protomux import encoding as c
from protomux.encoding import Address

from .errors import HyperDHTDecodeError

__all__ = [
    "ANNOUNCE",
    "HANDSHAKE",
    "HOLEPUNCH",
    "HOLEPUNCH_PAYLOAD",
    "LOOKUP_RAW_REPLY",
    "MUTABLE_GET_RESPONSE",
    "MUTABLE_PUT_REQUEST",
    "MUTABLE_SIGNABLE",
    "NOISE_PAYLOAD",
    "PEER",
    "PEERS",
    "PLUGIN_REQUEST",
    "Announce",
    "Handshake",
    "Holepunch",
    "HolepunchInfo",
    "HolepunchPayload",
    "LookupRawReply",
    "Message",
    "MutableGetResponse",
    "MutablePutRequest",
    "MutableSignable",
    "NoisePayload",
    "Peer",
    "PluginRequest",
    "RelayInfo",
    "RelayThroughInfo",
    "SecretStreamInfo",
    "UdxInfo",
    "announce_codec",
    "decode_uint",
    "encode_lookup_raw_reply",
    "encode_uint",
    "handshake_codec",
    "holepunch_codec",
    "holepunch_info_codec",
    "holepunch_payload_codec",
    "lookup_raw_reply_codec",
    "mutable_get_response_codec",
    "mutable_put_request_codec",
    "mutable_signable_codec",
    "noise_payload_codec",
    "peer_codec",
    "peers_codec",
    "plugin_request_codec",
    "relay_info_codec",
    "relay_through_info_codec",
    "secret_stream_info_codec",
    "udx_info_codec",
]

T = TypeVar("T")

_uint = c.uint
_ipv4 = c.ipv4_address
_ipv6 = c.ipv6_address
_fixed32 = c.fixed32
_fixed64 = c.fixed64
_buffer = c.buffer


class _Tuple(c.Codec[tuple[T, ...]]):
    """``c.array`` decoding to a tuple (encodes any sequence)."""

    __slots__ = ("item",)

    def __init__(self, item: c.Codec[T]) -> None:
        self.item = item

    def preencode(self, state: c.State, value: Sequence[T]) -> None:
        try:
            n = len(value)
        except TypeError:
            raise c.EncodeError(f"expected a sequence, got {type(value).__name__}") from None
        _uint.preencode(state, n)
        pre = self.item.preencode
        for v in value:
            pre(state, v)

    def encode(self, state: c.State, value: Sequence[T]) -> None:
        _uint.encode(state, len(value))
        enc = self.item.encode
        for v in value:
            enc(state, v)

    def decode(self, state: c.State) -> tuple[T, ...]:
        n = _uint.decode(state)
        if n > c.MAX_ARRAY_LENGTH:
            raise c.DecodeError(f"array of {n} items is too big")
        dec = self.item.decode
        return tuple(dec(state) for _ in range(n))


_ipv4_array = _Tuple(_ipv4)
_ipv6_array = _Tuple(_ipv6)


# --- peers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Peer:
    """A peer record: a public key and the nodes that relay connections to it."""

    public_key: bytes
    relay_addresses: tuple[Address, ...] = ()


class _PeerCodec(c.Codec[Peer]):
    __slots__ = ()

    def preencode(self, state: c.State, m: Peer) -> None:
        _fixed32.preencode(state, m.public_key)
        _ipv4_array.preencode(state, m.relay_addresses)

    def encode(self, state: c.State, m: Peer) -> None:
        _fixed32.encode(state, m.public_key)
        _ipv4_array.encode(state, m.relay_addresses)

    def decode(self, state: c.State) -> Peer:
        return Peer(_fixed32.decode(state), _ipv4_array.decode(state))


peer_codec: c.Codec[Peer] = _PeerCodec()
peers_codec: c.Codec[tuple[Peer, ...]] = _Tuple(peer_codec)


@dataclass(frozen=True, slots=True)
class LookupRawReply:
    """A LOOKUP reply: the peer records stored under a topic and the topic's bump.

    ``peers`` may also hold already-encoded peer records (``bytes``), written verbatim as
    the JS ``rawPeers`` does (:func:`encode_lookup_raw_reply` is the typed way to do it);
    decoding always gives :class:`Peer` values.
    """

    peers: tuple[Peer, ...] = ()
    bump: int = 0


def _is_raw(p: object) -> bool:
    return isinstance(p, (bytes, bytearray, memoryview))


class _LookupRawReplyCodec(c.Codec[LookupRawReply]):
    __slots__ = ()

    def preencode(self, state: c.State, m: LookupRawReply) -> None:
        peers: Sequence[Any] = m.peers
        _uint.preencode(state, len(peers))
        for p in peers:
            if _is_raw(p):
                state.end += len(p)
            else:
                peer_codec.preencode(state, p)
        _uint.preencode(state, m.bump)

    def encode(self, state: c.State, m: LookupRawReply) -> None:
        peers: Sequence[Any] = m.peers
        _uint.encode(state, len(peers))
        for p in peers:
            if _is_raw(p):
                s = state.start
                state.buffer[s : s + len(p)] = p
                state.start = s + len(p)
            else:
                peer_codec.encode(state, p)
        _uint.encode(state, m.bump)

    def decode(self, state: c.State) -> LookupRawReply:
        peers = peers_codec.decode(state)
        bump = _uint.decode(state) if state.start < state.end else 0
        return LookupRawReply(peers, bump)


lookup_raw_reply_codec: c.Codec[LookupRawReply] = _LookupRawReplyCodec()


# --- announce ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Announce:
    """An ANNOUNCE or UNANNOUNCE value: the peer record, a refresh token, the signature and
    the bump (0: none)."""

    peer: Peer | None = None
    refresh: bytes | None = None
    signature: bytes | None = None
    bump: int = 0


class _AnnounceCodec(c.Codec[Announce]):
    __slots__ = ()

    def preencode(self, state: c.State, m: Announce) -> None:
        state.end += 1  # flags
        if m.peer is not None:
            peer_codec.preencode(state, m.peer)
        if m.refresh is not None:
            _fixed32.preencode(state, m.refresh)
        if m.signature is not None:
            _fixed64.preencode(state, m.signature)
        if m.bump:
            _uint.preencode(state, m.bump)

    def encode(self, state: c.State, m: Announce) -> None:
        flags = (
            (1 if m.peer is not None else 0)
            | (2 if m.refresh is not None else 0)
            | (4 if m.signature is not None else 0)
            | (8 if m.bump else 0)
        )
        _uint.encode(state, flags)
        if m.peer is not None:
            peer_codec.encode(state, m.peer)
        if m.refresh is not None:
            _fixed32.encode(state, m.refresh)
        if m.signature is not None:
            _fixed64.encode(state, m.signature)
        if m.bump:
            _uint.encode(state, m.bump)

    def decode(self, state: c.State) -> Announce:
        flags = _uint.decode(state)
        return Announce(
            peer_codec.decode(state) if flags & 1 else None,
            _fixed32.decode(state) if flags & 2 else None,
            _fixed64.decode(state) if flags & 4 else None,
            _uint.decode(state) if flags & 8 else 0,
        )


announce_codec: c.Codec[Announce] = _AnnounceCodec()


# --- mutable values ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MutableSignable:
    """What a mutable value's signature covers (after the NS_MUTABLE_PUT namespace)."""

    seq: int
    value: bytes


@dataclass(frozen=True, slots=True)
class MutablePutRequest:
    public_key: bytes
    seq: int
    value: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class MutableGetResponse:
    seq: int
    value: bytes
    signature: bytes


class _MutableSignableCodec(c.Codec[MutableSignable]):
    __slots__ = ()

    def preencode(self, state: c.State, m: MutableSignable) -> None:
        _uint.preencode(state, m.seq)
        _buffer.preencode(state, m.value)

    def encode(self, state: c.State, m: MutableSignable) -> None:
        _uint.encode(state, m.seq)
        _buffer.encode(state, m.value)

    def decode(self, state: c.State) -> MutableSignable:
        return MutableSignable(_uint.decode(state), _buffer.decode(state))


class _MutablePutRequestCodec(c.Codec[MutablePutRequest]):
    __slots__ = ()

    def preencode(self, state: c.State, m: MutablePutRequest) -> None:
        _fixed32.preencode(state, m.public_key)
        _uint.preencode(state, m.seq)
        _buffer.preencode(state, m.value)
        _fixed64.preencode(state, m.signature)

    def encode(self, state: c.State, m: MutablePutRequest) -> None:
        _fixed32.encode(state, m.public_key)
        _uint.encode(state, m.seq)
        _buffer.encode(state, m.value)
        _fixed64.encode(state, m.signature)

    def decode(self, state: c.State) -> MutablePutRequest:
        return MutablePutRequest(
            _fixed32.decode(state),
            _uint.decode(state),
            _buffer.decode(state),
            _fixed64.decode(state),
        )


class _MutableGetResponseCodec(c.Codec[MutableGetResponse]):
    __slots__ = ()

    def preencode(self, state: c.State, m: MutableGetResponse) -> None:
        _uint.preencode(state, m.seq)
        _buffer.preencode(state, m.value)
        _fixed64.preencode(state, m.signature)

    def encode(self, state: c.State, m: MutableGetResponse) -> None:
        _uint.encode(state, m.seq)
        _buffer.encode(state, m.value)
        _fixed64.encode(state, m.signature)

    def decode(self, state: c.State) -> MutableGetResponse:
        return MutableGetResponse(
            _uint.decode(state), _buffer.decode(state), _fixed64.decode(state)
        )


mutable_signable_codec: c.Codec[MutableSignable] = _MutableSignableCodec()
mutable_put_request_codec: c.Codec[MutablePutRequest] = _MutablePutRequestCodec()
mutable_get_response_codec: c.Codec[MutableGetResponse] = _MutableGetResponseCodec()


# --- handshake and holepunch routing ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Handshake:
    """A PEER_HANDSHAKE value: the routing ``mode`` (FROM_CLIENT ... REPLY of
    :mod:`~hyperswarm.hyperdht.router`), the noise message and the addresses a relay adds."""

    mode: int
    noise: bytes
    peer_address: Address | None = None
    relay_address: Address | None = None


class _HandshakeCodec(c.Codec[Handshake]):
    __slots__ = ()

    def preencode(self, state: c.State, m: Handshake) -> None:
        state.end += 1  # flags
        _uint.preencode(state, m.mode)
        _buffer.preencode(state, m.noise)
        if m.peer_address is not None:
            _ipv4.preencode(state, m.peer_address)
        if m.relay_address is not None:
            _ipv4.preencode(state, m.relay_address)

    def encode(self, state: c.State, m: Handshake) -> None:
        flags = (1 if m.peer_address is not None else 0) | (2 if m.relay_address is not None else 0)
        _uint.encode(state, flags)
        _uint.encode(state, m.mode)
        _buffer.encode(state, m.noise)
        if m.peer_address is not None:
            _ipv4.encode(state, m.peer_address)
        if m.relay_address is not None:
            _ipv4.encode(state, m.relay_address)

    def decode(self, state: c.State) -> Handshake:
        flags = _uint.decode(state)
        return Handshake(
            _uint.decode(state),
            _buffer.decode(state),
            _ipv4.decode(state) if flags & 1 else None,
            _ipv4.decode(state) if flags & 2 else None,
        )


handshake_codec: c.Codec[Handshake] = _HandshakeCodec()


@dataclass(frozen=True, slots=True)
class Holepunch:
    """A PEER_HOLEPUNCH value: routing ``mode``, the holepunch session ``id``, the encrypted
    holepunch payload and the address a relay adds."""

    mode: int
    id: int
    payload: bytes
    peer_address: Address | None = None


class _HolepunchCodec(c.Codec[Holepunch]):
    __slots__ = ()

    def preencode(self, state: c.State, m: Holepunch) -> None:
        state.end += 1  # flags
        _uint.preencode(state, m.mode)
        _uint.preencode(state, m.id)
        _buffer.preencode(state, m.payload)
        if m.peer_address is not None:
            _ipv4.preencode(state, m.peer_address)

    def encode(self, state: c.State, m: Holepunch) -> None:
        _uint.encode(state, 1 if m.peer_address is not None else 0)
        _uint.encode(state, m.mode)
        _uint.encode(state, m.id)
        _buffer.encode(state, m.payload)
        if m.peer_address is not None:
            _ipv4.encode(state, m.peer_address)

    def decode(self, state: c.State) -> Holepunch:
        flags = _uint.decode(state)
        return Holepunch(
            _uint.decode(state),
            _uint.decode(state),
            _buffer.decode(state),
            _ipv4.decode(state) if flags & 1 else None,
        )


holepunch_codec: c.Codec[Holepunch] = _HolepunchCodec()


# --- the noise payload ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayInfo:
    """A relay a holepunch can go through, and the peer's address as that relay saw it."""

    relay_address: Address
    peer_address: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class HolepunchInfo:
    """The holepunch session id and the relays that can carry PEER_HOLEPUNCH messages."""

    id: int
    relays: tuple[RelayInfo, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class UdxInfo:
    """The UDX stream to connect to. ``version`` is read, but always written as 1."""

    version: int = 1
    reusable_socket: bool = False
    id: int
    seq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretStreamInfo:
    """Secret-stream support. ``version`` is read, but always written as 1."""

    version: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayThroughInfo:
    """A blind relay to connect through. ``version`` is read, but always written as 1."""

    version: int = 1
    public_key: bytes
    token: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class NoisePayload:
    """The payload inside the noise handshake messages of a connection.

    ``version`` is read, but always written as 1; a payload of another version decodes with
    every other field empty. ``addresses4``/``addresses6`` are written only when not empty;
    ``relay_addresses`` whenever it is not None.
    """

    version: int = 1
    error: int = 0
    firewall: int = 0
    holepunch: HolepunchInfo | None = None
    addresses4: tuple[Address, ...] = ()
    addresses6: tuple[Address, ...] = ()
    udx: UdxInfo | None = None
    secret_stream: SecretStreamInfo | None = None
    relay_through: RelayThroughInfo | None = None
    relay_addresses: tuple[Address, ...] | None = None


class _RelayInfoCodec(c.Codec[RelayInfo]):
    __slots__ = ()

    def preencode(self, state: c.State, m: RelayInfo) -> None:
        _ipv4.preencode(state, m.relay_address)
        _ipv4.preencode(state, m.peer_address)

    def encode(self, state: c.State, m: RelayInfo) -> None:
        _ipv4.encode(state, m.relay_address)
        _ipv4.encode(state, m.peer_address)

    def decode(self, state: c.State) -> RelayInfo:
        relay = _ipv4.decode(state)
        return RelayInfo(relay_address=relay, peer_address=_ipv4.decode(state))


relay_info_codec: c.Codec[RelayInfo] = _RelayInfoCodec()
_relay_info_array = _Tuple(relay_info_codec)


class _HolepunchInfoCodec(c.Codec[HolepunchInfo]):
    __slots__ = ()

    def preencode(self, state: c.State, m: HolepunchInfo) -> None:
        _uint.preencode(state, m.id)
        _relay_info_array.preencode(state, m.relays)

    def encode(self, state: c.State, m: HolepunchInfo) -> None:
        _uint.encode(state, m.id)
        _relay_info_array.encode(state, m.relays)

    def decode(self, state: c.State) -> HolepunchInfo:
        id_ = _uint.decode(state)
        return HolepunchInfo(id=id_, relays=_relay_info_array.decode(state))


holepunch_info_codec: c.Codec[HolepunchInfo] = _HolepunchInfoCodec()


class _UdxInfoCodec(c.Codec[UdxInfo]):
    __slots__ = ()

    def preencode(self, state: c.State, m: UdxInfo) -> None:
        state.end += 2  # version, features
        _uint.preencode(state, m.id)
        _uint.preencode(state, m.seq)

    def encode(self, state: c.State, m: UdxInfo) -> None:
        _uint.encode(state, 1)
        _uint.encode(state, 1 if m.reusable_socket else 0)
        _uint.encode(state, m.id)
        _uint.encode(state, m.seq)

    def decode(self, state: c.State) -> UdxInfo:
        version = _uint.decode(state)
        features = _uint.decode(state)
        id_ = _uint.decode(state)
        if id_ > 0xFFFFFFFF:
            raise c.DecodeError("a UDX stream id is a 32-bit number")
        return UdxInfo(
            version=version,
            reusable_socket=bool(features & 1),
            id=id_,
            seq=_uint.decode(state),
        )


udx_info_codec: c.Codec[UdxInfo] = _UdxInfoCodec()


class _SecretStreamInfoCodec(c.Codec[SecretStreamInfo]):
    __slots__ = ()

    def preencode(self, state: c.State, m: SecretStreamInfo) -> None:
        state.end += 1

    def encode(self, state: c.State, m: SecretStreamInfo) -> None:
        _uint.encode(state, 1)

    def decode(self, state: c.State) -> SecretStreamInfo:
        return SecretStreamInfo(version=_uint.decode(state))


secret_stream_info_codec: c.Codec[SecretStreamInfo] = _SecretStreamInfoCodec()


class _RelayThroughInfoCodec(c.Codec[RelayThroughInfo]):
    __slots__ = ()

    def preencode(self, state: c.State, m: RelayThroughInfo) -> None:
        state.end += 2  # version, flags
        _fixed32.preencode(state, m.public_key)
        _fixed32.preencode(state, m.token)

    def encode(self, state: c.State, m: RelayThroughInfo) -> None:
        _uint.encode(state, 1)
        _uint.encode(state, 0)
        _fixed32.encode(state, m.public_key)
        _fixed32.encode(state, m.token)

    def decode(self, state: c.State) -> RelayThroughInfo:
        version = _uint.decode(state)
        _uint.decode(state)  # flags: none defined
        public_key = _fixed32.decode(state)
        return RelayThroughInfo(
            version=version, public_key=public_key, token=_fixed32.decode(state)
        )


relay_through_info_codec: c.Codec[RelayThroughInfo] = _RelayThroughInfoCodec()


class _NoisePayloadCodec(c.Codec[NoisePayload]):
    __slots__ = ()

    def preencode(self, state: c.State, m: NoisePayload) -> None:
        state.end += 2  # version, flags
        _uint.preencode(state, m.error)
        _uint.preencode(state, m.firewall)
        if m.holepunch is not None:
            holepunch_info_codec.preencode(state, m.holepunch)
        if m.addresses4:
            _ipv4_array.preencode(state, m.addresses4)
        if m.addresses6:
            _ipv6_array.preencode(state, m.addresses6)
        if m.udx is not None:
            udx_info_codec.preencode(state, m.udx)
        if m.secret_stream is not None:
            secret_stream_info_codec.preencode(state, m.secret_stream)
        if m.relay_through is not None:
            relay_through_info_codec.preencode(state, m.relay_through)
        if m.relay_addresses is not None:
            _ipv4_array.preencode(state, m.relay_addresses)

    def encode(self, state: c.State, m: NoisePayload) -> None:
        flags = (
            (1 if m.holepunch is not None else 0)
            | (2 if m.addresses4 else 0)
            | (4 if m.addresses6 else 0)
            | (8 if m.udx is not None else 0)
            | (16 if m.secret_stream is not None else 0)
            | (32 if m.relay_through is not None else 0)
            | (64 if m.relay_addresses is not None else 0)
        )
        _uint.encode(state, 1)
        _uint.encode(state, flags)
        _uint.encode(state, m.error)
        _uint.encode(state, m.firewall)
        if m.holepunch is not None:
            holepunch_info_codec.encode(state, m.holepunch)
        if m.addresses4:
            _ipv4_array.encode(state, m.addresses4)
        if m.addresses6:
            _ipv6_array.encode(state, m.addresses6)
        if m.udx is not None:
            udx_info_codec.encode(state, m.udx)
        if m.secret_stream is not None:
            secret_stream_info_codec.encode(state, m.secret_stream)
        if m.relay_through is not None:
            relay_through_info_codec.encode(state, m.relay_through)
        if m.relay_addresses is not None:
            _ipv4_array.encode(state, m.relay_addresses)

    def decode(self, state: c.State) -> NoisePayload:
        version = _uint.decode(state)
        if version != 1:
            # A payload of another version is handed back for the caller to refuse.
            return NoisePayload(version=version)
        flags = _uint.decode(state)
        error = _uint.decode(state)
        firewall = _uint.decode(state)
        holepunch = holepunch_info_codec.decode(state) if flags & 1 else None
        addresses4 = _ipv4_array.decode(state) if flags & 2 else ()
        addresses6 = _ipv6_array.decode(state) if flags & 4 else ()
        udx = udx_info_codec.decode(state) if flags & 8 else None
        secret_stream = secret_stream_info_codec.decode(state) if flags & 16 else None
        relay_through = relay_through_info_codec.decode(state) if flags & 32 else None
        relay_addresses = _ipv4_array.decode(state) if flags & 64 else None
        return NoisePayload(
            version=version,
            error=error,
            firewall=firewall,
            holepunch=holepunch,
            addresses4=addresses4,
            addresses6=addresses6,
            udx=udx,
            secret_stream=secret_stream,
            relay_through=relay_through,
            relay_addresses=relay_addresses,
        )


noise_payload_codec: c.Codec[NoisePayload] = _NoisePayloadCodec()


# --- the holepunch payload --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class HolepunchPayload:
    """The encrypted payload of PEER_HOLEPUNCH messages: the holepunching state of a side."""

    error: int = 0
    firewall: int = 0
    round: int = 0
    connected: bool = False
    punching: bool = False
    addresses: tuple[Address, ...] | None = None
    remote_address: Address | None = None
    token: bytes | None = None
    remote_token: bytes | None = None


class _HolepunchPayloadCodec(c.Codec[HolepunchPayload]):
    __slots__ = ()

    def preencode(self, state: c.State, m: HolepunchPayload) -> None:
        state.end += 1  # flags
        _uint.preencode(state, m.error)
        _uint.preencode(state, m.firewall)
        _uint.preencode(state, m.round)
        if m.addresses is not None:
            _ipv4_array.preencode(state, m.addresses)
        if m.remote_address is not None:
            _ipv4.preencode(state, m.remote_address)
        if m.token is not None:
            _fixed32.preencode(state, m.token)
        if m.remote_token is not None:
            _fixed32.preencode(state, m.remote_token)

    def encode(self, state: c.State, m: HolepunchPayload) -> None:
        flags = (
            (1 if m.connected else 0)
            | (2 if m.punching else 0)
            | (4 if m.addresses is not None else 0)
            | (8 if m.remote_address is not None else 0)
            | (16 if m.token is not None else 0)
            | (32 if m.remote_token is not None else 0)
        )
        _uint.encode(state, flags)
        _uint.encode(state, m.error)
        _uint.encode(state, m.firewall)
        _uint.encode(state, m.round)
        if m.addresses is not None:
            _ipv4_array.encode(state, m.addresses)
        if m.remote_address is not None:
            _ipv4.encode(state, m.remote_address)
        if m.token is not None:
            _fixed32.encode(state, m.token)
        if m.remote_token is not None:
            _fixed32.encode(state, m.remote_token)

    def decode(self, state: c.State) -> HolepunchPayload:
        flags = _uint.decode(state)
        error = _uint.decode(state)
        firewall = _uint.decode(state)
        round_ = _uint.decode(state)
        addresses = _ipv4_array.decode(state) if flags & 4 else None
        remote_address = _ipv4.decode(state) if flags & 8 else None
        token = _fixed32.decode(state) if flags & 16 else None
        remote_token = _fixed32.decode(state) if flags & 32 else None
        return HolepunchPayload(
            error=error,
            firewall=firewall,
            round=round_,
            connected=bool(flags & 1),
            punching=bool(flags & 2),
            addresses=addresses,
            remote_address=remote_address,
            token=token,
            remote_token=remote_token,
        )


holepunch_payload_codec: c.Codec[HolepunchPayload] = _HolepunchPayloadCodec()


# --- plugins ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PluginRequest:
    """A PLUGIN request: the plugin's name and version, its command and an optional value."""

    plugin: str
    version: int
    command: int
    value: bytes | None = None


class _PluginRequestCodec(c.Codec[PluginRequest]):
    __slots__ = ()

    def preencode(self, state: c.State, m: PluginRequest) -> None:
        c.string.preencode(state, m.plugin)
        _uint.preencode(state, m.version)
        _uint.preencode(state, m.command)
        state.end += 1  # flags
        if m.value is not None:
            _buffer.preencode(state, m.value)

    def encode(self, state: c.State, m: PluginRequest) -> None:
        c.string.encode(state, m.plugin)
        _uint.encode(state, m.version)
        _uint.encode(state, m.command)
        _uint.encode(state, 1 if m.value is not None else 0)
        if m.value is not None:
            _buffer.encode(state, m.value)

    def decode(self, state: c.State) -> PluginRequest:
        plugin = c.string.decode(state)
        version = _uint.decode(state)
        command = _uint.decode(state)
        flags = _uint.decode(state)
        return PluginRequest(plugin, version, command, _buffer.decode(state) if flags & 1 else None)


plugin_request_codec: c.Codec[PluginRequest] = _PluginRequestCodec()


# --- whole messages ---------------------------------------------------------------------------


class Message(Generic[T]):
    """One hyperdht message: ``encode`` to bytes, ``decode`` from bytes (trailing bytes
    ignored, as JS ``c.decode``); ``decode`` raises only :class:`HyperDHTDecodeError`."""

    __slots__ = ("codec", "name")

    def __init__(self, name: str, codec: c.Codec[T]) -> None:
        self.name = name
        self.codec = codec

    def __repr__(self) -> str:
        return f"Message({self.name})"

    def encode(self, value: T) -> bytes:
        """The bytes of ``value``; :class:`~protomux.encoding.EncodeError` if it has none."""
        try:
            return c.encode(self.codec, value)
        except c.EncodeError:
            raise
        except (TypeError, AttributeError, ValueError, OverflowError) as e:
            raise c.EncodeError(f"cannot encode {self.name}: {e}") from e

    def decode(self, data: bytes | bytearray | memoryview) -> T:
        """The value at the start of ``data``; bytes after it are ignored."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise HyperDHTDecodeError(f"{self.name}: expected bytes, got {type(data).__name__}")
        try:
            return c.decode(self.codec, data, allow_trailing=True)
        except c.DecodeError as e:
            raise HyperDHTDecodeError(f"{self.name}: {e}") from e
        except Exception as e:  # a peer's bytes must never raise anything else
            raise HyperDHTDecodeError(f"{self.name}: {type(e).__name__}: {e}") from e


PEER: Message[Peer] = Message("peer", peer_codec)
PEERS: Message[tuple[Peer, ...]] = Message("peers", peers_codec)
LOOKUP_RAW_REPLY: Message[LookupRawReply] = Message("lookupRawReply", lookup_raw_reply_codec)
ANNOUNCE: Message[Announce] = Message("announce", announce_codec)
MUTABLE_SIGNABLE: Message[MutableSignable] = Message("mutableSignable", mutable_signable_codec)
MUTABLE_PUT_REQUEST: Message[MutablePutRequest] = Message(
    "mutablePutRequest", mutable_put_request_codec
)
MUTABLE_GET_RESPONSE: Message[MutableGetResponse] = Message(
    "mutableGetResponse", mutable_get_response_codec
)
HANDSHAKE: Message[Handshake] = Message("handshake", handshake_codec)
HOLEPUNCH: Message[Holepunch] = Message("holepunch", holepunch_codec)
NOISE_PAYLOAD: Message[NoisePayload] = Message("noisePayload", noise_payload_codec)
HOLEPUNCH_PAYLOAD: Message[HolepunchPayload] = Message("holepunchPayload", holepunch_payload_codec)
PLUGIN_REQUEST: Message[PluginRequest] = Message("pluginRequest", plugin_request_codec)
_UINT: Message[int] = Message("uint", _uint)


def encode_uint(n: int) -> bytes:
    """``c.uint`` bytes of ``n`` (a MUTABLE_GET request's seq)."""
    return _UINT.encode(n)


def encode_lookup_raw_reply(records: Sequence[bytes], bump: int) -> bytes:
    """A LOOKUP reply of already-encoded peer records (as stored), written verbatim."""
    raw: tuple[Any, ...] = tuple(records)
    return LOOKUP_RAW_REPLY.encode(LookupRawReply(raw, bump))


def decode_uint(data: bytes | bytearray | memoryview) -> int:
    """The ``c.uint`` at the start of ``data`` (trailing bytes ignored, as JS ``c.decode``)."""
    return _UINT.decode(data)
