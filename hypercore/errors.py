"""Errors of hypercore, one class per code of the JS ``hypercore-errors`` package.

Every error has ``.code`` equal to the JS code (``BLOCK_NOT_AVAILABLE``, ``INVALID_SIGNATURE``,
...) and its message starts with that code, as in JS. ``error_class(code)`` finds the class.
"""

from __future__ import annotations

from .id_encoding import encode as _encode_id

__all__ = [
    "ASSERTION",
    "BAD_ARGUMENT",
    "BATCH_ALREADY_EXISTS",
    "BATCH_ALREADY_FLUSHED",
    "BATCH_UNFLUSHED",
    "BLOCK_NOT_AVAILABLE",
    "DECODING_ERROR",
    "INVALID_CAPABILITY",
    "INVALID_CHECKSUM",
    "INVALID_OPERATION",
    "INVALID_OPLOG_VERSION",
    "INVALID_PROOF",
    "INVALID_SIGNATURE",
    "OPLOG_CORRUPT",
    "OPLOG_HEADER_OVERFLOW",
    "REQUEST_CANCELLED",
    "REQUEST_TIMEOUT",
    "SESSION_CLOSED",
    "SESSION_MOVED",
    "SESSION_NOT_WRITABLE",
    "SNAPSHOT_NOT_AVAILABLE",
    "STORAGE_CONFLICT",
    "STORAGE_EMPTY",
    "WRITE_FAILED",
    "HypercoreError",
    "error_class",
]


class HypercoreError(Exception):
    """Root of every hypercore error; ``code`` is the JS error code."""

    code = "HYPERCORE_ERROR"
    default_message = "Hypercore error"

    def __init__(self, message: str | None = None, discovery_key: bytes | None = None) -> None:
        message = message or self.default_message
        prefix = f"{self.code}: "
        while message.startswith(prefix):  # wrapping an error of the same code: say it once
            message = message[len(prefix) :]
        if discovery_key is not None:
            message = f"{message} (discovery key: {_encode_id(discovery_key)})"
        super().__init__(f"{self.code}: {message}")
        self.discovery_key = discovery_key


def _define(code: str, default_message: str, *bases: type[Exception]) -> type[HypercoreError]:
    cls = type(code, (HypercoreError, *bases), {"code": code, "default_message": default_message})
    cls.__module__ = __name__
    cls.__doc__ = f"JS ``{code}``."
    return cls


ASSERTION = _define("ASSERTION", "Assertion failed", AssertionError)
ASSERTION.code = "ERR_ASSERTION"  # the one JS code that differs from its constructor's name
BAD_ARGUMENT = _define("BAD_ARGUMENT", "Bad argument", ValueError)
STORAGE_EMPTY = _define("STORAGE_EMPTY", "No Hypercore is stored here")
STORAGE_CONFLICT = _define("STORAGE_CONFLICT", "Another Hypercore is stored here")
INVALID_SIGNATURE = _define("INVALID_SIGNATURE", "Invalid signature")
INVALID_CAPABILITY = _define("INVALID_CAPABILITY", "Invalid capability")
INVALID_CHECKSUM = _define("INVALID_CHECKSUM", "Invalid checksum")
INVALID_OPERATION = _define("INVALID_OPERATION", "Invalid operation")
INVALID_PROOF = _define("INVALID_PROOF", "Proof not verifiable")
BLOCK_NOT_AVAILABLE = _define("BLOCK_NOT_AVAILABLE", "Block is not available")
SNAPSHOT_NOT_AVAILABLE = _define("SNAPSHOT_NOT_AVAILABLE", "Snapshot is not available")
REQUEST_CANCELLED = _define("REQUEST_CANCELLED", "Request was cancelled")
REQUEST_TIMEOUT = _define("REQUEST_TIMEOUT", "Request timed out", TimeoutError)
SESSION_NOT_WRITABLE = _define("SESSION_NOT_WRITABLE", "Session is not writable")
SESSION_CLOSED = _define("SESSION_CLOSED", "Session is closed")
BATCH_UNFLUSHED = _define("BATCH_UNFLUSHED", "Batch not yet flushed")
BATCH_ALREADY_EXISTS = _define("BATCH_ALREADY_EXISTS", "Batch already exists")
BATCH_ALREADY_FLUSHED = _define("BATCH_ALREADY_FLUSHED", "Batch has already been flushed")
OPLOG_CORRUPT = _define("OPLOG_CORRUPT", "Oplog file appears corrupt or out of date")
OPLOG_HEADER_OVERFLOW = _define("OPLOG_HEADER_OVERFLOW", "Oplog header exceeds page size")
INVALID_OPLOG_VERSION = _define("INVALID_OPLOG_VERSION", "Invalid header version")
WRITE_FAILED = _define("WRITE_FAILED", "Write to storage failed")
DECODING_ERROR = _define("DECODING_ERROR", "Decoding error", ValueError)
SESSION_MOVED = _define("SESSION_MOVED", "Session moved")

_BY_CODE = {
    cls.code: cls
    for cls in (
        ASSERTION,
        BAD_ARGUMENT,
        STORAGE_EMPTY,
        STORAGE_CONFLICT,
        INVALID_SIGNATURE,
        INVALID_CAPABILITY,
        INVALID_CHECKSUM,
        INVALID_OPERATION,
        INVALID_PROOF,
        BLOCK_NOT_AVAILABLE,
        SNAPSHOT_NOT_AVAILABLE,
        REQUEST_CANCELLED,
        REQUEST_TIMEOUT,
        SESSION_NOT_WRITABLE,
        SESSION_CLOSED,
        BATCH_UNFLUSHED,
        BATCH_ALREADY_EXISTS,
        BATCH_ALREADY_FLUSHED,
        OPLOG_CORRUPT,
        OPLOG_HEADER_OVERFLOW,
        INVALID_OPLOG_VERSION,
        WRITE_FAILED,
        DECODING_ERROR,
        SESSION_MOVED,
    )
}


def error_class(code: str) -> type[HypercoreError]:
    """The error class for a JS error code (``ERR_ASSERTION`` or a constructor name)."""
    return _BY_CODE[code] if code in _BY_CODE else _BY_CODE[_ALIASES[code]]


_ALIASES = {"ASSERTION": "ERR_ASSERTION"}
