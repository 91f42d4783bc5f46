"""Errors of hypercore, one class per code of the JS ``hypercore-errors`` package.

Every class has ``code`` equal to the JS code (``BLOCK_NOT_AVAILABLE``, ``INVALID_SIGNATURE``,
...) and its message starts with that code, as in JS. ``error_class(code)`` finds the class.

Which side caused an error is told by where it surfaces, not by its class: an error a peer's
message causes drops that peer (the replicator reports it as ``invalid-data``) and never
reaches the caller; an error raised to the caller is about the caller's own call or data.
Damaged local storage raises the subclasses of
:class:`~hypercore.storage.StorageCorruptionError` at the end of this module, which are also
the class JS raises for the same damage.
"""

from __future__ import annotations

from .id_encoding import encode as _encode_id
from .storage.errors import StorageCorruptionError

__all__ = [
    "AssertionFailedError",
    "BadArgumentError",
    "BatchAlreadyExistsError",
    "BatchAlreadyFlushedError",
    "BatchUnflushedError",
    "BlockNotAvailableError",
    "DamagedAuthError",
    "DamagedSignatureError",
    "DamagedTreeError",
    "DecodingError",
    "EncryptedBlockError",
    "ForkMismatchError",
    "HypercoreError",
    "InvalidCapabilityError",
    "InvalidChecksumError",
    "InvalidOperationError",
    "InvalidOplogVersionError",
    "InvalidProofError",
    "InvalidSignatureError",
    "MissingNodeError",
    "OplogCorruptError",
    "OplogHeaderOverflowError",
    "RequestCancelledError",
    "RequestTimeoutError",
    "SessionClosedError",
    "SessionMovedError",
    "SessionNotWritableError",
    "SnapshotNotAvailableError",
    "StorageConflictError",
    "StorageEmptyError",
    "WriteFailedError",
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
        self.message = message
        super().__init__(f"{self.code}: {message}")
        self.discovery_key = discovery_key

    def with_discovery_key(self, discovery_key: bytes) -> HypercoreError:
        """This error, naming the core it is about (code that knows no core, as the Merkle
        tree's, raises errors without it; the core adds it on the way out)."""
        if self.discovery_key is None:
            self.discovery_key = discovery_key
            self.message = f"{self.message} (discovery key: {_encode_id(discovery_key)})"
            self.args = (f"{self.code}: {self.message}",)
        return self


class AssertionFailedError(HypercoreError, AssertionError):
    """``ASSERTION`` (code ``ERR_ASSERTION``): an internal check failed."""

    code = "ERR_ASSERTION"
    default_message = "Assertion failed"


class BadArgumentError(HypercoreError, ValueError):
    """The caller passed an argument that cannot be used."""

    code = "BAD_ARGUMENT"
    default_message = "Bad argument"


class StorageEmptyError(HypercoreError):
    """No core is stored where one was expected."""

    code = "STORAGE_EMPTY"
    default_message = "No Hypercore is stored here"


class StorageConflictError(HypercoreError):
    """Another core is stored where this one was expected."""

    code = "STORAGE_CONFLICT"
    default_message = "Another Hypercore is stored here"


class InvalidSignatureError(HypercoreError):
    """A signature that does not verify."""

    code = "INVALID_SIGNATURE"
    default_message = "Invalid signature"


class InvalidCapabilityError(HypercoreError):
    """A peer's capability that does not prove it knows the key."""

    code = "INVALID_CAPABILITY"
    default_message = "Invalid capability"


class InvalidChecksumError(HypercoreError):
    """Hashes that do not match the tree."""

    code = "INVALID_CHECKSUM"
    default_message = "Invalid checksum"


class InvalidOperationError(HypercoreError):
    """An operation that cannot be done in the current state."""

    code = "INVALID_OPERATION"
    default_message = "Invalid operation"


class InvalidProofError(HypercoreError):
    """A proof that does not verify."""

    code = "INVALID_PROOF"
    default_message = "Proof not verifiable"


class BlockNotAvailableError(HypercoreError):
    """A block that is neither stored nor downloadable."""

    code = "BLOCK_NOT_AVAILABLE"
    default_message = "Block is not available"


class SnapshotNotAvailableError(HypercoreError):
    """A snapshot's view that is no longer available."""

    code = "SNAPSHOT_NOT_AVAILABLE"
    default_message = "Snapshot is not available"


class RequestCancelledError(HypercoreError):
    """A request that was cancelled before it was answered."""

    code = "REQUEST_CANCELLED"
    default_message = "Request was cancelled"


class RequestTimeoutError(HypercoreError, TimeoutError):
    """A request that was not answered in time."""

    code = "REQUEST_TIMEOUT"
    default_message = "Request timed out"


class SessionNotWritableError(HypercoreError):
    """A write on a session without the secret key."""

    code = "SESSION_NOT_WRITABLE"
    default_message = "Session is not writable"


class SessionClosedError(HypercoreError):
    """A use of a closed session."""

    code = "SESSION_CLOSED"
    default_message = "Session is closed"


class BatchUnflushedError(HypercoreError):
    """A batch that must be flushed first."""

    code = "BATCH_UNFLUSHED"
    default_message = "Batch not yet flushed"


class BatchAlreadyExistsError(HypercoreError):
    """A second batch where one already exists."""

    code = "BATCH_ALREADY_EXISTS"
    default_message = "Batch already exists"


class BatchAlreadyFlushedError(HypercoreError):
    """A use of a batch after its flush."""

    code = "BATCH_ALREADY_FLUSHED"
    default_message = "Batch has already been flushed"


class OplogCorruptError(HypercoreError):
    """An oplog that cannot be read."""

    code = "OPLOG_CORRUPT"
    default_message = "Oplog file appears corrupt or out of date"


class OplogHeaderOverflowError(HypercoreError):
    """An oplog header larger than its page."""

    code = "OPLOG_HEADER_OVERFLOW"
    default_message = "Oplog header exceeds page size"


class InvalidOplogVersionError(HypercoreError):
    """An oplog header of an unknown version."""

    code = "INVALID_OPLOG_VERSION"
    default_message = "Invalid header version"


class WriteFailedError(HypercoreError):
    """A write to storage that failed."""

    code = "WRITE_FAILED"
    default_message = "Write to storage failed"


class DecodingError(HypercoreError, ValueError):
    """Bytes that do not decode."""

    code = "DECODING_ERROR"
    default_message = "Decoding error"


class SessionMovedError(HypercoreError):
    """A session whose core was moved to another one."""

    code = "SESSION_MOVED"
    default_message = "Session moved"


class EncryptedBlockError(DecodingError):
    """A block too short to hold the encryption padding (it cannot be decrypted)."""


class ForkMismatchError(InvalidOperationError):
    """A proof for another fork than the tree's. JS ``Core.verify`` returns false here
    rather than throwing: treat it as "no data" (or a reorg, if the fork is newer)."""


class MissingNodeError(InvalidOperationError):
    """A tree node an operation needs is not stored; ``index`` is the node."""

    def __init__(
        self, index: int, message: str | None = None, discovery_key: bytes | None = None
    ) -> None:
        super().__init__(
            message or f"Expected tree node {index} from storage, got (nil)", discovery_key
        )
        self.index = index


class DamagedTreeError(StorageCorruptionError, InvalidChecksumError):
    """A stored tree node that is missing or does not hash to its parent."""

    code = InvalidChecksumError.code


class DamagedSignatureError(StorageCorruptionError, InvalidSignatureError):
    """A stored head whose signature does not verify."""

    code = InvalidSignatureError.code


class DamagedAuthError(StorageCorruptionError, StorageEmptyError):
    """A core record whose auth row is missing."""

    code = StorageEmptyError.code


_BY_CODE: dict[str, type[HypercoreError]] = {
    AssertionFailedError.code: AssertionFailedError,
    BadArgumentError.code: BadArgumentError,
    StorageEmptyError.code: StorageEmptyError,
    StorageConflictError.code: StorageConflictError,
    InvalidSignatureError.code: InvalidSignatureError,
    InvalidCapabilityError.code: InvalidCapabilityError,
    InvalidChecksumError.code: InvalidChecksumError,
    InvalidOperationError.code: InvalidOperationError,
    InvalidProofError.code: InvalidProofError,
    BlockNotAvailableError.code: BlockNotAvailableError,
    SnapshotNotAvailableError.code: SnapshotNotAvailableError,
    RequestCancelledError.code: RequestCancelledError,
    RequestTimeoutError.code: RequestTimeoutError,
    SessionNotWritableError.code: SessionNotWritableError,
    SessionClosedError.code: SessionClosedError,
    BatchUnflushedError.code: BatchUnflushedError,
    BatchAlreadyExistsError.code: BatchAlreadyExistsError,
    BatchAlreadyFlushedError.code: BatchAlreadyFlushedError,
    OplogCorruptError.code: OplogCorruptError,
    OplogHeaderOverflowError.code: OplogHeaderOverflowError,
    InvalidOplogVersionError.code: InvalidOplogVersionError,
    WriteFailedError.code: WriteFailedError,
    DecodingError.code: DecodingError,
    SessionMovedError.code: SessionMovedError,
}


def error_class(code: str) -> type[HypercoreError]:
    """The error class for a JS error code (``ERR_ASSERTION`` or a constructor name)."""
    return _BY_CODE[code] if code in _BY_CODE else _BY_CODE[_ALIASES[code]]


_ALIASES = {"ASSERTION": "ERR_ASSERTION"}
