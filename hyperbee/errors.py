"""The errors of the hyperbee package."""

from __future__ import annotations

__all__ = ["DecodingError", "HyperbeeError"]


class HyperbeeError(Exception):
    """Base class of the errors raised by hyperbee."""


class DecodingError(HyperbeeError, ValueError):
    """A block (or other bytes from a peer or a disk) that is not a valid hyperbee message."""
