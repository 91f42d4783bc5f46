"""Hyperbee for Python on Trio: a sorted key/value store (a B-tree) over a Hypercore,
block-for-block compatible with JS hyperbee 2.

:class:`Hyperbee` is the bee; :class:`Batch` groups writes into one append. Below them:
:mod:`hyperbee.messages` (the block formats), :mod:`hyperbee.nodes` (the tree and its write
algorithms), :mod:`hyperbee.iterators` (history and diffs) and :mod:`hyperbee.watch`.
"""

from . import messages
from .batch import Batch
from .bee import Hyperbee
from .codecs import DiffEntry, Entry, HistoryEntry
from .errors import DecodingError, HyperbeeError
from .messages import Header, Metadata
from .watch import EntryWatcher, Watcher

__all__ = [
    "Batch",
    "DecodingError",
    "DiffEntry",
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
