"""The Trio adapter: :class:`SecretStream` moves bytes between a transport and the sans-IO
:class:`~hyperswarm.secret_stream.protocol.SecretStreamProtocol`.

Its two speed-ups live apart: :mod:`.fastpath` (a TCP transport's socket read and written
directly) and :mod:`.outbox` (``send_nowait``'s coalescing buffer and flusher task).
"""

from __future__ import annotations

import math
import operator
from typing import Final, Protocol, Self, cast

import trio
from trio.lowlevel import cancel_shielded_checkpoint, checkpoint, checkpoint_if_cancelled

from hypercore.crypto import KeyPair
from protomux._toolkit import AsyncResource, ConflictDetector, FifoLock

from ..udx.errors import UDXError
from .box import MAX_MESSAGE
from .errors import (
    HandshakeError,
    HandshakeTimeoutError,
    SecretStreamError,
    SecretStreamProtocolError,
    SendCancelledError,
    StreamTimeoutError,
    TruncatedFrameError,
    UnorderedUnsupportedError,
)
from .fastpath import Buffer, RawSocket
from .outbox import MAX_PENDING_OUT, Outbox
from .protocol import FinishedHandshake, IdleTimers, SecretStreamProtocol, State, TimerEvent

__all__ = ["SecretStream", "SecretStreamError"]

DEFAULT_HANDSHAKE_TIMEOUT: Final = 10.0
MAX_QUEUED_UDP: Final = 1024
"""Unordered messages opened but not yet taken by ``receive_udp``; more are dropped."""


class DatagramTransport(Protocol):
    """What unordered messages need of the transport: a UDX stream's stream messages."""

    async def send(self, message: bytes) -> None: ...

    def try_send(self, message: bytes) -> None: ...

    async def receive_message(self) -> bytes: ...


def _datagram_transport(stream: trio.abc.Stream) -> DatagramTransport | None:
    if all(callable(getattr(stream, n, None)) for n in ("send", "try_send", "receive_message")):
        return cast(DatagramTransport, stream)
    return None


class SecretStream(AsyncResource, trio.abc.HalfCloseableStream, trio.abc.Channel[bytes]):
    """An encrypted, authenticated message stream over a byte stream, wire-compatible with
    JS ``@hyperswarm/secret-stream`` (``NoiseSecretStream``).

    ``async with SecretStream(tcp, is_initiator=True) as s:`` runs the Noise XX handshake
    (bounded by ``handshake_timeout`` seconds from the first attempt) and starts the
    keep-alive/timeout task in a nursery of its own, so the same task must enter and leave
    the block; leaving it closes ``s`` and the transport (so does a failed handshake).
    Without ``async with`` the handshake runs on the first operation (or
    :meth:`do_handshake`); the idle timeout is then enforced while a task is receiving, and
    keep-alives are only sent while :meth:`run_timers` runs (in a nursery of yours).

    Messages: :meth:`send` writes one message as one encrypted frame; :meth:`receive` returns
    one message and raises :class:`trio.EndOfChannel` when the transport ends cleanly. Several
    tasks may call :meth:`send` (or :meth:`receive`) at once; each message is atomic and
    callers are served in order. A task may send while another receives.

    Byte-stream view (``trio.abc.Stream``): :meth:`send_all` sends one message;
    :meth:`receive_some` returns the bytes of the message sequence, skipping empty messages,
    keeping the tail of a message that does not fit ``max_bytes`` for the next call, and
    returning ``b""`` at the end. These raise :class:`trio.BusyResourceError` when two tasks
    use them at once, as any trio stream does.

    ``keep_alive``: after that many seconds without a write, an empty message is written;
    received empty messages are then dropped (as JS does, ``filter_empty_messages`` forces
    this). ``timeout``: if no bytes arrive for that long, the stream is cut off with
    :class:`SecretStreamError` (code ``TIMED_OUT``).

    A peer that breaks the protocol (bad MAC, wrong header, malformed handshake, the transport
    ending inside a frame) or stalls the handshake is cut off: the transport is closed and
    every later call raises :class:`SecretStreamError` (a ``trio.BrokenResourceError``).
    If a write is cancelled part-way the send side is unusable afterwards (receiving goes on).

    XX authenticates whatever static key the peer presents: check :attr:`remote_public_key`.
    ``pattern="IK"`` runs Noise IK instead (JS ``pattern: 'IK'``), the initiator naming the
    responder's key in ``remote_public_key``; the prologue is empty, as in JS.

    ``handshake``: start from a :class:`FinishedHandshake`, the keys of a handshake done
    elsewhere (JS ``opts.handshake``; hyperdht's connection handshake). No Noise message is
    exchanged: each side sends its 56-byte header at once (on entering ``async with`` or on
    :meth:`do_handshake`, else with its first message), and :attr:`remote_public_key`,
    :attr:`handshake_hash` and :attr:`public_key` report the given values.

    Unordered messages (JS ``send``/``trySend`` and the ``message`` event): over a transport
    with stream messages (a UDX stream), :meth:`send_udp`, :meth:`try_send_udp` and
    :meth:`receive_udp` carry single encrypted datagrams beside the ordered stream: they may
    be lost, duplicated or reordered. Inside ``async with`` a task of the stream reads them
    from the start, dropping those that arrive before the handshake is complete and those
    that do not open, as JS does.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        is_initiator: bool,
        key_pair: KeyPair | None = None,
        keep_alive: float | None = None,
        timeout: float | None = None,
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
        filter_empty_messages: bool = False,
        pattern: str = "XX",
        remote_public_key: bytes | None = None,
        handshake: FinishedHandshake | None = None,
    ) -> None:
        if not isinstance(is_initiator, bool):
            raise TypeError("is_initiator must be a bool")
        self.transport_stream = stream
        self._proto = SecretStreamProtocol(
            is_initiator,
            key_pair,
            pattern=pattern,
            remote_public_key=remote_public_key,
            filter_empty_messages=filter_empty_messages or bool(keep_alive and keep_alive > 0),
            handshake=handshake,
        )
        # Started from a finished handshake, both sides send their header at once (JS).
        self._header_at_once = handshake is not None
        self._timers = IdleTimers(keep_alive, timeout, 0.0)
        self._handshake_timeout = handshake_timeout
        self._handshake_deadline: float | None = None
        self._clock_started = False  # the idle timers count from the handshake's start
        self._handshake_lock = trio.Lock()
        self._send_lock = FifoLock()
        self._receive_lock = FifoLock()
        self._send_conflict = ConflictDetector("another task is using send_all on this stream")
        self._receive_conflict = ConflictDetector(
            "another task is using receive_some on this stream"
        )
        self._closed = False
        self._eof_sent = False
        self._eof_received = False
        self._reading = False  # a task is waiting in transport.receive_some
        self._receive_error: trio.BrokenResourceError | None = None  # seen by the timer task
        self._error: SecretStreamError | None = None
        self._send_error: trio.BrokenResourceError | None = None
        self._leftover: memoryview | None = None
        self._timer_scopes: set[trio.CancelScope] = set()
        self._timer_wakeup = trio.Event()
        # Encrypted frames not yet written: ``send_nowait`` appends there (in encryption
        # order) and the flusher task, or the next ``send``, writes them out.
        self._outbox = Outbox()
        self._protocol_error: SecretStreamProtocolError | None = None  # found by receive_nowait
        # A TCP transport is read and written straight through its non-blocking socket.
        self._raw = RawSocket.of(stream)
        # Unordered messages: the transport's datagrams and, inside ``async with``, the
        # opened ones the reader task queues for ``receive_udp``.
        self._udp = _datagram_transport(stream)
        self._udp_queue: trio.MemoryReceiveChannel[bytes] | None = None

    # -- properties ------------------------------------------------------------------------

    @property
    def is_initiator(self) -> bool:
        return self._proto.is_initiator

    @property
    def key_pair(self) -> KeyPair | None:
        """Our static key pair (``None`` if started from a finished handshake without one)."""
        return self._proto.key_pair

    @property
    def public_key(self) -> bytes:
        """Our static public key."""
        return self._proto.public_key

    @property
    def remote_public_key(self) -> bytes:
        """The peer's static public key (after the handshake)."""
        key = self._proto.remote_public_key
        if key is None or not self._proto.handshake_complete:
            raise RuntimeError("the handshake is not complete")
        return key

    @property
    def handshake_hash(self) -> bytes:
        """The 64-byte Noise handshake hash (after the handshake)."""
        h = self._proto.handshake_hash
        if h is None:
            raise RuntimeError("the handshake is not complete")
        return h

    @property
    def stream_id(self) -> bytes:
        """Our 32-byte stream id (after the handshake), as JS ``NoiseSecretStream.id``."""
        return self._proto.stream_id

    @property
    def handshake_complete(self) -> bool:
        return self._proto.handshake_complete

    @property
    def protocol(self) -> SecretStreamProtocol:
        """The sans-IO state (for the unordered-message boxes: ``protocol.unordered``)."""
        return self._proto

    @property
    def keep_alive(self) -> float | None:
        return self._timers.keep_alive

    @property
    def timeout(self) -> float | None:
        return self._timers.timeout

    def set_keep_alive(self, seconds: float | None) -> None:
        """Change the keep-alive interval (``None`` or 0 turns it off), as JS ``setKeepAlive``."""
        self._timers.keep_alive = seconds if seconds and seconds > 0 else None
        if self._timers.keep_alive is not None:
            self._proto.filter_empty_messages = True
            if self._proto.handshake_complete:
                self._timers.sent(trio.current_time())
        self._wake_timers()

    def set_timeout(self, seconds: float | None) -> None:
        """Change the idle timeout (``None`` or 0 turns it off), as JS ``setTimeout``."""
        self._timers.timeout = seconds if seconds and seconds > 0 else None
        if self._proto.handshake_complete:
            self._timers.received(trio.current_time())
        self._wake_timers()

    # -- context manager -------------------------------------------------------------------

    async def _open(self, nursery: trio.Nursery) -> None:
        if self._udp is not None:
            # (from the start, so that what arrives during the handshake is dropped)
            send, self._udp_queue = trio.open_memory_channel[bytes](MAX_QUEUED_UDP)
            nursery.start_soon(self._run_udp_reader, self._udp, send)
        try:
            await self.do_handshake()
        except BaseException:
            await trio.aclose_forcefully(self)
            raise
        nursery.start_soon(self.run_timers)
        self._outbox.running = True  # from now on: it writes what is buffered when it starts
        nursery.start_soon(self._run_flusher)

    # (Leaving: aclose(), then the timer and flusher tasks, which never raise, are cancelled.)

    # -- handshake -------------------------------------------------------------------------

    async def do_handshake(self) -> None:
        """Run the handshake if it has not run yet (entering ``async with`` does this)."""
        if self._proto.state is not State.HANDSHAKE:
            self._check_usable()
            if self._header_at_once and self._proto.header_pending:
                self._start_clock(trio.current_time())
                await self._send_header()
            else:
                await checkpoint()
            return
        await self._ensure_handshake()

    def _start_clock(self, now: float) -> None:
        """The idle timers count from the start of the handshake (or of a stream started
        from a finished handshake)."""
        if not self._clock_started:
            self._clock_started = True
            self._timers.sent(now)
            self._timers.received(now)

    async def _send_header(self) -> None:
        """Write our header frame if it still waits (started from a finished handshake)."""
        lock = self._send_lock
        await lock.acquire()
        try:
            self._check_send()
            await checkpoint_if_cancelled()
            header = self._proto.flush_header()
            if header:
                await self._send_raw(self._outbox.take(header))
            else:
                await cancel_shielded_checkpoint()
        finally:
            lock.release()

    async def _ensure_handshake(self) -> None:
        if self._proto.state is not State.HANDSHAKE:
            return
        self._check_usable()
        async with self._handshake_lock:
            self._check_usable()
            if self._proto.state is State.HANDSHAKE:
                await self._run_handshake()

    async def _run_handshake(self) -> None:
        now = trio.current_time()
        if self._handshake_deadline is None:
            timeout = self._handshake_timeout
            self._handshake_deadline = math.inf if timeout is None else now + timeout
            self._start_clock(now)
        proto = self._proto
        try:
            with trio.fail_at(self._handshake_deadline):
                while True:
                    out = proto.data_to_send()
                    if out:
                        await self._send_raw(out)
                    if proto.handshake_complete:
                        return
                    before = proto.buffered
                    proto.next_message()
                    if proto.handshake_complete or proto.buffered != before:
                        continue
                    data = await self._receive_raw()
                    if not data:
                        # (wrapped below: "Noise handshake failed: the peer closed ...")
                        raise HandshakeError("the peer closed the connection")
                    proto.receive_data(data)
        except trio.TooSlowError:
            err: SecretStreamError = HandshakeTimeoutError("Noise handshake timed out")
            await self._cut_off(err)
            raise err from None
        except SecretStreamProtocolError as exc:
            err = type(exc)(f"Noise handshake failed: {exc}")
            await self._cut_off(err)
            raise err from exc
        except SecretStreamError as exc:
            await self._cut_off(exc)
            raise
        except trio.BrokenResourceError as exc:
            err = HandshakeError(f"Noise handshake failed: {exc!r}")
            await self._cut_off(err)
            raise err from exc
        except trio.Cancelled:
            if self._send_error is not None:
                # A handshake message may be half written: the handshake cannot go on.
                self._error = self._error or HandshakeError(
                    "Noise handshake failed: a write was cancelled"
                )
            raise

    # -- raw transport I/O -----------------------------------------------------------------

    async def _send_raw(self, data: Buffer) -> None:
        try:
            raw = self._raw
            if raw is not None and len(data):
                await raw.send_all(data)
            else:
                await self.transport_stream.send_all(data)
        except trio.Cancelled:
            if self._send_error is None:
                self._send_error = SendCancelledError(
                    "a write was cancelled part-way; this stream can no longer send"
                )
            raise
        except trio.ClosedResourceError:
            self._raise_if_closed_or_cut_off()
            raise
        except trio.BrokenResourceError as exc:
            if self._send_error is None:
                self._send_error = exc
            raise
        timers = self._timers
        if timers.keep_alive is not None:
            timers.last_sent = trio.current_time()

    async def _receive_raw(self) -> bytes | bytearray:
        timers = self._timers
        size = self._proto.read_size()
        try:
            self._reading = True
            if timers.timeout is None:
                data = await self._read(size)
            else:
                # Bytes may wait unread in the transport, so a reader only gives up after
                # waiting a whole timeout itself; the timer task (if running) also fires
                # `timeout` after the last bytes were read, as JS does.
                with trio.move_on_after(timers.timeout) as scope:
                    data = await self._read(size)
                if scope.cancelled_caught:
                    err = StreamTimeoutError("Stream timed out")
                    await self._cut_off(err)
                    raise err
        except trio.ClosedResourceError:
            self._raise_if_closed_or_cut_off()
            raise
        finally:
            self._reading = False
        if data and timers.timeout is not None:
            timers.last_received = trio.current_time()
        return data

    async def _read(self, size: int) -> bytes | bytearray:
        raw = self._raw
        if raw is None:
            return await self.transport_stream.receive_some(size)
        return await raw.read(size)

    def _raise_if_closed_or_cut_off(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the secret stream was closed") from None
        if self._error is not None:
            raise self._error.copy() from self._error

    async def _cut_off(self, err: SecretStreamError) -> None:
        """Record the failure, stop the timers and close the transport."""
        if self._error is None:
            self._error = err
        self._stop_timers()
        await trio.aclose_forcefully(self.transport_stream)

    def _check_usable(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the secret stream was closed")
        if self._error is not None:
            raise self._error.copy() from self._error

    def _check_send(self) -> None:
        self._check_usable()
        if self._eof_sent:
            raise trio.ClosedResourceError("send_eof() was called on this stream")
        err = self._send_error
        if err is not None:
            if isinstance(err, SecretStreamError):
                raise err.copy() from err
            raise trio.BrokenResourceError(*err.args) from err

    # -- sending ---------------------------------------------------------------------------

    async def send(self, value: Buffer) -> None:
        """Send ``value`` as one message (one encrypted frame)."""
        if len(value) > MAX_MESSAGE:
            raise ValueError(f"message longer than {MAX_MESSAGE} bytes does not fit one frame")
        if self._proto.state is State.HANDSHAKE or self._handshake_lock.locked():
            await self._ensure_handshake()
        lock = self._send_lock
        await lock.acquire()
        try:
            self._check_send()
            await checkpoint_if_cancelled()
            await self._send_raw(self._outbox.take(self._proto.encrypt(value)))
        finally:
            lock.release()

    def send_nowait(self, value: Buffer) -> None:
        """Send ``value`` as one message without waiting, or raise :class:`trio.WouldBlock`.

        The frame goes to the transport at once when it takes it (a TCP socket with room),
        else it waits in a buffer that a task of the stream's own writes out, in order with
        every other send. Only inside ``async with`` (that task runs there), after the
        handshake, and while less than ``MAX_PENDING_OUT`` bytes wait; otherwise
        ``trio.WouldBlock``, and :meth:`send` is the way. Errors are those of :meth:`send`.
        :meth:`flush` waits until the buffer is written; :meth:`aclose` drops it.
        """
        if len(value) > MAX_MESSAGE:
            raise ValueError(f"message longer than {MAX_MESSAGE} bytes does not fit one frame")
        self._check_send()
        outbox = self._outbox
        if (
            not outbox.running
            or self._proto.state is State.HANDSHAKE
            or self._handshake_lock.locked()
        ):
            raise trio.WouldBlock
        out = outbox.buffer
        if out or outbox.coalescing or self._send_lock.held:
            if len(out) >= MAX_PENDING_OUT:
                raise trio.WouldBlock
            out += self._proto.encrypt(value)
            outbox.wake()
            return
        # The first message goes out at once; those that follow before the flusher task
        # runs (typically sent by other tasks of the same scheduling round) are buffered
        # and written together by it.
        outbox.coalescing = True
        outbox.wake()
        frame = self._proto.encrypt(value)
        raw = self._raw
        if raw is not None:
            try:
                sent = raw.write_some(frame)
            except trio.BrokenResourceError as exc:
                if self._send_error is None:
                    self._send_error = exc
                raise
            if sent and self._timers.keep_alive is not None:
                self._timers.last_sent = trio.current_time()
            if sent == len(frame):
                return
            out += memoryview(frame)[sent:]
            return
        out += frame

    async def flush(self) -> None:
        """Wait until every message given to :meth:`send_nowait` is written to the transport."""
        lock = self._send_lock
        await lock.acquire()
        try:
            if self._outbox.buffer:
                self._check_send()
                await self._send_raw(self._outbox.take())
            else:
                await checkpoint()
        finally:
            lock.release()

    async def _run_flusher(self) -> None:
        """Write out what :meth:`send_nowait` buffered (runs in the ``async with`` nursery)."""
        with trio.CancelScope() as scope:
            self._timer_scopes.add(scope)
            try:
                await self._outbox.run(self._send_stopped, self._flush_outbox)
            finally:
                self._timer_scopes.discard(scope)

    def _send_stopped(self) -> bool:
        return bool(self._closed or self._error or self._send_error or self._eof_sent)

    async def _flush_outbox(self) -> None:
        lock = self._send_lock
        await lock.acquire()
        try:
            if self._outbox.buffer and not self._eof_sent:
                await self._send_raw(self._outbox.take())
        finally:
            lock.release()

    async def send_all(self, data: Buffer) -> None:
        """Send ``data`` as one message; see :meth:`send`."""
        with self._send_conflict:
            await self.send(data)

    async def wait_send_all_might_not_block(self) -> None:
        with self._send_conflict:
            self._check_send()
            await self._ensure_handshake()
            async with self._send_lock:
                self._check_send()
                if self._outbox.buffer:
                    await self._send_raw(self._outbox.take())
                try:
                    await self.transport_stream.wait_send_all_might_not_block()
                except trio.ClosedResourceError:
                    self._raise_if_closed_or_cut_off()
                    raise

    async def send_eof(self) -> None:
        """Half-close: end the transport's sending side (JS ``end()``); receiving goes on.

        Needs a transport with ``send_eof`` (``trio.SocketStream`` has it); otherwise raises
        ``NotImplementedError``.
        """
        with self._send_conflict:
            self._check_usable()
            if self._eof_sent:
                await checkpoint()
                return
            transport = self.transport_stream
            if not isinstance(transport, trio.abc.HalfCloseableStream):
                raise NotImplementedError(f"{type(transport).__name__} cannot half-close")
            await self._ensure_handshake()
            async with self._send_lock:
                self._check_send()
                if self._outbox.buffer:
                    await self._send_raw(self._outbox.take())
                self._eof_sent = True
                self._wake_timers()
                try:
                    await transport.send_eof()
                except trio.ClosedResourceError:
                    self._raise_if_closed_or_cut_off()
                    raise

    # -- receiving -------------------------------------------------------------------------

    async def receive(self) -> bytes:
        """The next message; :class:`trio.EndOfChannel` once the peer has ended the stream."""
        return await self._receive_message(False)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Up to ``max_bytes`` bytes of the message sequence; ``b""`` at the end."""
        if max_bytes is not None:
            max_bytes = operator.index(max_bytes)
            if max_bytes < 1:
                raise ValueError("max_bytes must be >= 1")
        with self._receive_conflict:
            try:
                message = await self._receive_message(True)
            except trio.EndOfChannel:
                return b""
            if max_bytes is None or len(message) <= max_bytes:
                return message
            self._leftover = memoryview(message)[max_bytes:]
            return message[:max_bytes]

    async def _receive_message(self, skip_empty: bool) -> bytes:
        await checkpoint_if_cancelled()
        if self._proto.state is State.HANDSHAKE:
            await self._ensure_handshake()
        lock = self._receive_lock
        await lock.acquire()
        try:
            self._check_usable()
            leftover = self._leftover
            if leftover is not None:
                self._leftover = None
                await cancel_shielded_checkpoint()
                return bytes(leftover)
            proto = self._proto
            waited = False
            while True:
                try:
                    if self._protocol_error is not None:
                        raise self._protocol_error
                    message = proto.next_message()
                except SecretStreamProtocolError as exc:
                    err: SecretStreamError = exc.copy()
                    await self._cut_off(err)
                    raise err from exc
                if message is not None:
                    if skip_empty and not message:
                        continue
                    if not waited:
                        await cancel_shielded_checkpoint()
                    return message
                if self._eof_received:
                    if proto.buffered:
                        err = TruncatedFrameError(
                            "the peer closed the connection in the middle of a frame"
                        )
                        await self._cut_off(err)
                        raise err
                    if not waited:
                        await cancel_shielded_checkpoint()
                    raise trio.EndOfChannel
                failure = self._receive_error
                if failure is not None:
                    raise trio.BrokenResourceError(*failure.args) from failure
                data = await self._receive_raw()
                waited = True
                if data:
                    proto.receive_data(data)
                else:
                    self._eof_received = True
                    self._wake_timers()
        finally:
            lock.release()

    def receive_nowait(self) -> bytes:
        """The next message if it can be had without waiting, else :class:`trio.WouldBlock`.

        Returns messages already received and decrypted, and reads a TCP transport once if
        that finds more. The end of the stream and errors are left for :meth:`receive` to
        report (this raises ``trio.WouldBlock`` then).
        """
        if (
            self._proto.state is State.HANDSHAKE
            or self._handshake_lock.locked()
            or self._receive_lock.held
            or self._leftover is not None
            or self._closed
            or self._error is not None
            or self._protocol_error is not None
        ):
            raise trio.WouldBlock
        proto = self._proto
        try:
            message = proto.next_message()
            if message is None:
                raw = self._raw
                if raw is None or self._eof_received or self._receive_error is not None:
                    raise trio.WouldBlock
                try:
                    data = raw.poll(proto.read_size())
                except trio.ClosedResourceError:
                    raise trio.WouldBlock from None
                except trio.BrokenResourceError as exc:
                    self._receive_error = exc
                    raise trio.WouldBlock from None
                if data is None:
                    raise trio.WouldBlock
                if not data:
                    self._eof_received = True
                    self._wake_timers()
                    raise trio.WouldBlock
                proto.receive_data(data)
                timers = self._timers
                if timers.timeout is not None:
                    timers.last_received = trio.current_time()
                message = proto.next_message()
                if message is None:
                    raise trio.WouldBlock
        except SecretStreamProtocolError as exc:
            self._protocol_error = exc
            raise trio.WouldBlock from None
        return message

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        """Messages until the peer ends the stream."""
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    # -- unordered messages ----------------------------------------------------------------

    def _require_udp(self) -> DatagramTransport:
        udp = self._udp
        if udp is None:
            raise UnorderedUnsupportedError(
                f"unordered messages need a UDX stream, not {type(self.transport_stream).__name__}"
            )
        return udp

    async def send_udp(self, data: Buffer) -> bool:
        """Send ``data`` as one unordered, encrypted datagram (JS ``send``).

        True once the transport took it; False before the handshake is complete or when the
        transport cannot send (not connected, closed). Delivery is not guaranteed.
        """
        udp = self._require_udp()
        self._check_usable()
        boxes = self._proto.unordered
        if boxes is None:
            await checkpoint()
            return False
        try:
            await udp.send(boxes.seal(data))
        except (trio.ClosedResourceError, trio.BrokenResourceError, UDXError):
            return False
        return True

    def try_send_udp(self, data: Buffer) -> bool:
        """:meth:`send_udp` without waiting (JS ``trySend``)."""
        udp = self._require_udp()
        self._check_usable()
        boxes = self._proto.unordered
        if boxes is None:
            return False
        try:
            udp.try_send(boxes.seal(data))
        except (trio.ClosedResourceError, trio.BrokenResourceError, UDXError):
            return False
        return True

    def _open_udp(self, datagram: bytes) -> bytes | None:
        boxes = self._proto.unordered
        if boxes is None:
            return None  # before the handshake: dropped, as JS does
        return boxes.open(datagram)

    async def _run_udp_reader(
        self, udp: DatagramTransport, queue: trio.MemorySendChannel[bytes]
    ) -> None:
        """Open the transport's datagrams as they arrive (runs in the ``async with``
        nursery): those that fail, or come before the handshake, are dropped; so are opened
        ones beyond :data:`MAX_QUEUED_UDP` waiting for :meth:`receive_udp`."""
        with queue, trio.CancelScope() as scope:
            self._timer_scopes.add(scope)
            try:
                if self._closed or self._error is not None:
                    return
                while True:
                    try:
                        datagram = await udp.receive_message()
                    except (trio.EndOfChannel, trio.ClosedResourceError, trio.BrokenResourceError):
                        return
                    message = self._open_udp(datagram)
                    if message is not None:
                        try:
                            queue.send_nowait(message)
                        except trio.WouldBlock:
                            pass
            finally:
                self._timer_scopes.discard(scope)

    async def receive_udp(self) -> bytes:
        """The next unordered message (JS ``'message'`` event).

        Datagrams that do not open are dropped silently, as are those that arrive before the
        handshake is complete. Raises :class:`trio.EndOfChannel` once the transport's
        datagrams end (the UDX stream closed). Without ``async with`` this reads the
        transport itself and does not run the handshake: datagrams that waited unread in the
        transport through the handshake are then opened too.
        """
        udp = self._require_udp()
        self._check_usable()
        queue = self._udp_queue
        if queue is not None:
            try:
                return await queue.receive()
            except trio.EndOfChannel:
                self._check_usable()
                raise
        while True:
            with trio.CancelScope() as scope:
                # (closing the stream cancels this wait: ClosedResourceError below)
                self._timer_scopes.add(scope)
                try:
                    datagram = await udp.receive_message()
                finally:
                    self._timer_scopes.discard(scope)
            self._check_usable()
            if scope.cancelled_caught:
                continue
            message = self._open_udp(datagram)
            if message is not None:
                return message

    # -- timers ----------------------------------------------------------------------------

    def _wake_timers(self) -> None:
        self._timer_wakeup.set()

    def _stop_timers(self) -> None:
        for scope in self._timer_scopes:
            scope.cancel()

    async def run_timers(self) -> None:
        """Send keep-alives and enforce the idle timeout until the stream closes.

        ``async with`` runs this in its own nursery; call it yourself (in a nursery you
        own) only when using the stream without ``async with``. It never raises: failures
        show up on the stream's own calls.
        """
        with trio.CancelScope() as scope:
            self._timer_scopes.add(scope)
            try:
                if self._closed or self._error is not None:
                    return
                try:
                    await self._ensure_handshake()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
                self._start_clock(trio.current_time())  # (started from a finished handshake)
                await self._timer_loop()
            finally:
                self._timer_scopes.discard(scope)

    async def _timer_loop(self) -> None:
        timers = self._timers
        while not self._closed and self._error is None:
            keep_alive = not self._eof_sent and self._send_error is None
            timeout = not self._eof_received
            if self._timer_wakeup.is_set():
                self._timer_wakeup = trio.Event()
            deadline = timers.next_deadline(keep_alive=keep_alive, timeout=timeout)
            with trio.move_on_at(deadline):
                await self._timer_wakeup.wait()
                continue
            event = timers.poll(trio.current_time(), keep_alive=keep_alive, timeout=timeout)
            if event is TimerEvent.TIMED_OUT:
                if await self._bytes_arrived():
                    continue
                await self._cut_off(StreamTimeoutError("Stream timed out"))
                return
            if event is TimerEvent.SEND_KEEP_ALIVE:
                await self._send_keep_alive()

    async def _bytes_arrived(self) -> bool:
        """At the idle deadline: did bytes arrive that nobody has read yet?

        JS reads eagerly, so bytes (keep-alives included) count as soon as they arrive. Here
        they may wait in the transport while no task receives: when nobody is reading, look
        (for a short grace period) and buffer what is there for the next receive.
        """
        if self._reading:
            return False  # a reader is waiting and nothing came
        timeout = self._timers.timeout or 0.0
        grace = min(1.0, max(0.001, timeout / 20))
        lock = self._receive_lock
        try:
            lock.acquire_nowait()
        except trio.WouldBlock:
            # A reader is busy with buffered messages: look again shortly.
            await trio.sleep(grace)
            return True
        try:
            if self._eof_received or self._closed or self._receive_error is not None:
                return True
            with trio.move_on_after(grace):
                try:
                    data = await self.transport_stream.receive_some(self._proto.read_size())
                except trio.BrokenResourceError as exc:
                    self._receive_error = exc  # the next receive reports it
                    return True
                except trio.ClosedResourceError:
                    return True
                if data:
                    self._proto.receive_data(data)
                    self._timers.received(trio.current_time())
                else:
                    self._eof_received = True
                return True
            return False
        finally:
            lock.release()

    async def _send_keep_alive(self) -> None:
        lock = self._send_lock
        try:
            lock.acquire_nowait()
        except trio.WouldBlock:
            # A write is under way; it counts.
            self._timers.sent(trio.current_time())
            await checkpoint()
            return
        try:
            if self._closed or self._eof_sent or self._error or self._send_error:
                return
            try:
                await self._send_raw(self._outbox.take(self._proto.encrypt(b"")))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # reported by the next call on the stream
        finally:
            lock.release()

    # -- closing ---------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the stream and the transport; safe to call again."""
        if self._closed:
            await checkpoint()
            return
        self._closed = True
        self._stop_timers()
        await self.transport_stream.aclose()
