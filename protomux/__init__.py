"""Protomux and compact-encoding for Python on Trio, byte-compatible with the JS packages.

The multiplexer itself and ``protomux.rpc`` arrive on top of :mod:`protomux.encoding`.
"""

from . import encoding

__all__ = ["encoding"]
