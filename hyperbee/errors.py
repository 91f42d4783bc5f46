"""The errors of the hyperbee package, each with the ``code`` of its JS counterpart.

JS hyperbee throws two ``hypercore-errors`` codes, ``DECODING_ERROR`` (a block that is not a
bee's) and ``BLOCK_NOT_AVAILABLE``; the rest are plain ``Error`` objects without a code
(``'Bee closed'``, ``'Hyperbee is marked as read-only'``, ``'Cannot have both live and reverse
enabled'``, ...). Those get a class here with a code of our own, as corestore's do.

Two kinds, kept apart: :class:`DecodingError` (also a ``ValueError``) says the bytes of a block
(from a peer or a disk) are garbage, and is the only error reading a damaged bee raises; the
others say the caller used the bee wrong (:class:`BadArgumentError`, :class:`EncodingError`,
:class:`BeeClosedError`, :class:`BeeNotOpenError`, :class:`BeeReadOnlyError`) or that a block
is missing (:class:`BlockNotAvailableError`). Every one is a :class:`HyperbeeError`.
"""

from __future__ import annotations

__all__ = [
    "BadArgumentError",
    "BeeClosedError",
    "BeeNotOpenError",
    "BeeReadOnlyError",
    "BlockNotAvailableError",
    "DecodingError",
    "EncodingError",
    "HyperbeeError",
]


class HyperbeeError(Exception):
    """Base class of the errors raised by hyperbee; ``code`` names the kind."""

    code = "HYPERBEE_ERROR"


class DecodingError(HyperbeeError, ValueError):
    """A block (or other bytes from a peer or a disk) that is not a valid hyperbee message (JS
    ``DECODING_ERROR``)."""

    code = "DECODING_ERROR"


class BlockNotAvailableError(HyperbeeError):
    """A block the bee needs that the core cannot give (JS ``BLOCK_NOT_AVAILABLE``)."""

    code = "BLOCK_NOT_AVAILABLE"


class BeeClosedError(HyperbeeError):
    """The bee is closed (JS ``Error('Bee closed')``)."""

    code = "BEE_CLOSED"


class BeeNotOpenError(HyperbeeError):
    """The bee is used before :meth:`~hyperbee.Hyperbee.ready` (JS opens it on first use)."""

    code = "BEE_NOT_OPEN"


class BeeReadOnlyError(HyperbeeError):
    """A write to a read-only bee or a checkout (JS ``Error('Hyperbee is marked as
    read-only')``)."""

    code = "BEE_READ_ONLY"


class BadArgumentError(HyperbeeError):
    """Options that cannot be used together or here (JS ``Error('Cannot have both live and
    reverse enabled')``, ``Error('Can only watch the main bee instance')``, ...)."""

    code = "BAD_ARGUMENT"


class EncodingError(HyperbeeError, ValueError):
    """A key or value the chosen encoding cannot encode (or a number a block cannot hold),
    or an encoding that is not one."""

    code = "ENCODING_ERROR"
