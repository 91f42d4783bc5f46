"""Errors of the storage layer."""

from __future__ import annotations

__all__ = [
    "DeviceFileError",
    "StorageClosedError",
    "StorageError",
    "StorageLockedError",
]


class StorageError(Exception):
    """Root of every storage error."""


class StorageLockedError(StorageError):
    """The store is open elsewhere: another process (Python or JS) holds its ``CORESTORE`` lock."""


class DeviceFileError(StorageError):
    """The ``CORESTORE`` device file says the store was moved, copied or modified.

    The messages are those of JS ``device-file`` (``Invalid device file, was moved
    unsafely`` ...), which refuses the same stores.
    """


class StorageClosedError(StorageError):
    """The storage was used after :meth:`~hypercore.storage.Storage.close`."""
