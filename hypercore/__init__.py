"""Hypercore for Python on Trio: the signed append-only log, wire- and disk-compatible with JS
hypercore 11.

Available so far: :mod:`hypercore.crypto` (hashes, keys, v11 capabilities and manifest
hashing), :mod:`hypercore.flat_tree`, :mod:`hypercore.manifest` and the wire codecs in
:mod:`hypercore.messages`.
"""

from . import crypto, flat_tree, manifest, messages

__all__ = ["crypto", "flat_tree", "manifest", "messages"]
