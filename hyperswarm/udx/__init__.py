"""UDX: reliable, congestion-controlled streams over UDP, wire-compatible with libudx
(udx-native).

:class:`UDX` is a table of streams that several sockets share; :class:`UDXSocket` owns a
UDP socket; :class:`UDXStream` is one stream, a :class:`trio.abc.HalfCloseableStream`. Below
them: :mod:`hyperswarm.udx.packet` (the packet format) and :mod:`hyperswarm.udx.connection`
(one stream as a sans-IO state machine);
:mod:`hyperswarm.udx.errors` the errors (root :class:`UDXError`, each with ``code``).
"""

from . import connection, packet
from .errors import UDXDecodeError, UDXError, UDXResetError, UDXTimeoutError
from .socket import UDX, UDXSocket, UDXStream

__all__ = [
    "UDX",
    "UDXDecodeError",
    "UDXError",
    "UDXResetError",
    "UDXSocket",
    "UDXStream",
    "UDXTimeoutError",
    "connection",
    "packet",
]
