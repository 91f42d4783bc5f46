"""The sans-IO secret-stream connection: handshake, header, data frames and idle timers.

:class:`SecretStreamProtocol` never touches a socket. Feed it the bytes that arrive
(:meth:`~SecretStreamProtocol.receive_data`), pull messages out
(:meth:`~SecretStreamProtocol.next_message`), and write what it asks you to
(:meth:`~SecretStreamProtocol.data_to_send`, :meth:`~SecretStreamProtocol.encrypt`).

Wire format, as JS ``@hyperswarm/secret-stream``:

* every frame is ``u24le(len) || body``;
* the Noise handshake (XX by default, empty prologue and payloads) comes first, the
  initiator writing the first message;
* then each side sends one header frame ``stream_id(32) || secretstream_header(24)`` where
  ``stream_id = H_hh(NS_INITIATOR)`` for the initiator and ``H_hh(NS_RESPONDER)`` for the
  responder; the peer checks it against the role it expects;
* then every frame is one secretstream box of one message (``len + 17`` bytes).

The initiator writes its header right after the last handshake message, in the same write.
The responder writes its header just before its first data frame (its first
:meth:`~SecretStreamProtocol.encrypt`), or when :meth:`~SecretStreamProtocol.flush_header`
is called: the peer needs it only before that first frame, and holding it back means a side
never has to write when it only wants to read (unbuffered transports would deadlock).

Started from a :class:`FinishedHandshake` (JS ``opts.handshake``: the keys of a handshake
done elsewhere, as hyperdht's Noise IK), no Noise message is exchanged: both sides begin
awaiting the peer's header, and each side's own header is ready at once, for either role,
through :meth:`~SecretStreamProtocol.flush_header` (or the first
:meth:`~SecretStreamProtocol.encrypt`).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from enum import Enum
from typing import Final

from hypercore.crypto import KeyPair

from .box import HEADERBYTES, MAX_FRAME, FrameParser, PullBox, PushBox, frame
from .errors import HandshakeError, InvalidHeaderError
from .noise import MAX_MESSAGE_LENGTH, NoiseState, generate_key_pair
from .unordered import NS_INITIATOR, NS_RESPONDER, UnorderedBoxes

__all__ = [
    "HEADER_FRAME_BODY",
    "READ_SIZE",
    "FinishedHandshake",
    "IdleTimers",
    "SecretStreamProtocol",
    "State",
    "TimerEvent",
    "stream_id",
]

HEADER_FRAME_BODY: Final = 32 + HEADERBYTES
"""Body size of the post-handshake header frame (56)."""
READ_SIZE: Final = 64 * 1024
"""Default read size for adapters (a bigger one is asked for to finish a bigger frame).
Measured: 64 KiB beats 128 and 256 KiB for 64 KiB messages over local TCP."""


def stream_id(handshake_hash: bytes, is_initiator: bool) -> bytes:
    """The 32-byte id a side sends in its header: ``H_hh(NS_INITIATOR or NS_RESPONDER)``."""
    ns = NS_INITIATOR if is_initiator else NS_RESPONDER
    return hashlib.blake2b(ns, key=handshake_hash, digest_size=32).digest()


@dataclass(frozen=True, slots=True)
class FinishedHandshake:
    """The result of a Noise handshake done elsewhere (JS ``opts.handshake``): our static
    ``public_key``, the peer's ``remote_public_key`` (32 bytes each), the 64-byte handshake
    ``hash`` and the 32-byte transport keys ``tx`` (ours) and ``rx`` (the peer's).

    A stream started from it exchanges no Noise messages. ``ValueError`` on a wrong length.
    """

    public_key: bytes
    remote_public_key: bytes
    hash: bytes
    tx: bytes
    rx: bytes

    def __post_init__(self) -> None:
        for name, size in (
            ("public_key", 32),
            ("remote_public_key", 32),
            ("hash", 64),
            ("tx", 32),
            ("rx", 32),
        ):
            value = bytes(getattr(self, name))
            if len(value) != size:
                raise ValueError(f"{name} must be {size} bytes, not {len(value)}")
            object.__setattr__(self, name, value)


class State(Enum):
    HANDSHAKE = "handshake"
    """Noise messages are being exchanged."""
    AWAIT_HEADER = "await-header"
    """Handshake done; the peer's header frame has not arrived."""
    OPEN = "open"
    """Data frames flow both ways."""


class SecretStreamProtocol:
    """One side of a secret stream, as a state machine over bytes.

    ``key_pair`` is the static Ed25519 key pair (a random one when omitted).
    ``remote_public_key`` is required by the ``IK`` pattern (the responder's key) and is
    otherwise not checked: XX authenticates whatever key the peer presents, so compare
    :attr:`remote_public_key` yourself. With ``filter_empty_messages`` (JS does this when
    keep-alive is on) empty messages are dropped by :meth:`next_message`.

    ``handshake`` starts from a :class:`FinishedHandshake` instead (no Noise messages; then
    ``pattern``, ``remote_public_key``, ``prologue`` and ``ephemeral_key_pair`` must be left
    out, and ``key_pair`` is optional, kept only to be reported). :attr:`public_key`,
    :attr:`remote_public_key` and :attr:`handshake_hash` are then the given ones, the state
    is :attr:`State.AWAIT_HEADER` and our header waits in :meth:`flush_header`.

    :attr:`unordered` holds the boxes of unordered (UDX datagram) messages once the
    handshake is complete (``None`` before): datagrams arriving earlier are to be dropped.
    """

    __slots__ = (
        "_noise",
        "_out",
        "_parser",
        "_pending_header",
        "_pull",
        "_push",
        "_rx_key",
        "filter_empty_messages",
        "handshake_hash",
        "is_initiator",
        "key_pair",
        "public_key",
        "remote_public_key",
        "state",
        "unordered",
    )

    def __init__(
        self,
        is_initiator: bool,
        key_pair: KeyPair | None = None,
        *,
        pattern: str = "XX",
        remote_public_key: bytes | None = None,
        prologue: bytes = b"",
        filter_empty_messages: bool = False,
        ephemeral_key_pair: KeyPair | None = None,
        handshake: FinishedHandshake | None = None,
    ) -> None:
        self.is_initiator = is_initiator
        self.filter_empty_messages = filter_empty_messages
        self.state = State.HANDSHAKE
        self.handshake_hash: bytes | None = None
        self.remote_public_key: bytes | None = remote_public_key
        self.unordered: UnorderedBoxes | None = None
        self._parser = FrameParser(MAX_MESSAGE_LENGTH)
        self._out = bytearray()
        self._pending_header: bytes | None = None
        self._push: PushBox | None = None
        self._pull: PullBox | None = None
        self._rx_key: bytes | None = None  # between the handshake and the peer's header
        self._noise: NoiseState | None = None
        if handshake is not None:
            if (
                pattern != "XX"
                or remote_public_key is not None
                or prologue
                or ephemeral_key_pair is not None
            ):
                raise ValueError(
                    "a finished handshake takes no pattern, remote_public_key, prologue or "
                    "ephemeral_key_pair"
                )
            self.key_pair: KeyPair | None = key_pair
            self.public_key = handshake.public_key
            self._start(
                handshake.tx, handshake.rx, handshake.hash, handshake.remote_public_key, False
            )
            return
        static = key_pair if key_pair is not None else generate_key_pair()
        self.key_pair = static
        self.public_key = static.public_key
        noise = self._noise = NoiseState(
            pattern,
            is_initiator,
            static,
            prologue=prologue,
            remote_static=remote_public_key,
            ephemeral_key_pair=ephemeral_key_pair,
        )
        if noise.my_turn:
            self._out += frame(noise.send())

    # -- state -----------------------------------------------------------------------------

    @property
    def handshake_complete(self) -> bool:
        return self.state is not State.HANDSHAKE

    @property
    def stream_id(self) -> bytes:
        """This side's stream id (after the handshake)."""
        if self.handshake_hash is None:
            raise RuntimeError("the handshake is not complete")
        return stream_id(self.handshake_hash, self.is_initiator)

    @property
    def buffered(self) -> int:
        """Received bytes not yet turned into messages."""
        return self._parser.buffered

    def read_size(self) -> int:
        """A good ``max_bytes`` for the next read: enough for the frame in progress."""
        return max(READ_SIZE, self._parser.bytes_wanted())

    # -- input -----------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer bytes received from the transport."""
        self._parser.feed(data)

    def next_message(self) -> bytes | None:
        """The next received message, or ``None`` when more bytes are needed.

        Handshake and header frames are processed on the way (check :meth:`data_to_send`
        afterwards). It also returns ``None`` right after the handshake completes, leaving
        later frames buffered, so that a caller can finish the handshake before taking
        messages. Raises a :class:`~.errors.SecretStreamProtocolError` if the peer broke the
        protocol; the connection is then unusable.
        """
        parser = self._parser
        while True:
            body = parser.next_frame()
            if body is None:
                return None
            state = self.state
            if state is State.OPEN:
                pull = self._pull
                assert pull is not None
                message = pull.pull(body)
                if not message and self.filter_empty_messages:
                    continue
                return message
            if state is State.HANDSHAKE:
                self._on_handshake_message(body)
                if self.state is not State.HANDSHAKE:
                    return None
            else:
                self._on_header(body)

    def _on_handshake_message(self, body: bytes | memoryview) -> None:
        noise = self._noise
        assert noise is not None
        if noise.my_turn:
            raise HandshakeError("handshake message out of turn")
        noise.recv(body)
        if not noise.complete:
            self._out += frame(noise.send())
        if noise.complete:
            self._on_handshake_complete(noise)

    def _on_handshake_complete(self, noise: NoiseState) -> None:
        assert noise.tx is not None and noise.rx is not None and noise.handshake_hash is not None
        self._noise = None
        self._start(noise.tx, noise.rx, noise.handshake_hash, noise.remote_static, True)

    def _start(
        self,
        tx: bytes,
        rx: bytes,
        handshake_hash: bytes,
        remote_public_key: bytes | None,
        initiator_header_now: bool,
    ) -> None:
        """Set up the boxes from the handshake's keys and queue our header (JS
        ``_setupSecretStream``): in :meth:`data_to_send` for an initiator that has just
        finished a Noise handshake, else for :meth:`flush_header`."""
        self.handshake_hash = handshake_hash
        self.remote_public_key = remote_public_key
        self._push = PushBox(tx)
        self._rx_key = rx
        self.unordered = UnorderedBoxes(handshake_hash, self.is_initiator)
        header = frame(stream_id(handshake_hash, self.is_initiator) + self._push.header)
        if self.is_initiator and initiator_header_now:
            self._out += header
        else:
            self._pending_header = header
        self.state = State.AWAIT_HEADER

    def _on_header(self, body: bytes | memoryview) -> None:
        if len(body) != HEADER_FRAME_BODY:
            raise InvalidHeaderError("Invalid header message received")
        assert self.handshake_hash is not None
        expected = stream_id(self.handshake_hash, not self.is_initiator)
        if body[:32] != expected:
            raise InvalidHeaderError("Invalid header received")
        assert self._rx_key is not None
        self._pull = PullBox(self._rx_key, body[32:])
        self._rx_key = None
        self.state = State.OPEN
        self._parser.max_frame = MAX_FRAME

    # -- output ----------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Handshake messages and the initiator's header waiting to be written (and clears them)."""
        if not self._out:
            return b""
        out = bytes(self._out)
        self._out.clear()
        return out

    @property
    def header_pending(self) -> bool:
        """Whether our header frame waits in :meth:`flush_header` (it has not been sent)."""
        return self._pending_header is not None

    def flush_header(self) -> bytes:
        """Our header frame if it waits to be sent (the responder's after a Noise handshake,
        either side's after a :class:`FinishedHandshake`), else ``b""``."""
        header = self._pending_header
        if header is None:
            return b""
        self._pending_header = None
        return header

    def encrypt(self, message: bytes | bytearray | memoryview) -> bytes | bytearray:
        """The frame carrying ``message``, ready to write (after :meth:`data_to_send`).

        The responder's header is prepended the first time. ``ValueError`` if the message
        is longer than a frame can carry (2^24 - 18 bytes).
        """
        push = self._push
        if push is None:
            raise RuntimeError("cannot send before the handshake is complete")
        header = self._pending_header
        if header is None:
            return push.push_frame(message)
        self._pending_header = None
        return push.push_frame(message, header)


class TimerEvent(Enum):
    SEND_KEEP_ALIVE = "send-keep-alive"
    """Nothing was written for ``keep_alive`` seconds: write an empty message."""
    TIMED_OUT = "timed-out"
    """Nothing arrived for ``timeout`` seconds: close the stream."""


class IdleTimers:
    """Keep-alive and idle-timeout bookkeeping (sans-IO: the caller passes the time)."""

    __slots__ = ("keep_alive", "last_received", "last_sent", "timeout")

    def __init__(self, keep_alive: float | None, timeout: float | None, now: float) -> None:
        if keep_alive is not None and keep_alive <= 0:
            keep_alive = None
        if timeout is not None and timeout <= 0:
            timeout = None
        self.keep_alive = keep_alive
        self.timeout = timeout
        self.last_sent = now
        self.last_received = now

    def sent(self, now: float) -> None:
        self.last_sent = now

    def received(self, now: float) -> None:
        self.last_received = now

    def receive_deadline(self) -> float:
        """When the idle timeout fires unless bytes arrive (``inf`` without a timeout)."""
        return math.inf if self.timeout is None else self.last_received + self.timeout

    def next_deadline(self, *, keep_alive: bool = True, timeout: bool = True) -> float:
        """The earliest time :meth:`poll` may return an event."""
        deadline = math.inf
        if keep_alive and self.keep_alive is not None:
            deadline = self.last_sent + self.keep_alive
        if timeout and self.timeout is not None:
            deadline = min(deadline, self.last_received + self.timeout)
        return deadline

    def poll(
        self, now: float, *, keep_alive: bool = True, timeout: bool = True
    ) -> TimerEvent | None:
        """What is due at ``now``; the timeout wins over a keep-alive."""
        if timeout and self.timeout is not None and now >= self.last_received + self.timeout:
            return TimerEvent.TIMED_OUT
        if keep_alive and self.keep_alive is not None and now >= self.last_sent + self.keep_alive:
            return TimerEvent.SEND_KEEP_ALIVE
        return None
