"""Network address codecs used by dht-rpc and hyperdht (compact-encoding-net)."""

from __future__ import annotations

import ipaddress
import struct
from typing import Any, NamedTuple

from ._base import Codec, State, _oob
from ._numbers import uint8, uint16
from .errors import DecodeError, EncodeError

# --- network addresses ---------------------------------------------------------------------


class Address(NamedTuple):
    """A host and port, as decoded by the address codecs (usable as a socket address)."""

    host: str
    port: int

    @property
    def family(self) -> int:
        return 6 if ":" in self.host else 4


def _ipv4_bytes(host: Any) -> bytes:
    try:
        return ipaddress.IPv4Address(host).packed
    except (ipaddress.AddressValueError, ValueError, TypeError):
        raise EncodeError(f"not an IPv4 address: {host!r}") from None


def _ipv6_bytes(host: Any) -> bytes:
    try:
        return ipaddress.IPv6Address(host).packed
    except (ipaddress.AddressValueError, ValueError, TypeError):
        raise EncodeError(f"not an IPv6 address: {host!r}") from None


def _ipv6_text(b: bytes) -> str:
    # The JS form: eight lowercase hex groups without leading zeros and without "::".
    return ":".join(format(g, "x") for g in struct.unpack(">8H", b))


class _IPv4(Codec[str]):
    __slots__ = ()

    def preencode(self, state: State, value: str) -> None:
        state.end += 4

    def encode(self, state: State, value: str) -> None:
        s = state.start
        state.buffer[s : s + 4] = _ipv4_bytes(value)
        state.start = s + 4

    def decode(self, state: State) -> str:
        s = state.start
        if state.end - s < 4:
            raise _oob()
        b = state.buffer
        state.start = s + 4
        return f"{b[s]}.{b[s + 1]}.{b[s + 2]}.{b[s + 3]}"


class _IPv6(Codec[str]):
    __slots__ = ()

    def preencode(self, state: State, value: str) -> None:
        state.end += 16

    def encode(self, state: State, value: str) -> None:
        s = state.start
        state.buffer[s : s + 16] = _ipv6_bytes(value)
        state.start = s + 16

    def decode(self, state: State) -> str:
        s = state.start
        if state.end - s < 16:
            raise _oob()
        state.start = s + 16
        return _ipv6_text(state.buffer[s : s + 16])


ipv4 = _IPv4()
ipv6 = _IPv6()


def _is_v6(host: Any) -> bool:
    if not isinstance(host, str):
        raise EncodeError(f"expected an IP address string, got {type(host).__name__}")
    return ":" in host


class _IP(Codec[str]):
    """``uint8`` family (4 or 6) followed by the address bytes."""

    __slots__ = ()

    def preencode(self, state: State, value: str) -> None:
        state.end += 17 if _is_v6(value) else 5

    def encode(self, state: State, value: str) -> None:
        if _is_v6(value):
            uint8.encode(state, 6)
            ipv6.encode(state, value)
        else:
            uint8.encode(state, 4)
            ipv4.encode(state, value)

    def decode(self, state: State) -> str:
        family = uint8.decode(state)
        if family == 4:
            return ipv4.decode(state)
        if family == 6:
            return ipv6.decode(state)
        raise DecodeError(f"unknown address family {family}")


ip = _IP()


def _host_port(value: Any) -> tuple[Any, Any]:
    try:
        host, port_ = value
    except (TypeError, ValueError):
        raise EncodeError(f"expected a (host, port) pair, got {value!r}") from None
    return host, port_


class _AddressCodec(Codec[Address]):
    __slots__ = ("_host",)

    def __init__(self, host: Codec[str]) -> None:
        self._host = host

    def preencode(self, state: State, value: tuple[str, int]) -> None:
        host, _ = _host_port(value)
        self._host.preencode(state, host)
        state.end += 2

    def encode(self, state: State, value: tuple[str, int]) -> None:
        host, port_ = _host_port(value)
        self._host.encode(state, host)
        uint16.encode(state, port_)

    def decode(self, state: State) -> Address:
        host = self._host.decode(state)
        return Address(host, uint16.decode(state))


ipv4_address = _AddressCodec(ipv4)
ipv6_address = _AddressCodec(ipv6)
ip_address = _AddressCodec(ip)
