"""Errors of corestore.

Where JS corestore throws a ``hypercore-errors`` error (``STORAGE_EMPTY`` for an unknown
discovery key, ``ERR_ASSERTION`` for a primary key passed without ``unsafe``), the same
:mod:`hypercore.errors` class is raised here. The errors JS corestore throws as plain
``Error`` objects without a code get a class below, under :class:`CorestoreError`, with the JS
message and a ``code`` of our own.
"""

from __future__ import annotations

__all__ = ["CorestoreClosedError", "CorestoreError", "PrimaryKeyMismatchError"]


class CorestoreError(Exception):
    """Root of the errors specific to corestore; ``code`` names the kind."""

    code = "CORESTORE_ERROR"
    default_message = "Corestore error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(f"{self.code}: {message or self.default_message}")


class CorestoreClosedError(CorestoreError):
    """The store (or the root it is a view of) is closed (JS ``Error('Corestore is closed')``)."""

    code = "CORESTORE_CLOSED"
    default_message = "Corestore is closed"


class PrimaryKeyMismatchError(CorestoreError):
    """The storage holds another primary key than the one passed (JS ``Error('Another
    corestore is stored here')``)."""

    code = "PRIMARY_KEY_MISMATCH"
    default_message = "Another corestore is stored here"
