"""``@hyperswarm/secret-stream`` for Trio: Noise XX over Ed25519 plus libsodium secretstream.

* :class:`SecretStream` - the Trio stream/channel over any ``trio.abc.Stream`` (TCP, UDX).
* :class:`SecretStreamProtocol` - the sans-IO connection it drives (handshake, header, data
  frames); :class:`IdleTimers` - keep-alive and timeout bookkeeping.
* :mod:`.noise` - sans-IO Noise handshakes (``XX``, ``IK``) with Ed25519 DH;
  :mod:`.box` - secretstream push/pull boxes and the ``u24le`` frame parser;
  :mod:`.unordered` - the boxes of unordered (UDX datagram) messages.

Errors: the peer's garbage raises :class:`ProtocolError` (a ``ValueError``) in the sans-IO
layer and :class:`SecretStreamError` (a ``trio.BrokenResourceError``) from the stream.
"""

from .box import ABYTES, FrameParser, PullBox, PushBox
from .errors import HandshakeError, ProtocolError
from .noise import NoiseState
from .protocol import IdleTimers, SecretStreamProtocol, State, TimerEvent, stream_id
from .stream import SecretStream, SecretStreamError
from .unordered import NS_INITIATOR, NS_RESPONDER, NS_SEND, UnorderedBoxes

__all__ = [
    "ABYTES",
    "NS_INITIATOR",
    "NS_RESPONDER",
    "NS_SEND",
    "FrameParser",
    "HandshakeError",
    "IdleTimers",
    "NoiseState",
    "ProtocolError",
    "PullBox",
    "PushBox",
    "SecretStream",
    "SecretStreamError",
    "SecretStreamProtocol",
    "State",
    "TimerEvent",
    "UnorderedBoxes",
    "stream_id",
]
