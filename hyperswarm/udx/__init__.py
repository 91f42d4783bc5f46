"""UDX: reliable, congestion-controlled streams over UDP, wire-compatible with libudx
(udx-native).

:class:`UDXSocket` owns a UDP socket; :class:`UDXStream` is one stream on it, a
:class:`trio.abc.HalfCloseableStream`. Below them: :mod:`hyperswarm.udx.packet` (the packet
format) and :mod:`hyperswarm.udx.connection` (one stream as a sans-IO state machine);
:mod:`hyperswarm.udx.errors` the errors (root :class:`UDXError`, each with ``code``).
"""

from . import connection, packet
from .errors import UDXDecodeError, UDXError, UDXResetError, UDXTimeoutError
from .socket import UDXSocket, UDXStream

__all__ = [
    "UDXDecodeError",
    "UDXError",
    "UDXResetError",
    "UDXSocket",
    "UDXStream",
    "UDXTimeoutError",
    "connection",
    "packet",
]
