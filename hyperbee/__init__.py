"""Hyperbee for Python on Trio: the B-tree over a Hypercore, block-for-block compatible with
JS hyperbee 2.

So far: :mod:`hyperbee.messages`, the block formats (header, nodes and their tree index),
and :mod:`hyperbee.tree`, reading a version's tree (get, in-order listing) from its blocks.
"""

from . import messages
from .errors import DecodingError, HyperbeeError

__all__ = ["DecodingError", "HyperbeeError", "messages"]
