"""UDX: reliable, congestion-controlled streams over UDP, wire-compatible with libudx.

So far: :mod:`hyperswarm.udx.packet`, the packet format.
"""

from . import packet
from .errors import UDXDecodeError, UDXError

__all__ = ["UDXDecodeError", "UDXError", "packet"]
