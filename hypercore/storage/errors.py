"""Errors of the storage layer."""

from __future__ import annotations

__all__ = [
    "DeviceFileError",
    "StorageClosedError",
    "StorageCorruptionError",
    "StorageError",
    "StorageLockedError",
]


class StorageError(Exception):
    """Root of every storage error: our own storage failed or is unusable (never a peer's
    doing). ``code`` names the kind; JS ``hypercore-storage`` throws these as plain errors."""

    code = "STORAGE_ERROR"


class StorageLockedError(StorageError):
    """The store is open elsewhere: another process (Python or JS) holds its ``CORESTORE`` lock."""

    code = "STORAGE_LOCKED"


class DeviceFileError(StorageError):
    """The ``CORESTORE`` device file says the store was moved, copied or modified.

    The messages are those of JS ``device-file`` (``Invalid device file, was moved
    unsafely`` ...), which refuses the same stores.
    """

    code = "INVALID_DEVICE_FILE"


class StorageClosedError(StorageError):
    """The storage was used after :meth:`~hypercore.storage.Storage.close`."""

    code = "STORAGE_CLOSED"


class StorageCorruptionError(StorageError):
    """A row is damaged: RocksDB cannot read it (a checksum mismatch, an I/O error), its bytes
    do not decode, or it is missing although other rows say it is stored.

    ``row`` names it (``"block 6"``, ``"tree node 12"``, ``"bitfield page 0"``, ``"head"``,
    ``"auth"`` ...), ``discovery_key`` is the core it belongs to (``None`` for the rows of the
    store itself, or when no open core owns it), ``key`` its RocksDB key (``None`` when a
    range of rows could not be read from its start).

    Hypercore raises subclasses that are also the ``HypercoreError`` JS raises for the same
    damage (``INVALID_SIGNATURE`` for a stored head whose signature does not verify ...).
    """

    code = "STORAGE_CORRUPT"

    def __init__(
        self, row: str, discovery_key: bytes | None, detail: str, key: bytes | None = None
    ) -> None:
        where = f" of core {discovery_key.hex()}" if discovery_key is not None else ""
        super().__init__(f"damaged {row}{where}: {detail}")
        self.row = row
        self.discovery_key = discovery_key
        self.detail = detail
        self.key = key
