"""Hyperbee for Python on Trio: a sorted key/value store (a B-tree) over a Hypercore,
block-for-block compatible with JS hyperbee 2.

:class:`Hyperbee` is the bee; :class:`Batch` groups writes into one append. Below them:
:mod:`hyperbee.messages` (the block formats), :mod:`hyperbee.nodes` (the tree and its write
algorithms), :mod:`hyperbee.iterators` (ranges, history and diffs) and :mod:`hyperbee.watch`.
:mod:`hyperbee.errors` has one class per error code, all under :class:`HyperbeeError`.
"""

from . import messages
from .batch import Batch
from .bee import Hyperbee
from .codecs import DiffEntry, Entry, HistoryEntry
from .errors import (
    BadArgumentError,
    BeeClosedError,
    BeeNotOpenError,
    BeeReadOnlyError,
    BlockNotAvailableError,
    DecodingError,
    EncodingError,
    HyperbeeError,
)
from .messages import Header, Metadata
from .watch import EntryWatcher, Watcher

__all__ = [
    "BadArgumentError",
    "Batch",
    "BeeClosedError",
    "BeeNotOpenError",
    "BeeReadOnlyError",
    "BlockNotAvailableError",
    "DecodingError",
    "DiffEntry",
    "EncodingError",
    "Entry",
    "EntryWatcher",
    "Header",
    "HistoryEntry",
    "Hyperbee",
    "HyperbeeError",
    "Metadata",
    "Watcher",
    "messages",
]
