"""Corestore for Python on Trio: many hypercores in one storage, disk-compatible with JS
corestore 7 (a directory written by either opens in the other, with the same keys).

:class:`Corestore` hands out :class:`~hypercore.Hypercore` sessions with :meth:`~Corestore.get`;
named cores get key pairs derived from the store's primary key (:mod:`corestore.keys`), and
:meth:`~Corestore.namespace` / :meth:`~Corestore.session` make views that share the storage.

.. code-block:: python

    async with Corestore("./store") as store:
        async with store.namespace("app").get("main") as core:
            await core.append(b"hello")
"""

from . import errors, keys
from .errors import CorestoreClosedError, CorestoreError, PrimaryKeyMismatchError
from .keys import DEFAULT_NAMESPACE, create_key_pair, derive_seed, generate_namespace
from .store import Corestore, StorageArg, Watcher

__all__ = [
    "DEFAULT_NAMESPACE",
    "Corestore",
    "CorestoreClosedError",
    "CorestoreError",
    "PrimaryKeyMismatchError",
    "StorageArg",
    "Watcher",
    "create_key_pair",
    "derive_seed",
    "errors",
    "generate_namespace",
    "keys",
]
