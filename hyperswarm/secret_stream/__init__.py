"""``@hyperswarm/secret-stream`` for Trio: Noise XX over Ed25519 plus libsodium secretstream.

* :class:`SecretStream` - the Trio stream/channel over any ``trio.abc.Stream`` (TCP, UDX);
  over a UDX stream it also carries unordered messages (``send_udp``/``receive_udp``), and
  ``handshake=`` a :class:`FinishedHandshake` starts it from keys agreed elsewhere (hyperdht).
* :class:`SecretStreamProtocol` - the sans-IO connection it drives (handshake, header, data
  frames); :class:`IdleTimers` - keep-alive and timeout bookkeeping.
* :mod:`.noise` - sans-IO Noise handshakes (``XX``, ``IK``) with Ed25519 DH;
  :mod:`.box` - secretstream push/pull boxes and the ``u24le`` frame parser;
  :mod:`.unordered` - the boxes of unordered (UDX datagram) messages;
  :mod:`.fastpath` and :mod:`.outbox` - the stream's raw-socket I/O and coalescing buffer.

Errors (:mod:`.errors`): every one is a :class:`SecretStreamError` (a
``trio.BrokenResourceError``) with a ``code``; the peer's garbage raises a
:class:`SecretStreamProtocolError` (also a ``ValueError``) in the sans-IO layer, and the stream
raises the same class once it has cut the peer off.
"""

from .box import ABYTES, FrameParser, PullBox, PushBox
from .errors import (
    DecryptionFailedError,
    FrameTooLargeError,
    HandshakeError,
    HandshakeTimeoutError,
    InvalidHeaderError,
    InvalidMessageError,
    SecretStreamError,
    SecretStreamProtocolError,
    SendCancelledError,
    StreamTimeoutError,
    TruncatedFrameError,
    UnorderedUnsupportedError,
)
from .noise import NoiseState
from .protocol import (
    FinishedHandshake,
    IdleTimers,
    SecretStreamProtocol,
    State,
    TimerEvent,
    stream_id,
)
from .stream import SecretStream
from .unordered import NS_INITIATOR, NS_RESPONDER, NS_SEND, UnorderedBoxes

__all__ = [
    "ABYTES",
    "NS_INITIATOR",
    "NS_RESPONDER",
    "NS_SEND",
    "DecryptionFailedError",
    "FinishedHandshake",
    "FrameParser",
    "FrameTooLargeError",
    "HandshakeError",
    "HandshakeTimeoutError",
    "IdleTimers",
    "InvalidHeaderError",
    "InvalidMessageError",
    "NoiseState",
    "PullBox",
    "PushBox",
    "SecretStream",
    "SecretStreamError",
    "SecretStreamProtocol",
    "SecretStreamProtocolError",
    "SendCancelledError",
    "State",
    "StreamTimeoutError",
    "TimerEvent",
    "TruncatedFrameError",
    "UnorderedBoxes",
    "UnorderedUnsupportedError",
    "stream_id",
]
