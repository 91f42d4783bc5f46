"""Errors of :mod:`hyperswarm.udx`."""

from __future__ import annotations

__all__ = ["UDXDecodeError", "UDXError"]


class UDXError(Exception):
    """Base of every UDX error."""


class UDXDecodeError(UDXError, ValueError):
    """A datagram that is not a well-formed UDX packet (it is dropped)."""
