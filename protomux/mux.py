"""The Trio adapter: :class:`Protomux` runs a :class:`~protomux._session.Session` over a
stream of whole messages (a ``trio.abc.Channel[bytes]`` such as a secret-stream)."""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol, Self

import trio

from ._channel import Callback, Channel
from ._session import BATCH_STEP, Session
from ._toolkit import AsyncResource, ParkedTask
from .encoding import Codec
from .errors import MuxError, MuxProtocolError

__all__ = [
    "DEFAULT_HIGH_WATER_MARK",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_QUEUED",
    "MessageStream",
    "Protomux",
]

#: Queued outgoing bytes above which ``send`` returns False (as a streamx stream's default).
DEFAULT_HIGH_WATER_MARK = 16 * 1024
#: Incoming messages larger than this close the connection with a MuxProtocolError.
#: Secret-stream frames carry at most 2^24 - 1 bytes and JS cuts batches at 8 MiB, so nothing
#: legitimate comes near it.
DEFAULT_MAX_MESSAGE_SIZE = 32 * 1024 * 1024
#: Queued outgoing bytes above which a peer that takes nothing for NO_PROGRESS_TIMEOUT, or
#: lets the queue reach four times this, is dropped as not reading (a MuxProtocolError).
#: Senders that honour ``send() -> False`` / ``drain()`` never come near it (hypercore serves
#: requests only while drained); what a peer makes us send without back-pressure (answers
#: to its RPC requests) stops there instead of growing. An application's own burst to a
#: peer that reads is not dropped below four times this.
DEFAULT_MAX_QUEUED = 64 * 1024 * 1024
#: Seconds the queue may stay above ``max_queued`` with nothing written before the drop.
NO_PROGRESS_TIMEOUT = 10.0
#: How many waiting messages the reader handles before it checkpoints again. (Batches count
#: their entries apart: the reader checkpoints after every BATCH_STEP of them.)
MAX_NOWAIT = 64


class MessageStream(Protocol):
    """What Protomux needs of its stream: whole messages both ways (``trio.abc.Channel``).

    Optional: a stream that also has ``send_nowait(message)`` and/or ``receive_nowait()``
    (raising ``trio.WouldBlock``, like trio's memory channels) lets Protomux write a frame
    from the sending call when nothing is queued and read the messages already waiting,
    without a task switch per message. If it also has ``async flush()``, a graceful close
    awaits it after the last frame, for what ``send_nowait`` left buffered in the stream.
    """

    async def send(self, value: bytes, /) -> None: ...
    async def receive(self) -> bytes: ...
    async def aclose(self) -> None: ...


# The mux of each stream made by Protomux.of: weak on the stream (whose class we do not own,
# so no attribute is set on it), so that an entry lives exactly as long as its stream.
_BY_STREAM: weakref.WeakKeyDictionary[Any, Protomux] = weakref.WeakKeyDictionary()


class Protomux(AsyncResource):
    """Multiplexes channels over one message stream; wire-identical to JS protomux 3.12.1.

    ``async with Protomux(stream) as mux:`` starts a reader and a writer task in a nursery
    owned by the mux; leaving the block flushes what is queued and closes the mux and the
    stream (on an exception it closes at once), then cancels the async callbacks that are
    still running. ``await nursery.start(mux.run)`` runs it in a nursery of the caller
    instead (until the mux closes). :meth:`aclose` is idempotent; it waits until the queued
    frames are written (bound it with a timeout, or use :meth:`destroy` to drop them).

    Channels: :meth:`create_channel`, then ``channel.add_message(...)`` and
    ``channel.open(handshake)``. Sending is synchronous: ``message.send(value)`` queues one
    frame and returns False once more than ``high_water_mark`` bytes are queued (the frame
    is queued anyway); ``await mux.drain()`` waits until the queue is back under half of it.

    Callbacks may be plain or ``async`` functions. Plain ones run inside the reader, in the
    order frames arrive (the reader lets other tasks run every ``BATCH_STEP`` entries of a
    batch, so that a batch of millions of entries does not freeze the program). For one
    channel, callbacks never overlap and run in event order (``on_open`` before the messages,
    messages in order, ``on_close`` last, then ``on_destroy``): an ``async`` callback runs as
    a task in the mux's nursery, and the channel's later callbacks wait for it; other
    channels and the reader go on meanwhile.
    ``pair`` notifications may be async too; they run concurrently.

    Errors: a peer that breaks the protocol (malformed frame, bad channel id, a message over
    ``max_message_size``, or not reading while more than ``max_queued`` bytes wait for it)
    closes the connection; :attr:`error` tells why (a
    :class:`~protomux.MuxProtocolError`) and every channel closes with ``is_remote=True``. A
    message or handshake that its codec cannot decode closes only that channel (``close`` is
    sent; ``channel.error`` is a :class:`~protomux.ChannelDecodeError`). A
    :class:`~protomux.errors.MuxError` raised by a callback drops the peer the same way. Any
    other exception raised by a callback is a bug: the mux closes and the exception propagates
    out of ``async with`` (inside an ``ExceptionGroup``, as a nursery does).
    """

    def __init__(
        self,
        stream: MessageStream,
        *,
        high_water_mark: int = DEFAULT_HIGH_WATER_MARK,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_queued: int = DEFAULT_MAX_QUEUED,
    ) -> None:
        self.stream = stream
        self._session = Session(self)
        self._hwm = high_water_mark
        self._lwm = high_water_mark // 2
        #: Larger incoming messages close the connection; larger sends raise ValueError.
        self.max_message_size = max_message_size
        self.max_queued = max_queued
        self._overflowed = False
        self._progress = 0  # frames written so far (the watch of a long queue reads it)
        self._queue: deque[bytes] = deque()
        self._queued = 0
        self._need_drain = False
        self._drain_event: trio.Event | None = None
        self._resume_event: trio.Event | None = None
        self._parked_writer = ParkedTask[None]()  # the writer, while the queue is empty
        self._sending = False
        # Streams that can take or give a message without blocking (trio's memory channels
        # can) save a task switch per message.
        self._send_nowait: Callable[[bytes], None] | None = getattr(stream, "send_nowait", None)
        self._receive_nowait: Callable[[], bytes] | None = getattr(stream, "receive_nowait", None)
        self._nursery: trio.Nursery | None = None
        self._pre_spawn: list[tuple[Callable[..., Awaitable[object]], tuple[Any, ...]]] = []
        self._reader_scope = trio.CancelScope()
        self._writer_scope = trio.CancelScope()
        self._writer_done = trio.Event()
        self._flush_and_stop = False
        self._writing = True
        self._closing = False
        self._stopped = False
        self._handling = False  # the reader is inside a message callback
        self._deferred: dict[Callable[[], object], None] = {}
        self._stream_closing = False
        self._done = trio.Event()
        #: Why the mux closed, if it did not close normally.
        self.error: BaseException | None = None

    # --- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._nursery is not None or self._closing:
            raise RuntimeError("a Protomux can be started only once")
        return await super().__aenter__()

    async def _open(self, nursery: trio.Nursery) -> None:
        self._start(nursery)

    async def _exit(self, exc: BaseException | None) -> None:
        # (Then the nursery is left: callbacks still running do not outlive the block.)
        if exc is None:
            await self.aclose()
        else:
            self.destroy()
            await self._close_stream()

    @classmethod
    def of(cls, stream: MessageStream, nursery: trio.Nursery | None) -> Protomux:
        """The one Protomux of ``stream`` (JS ``Protomux.from(stream)``): the one already
        made for it by an earlier call and still open, or a new one run in ``nursery``
        (None: raise RuntimeError rather than make one). Every protocol that shares a
        connection (replication, RPC, a blind relay) gets its channels on this one mux."""
        mux = _BY_STREAM.get(stream)
        if mux is not None and not mux.closed:
            return mux
        if nursery is None:
            raise RuntimeError("the stream has no Protomux yet: pass a nursery to run one in")
        mux = cls(stream)
        _BY_STREAM[stream] = mux
        nursery.start_soon(mux.run)
        return mux

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the mux until it closes: ``await nursery.start(mux.run)``."""
        async with self:
            task_status.started()
            await self._done.wait()

    def _start(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        nursery.start_soon(self._reader)
        nursery.start_soon(self._writer)
        pre, self._pre_spawn = self._pre_spawn, []
        for fn, args in pre:
            nursery.start_soon(fn, *args)

    async def aclose(self) -> None:
        """Flush the queued frames, close the stream and every channel. Idempotent; if
        cancelled, closes at once."""
        await self._close(is_remote=False)

    def destroy(self, error: BaseException | None = None) -> None:
        """Close at once, dropping what is queued (``error`` is kept as :attr:`error`)."""
        self._destroy(error, is_remote=False)

    async def wait_closed(self) -> None:
        """Wait until the mux and its stream are closed."""
        await self._done.wait()

    @property
    def closed(self) -> bool:
        """Closing or closed: no frames are sent any more."""
        return self._closing

    async def _close(self, *, is_remote: bool) -> None:
        if self._closing:
            await self._done.wait()
            return
        self._closing = True
        self._reader_scope.cancel()
        try:
            if self._nursery is not None:
                self._flush_and_stop = True
                self._parked_writer.wake()
                await self._writer_done.wait()
        finally:
            self._stop(is_remote, None)
            await self._close_stream()

    def _destroy(self, error: BaseException | None, *, is_remote: bool) -> None:
        if self._stopped:
            return
        first = not self._closing
        self._closing = True
        self._stop(is_remote, error)
        if first:
            if self._nursery is not None:
                self._nursery.start_soon(self._close_stream)
            else:
                self._pre_spawn.append((self._close_stream, ()))

    def _stop(self, is_remote: bool, error: BaseException | None) -> None:
        if self._stopped:
            return
        self._stopped = True
        if error is not None and self.error is None:
            self.error = error
        self._writing = False
        self._queue.clear()
        self._queued = 0
        self._reader_scope.cancel()
        self._writer_scope.cancel()
        if self._drain_event is not None:
            self._drain_event.set()
        if self._resume_event is not None:
            self._resume_event.set()
        self._session.shutdown(is_remote, error)

    async def _close_stream(self) -> None:
        if self._stream_closing:
            await self._done.wait()
            return
        self._stream_closing = True
        try:
            await self.stream.aclose()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self._done.set()

    # --- the two tasks ----------------------------------------------------------------------

    async def _reader(self) -> None:
        stream = self.stream
        receive_nowait = self._receive_nowait
        session = self._session
        with self._reader_scope:
            while True:
                try:
                    data = await stream.receive()
                except trio.EndOfChannel:
                    self._on_end()
                    return
                except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
                    self._destroy(e, is_remote=True)
                    return
                session.budget = BATCH_STEP
                if not self._handle(data):
                    self._run_deferred()
                    return
                if receive_nowait is not None:
                    # Take what is already there without a task switch per message (at most
                    # MAX_NOWAIT, for fairness: the next receive checkpoints).
                    for _ in range(MAX_NOWAIT):
                        if session.budget <= 0 or session.paused:  # (also when busy)
                            break
                        try:
                            data = receive_nowait()
                        except trio.WouldBlock:
                            break
                        except trio.EndOfChannel:
                            self._run_deferred()
                            self._on_end()
                            return
                        except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
                            self._run_deferred()
                            self._destroy(e, is_remote=True)
                            return
                        if not self._handle(data):
                            self._run_deferred()
                            return
                if self._deferred:
                    self._run_deferred()
                # The rest of a long batch, BATCH_STEP entries at a time with a checkpoint
                # before each step; reading (and the batch) waits while the session is paused.
                while (session.busy or session.paused) and not self._stopped:
                    if session.paused:
                        self._resume_event = ev = trio.Event()
                        if session.paused and not self._stopped:
                            await ev.wait()
                        self._resume_event = None
                        continue
                    await trio.lowlevel.checkpoint()
                    session.budget = BATCH_STEP
                    if not self._handle(None):
                        self._run_deferred()
                        return
                    if self._deferred:
                        self._run_deferred()

    def _handle(self, data: bytes | None) -> bool:
        """Feed one message to the session (``None``: let it go on with the batch it is
        handling); False when the mux stopped."""
        if data is not None and len(data) > self.max_message_size:
            self._destroy(
                MuxProtocolError(f"message of {len(data)} bytes is over {self.max_message_size}"),
                is_remote=True,
            )
            return False
        self._handling = True
        try:
            if data is None:
                self._session.continue_batch()
            else:
                self._session.receive_part(data)
        except MuxError as e:
            self._destroy(e, is_remote=True)
            return False
        except BaseException as e:
            self._destroy(e, is_remote=False)
            raise
        finally:
            self._handling = False
        return not self._stopped

    def defer(self, fn: Callable[[], object]) -> None:
        """Call ``fn()`` once the reader has handled the messages that have already arrived
        (before it waits for more, or lets other tasks run in the middle of a long batch),
        when called from a message callback; at once otherwise.

        The same ``fn`` deferred again before it ran is called once. This lets a callback
        batch work over a burst of messages (one storage write, one batch of answers).
        An exception from ``fn`` ends the mux as one from a message callback does.
        """
        if self._handling:
            self._deferred[fn] = None
        else:
            fn()

    def _run_deferred(self) -> None:
        while self._deferred:
            fn = next(iter(self._deferred))
            del self._deferred[fn]
            try:
                fn()
            except BaseException as e:
                self._deferred.clear()
                self._destroy(e, is_remote=False)
                raise

    def _on_end(self) -> None:
        if self._nursery is not None and not self._closing:
            self._nursery.start_soon(self._remote_ended)

    async def _remote_ended(self) -> None:
        await self._close(is_remote=True)

    async def _writer(self) -> None:
        q = self._queue
        send = self.stream.send
        try:
            with self._writer_scope:
                while True:
                    if not q:
                        if self._flush_and_stop:
                            flush = getattr(self.stream, "flush", None)
                            if flush is not None and self._send_nowait is not None:
                                # Frames the stream took with send_nowait may wait in it.
                                try:
                                    await flush()
                                except (trio.BrokenResourceError, trio.ClosedResourceError):
                                    pass
                            return
                        await self._parked_writer.park()
                        continue
                    frame = q.popleft()
                    self._sending = True
                    try:
                        await send(frame)
                    except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
                        self._destroy(e, is_remote=True)
                        return
                    except Exception as e:  # the stream refused the frame (e.g. too large)
                        self._destroy(e, is_remote=False)
                        return
                    finally:
                        self._sending = False
                    self._queued -= len(frame)
                    self._progress += 1
                    if self._need_drain and self._queued <= self._lwm:
                        self._on_drain()
        finally:
            self._writer_done.set()

    def _on_drain(self) -> None:
        self._need_drain = False
        ev = self._drain_event
        if ev is not None:
            self._drain_event = None
            ev.set()
        try:
            self._session.on_drain()
        except MuxError as e:
            self._destroy(e, is_remote=True)

    # --- the session's host interface -------------------------------------------------------

    def write(self, frame: bytes) -> bool:
        if not self._writing:
            return False
        if self._send_nowait is not None and not self._queue and not self._sending:
            if self._nursery is not None:
                try:
                    self._send_nowait(frame)
                    return self._queued < self._hwm
                except trio.WouldBlock:
                    pass
                except Exception:
                    pass
        self._queue.append(frame)
        self._queued += len(frame)
        if self._queued > 4 * self.max_queued:
            self._writing = False  # nothing more is queued: the peer is dropped at once
            self.spawn(self._watch_long_queue)
            return False
        if self._queued > self.max_queued and not self._overflowed:
            # Watched (and dropped) from a task of its own: the sender may be a callback.
            self._overflowed = True
            self.spawn(self._watch_long_queue)
        self._parked_writer.wake()
        if self._queued < self._hwm:
            return True
        self._need_drain = True
        return False

    async def _watch_long_queue(self) -> None:
        """The queue is above ``max_queued``: drop the peer if it stays there without a
        frame written for NO_PROGRESS_TIMEOUT, or grows past four times the cap."""
        progress, since = self._progress, trio.current_time()
        while not self._stopped and self._queued > self.max_queued:
            stalled = trio.current_time() - since >= NO_PROGRESS_TIMEOUT
            if stalled or not self._writing:
                error = MuxProtocolError(
                    f"the peer does not read: {self._queued} bytes wait for it"
                )
                self._destroy(error, is_remote=True)
                return
            await trio.sleep(0.05)
            if self._progress != progress:
                progress, since = self._progress, trio.current_time()
        self._overflowed = False

    def spawn(self, fn: Callable[..., Awaitable[object]], *args: Any) -> None:
        nursery = self._nursery
        if nursery is None:
            self._pre_spawn.append((fn, args))
            return
        try:
            nursery.start_soon(fn, *args)
        except RuntimeError:  # the nursery is closed: the mux is gone
            for a in args:
                close = getattr(a, "close", None)
                if close is not None and hasattr(a, "cr_frame"):
                    close()

    def new_event(self) -> trio.Event:
        return trio.Event()

    def resume(self) -> None:
        ev = self._resume_event
        if ev is not None:
            ev.set()

    def fail(self, error: MuxError) -> None:
        self._destroy(error, is_remote=True)

    # --- back-pressure ----------------------------------------------------------------------

    @property
    def drained(self) -> bool:
        """False while more than ``high_water_mark`` bytes are queued."""
        return self._queued < self._hwm

    async def drain(self) -> None:
        """Wait until the send queue is at most half the high-water mark (or the mux closed)."""
        if self._queued < self._hwm or not self._writing:
            await trio.lowlevel.checkpoint()
            return
        while self._queued > self._lwm and self._writing:
            ev = self._drain_event
            if ev is None:
                ev = self._drain_event = trio.Event()
            self._need_drain = True
            await ev.wait()

    # --- channels ---------------------------------------------------------------------------

    def create_channel(
        self,
        protocol: str,
        id: bytes | None = None,
        *,
        handshake: Codec[Any] | None = None,
        unique: bool = True,
        aliases: Iterable[str] = (),
        user_data: Any = None,
        messages: Iterable[Mapping[str, Any] | None] = (),
        on_open: Callback | None = None,
        on_close: Callback | None = None,
        on_destroy: Callback | None = None,
        on_drain: Callback | None = None,
    ) -> Channel | None:
        """A channel for ``protocol`` and ``id`` (``None`` if ``unique`` and one is already
        open for them, or if the mux is closed).

        ``handshake`` is the codec of the value passed to ``open`` and received from the
        remote (``channel.remote_handshake``). ``messages`` are dicts of ``add_message``
        arguments (``{"encoding": c.string, "on_message": f}``; ``None`` reserves a type).
        Callbacks: ``on_open(remote_handshake, channel)``, ``on_close(is_remote, channel)``,
        ``on_destroy(channel)``, ``on_drain(channel)``, ``on_message(value, channel)``.

        If the remote already asked for this protocol/id (see :meth:`pair`), the channel is
        paired with that request: ``open()`` answers it and the channel opens right away.
        """
        return self._session.create_channel(
            protocol,
            id,
            handshake=handshake,
            unique=unique,
            aliases=aliases,
            user_data=user_data,
            messages=messages,
            on_open=on_open,
            on_close=on_close,
            on_destroy=on_destroy,
            on_drain=on_drain,
        )

    def pair(self, protocol: str, id: bytes | None, notify: Callback) -> None:
        """Call ``notify(id)`` (sync or async) when the remote opens ``protocol``/``id`` and
        no local channel is waiting for it (``id=None`` matches any id). If ``notify`` does
        not create the channel with :meth:`create_channel`, the open is rejected."""
        self._session.pair(protocol, id, notify)

    def unpair(self, protocol: str, id: bytes | None = None) -> None:
        self._session.unpair(protocol, id)

    def opened(self, protocol: str, id: bytes | None = None) -> bool:
        """Is a channel for ``protocol``/``id`` open (``open()`` called and not closed)?"""
        return self._session.opened(protocol, id)

    def get_last_channel(self, protocol: str, id: bytes | None = None) -> Channel | None:
        return self._session.get_last_channel(protocol, id)

    def is_idle(self) -> bool:
        """No channel holds a local id."""
        return self._session.is_idle()

    def __iter__(self) -> Iterator[Channel]:
        """The channels holding a local id."""
        return iter(self._session)

    def cork(self) -> None:
        """Collect the frames sent from now on into batches, until the matching uncork."""
        self._session.cork()

    def uncork(self) -> None:
        self._session.uncork()

    @contextmanager
    def corked(self) -> Iterator[None]:
        """``with mux.corked():`` sends everything sent inside as one batch."""
        self._session.cork()
        try:
            yield
        finally:
            self._session.uncork()

    @property
    def is_corked(self) -> bool:
        return self._session.corked > 0
